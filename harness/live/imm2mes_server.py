"""A simulated EUROMAP 77 (OPC 40077 IMM2MES 1.01) injection moulding machine on asyncua's
own OPC UA ``Server``, loaded with the OPC Foundation nodesets.

Run as a script (tests start it as a subprocess on a free loopback port, so kill -9 and a
restart are real)::

    python -m harness.live.imm2mes_server --port 4840 --cycle-s 0.5 [--machines IMM_1,IMM_2]

It prints ``READY <endpoint>`` on stdout once the address space is loaded and the
simulator runs. Address space (namespace indexes as the server assigns them):

- nodesets imported in the order of ``datasets/opcua/SOURCE.md``: DI 1.04 ->
  PlasticsRubber/GeneralTypes 1.03 -> PlasticsRubber/IMM2MES 1.01;
- ``Objects/<machine>`` (BrowseName in this simulator's namespace :data:`SIM_URI`) of type
  ``IMM_MES_InterfaceType`` (OPC 40077 §7), all optional children instantiated, with
  ``InjectionUnits/InjectionUnit_<k>`` (OPC 40077 §15/§16) and their
  ``TemperatureZones/TemperatureZone_<n>`` (``BarrelTemperatureZoneType``, OPC 40083
  §19), ``EngineeringUnits`` set to degree Celsius;
- ``Objects/NotAMachine`` (a plain folder, for the machine-selection tests);
- a concrete cycle event type ``SimCycleParametersEventType`` (subtype of OPC 40083
  ``CycleParametersEventType`` with components ``InjectionUnitCycleParameters_<k>`` of a
  subtype of OPC 40077 ``InjectionUnitCycleParametersType``, §17.3, with
  ``EngineeringUnits`` on its analog items), fired on the machine object after every cycle.

Simulator: every ``--cycle-s`` seconds each machine completes a cycle ``n``: it fires the
cycle event with that cycle's parameters (:func:`cycle_values`), then writes the
DataAccess variables (LastCycleTime, part counters, temperatures ...) and last the
``MachineCycleCounter``, all with the same SourceTimestamp -- as a real machine publishes a
cycle. Values are a pure function of (machine index, n) so tests can check them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, cast

from asyncua import ua
from asyncua.common.node import Node
from asyncua.server.server import Server

DI_URI: Final = "http://opcfoundation.org/UA/DI/"
GT_URI: Final = "http://opcfoundation.org/UA/PlasticsRubber/GeneralTypes/"
IMM_URI: Final = "http://opcfoundation.org/UA/PlasticsRubber/IMM2MES/"
SIM_URI: Final = "urn:renkei:test:imm2mes-simulator"

#: NodeSet files relative to the datasets folder, in load order (SOURCE.md).
NODESETS: Final = (
    "opcua/DI/Opc.Ua.Di.NodeSet2.xml",
    "opcua/PlasticsRubber/GeneralTypes/1.03/Opc.Ua.PlasticsRubber.GeneralTypes.NodeSet2.xml",
    "opcua/PlasticsRubber/IMM2MES/1.01/Opc.Ua.PlasticsRubber.IMM2MES.NodeSet2.xml",
)

# NodeIds (numeric identifiers inside their own nodeset) of the types used here.
_IMM_MES_INTERFACE_TYPE: Final = 1007
_INJECTION_UNIT_TYPE: Final = 1028
_IU_CYCLE_PARAMETERS_TYPE: Final = 1039
_GT_CYCLE_PARAMETERS_EVENT_TYPE: Final = 1038
_GT_BARREL_TEMPERATURE_ZONE_TYPE: Final = 1001

#: MachineModeEnumeration AUTOMATIC (OPC 40083), ProductionStatusEnumeration PRODUCTION,
#: JobStatusEnumeration RUNNING.
MODE_AUTOMATIC: Final = 1
STATUS_PRODUCTION: Final = 3
JOB_RUNNING: Final = 3

#: UNECE codes (OPC 10000-8 §5.6.3 EUInformation, namespace
#: http://www.opcfoundation.org/UA/units/un/cefact).
_UNECE: Final = {
    "°C": (4408652, "degree Celsius"),  # CEL
    "bar": (4342098, "bar"),  # BAR
    "mm": (5066068, "millimetre"),  # MMT
    "cm³": (4410706, "cubic centimetre"),  # CMQ
    "mm/s": (4405333, "millimetre per second"),  # C16
}

#: Event analog items (InjectionUnitCycleParametersType) the simulator sets, with units.
EVENT_UNITS: Final = {
    "CushionStroke": "mm",
    "CushionVolume": "cm³",
    "SpecificPressureMaximum": "bar",
    "HoldSpecificPressureMaximum": "bar",
    "HoldSpecificPressureAverage": "bar",
    "TransferSpecificPressure": "bar",
    "BackPressure": "bar",
    "PlastificationVolume": "cm³",
    "InjectionSpeedMaximum": "mm/s",
}


def eu_information(unit: str) -> ua.EUInformation:
    """The OPC UA ``EUInformation`` of ``unit`` (a key of the UNECE table above)."""
    code, name = _UNECE[unit]
    return ua.EUInformation(
        NamespaceUri="http://www.opcfoundation.org/UA/units/un/cefact",
        UnitId=code,
        DisplayName=ua.LocalizedText(unit),
        Description=ua.LocalizedText(name),
    )


def cycle_values(machine: int, n: int, *, units: int = 1, zones: int = 4) -> dict[str, float]:
    """The simulated values after cycle ``n`` of machine number ``machine`` (0-based).

    Keys: ``MachineCycleCounter``, ``JobCycleCounter``, ``JobGoodPartsCounter``,
    ``JobBadPartsCounter``, ``JobPartsCounter``, ``LastCycleTime`` (ms),
    ``AverageCycleTime`` (ms), ``iu{k}.<InjectionUnitCycleParametersType field>`` (Duration
    fields in ms, others in :data:`EVENT_UNITS`), ``iu{k}.zone{z}`` (actual temperature,
    °C) and ``iu{k}.zone{z}.nominal``.
    """
    base = 1000 * machine
    counter = base + n
    bad = n // 7
    out: dict[str, float] = {
        "MachineCycleCounter": float(counter),
        "JobCycleCounter": float(n),
        "JobBadPartsCounter": float(bad),
        "JobGoodPartsCounter": float(2 * n - bad),
        "JobPartsCounter": float(2 * n),
        "LastCycleTime": 20_000.0 + 10.0 * (n % 13),
        "AverageCycleTime": 20_060.0,
    }
    for k in range(1, units + 1):
        p = f"iu{k}."
        j = n % 11
        out |= {
            p + "InjectionTime": 1_200.0 + 5.0 * j + k,
            p + "DosingTime": 4_500.0 + 20.0 * j,
            p + "CushionStroke": 5.0 + 0.125 * j,
            p + "CushionVolume": 2.5 + 0.0625 * j,
            p + "SpecificPressureMaximum": 1_400.0 + 2.0 * j + 100 * machine,
            p + "HoldSpecificPressureMaximum": 800.0 + j,
            p + "HoldSpecificPressureAverage": 780.0 + j,
            p + "TransferSpecificPressure": 1_100.0 + j,
            p + "BackPressure": 90.0 + 0.5 * j,
            p + "PlastificationVolume": 40.0 + 0.25 * j,
            p + "InjectionSpeedMaximum": 120.0 + j,
        }
        for z in range(1, zones + 1):
            nominal = 200.0 + 10.0 * z
            out[f"{p}zone{z}"] = nominal + 0.25 * ((n + z) % 5) - 0.5
            out[f"{p}zone{z}.nominal"] = nominal
    return out


@dataclass
class SimMachine:
    """NodeIds of one simulated machine's DataAccess variables (for the simulator)."""

    index: int
    name: str
    node: Node
    variables: dict[str, Node] = field(default_factory=dict)


