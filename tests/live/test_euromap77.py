"""The OPC UA ``euromap77`` preset against a real IMM2MES server (asyncua ``Server`` loaded
with the OPC Foundation nodesets, run as a subprocess) and a real asyncua ``Client``."""

from __future__ import annotations

import asyncio
import logging
import math
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from asyncua.client.client import Client
from asyncua.server.server import Server
from asyncua.ua.uaerrors import UaError

from harness.live.imm2mes_server import Imm2MesServer, cycle_values
from harness.services import free_port
from harness.wait import wait_for
from renkei.edge.sources.live.base import LiveSink, Reading
from renkei.edge.sources.live.opcua.euromap77 import (
    COUNTER,
    Euromap77Nodes,
    preset_signals,
    resolve,
    resolve_nodes,
)
from renkei.edge.sources.live.opcua.euromap77_config import Euromap77Options
from renkei.edge.sources.live.signals import LiveSourceConfig, ShotsConfig, SignalMap
from renkei.edge.sources.live.source import LiveSource, LiveSourceError
from tests.datasets import require_data_dir

logging.getLogger("asyncua").setLevel(logging.ERROR)

EVENT_FIELDS = {  # preset signal -> (cycle_values key of injection unit 1, factor)
    "injection_time_s": ("iu1.InjectionTime", 0.001),
    "dosing_time_s": ("iu1.DosingTime", 0.001),
    "cushion_mm": ("iu1.CushionStroke", 1.0),
    "cushion_volume_cm3": ("iu1.CushionVolume", 1.0),
    "injection_pressure_max_bar": ("iu1.SpecificPressureMaximum", 1.0),
    "hold_pressure_max_bar": ("iu1.HoldSpecificPressureMaximum", 1.0),
    "hold_pressure_avg_bar": ("iu1.HoldSpecificPressureAverage", 1.0),
    "transfer_pressure_bar": ("iu1.TransferSpecificPressure", 1.0),
    "back_pressure_bar": ("iu1.BackPressure", 1.0),
    "plastification_volume_cm3": ("iu1.PlastificationVolume", 1.0),
    "injection_speed_max_mm_s": ("iu1.InjectionSpeedMaximum", 1.0),
}
DATA_FIELDS = {  # preset DataAccess signal -> cycle_values key (raw)
    COUNTER: "MachineCycleCounter",
    "job_cycle_counter": "JobCycleCounter",
    "good_parts": "JobGoodPartsCounter",
    "bad_parts": "JobBadPartsCounter",
    "job_parts": "JobPartsCounter",
    "last_cycle_time_s": "LastCycleTime",
    "average_cycle_time_s": "AverageCycleTime",
    **{f"barrel_temp_zone{z}_C": f"iu1.zone{z}" for z in range(1, 5)},
    **{f"barrel_temp_zone{z}_set_C": f"iu1.zone{z}.nominal" for z in range(1, 5)},
}
STATIC = {
    "machine_mode": 1.0,  # AUTOMATIC
    "production_status": 3.0,  # PRODUCTION
    "job_status": 3.0,  # RUNNING
    "expected_cycle_time_s": 20_000.0,
    "num_cavities": 2.0,
    "nominal_parts": 10_000.0,
}


def _start(tmp: Path, **kw: Any) -> Iterator[Imm2MesServer]:
    server = Imm2MesServer(tmp, require_data_dir(), **kw)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def static_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Imm2MesServer]:
    """One machine whose values stay at cycle 1 (cycle time of an hour)."""
    yield from _start(tmp_path_factory.mktemp("imm-static"), cycle_s=3600.0)


@pytest.fixture(scope="module")
def two_machines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Imm2MesServer]:
    yield from _start(
        tmp_path_factory.mktemp("imm-two"), cycle_s=3600.0, machines=("IMM_1", "IMM_2")
    )


@pytest.fixture(scope="module")
def cycling(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Imm2MesServer]:
    """One machine completing a cycle every 0.3 s."""
    yield from _start(tmp_path_factory.mktemp("imm-cycling"), cycle_s=0.3)


def _run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 30))


async def _with_client(endpoint: str, fn: Any) -> Any:
    client = Client(endpoint, timeout=5)
    async with client:
        return await fn(client)


# --------------------------------------------------------------------------- preset


