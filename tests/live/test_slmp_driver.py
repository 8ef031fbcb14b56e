"""The ``slmp`` driver and :class:`LiveSource` against the 3E binary test server running as
a real subprocess (harness/live/slmp_server.py): values, batching, end codes, hostile
responses, a PLC that stops answering, kill -9 and restart."""

from __future__ import annotations

import math
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.live.slmp_server import SlmpServer
from harness.wait import wait_for
from renkei.edge.sources.live import LiveSource, build_live_source
from renkei.edge.sources.live.base import LinkEvent
from renkei.edge.sources.live.slmp.config import SlmpSourceConfig
from renkei.edge.sources.live.slmp.driver import SlmpDriver


def _words_le(fmt: str, value: float) -> list[int]:
    """``value`` packed big-endian as ``fmt``, split in words, low word first (MELSEC)."""
    raw = struct.pack(">" + fmt, value)
    words = [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]
    return list(reversed(words))


PRESET: dict[str, list[int]] = {
    "D100": [(-5) & 0xFFFF, 65535],
    "D102": _words_le("i", -100_000) + _words_le("I", 3_000_000_000) + _words_le("f", 1.5),
    "D110": _words_le("d", -2.25),
    "D120": [0x3412],  # byte-swapped 0x1234
    "D121": list(reversed(_words_le("i", 123_456))),  # high word first
    "D130": [0b1000],  # bit 3
    "ZR500": [777],
    "M0": [1, 0, 1],
    "X1F": [1],
}

SIGNALS: list[dict[str, Any]] = [
    {"name": "i16", "device": "D100", "type": "int16"},
    {"name": "u16", "device": "D101", "type": "uint16"},
    {"name": "i32", "device": "D102", "type": "int32"},
    {"name": "u32", "device": "D104", "type": "uint32"},
    {"name": "f32", "device": "D106", "type": "float32"},
    {"name": "f64", "device": "D110", "type": "float64"},
    {"name": "swapped", "device": "D120", "type": "uint16", "byte_order": "little"},
    {"name": "i32_big", "device": "D121", "type": "int32", "word_order": "big"},
    {"name": "bit3", "device": "D130.3", "type": "bool"},
    {"name": "scaled", "device": "D100", "type": "int16", "scale": 0.1, "offset": 1},
    {"name": "zr", "device": "ZR500", "type": "uint16"},
    {"name": "m0", "device": "M0", "type": "bool"},
    {"name": "m1", "device": "M1", "type": "bool"},
    {"name": "m2", "device": "M2", "type": "bool"},
    {"name": "x1f", "device": "X1F", "type": "bool"},
]

EXPECTED = {
    "i16": -5.0,
    "u16": 65535.0,
    "i32": -100_000.0,
    "u32": 3_000_000_000.0,
    "f32": 1.5,
    "f64": -2.25,
    "swapped": 0x1234,
    "i32_big": 123_456.0,
    "bit3": 1.0,
    "scaled": -5 * 0.1 + 1,
    "zr": 777.0,
    "m0": 1.0,
    "m1": 0.0,
    "m2": 1.0,
    "x1f": 1.0,
}


@pytest.fixture
def plc(tmp_path: Path) -> Iterator[SlmpServer]:
    server = SlmpServer(tmp_path / "slmp.log", preset=PRESET)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _config(server: SlmpServer, **over: Any) -> SlmpSourceConfig:
    raw: dict[str, Any] = {
        "type": "slmp",
        "host": "127.0.0.1",
        "port": server.port,
        "poll_interval_ms": 50,
        "monitoring_timer_s": 0.25,
        "link": {"reconnect_min_s": 0.05, "reconnect_max_s": 0.2, "timeout_s": 0.5},
        "quality_interval_s": 1,
        "signals": SIGNALS,
    }
    raw.update(over)
    return SlmpSourceConfig.model_validate(raw)


class Collector:
    """Drains a running :class:`LiveSource` into rows and events."""

    def __init__(self, source: LiveSource) -> None:
        self.source = source
        self.rows: list[dict[str, float]] = []
        self.events: list[LinkEvent] = []

    def pump(self) -> None:
        batch = self.source.poll()
        self.events += batch.events
        for block in batch.blocks:
            if block.stream != "slow":
                continue
            for i in range(len(block.t_ms)):
                self.rows.append({k: float(v[i]) for k, v in block.fields.items()})

    def until(self, cond: Any, what: str, timeout_s: float = 10) -> None:
        def check() -> bool:
            self.pump()
            return bool(cond())

        wait_for(check, timeout_s, what, interval_s=0.02)

    def codes(self) -> list[str]:
        return [e.code for e in self.events]

    def last(self, name: str) -> float:
        return self.rows[-1][name]


@pytest.fixture
def source_of(plc: SlmpServer) -> Iterator[Any]:
    started: list[LiveSource] = []

    def make(**over: Any) -> Collector:
        src = build_live_source(_config(plc, **over))
        src.start()
        started.append(src)
        return Collector(src)

    yield make
    for src in started:
        src.stop(timeout_s=2)


def _driver(c: Collector) -> SlmpDriver:
    drv = c.source.driver
    assert isinstance(drv, SlmpDriver)
    return drv


