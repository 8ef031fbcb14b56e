"""The ``modbus`` source against pymodbus's own server (a subprocess), over TCP and RTU.

Every test talks to a real ``ModbusTcpServer``/``ModbusSerialServer`` started by
:mod:`harness.live.modbus_server`; failures are real ones (SIGKILL, a proxy that swallows
requests, mangles responses or refuses a second connection, a pty serial line).
"""

from __future__ import annotations

import math
import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest

from harness.live.modbus_server import ModbusServer, PtyNullModem, TcpProxy
from harness.services import free_port
from harness.wait import wait_for
from renkei.edge.sources.live import LinkEvent, LiveSink, LiveSource, Quality
from renkei.edge.sources.live.modbus.config import ModbusSourceConfig
from renkei.edge.sources.live.modbus.driver import ModbusDriver, make_driver

FAST_LINK = {"reconnect_min_s": 0.05, "reconnect_max_s": 0.2, "timeout_s": 0.5}


@pytest.fixture
def server() -> Iterator[ModbusServer]:
    srv = ModbusServer(
        {"port": free_port(), "units": [1, 2], "holes": [[1, "h", 200, 10]], "size": 1000}
    ).start()
    try:
        yield srv
    finally:
        srv.stop()


def config(port: int, signals: list[dict[str, Any]], **kw: Any) -> ModbusSourceConfig:
    raw: dict[str, Any] = {
        "type": "modbus",
        "host": "127.0.0.1",
        "port": port,
        "poll_interval_ms": 50,
        "link": FAST_LINK,
        "signals": signals,
    }
    raw.update(kw)
    return ModbusSourceConfig.model_validate(raw)


def words(value: float, fmt: str, word_order: str = "big", byte_order: str = "big") -> list[int]:
    """The registers a device with these orders holds for ``value`` (independent encoder)."""
    raw = struct.pack(">" + fmt, value)
    ws = [raw[i : i + 2] for i in range(0, len(raw), 2)]
    if word_order == "little":
        ws.reverse()
    if byte_order == "little":
        ws = [w[::-1] for w in ws]
    return [int.from_bytes(w, "big") for w in ws]


class Collector:
    """Drives :meth:`LiveSource.poll` and keeps rows, events and the latest values."""

    def __init__(self, source: LiveSource) -> None:
        self.source = source
        self.latest: dict[str, float] = {}
        self.rows = 0
        self.events: list[LinkEvent] = []
        self.quality: list[dict[str, float]] = []

    def poll(self) -> None:
        batch = self.source.poll()
        self.events += batch.events
        self.quality += [q for _, q in batch.quality]
        for block in batch.blocks:
            if block.stream != "slow":
                continue
            self.rows += len(block.t_ms)
            for name, arr in block.fields.items():
                good = arr[~np.isnan(arr)]
                if len(good):
                    self.latest[name] = float(good[-1])

    def until(self, cond: Any, what: str, timeout_s: float = 10.0) -> None:
        def check() -> bool:
            self.poll()
            return bool(cond())

        wait_for(check, timeout_s, what, interval_s=0.02)

    def codes(self) -> list[str]:
        return [e.code for e in self.events]


@contextmanager
def live(cfg: ModbusSourceConfig) -> Iterator[Collector]:
    source = LiveSource(config=cfg, driver=make_driver(cfg))
    source.start()
    try:
        yield Collector(source)
    finally:
        source.stop(timeout_s=5)
        assert not source.running, "driver did not stop"


@contextmanager
def bare(cfg: ModbusSourceConfig) -> Iterator[tuple[ModbusDriver, LiveSink, threading.Thread]]:
    """The driver alone on a thread (for request counting and stop timing)."""
    driver = make_driver(cfg)
    assert isinstance(driver, ModbusDriver)
    sink, stop = LiveSink(), threading.Event()
    thread = threading.Thread(target=driver.run, args=(sink, stop), daemon=True)
    thread.start()
    try:
        yield driver, sink, thread
    finally:
        stop.set()
        thread.join(5)
        assert not thread.is_alive()


# --------------------------------------------------------------------- values


CASES: list[tuple[str, str, str, str, float]] = [
    # name, type, word_order, byte_order, value
    ("u16", "uint16", "big", "big", 65535),
    ("i16", "int16", "big", "big", -2),
    ("i32_abcd", "int32", "big", "big", -123456789),
    ("i32_cdab", "int32", "little", "big", -123456789),
    ("u32_badc", "uint32", "big", "little", 4000000001),
    ("u32_dcba", "uint32", "little", "little", 4000000001),
    ("f32_abcd", "float32", "big", "big", 3.5),
    ("f32_cdab", "float32", "little", "big", -1234.5),
    ("f32_badc", "float32", "big", "little", 0.15625),
    ("f32_dcba", "float32", "little", "little", 1e10),
    ("f64_abcd", "float64", "big", "big", math.pi),
    ("f64_dcba", "float64", "little", "little", -2.5e-7),
    ("f64_cdab", "float64", "little", "big", 123456.789),
]
_FMT = {"uint16": "H", "int16": "h", "int32": "i", "uint32": "I", "float32": "f", "float64": "d"}