def test_preset_signals_are_valid_and_shots_reference_them() -> None:
    signals, shots = preset_signals(Euromap77Options(injection_units=4, zones=16))
    names = [s.name for s in signals]
    assert len(names) == len(set(names))
    assert shots.counter == COUNTER
    assert set(shots.values) <= set(names)
    assert len(shots.values) == 64  # capped at what ShotsConfig allows
    assert "shot_count" not in names and "cycle_time_s" not in names
    assert {"iu4_injection_time_s", "iu4_barrel_temp_zone16_C"} <= set(names)
    one, shots1 = preset_signals(Euromap77Options(zones=4))
    assert {"injection_time_s", "cushion_mm", "barrel_temp_zone4_C"} <= set(shots1.values)
    assert {s.name: s.scale for s in one}["last_cycle_time_s"] == 0.001


def test_options_are_validated() -> None:
    with pytest.raises(ValueError, match="injection_units"):
        Euromap77Options(injection_units=0)
    with pytest.raises(ValueError, match="extra"):
        Euromap77Options.model_validate({"zone": 3})


# --------------------------------------------------------------------------- resolution


def test_resolve_finds_exactly_the_instantiated_signals(static_server: Imm2MesServer) -> None:
    found: Euromap77Nodes = _run(
        _with_client(static_server.endpoint, lambda c: resolve(c, Euromap77Options(zones=6)))
    )
    assert found.machine == "IMM_1"
    assert set(found.nodes) == set(DATA_FIELDS) | set(STATIC)
    assert set(found.missing) == {f"barrel_temp_zone{z}{s}_C" for z in (5, 6) for s in ("", "_set")}
    assert all(why == "no such temperature zone" for why in found.missing.values())
    assert found.units["barrel_temp_zone1_C"] == "°C"
    assert found.units["cushion_mm"] == "mm"
    assert found.units["injection_pressure_max_bar"] == "bar"
    ce = found.cycle_events
    assert ce is not None and ce.source == found.machine_node
    carried = [n for n, _ in ce.signals]
    assert set(carried) == set(EVENT_FIELDS) | {
        COUNTER,
        "job_cycle_counter",
        "good_parts",
        "bad_parts",
        "job_parts",
        "last_cycle_time_s",
    }
    assert len(ce.event_filter.SelectClauses) == len(carried) + 1
    assert COUNTER not in found.monitored() and "barrel_temp_zone1_C" in found.monitored()
    # the contract function returns the DataAccess NodeIds
    nodes = _run(
        _with_client(static_server.endpoint, lambda c: resolve_nodes(c, Euromap77Options()))
    )
    assert nodes == {k: v for k, v in found.nodes.items()}


def test_values_read_through_resolved_nodes_match_the_simulator(
    static_server: Imm2MesServer,
) -> None:
    async def read(client: Client) -> dict[str, float]:
        nodes = await resolve_nodes(client, Euromap77Options(zones=4))
        names = sorted(nodes)
        values = await client.read_values([client.get_node(nodes[n]) for n in names])
        return {n: float(v) for n, v in zip(names, values, strict=True)}

    raw = _run(_with_client(static_server.endpoint, read))
    n = int(raw[COUNTER])
    expected = cycle_values(0, n)
    signals, _ = preset_signals(Euromap77Options(zones=4))
    scale = {s.name: s.scale for s in signals}
    for name, key in DATA_FIELDS.items():
        assert raw[name] * scale[name] == pytest.approx(expected[key] * scale[name]), name
    for name, value in STATIC.items():
        assert raw[name] == value, name


def test_machine_selection_and_errors(two_machines: Imm2MesServer) -> None:
    ep = two_machines.endpoint
    with pytest.raises(LiveSourceError, match=r"2 EUROMAP 77 machines \['IMM_1', 'IMM_2'\]"):
        _run(_with_client(ep, lambda c: resolve(c, Euromap77Options())))
    with pytest.raises(LiveSourceError, match=r"'IMM_9' not found.*\['IMM_1', 'IMM_2'\]"):
        _run(_with_client(ep, lambda c: resolve(c, Euromap77Options(machine="IMM_9"))))

    async def counter(client: Client) -> float:
        found = await resolve(client, Euromap77Options(machine="IMM_2"))
        assert found.machine == "IMM_2"
        return float(await client.get_node(found.nodes[COUNTER]).read_value())

    assert _run(_with_client(ep, counter)) >= 1000  # machine index 1 counts from 1000