def _nid(identifier: int, namespace: int) -> ua.NodeId:
    return ua.NodeId(ua.Int32(identifier), ua.Int16(namespace))


async def _child(node: Node, *names: tuple[int, str]) -> Node:
    return await node.get_child([f"{ns}:{name}" for ns, name in names])


async def build_server(
    endpoint: str,
    data_dir: Path,
    *,
    machines: tuple[str, ...] = ("IMM_1",),
    units: int = 1,
    zones: int = 4,
) -> tuple[Server, list[SimMachine], Node]:
    """A configured (not yet started) server, its machines and the cycle event type node.

    Raises:
        FileNotFoundError: a nodeset file is missing under ``data_dir``.
    """
    server = Server()
    await server.init()
    server.set_endpoint(endpoint)
    server.set_server_name("Renkei IMM2MES simulator")
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    for rel in NODESETS:
        path = data_dir / rel
        if not path.is_file():
            raise FileNotFoundError(f"nodeset missing: {path}")
        await server.import_xml(str(path))
    sim = await server.register_namespace(SIM_URI)
    ns_array = await server.get_namespace_array()
    imm, gt = ns_array.index(IMM_URI), ns_array.index(GT_URI)

    # the concrete cycle event type (OPC 40077 §17.3: "InjectionUnitCycleParameters_<Nr>")
    iu_params_type = await server.nodes.base_object_type.get_child(
        [f"{imm}:InjectionUnitCycleParametersType"]
    )
    assert iu_params_type.nodeid == _nid(_IU_CYCLE_PARAMETERS_TYPE, imm)
    sim_iu_type = await server.create_custom_object_type(
        sim, "SimInjectionUnitCycleParametersType", basetype=iu_params_type.nodeid
    )
    evtype = await server.create_custom_event_type(
        sim, "SimCycleParametersEventType", basetype=_nid(_GT_CYCLE_PARAMETERS_EVENT_TYPE, gt)
    )
    for k in range(1, units + 1):
        comp = await evtype.add_object(
            sim, f"InjectionUnitCycleParameters_{k}", objecttype=sim_iu_type.nodeid
        )
        await comp.set_modelling_rule(True)
        for name, unit in EVENT_UNITS.items():
            eu = await _child(comp, (imm, name), (0, "EngineeringUnits"))
            await eu.write_value(ua.Variant(eu_information(unit), ua.VariantType.ExtensionObject))

    sims: list[SimMachine] = []
    for i, name in enumerate(machines):
        node = await server.nodes.objects.add_object(
            sim, name, objecttype=_nid(_IMM_MES_INTERFACE_TYPE, imm)
        )
        m = SimMachine(i, name, node)
        avs = await _child(node, (imm, "Jobs"), (gt, "ActiveJobValues"))
        for var in (
            "MachineCycleCounter",
            "JobCycleCounter",
            "JobGoodPartsCounter",
            "JobBadPartsCounter",
            "JobPartsCounter",
            "LastCycleTime",
            "AverageCycleTime",
            "JobStatus",
        ):
            m.variables[var] = await _child(avs, (gt, var))
        job = await _child(node, (imm, "Jobs"), (gt, "ActiveJob"))
        for var, value, vt in (
            ("JobName", f"JOB-{name}", ua.VariantType.String),
            ("MouldId", f"M-{100 + i}", ua.VariantType.String),
            ("ExpectedCycleTime", 20_000.0, ua.VariantType.Double),
            ("NumCavities", 2, ua.VariantType.UInt32),
            ("NominalParts", 10_000, ua.VariantType.UInt64),
        ):
            await (await _child(job, (gt, var))).write_value(ua.Variant(value, vt))
        m.variables["MachineMode"] = await _child(node, (imm, "MachineStatus"), (gt, "MachineMode"))
        m.variables["ProductionStatus"] = await _child(
            node, (imm, "MachineMESStatus"), (gt, "ProductionControl"), (gt, "ProductionStatus")
        )
        ius = await _child(node, (imm, "InjectionUnits"))
        for k in range(1, units + 1):
            iu = await ius.add_object(
                imm, f"InjectionUnit_{k}", objecttype=_nid(_INJECTION_UNIT_TYPE, imm)
            )
            await (await _child(iu, (imm, "Index"))).write_value(
                ua.Variant(k, ua.VariantType.UInt32)
            )
            await (await _child(iu, (imm, "IsPresent"))).write_value(True)
            await (await _child(iu, (imm, "InProduction"))).write_value(True)
            tzs = await _child(iu, (imm, "TemperatureZones"))
            for z in range(1, zones + 1):
                tz = await tzs.add_object(
                    gt,
                    f"TemperatureZone_{z}",
                    objecttype=_nid(_GT_BARREL_TEMPERATURE_ZONE_TYPE, gt),
                )
                await (await _child(tz, (gt, "Index"))).write_value(
                    ua.Variant(z, ua.VariantType.UInt32)
                )
                await (await _child(tz, (gt, "Name"))).write_value(f"Barrel zone {z}")
                for var, key in (("ActualTemperature", ""), ("NominalTemperature", ".nominal")):
                    item = await _child(tz, (gt, var))
                    eu = await _ensure_eu(server, item)
                    await eu.write_value(
                        ua.Variant(eu_information("°C"), ua.VariantType.ExtensionObject)
                    )
                    m.variables[f"iu{k}.zone{z}{key}"] = item
        sims.append(m)
    await server.nodes.objects.add_folder(sim, "NotAMachine")
    return server, sims, evtype


