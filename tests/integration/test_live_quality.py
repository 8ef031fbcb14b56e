"""A live machine through the real agent, a real Mosquitto, the real ingest and InfluxDB.

The agent runs a live source whose driver is a small in-test script (the protocols are
proven by their own tests against real servers under ``tests/live/``); everything after the
driver is real: :class:`~renkei.edge.sources.live.LiveSource` on the agent's main loop, the
pipeline, the outbox, the MQTT publisher, Mosquitto, the ingest worker and InfluxDB.

Checked: telemetry (scaled, BAD as null), ``quality`` rows and source events are published;
the agent wakes on new live data (no idle wait); it stops within about a second and keeps
what arrived before the stop; ``quality`` rows are stored as measurement ``quality``.
"""

from __future__ import annotations

import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import Field

from harness.services import InfluxDB, Mosquitto
from harness.wait import wait_for
from harness.witness import Witness
from renkei.cloud.ingest.worker import IngestSettings, IngestWorker
from renkei.cloud.store.influx import InfluxSettings, InfluxStore
from renkei.core.mqtt import BrokerSettings
from renkei.edge.agent import GatewayAgent
from renkei.edge.config import GatewayConfig
from renkei.edge.sources.live import (
    LiveSink,
    LiveSource,
    LiveSourceConfig,
    Quality,
    Reading,
    ShotsConfig,
    SignalMap,
)
from renkei.edge.sources.live.base import now_ms

GW = "gw-live-q"
Command = Callable[[LiveSink], None]


class ScriptConfig(LiveSourceConfig):
    """A live source config of this test (its driver is :class:`ScriptDriver`)."""

    type: Literal["script"] = "script"
    signals: list[SignalMap] = Field(default_factory=list)


class ScriptDriver:
    """Connects, then runs the commands the test queues until ``stop``."""

    def __init__(self, signals: list[SignalMap]) -> None:
        self.signals: Sequence[SignalMap] = signals
        self.shots: ShotsConfig | None = None
        self.describe = "script device"
        self.commands: queue.Queue[Command] = queue.Queue()

    def run(self, sink: LiveSink, stop: threading.Event) -> None:
        sink.link_up("script")
        while not stop.is_set():
            try:
                cmd = self.commands.get(timeout=0.02)
            except queue.Empty:
                continue
            cmd(sink)


SIGNALS = [SignalMap(name="temp_C", scale=0.1), SignalMap(name="pressure_bar", unit="bar")]


def _config(state: Path, port: int, *, flush_s: float) -> GatewayConfig:
    base = GatewayConfig.model_validate(
        {
            "gateway_id": GW,
            "firm": "acme",
            "site": "s1",
            "state_dir": str(state),
            "mqtt": {"host": "127.0.0.1", "port": port, "wait_for_ingest": None, "ack": "broker"},
            "publish": {"flush_interval_s": flush_s, "health_interval_s": 30},
            "machines": [
                {
                    "id": "imm-live",
                    "area": "molding",
                    "line": "line-1",
                    "source": {"type": "simulated", "seed": 3, "streams": ["slow"]},
                    "window_s": 1,
                }
            ],
        }
    )
    live = ScriptConfig(signals=SIGNALS, quality_interval_s=1)
    machine = base.machines[0].model_copy(update={"source": live})
    return base.model_copy(update={"machines": [machine]})


class Running:
    """The agent on a thread."""

    def __init__(self, agent: GatewayAgent) -> None:
        self.agent = agent
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.agent.run()
        except BaseException as exc:  # checked by the test
            self.error = exc

    def stop(self) -> float:
        """Stop the agent; the seconds it took."""
        t0 = time.monotonic()
        self.agent.stop()
        self.thread.join(30)
        assert not self.thread.is_alive()
        assert self.error is None, self.error
        return time.monotonic() - t0


@pytest.fixture
def driver(monkeypatch: pytest.MonkeyPatch) -> ScriptDriver:
    drv = ScriptDriver(SIGNALS)

    def build(config: LiveSourceConfig, *, wake: Callable[[], None]) -> LiveSource:
        return LiveSource(config=config, driver=drv, wake=wake)

    monkeypatch.setattr("renkei.edge.agent.build_live_source", build)
    return drv


@pytest.fixture
def witness(mosquitto: Mosquitto) -> Iterator[Witness]:
    w = Witness(port=mosquitto.port, client_id=f"witness-{uuid.uuid4().hex[:6]}")
    yield w
    w.close()


def _rows(w: Witness, kind: str) -> list[tuple[int, dict[str, Any]]]:
    """(time, fields) of every witnessed row of ``kind`` (``event``: the event dicts)."""
    out: list[tuple[int, dict[str, Any]]] = []
    for topic, p in w.machine_messages():
        if topic.kind.value != kind:
            continue
        if kind == "event":
            out += [(int(e["t_ms"]), e) for e in p.get("events", [])]
            continue
        for j, t in enumerate(p["ts_ms"]):
            out.append((int(t), {f: vals[j] for f, vals in p["fields"].items()}))
    return sorted(out, key=lambda r: r[0])


def _put(*readings: Reading) -> Command:
    return lambda sink: sink.put(readings)