def test_every_type_and_order_decodes_through_live_source(server: ModbusServer) -> None:
    signals: list[dict[str, Any]] = []
    address = 0
    for name, dtype, wo, bo, value in CASES:
        ws = words(value, _FMT[dtype], wo, bo)
        server.set("h", address, ws)
        signals.append(
            {
                "name": name,
                "table": "holding_register",
                "address": address,
                "type": dtype,
                "word_order": wo,
                "byte_order": bo,
            }
        )
        address += len(ws) + 1  # a one-register hole between values (bridged)
    server.set("i", 3, [42])
    server.set("c", 5, [True])
    server.set("d", 7, [True])
    server.set("h", 0, [7], unit=2)
    signals += [
        {"name": "ir3", "table": "input_register", "address": 3, "scale": 0.5, "offset": 1},
        {"name": "coil5", "table": "coil", "address": 5},
        {"name": "coil6", "table": "coil", "address": 6},
        {"name": "di7", "table": "discrete_input", "address": 7},
        {"name": "u2_hr0", "table": "holding_register", "address": 0, "unit_id": 2},
    ]
    expected = {name: value for name, _, _, _, value in CASES}
    expected |= {"ir3": 42 * 0.5 + 1, "coil5": 1.0, "coil6": 0.0, "di7": 1.0, "u2_hr0": 7.0}
    with live(config(server.spec["port"], signals)) as col:
        col.until(lambda: set(col.latest) == set(expected), "every signal")
        for name, want in expected.items():
            got = col.latest[name]
            assert got == pytest.approx(want, rel=1e-6), name
        assert col.codes()[0] == "source_up"
        assert col.source.totals["bad"] == 0
        assert col.source.totals["gateway_time"] == col.source.totals["readings"]


# --------------------------------------------------------------------- read planning


def test_server_sees_exactly_the_planned_reads(server: ModbusServer) -> None:
    signals: list[dict[str, Any]] = [
        {"name": f"hr{a}", "table": "holding_register", "address": a} for a in range(10)
    ]
    signals += [
        {"name": "hr15", "table": "holding_register", "address": 15},  # gap 5 <= 8: bridged
        {"name": "f100", "table": "holding_register", "address": 100, "type": "float32"},
        {"name": "c0", "table": "coil", "address": 0},
        {"name": "c40", "table": "coil", "address": 40},  # gap 39 > 8: own read
        {"name": "ir3", "table": "input_register", "address": 3},
        {"name": "u2", "table": "holding_register", "address": 0, "unit_id": 2},
    ]
    cfg = config(server.spec["port"], signals, poll_interval_ms=600_000)  # one poll only
    server.reset()
    with bare(cfg) as (driver, sink, _):
        wait_for(lambda: driver.stats.polls == 1 and not sink.down, 10, "first poll")
        wait_for(lambda: sum(server.counts().values()) >= 6, 10, "requests")
    # unit 1: holding 0..15 and 100..101 (2 reads), coils 0 and 40 (2), input 3 (1); unit 2: 1
    assert server.counts() == {"1:3": 2, "1:1": 2, "1:4": 1, "2:3": 1}
    assert len(driver.blocks) == 6 and driver.stats.requests == 6
    assert len(signals) == 16  # the naive poller: 16 requests


# --------------------------------------------------------------------- connections


def test_single_connection_device_keeps_working_and_gateway_never_opens_two(
    server: ModbusServer,
) -> None:
    proxy = TcpProxy(("127.0.0.1", server.spec["port"]), max_clients=1)
    server.set("h", 0, [11])
    try:
        cfg = config(proxy.port, [{"name": "v", "table": "holding_register", "address": 0}])
        with live(cfg) as col:
            col.until(lambda: col.latest.get("v") == 11, "first value")
            # another master tries the device: the device refuses it (proves the proxy)
            with socket.create_connection(("127.0.0.1", proxy.port), timeout=2) as other:
                assert other.recv(10) == b""
            rows = col.rows
            col.until(lambda: col.rows >= rows + 10, "polls go on")
            proxy.drop_all()  # network break: the gateway reconnects (closes before opening)
            col.until(lambda: proxy.accepted == 2, "reconnect")
            server.set("h", 0, [12])
            col.until(lambda: col.latest.get("v") == 12, "value after reconnect")
        assert proxy.peak == 1
        assert proxy.refused == 1  # only the other master
        assert proxy.accepted == 2
        assert col.codes().count("source_down") == 1
    finally:
        proxy.close()