async def _ensure_eu(server: Server, item: Node) -> Node:
    """The item's ``EngineeringUnits`` property (added if asyncua left the optional one out)."""
    for prop in await item.get_properties():
        if (await prop.read_browse_name()).Name == "EngineeringUnits":
            return prop
    return await item.add_property(
        0, "EngineeringUnits", ua.Variant(None, ua.VariantType.ExtensionObject)
    )


_DOUBLE_VARS: Final = ("LastCycleTime", "AverageCycleTime")


async def publish_cycle(
    server: Server, machine: SimMachine, evtype: Node, n: int, *, units: int, zones: int
) -> None:
    """Machine ``machine`` completes cycle ``n``: cycle event first, then the variables,
    the ``MachineCycleCounter`` last, all stamped with one SourceTimestamp."""
    v = cycle_values(machine.index, n, units=units, zones=zones)
    now = datetime.now(UTC)
    gen = await server.get_event_generator(evtype, machine.node.nodeid)
    ev = gen.event
    for name in ("MachineCycleCounter", "JobCycleCounter", "JobGoodPartsCounter"):
        ev.add_property(name, int(v[name]), ua.VariantType.UInt64)
    for name in ("JobBadPartsCounter", "JobPartsCounter", "JobTestSamplesCounter"):
        ev.add_property(name, int(v.get(name, 0)), ua.VariantType.UInt64)
    ev.add_property("CycleTime", v["LastCycleTime"], ua.VariantType.Double)
    ev.add_property("CycleQuality", 0, ua.VariantType.Int32)
    ev.add_property("JobName", f"JOB-{machine.name}", ua.VariantType.String)
    ev.add_property("JobStatus", JOB_RUNNING, ua.VariantType.Int32)
    ev.add_property("CurrentLotName", "LOT-1", ua.VariantType.String)
    for k in range(1, units + 1):
        for key, value in v.items():
            if key.startswith(f"iu{k}.") and "zone" not in key:
                field_name = f"InjectionUnitCycleParameters_{k}/{key.split('.', 1)[1]}"
                ev.add_variable(field_name, value, ua.VariantType.Double)
    await gen.trigger(time_attr=now, message=f"cycle {int(v['MachineCycleCounter'])}")
    for key, node in machine.variables.items():
        if key in ("MachineCycleCounter", "MachineMode", "ProductionStatus", "JobStatus"):
            continue
        if key in _DOUBLE_VARS or "zone" in key:
            await _write(node, v[key], ua.VariantType.Double, now)
        else:
            await _write(node, v[key], ua.VariantType.UInt64, now)
    await _write(
        machine.variables["MachineCycleCounter"],
        v["MachineCycleCounter"],
        ua.VariantType.UInt64,
        now,
    )