def test_values_of_every_type(source_of: Any) -> None:
    c = source_of()
    c.until(lambda: len(c.rows) >= 2, "two telemetry rows")
    row = c.rows[-1]
    for name, want in EXPECTED.items():
        assert math.isclose(row[name], want, rel_tol=1e-9), (name, row[name], want)
    assert c.codes()[0] == "source_up"


def test_one_request_per_block_per_poll(source_of: Any, plc: SlmpServer) -> None:
    c = source_of(max_gap=32)
    drv = _driver(c)
    # D100..D130 (one block), ZR500, M0..M2, X1F: 4 requests for 15 signals
    assert len(drv.blocks) == 4
    c.until(lambda: drv.polls >= 10, "10 polls")
    c.source.stop(timeout_s=2)
    assert plc.requests() == drv.requests
    assert drv.requests in (4 * drv.polls, 4 * drv.polls - 3, 4 * drv.polls - 2)
    assert int(plc.control(op="stats")["connections"]) == 1  # one connection for all reads


def test_error_end_code_is_bad_for_that_block_only(source_of: Any, plc: SlmpServer) -> None:
    plc.control(op="error", device="ZR", start=400, end=599, code=0xC056)
    c = source_of()
    c.until(lambda: len(c.rows) >= 3, "rows")
    row = c.rows[-1]
    assert math.isnan(row["zr"])
    assert row["i32"] == -100_000.0 and row["m2"] == 1.0
    bad = [e for e in c.events if e.code == "signal_bad"]
    assert bad and "zr" in bad[0].message and "0xC056" in bad[0].message, c.events
    plc.control(op="error", device="ZR", start=400, end=599, code=0)
    c.until(lambda: c.rows[-1]["zr"] == 777.0, "ZR500 good again")
    assert "source_down" not in c.codes()


@pytest.mark.parametrize("mode", ["garbage", "wrong_subheader", "huge", "wrong_length", "short"])
def test_hostile_responses_drop_the_link_without_crash(
    source_of: Any, plc: SlmpServer, mode: str
) -> None:
    c = source_of()
    c.until(lambda: len(c.rows) >= 1, "first row")
    plc.control(op="mode", mode=mode)
    c.until(lambda: "source_down" in c.codes(), f"source_down after {mode}")
    down = next(e for e in c.events if e.code == "source_down")
    assert "bad response" in down.message or "closed" in down.message, down.message
    assert c.source.running and c.source.driver_failures == 0
    plc.control(op="mode", mode="normal")
    n = len(c.rows)
    c.until(lambda: c.codes().count("source_up") >= 2, "source_up after recovery")
    c.until(lambda: len(c.rows) > n + 1 and c.last("f64") == -2.25, "values again")


def test_silent_plc_times_out_then_reconnects(source_of: Any, plc: SlmpServer) -> None:
    c = source_of(timeouts_before_reconnect=2)
    c.until(lambda: len(c.rows) >= 1, "first row")
    plc.control(op="mode", mode="silent")
    c.until(lambda: "source_down" in c.codes(), "source_down after timeouts", timeout_s=10)
    down = next(e for e in c.events if e.code == "source_down")
    assert "no response to 2 consecutive polls" in down.message
    bad = [e for e in c.events if e.code == "signal_bad"]
    assert bad and "timeout" in bad[0].message
    t0 = time.monotonic()
    c.source.stop(timeout_s=3)
    assert not c.source.running
    assert time.monotonic() - t0 < 1.0  # stop within a second even while waiting


def test_kill9_and_restart_resume_with_events(source_of: Any, plc: SlmpServer) -> None:
    c = source_of()
    c.until(lambda: len(c.rows) >= 2, "rows before the crash")
    plc.kill9()
    c.until(lambda: "source_down" in c.codes(), "source_down")
    plc.restart()
    n = len(c.rows)
    c.until(lambda: c.codes().count("source_up") >= 2, "source_up after restart")
    c.until(lambda: len(c.rows) > n and c.last("u32") == 3e9, "values after restart")
    ups = [e for e in c.events if e.code == "source_up"]
    assert "connected again after" in ups[-1].message
    assert c.codes().count("source_down") == 1  # one event per outage


def test_single_connection_plc(tmp_path: Path) -> None:
    server = SlmpServer(tmp_path / "single.log", single=True, preset=PRESET)
    server.start()
    src = build_live_source(_config(server))
    try:
        src.start()
        c = Collector(src)
        c.until(lambda: len(c.rows) >= 3, "rows from a one-connection PLC")
        server.restart()
        c.until(lambda: c.codes().count("source_up") >= 2, "reconnected")
        c.until(lambda: server.control(op="stats")["open"] == 1, "one open connection")
    finally:
        src.stop(timeout_s=2)
        server.stop()


def test_repeated_drops_reconnect_every_time(source_of: Any, plc: SlmpServer) -> None:
    # each connection is closed after one answer: every one is an outage and a reconnect
    c = source_of()
    c.until(lambda: len(c.rows) >= 1, "first row")
    plc.control(op="mode", mode="drop")
    c.until(lambda: c.source.sink.outages >= 5, "5 outages")
    plc.control(op="mode", mode="normal")
    n = len(c.rows)
    c.until(lambda: len(c.rows) > n + 3 and not c.source.sink.down, "steady again")
    assert c.source.running and c.source.driver_failures == 0
