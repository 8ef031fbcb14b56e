"""The OPC UA ``euromap77`` preset: IMM2MES (EUROMAP 77 / OPC 40077 1.01) standard variables.

Why this module is long: it is one specification's preset. The node table of the
IMM2MES standard variables (with their unit conversions), the browse that finds them on a
server and the cycle-event plan of OPC 40083 §19 are read against the same spec sections and
change together when the spec or a server's quirks do; split apart, each half would need the
other's constants and the reader would lose the one place that maps the spec to signals.

Contract with the OPC UA driver (:mod:`renkei.edge.sources.live.opcua.driver`):

- :func:`preset_signals` gives, before connecting, the fixed list of signals the preset
  publishes and its shot trigger (one ``shot`` row per completed machine cycle);
- :func:`resolve_nodes`, after each (re)connect, browses the server's machine object and
  returns the NodeId of each DataAccess signal found on this machine (a signal the server
  does not have is left out and reported once by the driver).
- :func:`resolve` returns the same plus what a full driver also uses: the devices' units
  (:attr:`Euromap77Nodes.units`), why signals are missing, and the cycle-event plan
  (:class:`CycleEvents`). OPC 40083 §19 (CycleParametersEventType) says the per-cycle
  process values (injection time, dosing time, cushion, pressures; OPC 40077 §17.3
  ``InjectionUnitCycleParametersType``) exist *only* as an event fired on the machine object
  after each cycle ("no CycleParameters Object which is directly accessible via data
  access"). A driver that supports it subscribes to that event on
  :attr:`CycleEvents.source` with :attr:`CycleEvents.event_filter`, hands
  :meth:`CycleEvents.readings` of each notification to the sink, and monitors only
  :meth:`Euromap77Nodes.monitored` (which leaves out ``machine_cycle_counter`` when the event
  carries it: the event then triggers the shot with that cycle's values atomically).

Signals (unit k >= 2 prefixed ``iu<k>_``; units converted to the ones in the names):

- DataAccess (OPC 40077 §7 ``IMM_MES_InterfaceType`` and OPC 40083 types): ``machine_mode``
  (MachineModeEnumeration), ``production_status`` (ProductionStatusEnumeration),
  ``job_status``, ``machine_cycle_counter``, ``job_cycle_counter``, ``good_parts``,
  ``bad_parts``, ``job_parts`` (ActiveJobValues), ``last_cycle_time_s``,
  ``average_cycle_time_s``, ``expected_cycle_time_s`` (Duration = ms on the wire, OPC
  10000-3 §8.13), ``num_cavities``, ``nominal_parts`` (ActiveJob),
  ``barrel_temp_zone<n>_C`` / ``barrel_temp_zone<n>_set_C`` (TemperatureZone
  ActualTemperature / NominalTemperature; a zone whose EngineeringUnits is not °C is left
  out).
- Cycle event (per injection unit): ``injection_time_s``, ``dosing_time_s``,
  ``cushion_mm``, ``cushion_volume_cm3``, ``injection_pressure_max_bar``
  (SpecificPressureMaximum), ``hold_pressure_max_bar``, ``hold_pressure_avg_bar``,
  ``transfer_pressure_bar`` (at V-P changeover), ``back_pressure_bar``,
  ``plastification_volume_cm3``, ``injection_speed_max_mm_s``.

JobName and MouldId are strings (telemetry fields are numbers) and are not signals.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, cast

from renkei.edge.sources.live.base import Quality, Reading, now_ms
from renkei.edge.sources.live.opcua.euromap77_config import Euromap77Options
from renkei.edge.sources.live.signals import ShotsConfig, SignalMap
from renkei.edge.sources.live.source import LiveSourceError

if TYPE_CHECKING:
    from asyncua import ua
    from asyncua.client.client import Client

__all__ = [
    "COUNTER",
    "GT_URI",
    "IMM_URI",
    "CycleEvents",
    "Euromap77Nodes",
    "preset_signals",
    "resolve",
    "resolve_nodes",
]

log = logging.getLogger(__name__)

IMM_URI: Final = "http://opcfoundation.org/UA/PlasticsRubber/IMM2MES/"
"""Namespace of OPC 40077 (IMM2MES) 1.01."""
GT_URI: Final = "http://opcfoundation.org/UA/PlasticsRubber/GeneralTypes/"
"""Namespace of OPC 40083 (PlasticsRubber GeneralTypes)."""

COUNTER: Final = "machine_cycle_counter"
"""The shot trigger (ActiveJobValues.MachineCycleCounter)."""

_IMM_MES_INTERFACE_TYPE: Final = "IMM_MES_InterfaceType"
_CYCLE_EVENT_TYPE: Final = "CycleParametersEventType"
#: Bounds of the browse (a hostile server must not make start-up unbounded).
_MAX_CANDIDATES: Final = 2_000
_MAX_SUPERTYPES: Final = 16
_MAX_EVENT_SUBTYPES: Final = 200

# (signal, path from the machine as (namespace key, BrowseName), unit, scale)
_I, _G = "imm", "gt"
_AJV: Final = ((_I, "Jobs"), (_G, "ActiveJobValues"))
_AJ: Final = ((_I, "Jobs"), (_G, "ActiveJob"))
_MACHINE_VARS: Final[tuple[tuple[str, tuple[tuple[str, str], ...], str, float], ...]] = (
    ("machine_mode", ((_I, "MachineStatus"), (_G, "MachineMode")), "", 1.0),
    (
        "production_status",
        ((_I, "MachineMESStatus"), (_G, "ProductionControl"), (_G, "ProductionStatus")),
        "",
        1.0,
    ),
    ("job_status", (*_AJV, (_G, "JobStatus")), "", 1.0),
    (COUNTER, (*_AJV, (_G, "MachineCycleCounter")), "", 1.0),
    ("job_cycle_counter", (*_AJV, (_G, "JobCycleCounter")), "", 1.0),
    ("good_parts", (*_AJV, (_G, "JobGoodPartsCounter")), "", 1.0),
    ("bad_parts", (*_AJV, (_G, "JobBadPartsCounter")), "", 1.0),
    ("job_parts", (*_AJV, (_G, "JobPartsCounter")), "", 1.0),
    ("last_cycle_time_s", (*_AJV, (_G, "LastCycleTime")), "s", 0.001),
    ("average_cycle_time_s", (*_AJV, (_G, "AverageCycleTime")), "s", 0.001),
    ("expected_cycle_time_s", (*_AJ, (_G, "ExpectedCycleTime")), "s", 0.001),
    ("num_cavities", (*_AJ, (_G, "NumCavities")), "", 1.0),
    ("nominal_parts", (*_AJ, (_G, "NominalParts")), "", 1.0),
)

# (signal suffix, InjectionUnitCycleParametersType field, canonical unit kind)
_CYCLE_FIELDS: Final = (
    ("injection_time_s", "InjectionTime", "ms"),
    ("dosing_time_s", "DosingTime", "ms"),
    ("cushion_mm", "CushionStroke", "mm"),
    ("cushion_volume_cm3", "CushionVolume", "cm³"),
    ("injection_pressure_max_bar", "SpecificPressureMaximum", "bar"),
    ("hold_pressure_max_bar", "HoldSpecificPressureMaximum", "bar"),
    ("hold_pressure_avg_bar", "HoldSpecificPressureAverage", "bar"),
    ("transfer_pressure_bar", "TransferSpecificPressure", "bar"),
    ("back_pressure_bar", "BackPressure", "bar"),
    ("plastification_volume_cm3", "PlastificationVolume", "cm³"),
    ("injection_speed_max_mm_s", "InjectionSpeedMaximum", "mm/s"),
)
#: CycleParametersEventType fields that duplicate DataAccess signals (same cycle, atomic).
_EVENT_BASE_FIELDS: Final = (
    (COUNTER, "MachineCycleCounter", 1.0),
    ("job_cycle_counter", "JobCycleCounter", 1.0),
    ("good_parts", "JobGoodPartsCounter", 1.0),
    ("bad_parts", "JobBadPartsCounter", 1.0),
    ("job_parts", "JobPartsCounter", 1.0),
    ("last_cycle_time_s", "CycleTime", 1.0),  # raw ms, like the variable (scale 0.001)
)
_PUBLISHED_UNIT: Final = {"ms": "s", "mm": "mm", "cm³": "cm³", "bar": "bar", "mm/s": "mm/s"}

#: Factor to the canonical unit, by UNECE common code (OPC 10000-8 §5.6.3) and by the
#: EUInformation DisplayName (servers that set no UnitId).
_CONVERT: Final[dict[str, dict[int | str, float]]] = {
    "bar": {
        4342098: 1.0,
        "bar": 1.0,
        5259596: 1e-5,
        "Pa": 1e-5,
        4937544: 0.01,
        "kPa": 0.01,
        4510034: 10.0,
        "MPa": 10.0,
        5264211: 0.0689476,
        "psi": 0.0689476,
    },
    "mm": {
        5066068: 1.0,
        "mm": 1.0,
        4410708: 10.0,
        "cm": 10.0,
        5067858: 1000.0,
        "m": 1000.0,
        4804168: 25.4,
        "in": 25.4,
    },
    "cm³": {
        4410706: 1.0,
        "cm³": 1.0,
        "cm3": 1.0,
        "ccm": 1.0,
        5066065: 0.001,
        "mm³": 0.001,
        4411730: 1000.0,
        "dm³": 1000.0,
        4796224: 1000.0,
        "l": 1000.0,
        4804177: 16.387064,
        "in³": 16.387064,
    },
    "mm/s": {4405333: 1.0, "mm/s": 1.0, 12336: 10.0, "cm/s": 10.0, 19267: 1000.0, "m/s": 1000.0},
    "°C": {4408652: 1.0, "°C": 1.0, "degC": 1.0, "C": 1.0},
}


def _nid(identifier: int, namespace: int = 0) -> ua.NodeId:
    """A numeric NodeId (asyncua's annotations want its own int subclasses)."""
    from asyncua import ua

    return ua.NodeId(ua.Int32(identifier), ua.Int16(namespace))


def _plain(expanded: Any) -> ua.NodeId:
    """A NodeId from a (possibly Expanded) NodeId of a browse result."""
    from asyncua import ua

    return ua.NodeId(expanded.Identifier, expanded.NamespaceIndex)


def _prefix(k: int) -> str:
    return "" if k == 1 else f"iu{k}_"


def _zone_names(options: Euromap77Options) -> list[tuple[int, int, str, str]]:
    return [
        (k, z, f"{_prefix(k)}barrel_temp_zone{z}_C", f"{_prefix(k)}barrel_temp_zone{z}_set_C")
        for k in range(1, options.injection_units + 1)
        for z in range(1, options.zones + 1)
    ]


def preset_signals(options: Euromap77Options) -> tuple[list[SignalMap], ShotsConfig]:
    """The preset's signals (name, unit, scale) and its shot trigger.

    Scales: DataAccess Durations arrive in ms (``scale: 0.001`` -> s); cycle-event values
    are converted by :meth:`CycleEvents.readings` (scale 1). The shot trigger is
    ``machine_cycle_counter``; the shot row's ``values`` are ``last_cycle_time_s``,
    ``good_parts``, ``bad_parts``, every cycle-event signal, then the barrel zone
    temperatures while the 64 values :class:`ShotsConfig` allows last.
    """
    signals = [SignalMap(name=n, unit=u, scale=s) for n, _, u, s in _MACHINE_VARS]
    event_names: list[str] = []
    for k in range(1, options.injection_units + 1):
        for suffix, _, kind in _CYCLE_FIELDS:
            name = _prefix(k) + suffix
            event_names.append(name)
            signals.append(SignalMap(name=name, unit=_PUBLISHED_UNIT[kind]))
    temps: list[str] = []
    for _, _, actual, nominal in _zone_names(options):
        signals.append(SignalMap(name=actual, unit="°C"))
        signals.append(SignalMap(name=nominal, unit="°C"))
        temps.append(actual)
    values = ["last_cycle_time_s", "good_parts", "bad_parts", *event_names]
    values += temps[: max(0, 64 - len(values))]
    return signals, ShotsConfig(counter=COUNTER, values=values)


# --------------------------------------------------------------------------- resolution


@dataclass(frozen=True)
class CycleEvents:
    """How to read the machine's cycle events (OPC 40083 §19 CycleParametersEventType, with
    OPC 40077 §17.3 ``InjectionUnitCycleParameters_<Nr>`` components).

    Attributes:
        source: the machine object (the events' EventSource): subscribe there.
        event_type: the server's concrete subtype of ``CycleParametersEventType``.
        event_filter: select clauses ``[0:Time, <fields>...]`` and an OfType where clause.
        signals: per select clause after ``Time``: (signal name, factor to its unit).
    """

    source: ua.NodeId
    event_type: ua.NodeId
    event_filter: ua.EventFilter
    signals: tuple[tuple[str, float], ...]

    def readings(self, fields: Sequence[Any]) -> list[Reading]:
        """Readings of one event notification (its EventFields, in select-clause order;
        ``ua.Variant`` or plain values), as *raw* values of the preset's signals (the
        :class:`SignalMap` scale still applies: Durations shared with a DataAccess signal
        stay in ms; event-only values are converted to the unit in their name). Stamped
        with the event's ``Time`` (gateway time if it has none); a field that is empty or
        not a number gives no reading."""
        values = [getattr(f, "Value", f) for f in fields]
        if len(values) != len(self.signals) + 1:
            return []
        t = values[0]
        device = isinstance(t, datetime)
        t_ms = int(t.timestamp() * 1000) if isinstance(t, datetime) else now_ms()
        out: list[Reading] = []
        for (name, factor), v in zip(self.signals, values[1:], strict=True):
            if isinstance(v, bool) or not isinstance(v, int | float):
                continue
            x = float(v) * factor
            if math.isfinite(x):
                out.append(Reading(name, t_ms, x, Quality.GOOD, device_time=device))
        return out


@dataclass(frozen=True)
class Euromap77Nodes:
    """What :func:`resolve` found on one machine.

    Attributes:
        machine: the machine's BrowseName (without namespace).
        machine_node: its NodeId.
        nodes: DataAccess signal name -> NodeId of the variable.
        units: signal name -> the server's EngineeringUnits DisplayName, where it has one.
        missing: preset signal name -> why it is not read (absent optional node, unit that
            cannot be converted, no cycle event type).
        cycle_events: the cycle-event plan, or ``None`` (disabled or the server has none).
    """

    machine: str
    machine_node: ua.NodeId
    nodes: dict[str, ua.NodeId]
    units: dict[str, str] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    cycle_events: CycleEvents | None = None

    def monitored(self) -> dict[str, ua.NodeId]:
        """The DataAccess nodes to monitor when :attr:`cycle_events` is subscribed too:
        without the signals the event carries (``machine_cycle_counter``, part counters,
        ``last_cycle_time_s``), so each cycle triggers one shot row with its own values."""
        ce = self.cycle_events
        if ce is None:
            return dict(self.nodes)
        carried = {n for n, _ in ce.signals}
        return {n: v for n, v in self.nodes.items() if n not in carried}


async def resolve_nodes(client: Client, options: Euromap77Options) -> dict[str, ua.NodeId]:
    """Signal name -> NodeId of the DataAccess variables on the connected server's machine
    object (found by browsing; see :func:`resolve` for units and the cycle events).

    Raises:
        renkei.edge.sources.live.LiveSourceError: no (or several, without ``options.machine``)
            ``IMM_MES_InterfaceType`` instances; the message names those found.
    """
    return (await resolve(client, options)).nodes


async def resolve(client: Client, options: Euromap77Options) -> Euromap77Nodes:
    """Browse the server: the machine object (OPC 40077 §7 ``IMM_MES_InterfaceType`` or a
    subtype, under Objects or one folder below it), its standard variables by BrowseName
    in the IMM2MES/GeneralTypes namespaces (indexes read from the server's NamespaceArray),
    the barrel zones' EngineeringUnits, and the cycle event type.

    Raises:
        renkei.edge.sources.live.LiveSourceError: the server lacks the IMM2MES namespace; no
            machine; several machines and no ``options.machine``; ``options.machine`` not
            among them. Messages name the machines found.
    """
    from asyncua import ua

    ns_array: list[str] = await client.get_namespace_array()
    if IMM_URI not in ns_array or GT_URI not in ns_array:
        raise LiveSourceError(
            f"the server has no IMM2MES (EUROMAP 77) information model: namespace "
            f"{IMM_URI} or {GT_URI} missing from its NamespaceArray"
        )
    ns = {_I: ns_array.index(IMM_URI), _G: ns_array.index(GT_URI)}
    machines = await _find_machines(client, ns[_I])
    if not machines:
        raise LiveSourceError(
            "no IMM_MES_InterfaceType (EUROMAP 77 machine) object found under Objects"
        )
    names = sorted(machines)
    if options.machine is not None:
        if options.machine not in machines:
            raise LiveSourceError(
                f"euromap77.machine {options.machine!r} not found; machines on this server: {names}"
            )
        name = options.machine
    elif len(machines) > 1:
        raise LiveSourceError(
            f"the server has {len(machines)} EUROMAP 77 machines {names}: set "
            "source.euromap77.machine to one of them"
        )
    else:
        name = names[0]
    machine = machines[name]
    nodes: dict[str, ua.NodeId] = {}
    missing: dict[str, str] = {}
    units: dict[str, str] = {}

    # fixed paths: one TranslateBrowsePathsToNodeIds request
    fixed = [
        (sig, [ua.QualifiedName(bn, ns[key]) for key, bn in path])
        for sig, path, _, _ in _MACHINE_VARS
    ]
    for (sig, _), nid in zip(
        fixed, await _translate(client, machine, [p for _, p in fixed]), strict=True
    ):
        if nid is None:
            missing[sig] = "not on this machine"
        else:
            nodes[sig] = nid
    await _resolve_zones(client, machine, ns, options, nodes, units, missing)
    events: CycleEvents | None = None
    if options.cycle_events:
        events = await _cycle_events(client, machine, ns, options, units, missing)
    else:
        for k in range(1, options.injection_units + 1):
            for suffix, _, _ in _CYCLE_FIELDS:
                missing[_prefix(k) + suffix] = "cycle_events is off"
    return Euromap77Nodes(name, machine, nodes, units, missing, events)


async def _translate(
    client: Client, start: ua.NodeId, paths: list[list[ua.QualifiedName]]
) -> list[ua.NodeId | None]:
    """TranslateBrowsePathsToNodeIds (OPC 10000-4 §5.8.4) of relative paths from ``start``
    over hierarchical references; ``None`` where a path does not resolve."""
    return await _translate_many(client, [(start, p) for p in paths])


async def _translate_many(
    client: Client, items: list[tuple[ua.NodeId, list[ua.QualifiedName]]]
) -> list[ua.NodeId | None]:
    """:func:`_translate` with a start node per path (500 paths per request)."""
    from asyncua import ua
    from asyncua.ua.object_ids import ObjectIds

    if not items:
        return []
    bps = []
    for start, path in items:
        bp = ua.BrowsePath()
        bp.StartingNode = start
        bp.RelativePath = ua.RelativePath(
            Elements=[
                ua.RelativePathElement(
                    ReferenceTypeId=_nid(ObjectIds.HierarchicalReferences),
                    IsInverse=cast("ua.Boolean", False),
                    IncludeSubtypes=cast("ua.Boolean", True),
                    TargetName=qn,
                )
                for qn in path
            ]
        )
        bps.append(bp)
    out: list[ua.NodeId | None] = []
    for i in range(0, len(bps), 500):
        results = await client.uaclient.translate_browsepaths_to_nodeids(bps[i : i + 500])
        for r in results:
            good = r.StatusCode.is_good() and bool(r.Targets)
            out.append(_plain(r.Targets[0].TargetId) if good else None)
    return out


async def _browse(
    client: Client, node: ua.NodeId, ref: int, nodeclass: int = 0, *, inverse: bool = False
) -> list[ua.ReferenceDescription]:
    """Forward (or inverse) references of ``ref`` (with subtypes), bounded."""
    from asyncua import ua

    refs: list[ua.ReferenceDescription] = await client.get_node(node).get_references(
        refs=ref,
        direction=ua.BrowseDirection.Inverse if inverse else ua.BrowseDirection.Forward,
        nodeclassmask=ua.NodeClass(nodeclass),
        includesubtypes=True,
    )
    return refs[:_MAX_CANDIDATES]


async def _find_machines(client: Client, imm: int) -> dict[str, ua.NodeId]:
    """BrowseName -> NodeId of the objects under Objects (and one folder level below, e.g.
    DI's DeviceSet) whose type is IMM_MES_InterfaceType or a subtype of it."""
    from asyncua import ua
    from asyncua.ua.object_ids import ObjectIds

    objects = _nid(ObjectIds.ObjectsFolder)
    hier, obj = ObjectIds.HierarchicalReferences, ua.NodeClass.Object
    level1 = await _browse(client, objects, hier, obj)
    candidates = list(level1)
    for r in level1:
        if len(candidates) >= _MAX_CANDIDATES:
            break
        if r.TypeDefinition == _nid(ObjectIds.FolderType) or r.BrowseName.Name in (
            "DeviceSet",
            "Machines",
        ):
            candidates += await _browse(client, _plain(r.NodeId), hier, obj)
    found: dict[str, ua.NodeId] = {}
    verdict: dict[ua.NodeId, bool] = {}
    for r in candidates[:_MAX_CANDIDATES]:
        td = _plain(r.TypeDefinition)
        if td not in verdict:
            verdict[td] = await _is_subtype(client, td, imm)
        if verdict[td]:
            found.setdefault(r.BrowseName.Name, _plain(r.NodeId))
    return found


async def _is_subtype(client: Client, type_id: ua.NodeId, imm: int) -> bool:
    """Is ``type_id`` IMM_MES_InterfaceType (namespace ``imm``) or one of its subtypes?"""
    from asyncua.ua.object_ids import ObjectIds

    current = type_id
    for _ in range(_MAX_SUPERTYPES):
        if current.NamespaceIndex == 0 and current.Identifier == ObjectIds.BaseObjectType:
            return False
        name = await client.get_node(current).read_browse_name()
        if name.NamespaceIndex == imm and name.Name == _IMM_MES_INTERFACE_TYPE:
            return True
        parents = await _browse(client, current, ObjectIds.HasSubtype, inverse=True)
        if not parents:
            return False
        current = _plain(parents[0].NodeId)
    return False


def _by_name(refs: list[ua.ReferenceDescription]) -> dict[str, ua.NodeId]:
    """Name -> NodeId (placeholder instances such as ``InjectionUnit_<Nr>`` get a BrowseName
    namespace the server chooses, so they are matched by name)."""
    out: dict[str, ua.NodeId] = {}
    for r in refs:
        out.setdefault(r.BrowseName.Name, _plain(r.NodeId))
    return out


async def _resolve_zones(
    client: Client,
    machine: ua.NodeId,
    ns: dict[str, int],
    options: Euromap77Options,
    nodes: dict[str, ua.NodeId],
    units: dict[str, str],
    missing: dict[str, str],
) -> None:
    """Barrel zones: InjectionUnits/InjectionUnit_<k>/TemperatureZones/TemperatureZone_<n>
    (OPC 40077 §15-16, OPC 40083 TemperatureZonesType), ActualTemperature and
    NominalTemperature, kept only if their EngineeringUnits is °C (or absent)."""
    from asyncua import ua
    from asyncua.ua.object_ids import ObjectIds

    zones = _zone_names(options)
    if not zones:
        return
    hier, obj = ObjectIds.HierarchicalReferences, ua.NodeClass.Object
    (ius_node,) = await _translate(client, machine, [[ua.QualifiedName("InjectionUnits", ns[_I])]])
    ius = _by_name(await _browse(client, ius_node, hier, obj)) if ius_node else {}
    tz_of: dict[int, dict[str, ua.NodeId]] = {}
    for k in range(1, options.injection_units + 1):
        iu = ius.get(f"InjectionUnit_{k}")
        tz_of[k] = {}
        if iu is not None:
            (tzs,) = await _translate(client, iu, [[ua.QualifiedName("TemperatureZones", ns[_I])]])
            if tzs is not None:
                tz_of[k] = _by_name(await _browse(client, tzs, hier, obj))
    wanted: list[tuple[str, ua.NodeId, str]] = []
    for k, z, actual, nominal in zones:
        tz = tz_of[k].get(f"TemperatureZone_{z}")
        if tz is None:
            why = "no such temperature zone" if tz_of[k] else f"no InjectionUnit_{k} zones"
            missing[actual] = missing[nominal] = why
            continue
        wanted += [(actual, tz, "ActualTemperature"), (nominal, tz, "NominalTemperature")]
    ids = await _translate_many(
        client, [(tz, [ua.QualifiedName(var, ns[_G])]) for _, tz, var in wanted]
    )
    found: list[tuple[str, ua.NodeId]] = []
    for (sig, _, var), nid in zip(wanted, ids, strict=True):
        if nid is None:
            missing[sig] = f"zone has no {var}"
        else:
            found.append((sig, nid))
    eu = ua.QualifiedName("EngineeringUnits", 0)
    eu_ids = await _translate_many(client, [(nid, [eu]) for _, nid in found])
    eu_values = await _read_values(client, [e for e in eu_ids if e is not None])
    it = iter(eu_values)
    for (sig, nid), eu_id in zip(found, eu_ids, strict=True):
        info = next(it) if eu_id is not None else None
        factor, label = _factor(info, "°C")
        if factor != 1.0:
            missing[sig] = f"EngineeringUnits {label!r} is not °C"
            continue
        nodes[sig] = nid
        if label:
            units[sig] = label


async def _read_values(client: Client, ids: list[ua.NodeId]) -> list[Any]:
    """Values of ``ids`` (one Read request per 500; ``None`` where bad)."""
    from asyncua import ua
    from asyncua.ua.attribute_ids import AttributeIds

    out: list[Any] = []
    for i in range(0, len(ids), 500):
        params = ua.ReadParameters()
        for nid in ids[i : i + 500]:
            rv = ua.ReadValueId()
            rv.NodeId = nid
            rv.AttributeId = AttributeIds.Value
            params.NodesToRead.append(rv)
        for dv in await client.uaclient.read(params):
            good = dv.StatusCode is None or dv.StatusCode.is_good()
            out.append(dv.Value.Value if good and dv.Value is not None else None)
    return out


def _factor(info: Any, kind: str) -> tuple[float, str]:
    """(factor to the canonical unit of ``kind``, the EU's DisplayName) of an
    ``EUInformation`` (or ``None``: canonical assumed, factor 1). Factor NaN: unknown unit."""
    if info is None or not hasattr(info, "UnitId"):
        return 1.0, ""
    text = getattr(getattr(info, "DisplayName", None), "Text", None) or ""
    table = _CONVERT[kind]
    unit_id = int(getattr(info, "UnitId", -1) or -1)
    if unit_id in table:
        return table[unit_id], text
    if text in table:
        return table[text], text
    return math.nan, text or f"UnitId {unit_id}"


async def _cycle_events(
    client: Client,
    machine: ua.NodeId,
    ns: dict[str, int],
    options: Euromap77Options,
    units: dict[str, str],
    missing: dict[str, str],
) -> CycleEvents | None:
    """The event plan: the server's concrete CycleParametersEventType subtype, its
    ``InjectionUnitCycleParameters_<k>`` fields and their EngineeringUnits."""
    from asyncua import ua
    from asyncua.ua.object_ids import ObjectIds

    event_names = [
        (k, _prefix(k) + suffix, fname, kind)
        for k in range(1, options.injection_units + 1)
        for suffix, fname, kind in _CYCLE_FIELDS
    ]
    base = await _translate(
        client,
        _nid(ObjectIds.BaseEventType),
        [[ua.QualifiedName(_CYCLE_EVENT_TYPE, ns[_G])]],
    )
    base_type = base[0]
    evtype = await _concrete_event_type(client, base_type) if base_type is not None else None
    if evtype is None or base_type is None:
        for _, sig, _, _ in event_names:
            missing[sig] = "the server defines no concrete CycleParametersEventType"
        return None
    comps = _by_name(await _browse(client, evtype, ObjectIds.HasComponent, ua.NodeClass.Object))
    clauses: list[ua.SimpleAttributeOperand] = [
        _operand(_nid(ObjectIds.BaseEventType), [ua.QualifiedName("Time", 0)])
    ]
    signals: list[tuple[str, float]] = []
    # the cycle's counters and time (OPC 40083 §19 Table 95) are declared on
    # CycleParametersEventType itself (so the select clause names the type that declares
    # them, OPC 10000-4 §7.7.4): read from the event they belong to the same cycle as its
    # process values
    for sig, bname, factor in _EVENT_BASE_FIELDS:
        path = [ua.QualifiedName(bname, ns[_G])]
        for owner in (evtype, base_type):
            (declared,) = await _translate(client, owner, [path])
            if declared is not None:
                clauses.append(_operand(owner, path))
                signals.append((sig, factor))
                break
    paths: list[tuple[str, str, list[ua.QualifiedName]]] = []
    for k, sig, fname, kind in event_names:
        comp = f"InjectionUnitCycleParameters_{k}"
        comp_id = comps.get(comp)
        if comp_id is None:
            missing[sig] = f"cycle event has no {comp}"
            continue
        comp_qn = await client.get_node(comp_id).read_browse_name()
        paths.append((sig, kind, [comp_qn, ua.QualifiedName(fname, ns[_I])]))
    decl = await _translate(client, evtype, [p for _, _, p in paths])
    eu_ids = await _translate(
        client, evtype, [[*p, ua.QualifiedName("EngineeringUnits", 0)] for _, _, p in paths]
    )
    eus = await _read_values(client, [e for e in eu_ids if e is not None])
    it = iter(eus)
    for (sig, kind, path), d, eu_id in zip(paths, decl, eu_ids, strict=True):
        info = next(it) if eu_id is not None else None
        if d is None:
            missing[sig] = f"cycle event has no {path[-1].Name}"
            continue
        if kind == "ms":
            factor, label = 0.001, "ms"
        else:
            factor, label = _factor(info, kind)
        if not math.isfinite(factor):
            missing[sig] = f"EngineeringUnits {label!r} cannot be converted to {kind}"
            continue
        if label:
            units[sig] = label
        clauses.append(_operand(evtype, path))
        signals.append((sig, factor))
    flt = ua.EventFilter()
    flt.SelectClauses = clauses
    flt.WhereClause = _of_type(evtype)
    return CycleEvents(machine, evtype, flt, tuple(signals))


async def _concrete_event_type(client: Client, base: ua.NodeId) -> ua.NodeId | None:
    """A non-abstract subtype of CycleParametersEventType (the abstract type itself can
    never be fired, OPC 40083 §19): breadth first, bounded; the first found."""
    from asyncua import ua
    from asyncua.ua.attribute_ids import AttributeIds
    from asyncua.ua.object_ids import ObjectIds

    queue, seen = [base], 0
    while queue and seen < _MAX_EVENT_SUBTYPES:
        current = queue.pop(0)
        seen += 1
        for r in await _browse(client, current, ObjectIds.HasSubtype, ua.NodeClass.ObjectType):
            nid: ua.NodeId = _plain(r.NodeId)
            abstract = await client.get_node(nid).read_attribute(AttributeIds.IsAbstract)
            if abstract.Value is not None and abstract.Value.Value is False:
                return nid
            queue.append(nid)
    return None


def _operand(type_id: ua.NodeId, path: list[ua.QualifiedName]) -> ua.SimpleAttributeOperand:
    from asyncua import ua
    from asyncua.ua.attribute_ids import AttributeIds

    op = ua.SimpleAttributeOperand()
    op.TypeDefinitionId = type_id
    op.BrowsePath = list(path)
    op.AttributeId = AttributeIds.Value
    return op


def _of_type(evtype: ua.NodeId) -> ua.ContentFilter:
    """Where clause ``OfType(evtype)`` (OPC 10000-4 §7.7.3)."""
    from asyncua import ua

    el = ua.ContentFilterElement()
    el.FilterOperator = ua.FilterOperator.OfType
    op = ua.LiteralOperand()
    op.Value = ua.Variant(evtype)
    el.FilterOperands = [op]
    cf = ua.ContentFilter()
    cf.Elements = [el]
    return cf