async def _write(node: Node, value: float, vt: ua.VariantType, t: datetime) -> None:
    raw: Any = int(value) if vt is ua.VariantType.UInt64 else float(value)
    await node.write_value(
        ua.DataValue(ua.Variant(raw, vt), SourceTimestamp=cast("ua.DateTime", t))
    )


async def serve(args: argparse.Namespace) -> None:
    """Load, start, publish the initial state and run the simulator until killed."""
    data_dir = Path(args.data_dir)
    endpoint = f"opc.tcp://127.0.0.1:{args.port}/renkei/imm2mes"
    machines = tuple(x for x in args.machines.split(",") if x)
    server, sims, evtype = await build_server(
        endpoint, data_dir, machines=machines, units=args.units, zones=args.zones
    )
    async with server:
        n = args.start_cycle
        for m in sims:
            await m.variables["MachineMode"].write_value(
                ua.Variant(MODE_AUTOMATIC, ua.VariantType.Int32)
            )
            await m.variables["ProductionStatus"].write_value(
                ua.Variant(STATUS_PRODUCTION, ua.VariantType.Int32)
            )
            await m.variables["JobStatus"].write_value(
                ua.Variant(JOB_RUNNING, ua.VariantType.Int32)
            )
            await publish_cycle(server, m, evtype, n, units=args.units, zones=args.zones)
        print(f"READY {endpoint}", flush=True)
        loop = asyncio.get_running_loop()
        next_t = loop.time() + args.cycle_s
        while True:
            await asyncio.sleep(max(0.0, next_t - loop.time()))
            next_t += args.cycle_s
            n += 1
            for m in sims:
                await publish_cycle(server, m, evtype, n, units=args.units, zones=args.zones)