def test_server_kill9_and_restart_resumes_with_events(server: ModbusServer) -> None:
    server.set("h", 10, [100])
    cfg = config(server.spec["port"], [{"name": "v", "table": "holding_register", "address": 10}])
    with live(cfg) as col:
        col.until(lambda: col.latest.get("v") == 100, "value before")
        server.kill9()
        col.until(lambda: "source_down" in col.codes(), "source_down")
        rows_down = col.rows
        server.start()
        server.set("h", 10, [101])
        col.until(lambda: col.latest.get("v") == 101, "value after restart")
        assert col.codes() == ["source_up", "source_down", "source_up"]
        assert col.rows > rows_down
        up_again = col.events[-1].message
        assert "connected again after" in up_again
        assert any(q.get("link_up") == 0 for q in col.quality)


def test_exception_response_marks_only_that_block_bad(server: ModbusServer) -> None:
    server.set("h", 100, [1])
    server.set("h", 300, [3])
    signals = [
        {"name": "ok100", "table": "holding_register", "address": 100},
        {"name": "hole205", "table": "holding_register", "address": 205},  # holes 200..209
        {"name": "ok300", "table": "holding_register", "address": 300},
    ]
    with live(config(server.spec["port"], signals)) as col:
        col.until(lambda: col.source.totals["bad"] >= 3, "bad readings")
        col.until(lambda: {"ok100", "ok300"} <= set(col.latest), "good ones")
        assert "hole205" not in col.latest
        bad = [e for e in col.events if e.code == "signal_bad"]
        assert bad and "hole205" in bad[0].message
        assert "modbus exception 2 (illegal data address)" in bad[0].message
        assert "ok100" not in bad[0].message and "ok300" not in bad[0].message
        assert "source_down" not in col.codes()  # the device answered: the link is fine


def test_silent_slave_times_out_bad_then_reconnects(server: ModbusServer) -> None:
    proxy = TcpProxy(("127.0.0.1", server.spec["port"]))
    server.set("h", 0, [5])
    link = {"reconnect_min_s": 0.05, "reconnect_max_s": 0.1, "timeout_s": 0.2}
    try:
        cfg = config(
            proxy.port,
            [{"name": "v", "table": "holding_register", "address": 0}],
            link=link,
            timeouts_before_reconnect=2,
        )
        with live(cfg) as col:
            col.until(lambda: col.latest.get("v") == 5, "first value")
            proxy.mode = "mute"
            col.until(lambda: "source_down" in col.codes(), "reconnect after timeouts")
            col.until(lambda: proxy.accepted >= 3, "reconnect attempts")
            bad = [e for e in col.events if e.code == "signal_bad"]
            assert bad and "timeout" in bad[0].message
            assert proxy.peak == 1
            proxy.mode = "pass"
            server.set("h", 0, [6])
            col.until(lambda: col.latest.get("v") == 6, "value after it answers again")
            assert col.codes().count("source_down") == 1  # one outage, one event
            assert col.codes().count("source_up") == 2
    finally:
        proxy.close()


def test_garbage_and_short_responses_are_bad_not_fatal(server: ModbusServer) -> None:
    proxy = TcpProxy(("127.0.0.1", server.spec["port"]))
    server.set("h", 0, [1, 2, 3])
    link = {"reconnect_min_s": 0.05, "reconnect_max_s": 0.1, "timeout_s": 0.2}
    signals = [
        {"name": "a", "table": "holding_register", "address": 0},
        {"name": "b", "table": "holding_register", "address": 1},
        {"name": "c", "table": "holding_register", "address": 2},
    ]
    try:
        with live(config(proxy.port, signals, link=link)) as col:
            col.until(lambda: col.latest.get("c") == 3, "first values")
            proxy.mode = "garbage"
            bad0 = col.source.totals["bad"]
            col.until(lambda: col.source.totals["bad"] >= bad0 + 6, "garbage → bad")
            proxy.mode = "short"
            server.set("h", 0, [4, 5, 6])
            col.until(lambda: col.latest.get("b") == 5, "short response: leading values")
            bad1 = col.source.totals["bad"]
            col.until(lambda: col.source.totals["bad"] >= bad1 + 2, "short response: c bad")
            assert col.latest["c"] == 3  # never a value from a short response
            proxy.mode = "pass"
            col.until(lambda: col.latest.get("c") == 6, "good again")
            assert col.source.driver_failures == 0
            assert col.source.running
    finally:
        proxy.close()