def test_server_without_imm2mes_is_refused() -> None:
    async def scenario() -> None:
        port = free_port()
        server = Server()
        await server.init()
        server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/plain")
        async with server:
            with pytest.raises(LiveSourceError, match="no IMM2MES"):
                await _with_client(
                    f"opc.tcp://127.0.0.1:{port}/plain",
                    lambda c: resolve(c, Euromap77Options()),
                )

    _run(scenario())


# --------------------------------------------------------------------------- shots


class PresetDriver:
    """Test-only driver: a real asyncua client, :func:`resolve`, a subscription with
    data-change monitored items for the DataAccess nodes and the cycle event."""

    def __init__(self, endpoint: str, options: Euromap77Options) -> None:
        self.endpoint = endpoint
        self.options = options
        signals, shots = preset_signals(options)
        self.signals: Sequence[SignalMap] = signals
        self.shots: ShotsConfig | None = shots
        self.describe = f"test euromap77 {endpoint}"
        self.errors: list[str] = []

    def run(self, sink: LiveSink, stop: threading.Event) -> None:
        asyncio.run(self._run(sink, stop))

    async def _run(self, sink: LiveSink, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                await self._session(sink, stop)
            except (TimeoutError, OSError, UaError) as exc:
                sink.link_down(f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(0.2)

    async def _session(self, sink: LiveSink, stop: threading.Event) -> None:
        client = Client(self.endpoint, timeout=2)
        async with client:
            found = await resolve(client, self.options)
            for name, unit in found.units.items():
                sink.set_unit(name, unit)
            names = {v: k for k, v in found.monitored().items()}
            ce = found.cycle_events
            if ce is None:
                raise AssertionError(f"no cycle events: {found.missing}")
            events = ce

            class Handler:
                def datachange_notification(self, node: Any, val: Any, data: Any) -> None:
                    dv = data.monitored_item.Value
                    t = dv.SourceTimestamp
                    sink.put([Reading(names[node.nodeid], int(t.timestamp() * 1000), float(val))])

                def event_notification(self, event: Any) -> None:
                    sink.put(events.readings(event.event_fields))

            sub = await client.create_subscription(50, Handler())
            await sub.subscribe_data_change([client.get_node(n) for n in names])
            await sub.subscribe_events(ce.source, ce.event_type, ce.event_filter)
            sink.link_up(found.machine)
            while not stop.is_set():
                await asyncio.sleep(0.05)
                await client.check_connection()


def _collect_shots(source: LiveSource, want: int) -> list[dict[str, float]]:
    rows: list[dict[str, float]] = []

    def enough() -> bool:
        for block in source.poll().blocks:
            if block.stream == "shot":
                for j in range(len(block.t_ms)):
                    rows.append({k: float(v[j]) for k, v in block.fields.items()})
        return len(rows) >= want

    wait_for(enough, 20, f"{want} shot rows", interval_s=0.05)
    return rows


def test_each_completed_cycle_becomes_one_shot_row_with_its_values(
    cycling: Imm2MesServer,
) -> None:
    options = Euromap77Options(zones=4)
    driver = PresetDriver(cycling.endpoint, options)
    source = LiveSource(config=LiveSourceConfig(), driver=driver)
    source.start()
    try:
        rows = _collect_shots(source, 6)
    finally:
        source.stop()
    counts = [int(r["shot_count"]) for r in rows]
    assert counts == list(range(counts[0], counts[0] + len(counts)))  # no gap, no duplicate
    for row in rows:
        n = int(row["shot_count"])
        expected = cycle_values(0, n)
        for name, (key, factor) in EVENT_FIELDS.items():
            assert row[name] == pytest.approx(expected[key] * factor), (n, name)
        assert row["last_cycle_time_s"] == pytest.approx(expected["LastCycleTime"] / 1000)
        assert row["good_parts"] == expected["JobGoodPartsCounter"]
        assert row["bad_parts"] == expected["JobBadPartsCounter"]
        # zone temperatures are DataAccess values: this cycle's or the one before
        zone1 = {cycle_values(0, m)["iu1.zone1"] for m in (n - 1, n)}
        assert row["barrel_temp_zone1_C"] in zone1 or math.isnan(row["barrel_temp_zone1_C"])
    # after the first row (baseline), cycle_time_s is the gap between cycle ends
    gaps = np.array([r["cycle_time_s"] for r in rows[1:]])
    assert np.all((gaps > 0.1) & (gaps < 1.5))
    assert source.fields["cushion_mm"] == "mm"
    assert source.totals["bad"] == 0