class Imm2MesServer:
    """This script as a subprocess on a free loopback port (for fixtures): ``start`` waits
    for ``READY``; ``kill9`` and ``start`` again restart it on the same port.

    Args:
        workdir: folder for the log.
        data_dir: the datasets folder.
        cycle_s, machines, units, zones: see :func:`main`.
    """

    def __init__(
        self,
        workdir: Path,
        data_dir: Path,
        *,
        cycle_s: float = 0.5,
        machines: tuple[str, ...] = ("IMM_1",),
        units: int = 1,
        zones: int = 4,
    ) -> None:
        from harness.services import free_port

        self.port = free_port()
        self.endpoint = f"opc.tcp://127.0.0.1:{self.port}/renkei/imm2mes"
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.argv = [
            sys.executable,
            "-m",
            "harness.live.imm2mes_server",
            f"--port={self.port}",
            f"--data-dir={data_dir}",
            f"--cycle-s={cycle_s}",
            f"--machines={','.join(machines)}",
            f"--units={units}",
            f"--zones={zones}",
        ]
        self.proc: Any = None
        self.starts = 0

    def start(self, timeout_s: float = 30.0) -> None:
        """Start the server and wait until its address space is loaded."""
        from harness.procs import Proc
        from harness.wait import wait_for

        self.starts += 1
        log = self.workdir / f"server-{self.starts}.log"
        self.proc = Proc(self.argv, log)

        def ready() -> bool:
            if not self.proc.alive():
                raise AssertionError(f"IMM2MES server exited; log:\n{self.proc.tail()}")
            return "READY" in log.read_text(errors="replace")

        wait_for(ready, timeout_s, "the IMM2MES server to load its nodesets", interval_s=0.05)

    def kill9(self) -> None:
        """SIGKILL (a crashed machine controller)."""
        if self.proc is not None:
            self.proc.kill9()

    def stop(self) -> None:
        """Terminate (SIGTERM, then SIGKILL)."""
        if self.proc is not None and self.proc.alive():
            self.proc.kill9()


def main(argv: list[str] | None = None) -> None:
    """Command line entry (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--data-dir", required=True, help="the datasets folder (holds opcua/)")
    p.add_argument("--cycle-s", type=float, default=0.5)
    p.add_argument("--machines", default="IMM_1", help="comma-separated BrowseNames")
    p.add_argument("--units", type=int, default=1, help="injection units per machine")
    p.add_argument("--zones", type=int, default=4, help="barrel zones per injection unit")
    p.add_argument("--start-cycle", type=int, default=1)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    logging.getLogger("asyncua").setLevel(logging.CRITICAL)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args))


if __name__ == "__main__":
    main()