def test_non_finite_float_is_bad(server: ModbusServer) -> None:
    server.set("h", 0, [0x7FC0, 0, 0x7F80, 0, 0x4000, 0])  # NaN, +inf, 2.0
    signals = [
        {"name": "nan", "table": "holding_register", "address": 0, "type": "float32"},
        {"name": "inf", "table": "holding_register", "address": 2, "type": "float32"},
        {"name": "two", "table": "holding_register", "address": 4, "type": "float32"},
    ]
    with live(config(server.spec["port"], signals)) as col:
        col.until(lambda: "two" in col.latest and col.source.totals["bad"] >= 2, "values")
        assert set(col.latest) == {"two"}
        bad = [e for e in col.events if e.code == "signal_bad"]
        assert "non-finite value" in bad[0].message


def test_stop_returns_within_a_second_while_a_request_hangs(server: ModbusServer) -> None:
    proxy = TcpProxy(("127.0.0.1", server.spec["port"]))
    link = {"reconnect_min_s": 0.05, "reconnect_max_s": 0.1, "timeout_s": 30}
    try:
        cfg = config(
            proxy.port, [{"name": "v", "table": "holding_register", "address": 0}], link=link
        )
        driver = make_driver(cfg)
        assert isinstance(driver, ModbusDriver)
        sink, stop = LiveSink(), threading.Event()
        thread = threading.Thread(target=driver.run, args=(sink, stop), daemon=True)
        thread.start()
        wait_for(lambda: driver.stats.polls >= 2, 10, "polls")
        proxy.mode = "mute"
        wait_for(lambda: proxy.swallowed > 0, 10, "a request in flight")
        t0 = time.monotonic()
        stop.set()
        thread.join(5)
        assert not thread.is_alive()
        assert time.monotonic() - t0 < 1.0
    finally:
        proxy.close()


def test_overruns_are_counted_and_reported_once_per_episode(server: ModbusServer) -> None:
    proxy = TcpProxy(("127.0.0.1", server.spec["port"]))
    link = {"reconnect_min_s": 0.05, "reconnect_max_s": 0.1, "timeout_s": 0.1}
    signals = [
        {"name": "a", "table": "holding_register", "address": 0},
        {"name": "b", "table": "input_register", "address": 0},
    ]
    try:
        cfg = config(
            proxy.port, signals, link=link, poll_interval_ms=50, timeouts_before_reconnect=1000
        )
        with live(cfg) as col:
            driver = col.source.driver
            assert isinstance(driver, ModbusDriver)
            col.until(lambda: "a" in col.latest, "first value")
            for episode in (1, 2):
                proxy.mode = "mute"  # each poll now takes 2 x 100 ms > 50 ms
                col.until(lambda: driver.stats.overruns >= 3 * episode, "overruns")  # noqa: B023
                proxy.mode = "pass"
                polls = driver.stats.polls
                col.until(lambda: driver.stats.polls >= polls + 5, "polls fit again")  # noqa: B023
            assert col.codes().count("poll_overrun") == 2
            assert driver.stats.overrun_episodes == 2
            assert driver.stats.skipped >= driver.stats.overruns >= 6
    finally:
        proxy.close()


# --------------------------------------------------------------------- RTU


def test_rtu_over_a_pty_pair_reads_two_units() -> None:
    line = PtyNullModem()
    srv = ModbusServer({"serial": line.a, "baudrate": 38400, "parity": "N", "units": [1, 2]})
    try:
        srv.start()
        srv.set("h", 4, words(21.5, "f", "little"))
        srv.set("c", 2, [True], unit=2)
        cfg = ModbusSourceConfig.model_validate(
            {
                "type": "modbus",
                "transport": "rtu",
                "serial_port": line.b,
                "baudrate": 38400,
                "parity": "N",  # a pty refuses parity (EINVAL); a real line may use E
                "poll_interval_ms": 100,
                "link": FAST_LINK,
                "signals": [
                    {
                        "name": "temp_C",
                        "table": "holding_register",
                        "address": 4,
                        "type": "float32",
                        "word_order": "little",
                    },
                    {"name": "run", "table": "coil", "address": 2, "unit_id": 2},
                ],
            }
        )
        with live(cfg) as col:
            col.until(lambda: {"temp_C", "run"} <= set(col.latest), "RTU values", 15)
            assert col.latest == {"temp_C": 21.5, "run": 1.0}
            assert col.source.totals["bad"] == 0
        assert srv.counts()["1:3"] >= 1 and srv.counts()["2:1"] >= 1
    finally:
        srv.stop()
        line.close()


def test_quality_of_readings_is_gateway_time(server: ModbusServer) -> None:
    cfg = config(server.spec["port"], [{"name": "v", "table": "holding_register", "address": 0}])
    with bare(cfg) as (driver, sink, _):
        wait_for(lambda: driver.stats.polls >= 2, 10, "polls")
    readings, _, _ = sink.take()
    assert readings and all(r.quality is Quality.GOOD and not r.device_time for r in readings)