def test_agent_publishes_live_rows_quality_and_events_wakes_and_stops_promptly(
    tmp_path: Path, mosquitto: Mosquitto, witness: Witness, driver: ScriptDriver
) -> None:
    # a 5 s flush: rows are published on the stop's flush, so what the witness sees after
    # the stop is what the agent kept; the live poll itself must not wait for the flush
    agent = GatewayAgent(config=_config(tmp_path / "state", mosquitto.port, flush_s=5))
    run = Running(agent)
    try:
        wait_for(lambda: "imm-live" in agent.live_sources, 10, "live source started")
        source = agent.live_sources["imm-live"]
        wait_for(lambda: source.sink.connects == 1, 10, "driver connected")
        t = now_ms()
        blocks0 = agent.stats.blocks
        sent = time.monotonic()
        driver.commands.put(
            _put(
                Reading("temp_C", t - 30, 2105.0),
                Reading("pressure_bar", t - 30, 80.0),
                Reading("temp_C", t - 20, 0.0, Quality.BAD, reason="BadSensorFailure"),
                Reading("pressure_bar", t - 20, 81.0, Quality.UNCERTAIN),
            )
        )
        wait_for(lambda: agent.stats.blocks > blocks0, 2, "agent processed live data", 0.005)
        woke_s = time.monotonic() - sent
        assert woke_s < 0.5, f"live data waited {woke_s:.2f} s in the agent"

        def outage(sink: LiveSink) -> None:
            sink.link_down("connection reset by peer")
            sink.put_bad(["temp_C", "pressure_bar"], "no connection")
            sink.link_up("script")

        driver.commands.put(outage)
        # stamped after the outage's BAD readings (same driver thread): temp_C ends good
        driver.commands.put(lambda sink: sink.put([Reading("temp_C", now_ms() + 1, 2110.0)]))
        wait_for(lambda: source.totals["readings"] >= 7, 5, "all readings polled")
    finally:
        stop_s = run.stop()
    assert stop_s < 2.0, f"agent took {stop_s:.2f} s to stop"
    wait_for(lambda: len(_rows(witness, "quality")) >= 2, 10, "quality rows at the broker")

    telemetry = _rows(witness, "telemetry")
    by_t = dict(telemetry)
    assert by_t[t - 30]["temp_C"] == pytest.approx(210.5)  # scale 0.1
    assert by_t[t - 30]["pressure_bar"] == 80.0
    assert by_t[t - 20]["temp_C"] is None  # BAD: null, never a value
    assert by_t[t - 20]["pressure_bar"] == 81.0  # UNCERTAIN: published, counted
    assert any(f["temp_C"] == pytest.approx(211.0) for _, f in telemetry)  # kept at stop

    quality = _rows(witness, "quality")
    times = [qt for qt, _ in quality]
    assert times == sorted(set(times))
    assert [f["link_up"] for _, f in quality if f["link_up"] == 0.0]  # the outage start
    assert quality[-1][1]["link_up"] == 1.0 or any(f["link_up"] == 1.0 for _, f in quality)
    total = {k: sum(f.get(k) or 0 for _, f in quality) for k in ("readings", "bad", "uncertain")}
    assert total == {"readings": 7, "bad": 3, "uncertain": 1}
    worst = [f.get("temp_C") for _, f in quality if f.get("temp_C") is not None]
    assert 2.0 in worst

    codes = [e["code"] for _, e in _rows(witness, "event")]
    for code in ("source_up", "signal_bad", "source_down", "signal_good"):
        assert code in codes, codes
    assert codes.count("source_up") == 2


@pytest.fixture
def ingest(mosquitto: Mosquitto, influxdb: InfluxDB, database: str) -> Iterator[IngestWorker]:
    settings = IngestSettings(
        broker=BrokerSettings.from_url(mosquitto.url, client_id=f"ingest-{uuid.uuid4().hex[:8]}"),
        batch_max_delay_s=0.05,
        retry_min_s=0.2,
        retry_max_s=1.0,
        stop_timeout_s=5.0,
    )
    store = InfluxStore(settings=InfluxSettings(url=influxdb.url, database=database, timeout_s=5))
    worker = IngestWorker(settings=settings, store=store)
    thread = threading.Thread(target=worker.run, name="test-ingest", daemon=True)
    thread.start()
    try:
        assert worker.wait_ready(15), f"worker not subscribed: {worker.stats()}"
        yield worker
    finally:
        worker.stop()
        thread.join(30)


def test_quality_rows_are_stored_as_measurement_quality(
    tmp_path: Path,
    mosquitto: Mosquitto,
    influxdb: InfluxDB,
    database: str,
    ingest: IngestWorker,
    driver: ScriptDriver,
) -> None:
    agent = GatewayAgent(config=_config(tmp_path / "state", mosquitto.port, flush_s=0.1))
    run = Running(agent)
    try:
        wait_for(lambda: "imm-live" in agent.live_sources, 10, "live source started")
        t = now_ms()
        driver.commands.put(
            _put(
                Reading("temp_C", t - 10, 2000.0, device_time=False),
                Reading("pressure_bar", t - 10, 0.0, Quality.BAD, reason="timeout"),
            )
        )

        def stored() -> list[dict[str, Any]]:
            return influxdb.query(
                'SELECT "link_up", "readings", "bad", "gateway_time", "pressure_bar" '
                'FROM "quality" WHERE "machine"::tag = \'imm-live\'',
                db=database,
            )

        wait_for(lambda: bool(stored()) and _sum(stored(), "readings") >= 2, 20, "quality")
    finally:
        run.stop()
    series = stored()
    assert _sum(series, "readings") == 2
    assert _sum(series, "bad") == 1
    assert _sum(series, "gateway_time") == 1
    values = series[0]["values"]
    cols = series[0]["columns"]
    link = [row[cols.index("link_up")] for row in values]
    assert set(link) == {1.0}
    assert 2.0 in [row[cols.index("pressure_bar")] for row in values]
    tags = influxdb.query('SHOW TAG KEYS FROM "quality"', db=database)
    keys = {v[0] for s in tags for v in s["values"]}
    assert {"machine", "line", "area", "site", "firm"} <= keys


def _sum(series: list[dict[str, Any]], field: str) -> float:
    total = 0.0
    for s in series:
        i = s["columns"].index(field)
        total += sum(row[i] or 0 for row in s["values"])
    return total
