"""LiveSource and LiveSink: row assembly, quality rows, events, bounds and supervision.

Pure logic: the driver here is a small in-test fake (the protocols are covered by their own
tests against real servers under ``tests/live/``).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest

from harness.wait import wait_for
from renkei.edge.sources.live import (
    LinkConfig,
    LiveSink,
    LiveSource,
    LiveSourceConfig,
    LiveSourceError,
    Quality,
    Reading,
    ShotsConfig,
    SignalMap,
)
from renkei.edge.sources.live.base import LinkEvent, RawBlock, ReadingBlock
from renkei.edge.sources.live.source import (
    MAX_FUTURE_SKEW_S,
    MAX_POLL_CELLS,
    MERGE_GRACE_MS,
    LiveBatch,
)

NOW = 1_767_225_600_000  # 2026-01-01T00:00:00Z, the pinned gateway clock


class Clock:
    def __init__(self, t: int = NOW) -> None:
        self.t = t

    def __call__(self) -> int:
        return self.t


class FakeDriver:
    """A driver whose ``run`` calls ``body(sink, stop)`` (default: wait for stop)."""

    def __init__(
        self,
        signals: Sequence[SignalMap],
        *,
        shots: ShotsConfig | None = None,
        body: Callable[[LiveSink, threading.Event], None] | None = None,
    ) -> None:
        self.signals: Sequence[SignalMap] = list(signals)
        self.shots = shots
        self.describe = "fake device"
        self.body = body
        self.runs = 0

    def run(self, sink: LiveSink, stop: threading.Event) -> None:
        self.runs += 1
        if self.body is not None:
            self.body(sink, stop)
        else:
            stop.wait()


def _source(
    names: Sequence[str] = ("a", "b"),
    *,
    clock: Clock | None = None,
    shots: ShotsConfig | None = None,
    body: Callable[[LiveSink, threading.Event], None] | None = None,
    signals: Sequence[SignalMap] | None = None,
    **config: Any,
) -> LiveSource:
    sigs = list(signals) if signals is not None else [SignalMap(name=n) for n in names]
    return LiveSource(
        config=LiveSourceConfig.model_validate({"shots": shots, **config}),
        driver=FakeDriver(sigs, shots=shots, body=body),
        clock=clock or Clock(),
    )


def _r(signal: str, t: int, v: float, q: Quality = Quality.GOOD, **kw: Any) -> Reading:
    return Reading(signal, t, v, q, **kw)


def _slow(batch: LiveBatch) -> tuple[list[int], dict[str, list[float]]]:
    blocks = [b for b in batch.blocks if b.stream == "slow"]
    assert len(blocks) <= 1
    if not blocks:
        return [], {}
    b = blocks[0]
    return b.t_ms.tolist(), {k: v.tolist() for k, v in b.fields.items()}


def _same(a: list[float], b: list[float]) -> bool:
    return len(a) == len(b) and all(
        (math.isnan(x) and math.isnan(y)) or x == y for x, y in zip(a, b, strict=True)
    )


# ------------------------------------------------------------------ rows and time


def test_rows_are_ordered_one_per_timestamp_with_nan_for_missing() -> None:
    src = _source()
    src.sink.put([_r("b", NOW - 10, 2.0), _r("a", NOW - 20, 1.0), _r("a", NOW - 10, 3.0)])
    ts, f = _slow(src.poll())
    assert ts == [NOW - 20, NOW - 10]
    assert _same(f["a"], [1.0, 3.0])
    assert _same(f["b"], [math.nan, 2.0])


def test_late_reading_goes_one_ms_after_the_last_row_and_is_counted() -> None:
    src = _source()
    src.sink.put([_r("a", NOW - 100, 1.0)])
    src.poll()
    src.sink.put([_r("a", NOW - 500, 2.0), _r("b", NOW - 100, 5.0), _r("a", NOW - 50, 3.0)])
    ts, f = _slow(src.poll())
    # two late readings (-500 is older, -100 equals the last row: not "late", moved on)
    assert ts == [NOW - 99, NOW - 50]
    assert _same(f["a"], [2.0, 3.0])
    assert _same(f["b"], [5.0, math.nan])
    assert src.totals["late"] == 1


def test_two_readings_of_one_signal_at_one_ms_get_rows_one_ms_apart() -> None:
    src = _source()
    src.sink.put([_r("a", NOW - 10, 1.0), _r("a", NOW - 10, 2.0), _r("b", NOW - 10, 7.0)])
    ts, f = _slow(src.poll())
    assert ts == [NOW - 10, NOW - 9]
    assert _same(f["a"], [1.0, 2.0])  # arrival order kept
    assert _same(f["b"], [7.0, math.nan])
    assert src.totals["readings"] == 3


def test_row_merge_puts_readings_of_one_slot_in_one_row_at_the_earliest_time() -> None:
    clock = Clock()
    src = _source(("a", "b", "c"), row_merge_ms=100, clock=clock)
    base = NOW - NOW % 100 - 1000  # a slot boundary
    src.sink.put(
        [
            _r("a", base + 10, 1.0),
            _r("b", base + 40, 2.0),
            _r("c", base + 99, 3.0),
            _r("a", base + 70, 4.0),  # a's second reading in the slot: a second row
            _r("b", base + 100, 5.0),  # next slot
        ]
    )
    ts, f = _slow(src.poll())
    # the newest slot waits for late notifications of its own
    assert ts == [base + 10, base + 70]
    assert _same(f["a"], [1.0, 4.0])
    assert _same(f["b"], [2.0, math.nan])
    assert _same(f["c"], [3.0, math.nan])
    src.sink.put([_r("c", base + 150, 6.0)])  # arrives a poll later, same slot
    clock.t += 100 + MERGE_GRACE_MS
    ts, f = _slow(src.poll())
    assert ts == [base + 100]
    assert _same(f["b"], [5.0]) and _same(f["c"], [6.0]) and _same(f["a"], [math.nan])
    assert src.totals["readings"] == 6
    assert src.totals["late"] == 0


def test_row_merge_final_poll_releases_the_held_slot() -> None:
    src = _source(("a",), row_merge_ms=100)
    src.sink.put([_r("a", NOW - 1000, 1.0)])
    assert _slow(src.poll())[0] == []
    assert _slow(src.poll(final=True))[0] == [NOW - 1000]


def test_row_merge_keeps_rows_linear_in_slots_for_many_unrelated_signals() -> None:
    names = [f"s{i}" for i in range(1000)]
    src = _source(names, row_merge_ms=100)
    base = NOW - NOW % 100 - 10_000
    # every signal has its own timestamp inside one of 10 slots
    src.sink.put(_r(n, base + (i % 10) * 100 + i % 97, float(i)) for i, n in enumerate(names))
    ts, f = _slow(src.poll(final=True))
    assert len(ts) == 10
    assert all(f[n][i % 10] == float(i) for i, n in enumerate(names))


def test_many_readings_of_one_signal_at_one_ms_keep_order_without_a_quadratic_scan() -> None:
    src = _source()
    n = 30_000  # a hostile device; a scan per reading would be 4.5e8 steps
    src.sink.put([_r("a", NOW - 100, float(i)) for i in range(n)] + [_r("b", NOW - 100 + 5, -1.0)])
    ts, f = _slow(src.poll())
    assert ts == list(range(NOW - 100, NOW - 100 + n))
    assert f["a"] == [float(i) for i in range(n)]
    assert f["b"][5] == -1.0  # b joins the row at its own time


def test_a_backlog_is_taken_in_bounded_parts() -> None:
    names = [f"s{i}" for i in range(1000)]
    src = _source(names)
    limit = MAX_POLL_CELLS // len(names)
    n = 2 * limit + 7
    src.sink.put(_r(names[i % 1000], NOW - n + i, float(i)) for i in range(n))
    sizes: list[int] = []
    ts_all: list[int] = []
    while True:
        batch = src.poll()
        ts, _ = _slow(batch)
        assert len(names) * len(ts) <= MAX_POLL_CELLS
        sizes.append(len(ts))
        ts_all += ts
        if not batch.more:
            break
    assert sizes == [limit, limit, 7]
    assert ts_all == list(range(NOW - n, NOW))  # nothing lost, order kept, nothing late
    assert src.totals["late"] == 0


def test_bad_is_null_never_a_value_and_non_finite_counts_as_bad() -> None:
    src = _source()
    src.sink.put(
        [
            _r("a", NOW - 30, 99.0, Quality.BAD, reason="timeout"),
            _r("b", NOW - 30, math.inf),  # a float register holding +inf
            _r("a", NOW - 20, 4.0, Quality.UNCERTAIN),
        ]
    )
    ts, f = _slow(src.poll())
    assert ts == [NOW - 30, NOW - 20]
    assert _same(f["a"], [math.nan, 4.0])  # uncertain values are published
    assert _same(f["b"], [math.nan, math.nan])
    assert src.totals["bad"] == 2
    assert src.totals["uncertain"] == 1


def test_scale_and_offset_apply_and_overflow_is_no_value() -> None:
    sigs = [SignalMap(name="t", scale=0.1, offset=-40.0), SignalMap(name="big", scale=1e10)]
    src = _source(signals=sigs)
    src.sink.put([_r("t", NOW - 5, 655.0), _r("big", NOW - 5, 1e300)])
    _, f = _slow(src.poll())
    assert f["t"] == pytest.approx([25.5])
    assert math.isnan(f["big"][0])


@pytest.mark.parametrize("offset_s", [-3 * 3600, 3 * 3600, -400 * 86_400])
def test_device_clock_far_off_is_replaced_by_the_gateway_clock(offset_s: int) -> None:
    src = _source()
    src.sink.put([_r("a", NOW + offset_s * 1000, 1.0)])
    batch = src.poll()
    ts, _ = _slow(batch)
    assert ts == [NOW]
    assert src.totals["gateway_time"] == 1
    assert [e.code for e in batch.events] == ["clock_skew"]
    # one event per episode, a new one after the clock was fine again
    src.sink.put([_r("a", NOW + offset_s * 1000 + 5, 1.0)])
    assert [e.code for e in src.poll().events] == []
    src.sink.put([_r("a", NOW + 5, 1.0)])
    assert [e.code for e in src.poll().events] == []
    src.sink.put([_r("a", NOW + offset_s * 1000 + 9, 1.0)])
    assert [e.code for e in src.poll().events] == ["clock_skew"]


def test_future_skew_is_capped_below_the_ingest_window_whatever_the_config() -> None:
    src = _source(max_clock_skew_s=3600)
    ahead = int((MAX_FUTURE_SKEW_S + 30) * 1000)
    behind = 3000 * 1000  # within the configured hour: kept
    src.sink.put([_r("a", NOW - behind, 1.0), _r("b", NOW + ahead, 2.0)])
    ts, _ = _slow(src.poll())
    assert ts == [NOW - behind, NOW]
    assert MAX_FUTURE_SKEW_S < 300  # the ingest's default max_future_s


def test_gateway_stamped_readings_are_counted_not_skew_checked() -> None:
    src = _source()
    src.sink.put([_r("a", NOW - 5, 1.0, device_time=False)])
    batch = src.poll()
    assert _slow(batch)[0] == [NOW - 5]
    assert src.totals["gateway_time"] == 1
    assert batch.events == []


def test_unknown_signals_are_counted_and_dropped() -> None:
    src = _source()
    src.sink.put([_r("zzz", NOW, 1.0)])
    batch = src.poll()
    assert batch.blocks == []
    assert src.totals["unknown"] == 1


# ------------------------------------------------------------------ quality rows


def test_quality_row_counts_are_exact_with_worst_code_per_signal() -> None:
    clock = Clock()
    src = _source(clock=clock, quality_interval_s=10)
    src.poll()  # starts the interval
    src.sink.put(
        [
            _r("a", NOW - 50, 1.0, Quality.UNCERTAIN),
            _r("a", NOW - 40, 1.0, Quality.BAD, reason="x"),
            _r("a", NOW - 30, 1.0, Quality.UNCERTAIN),
            _r("b", NOW - 30, 1.0, Quality.UNCERTAIN),
            _r("b", NOW - 20, 1.0, device_time=False),
            _r("nope", NOW - 20, 1.0),
        ]
    )
    assert src.poll().quality == []
    clock.t += 10_000
    (t, row), *more = src.poll().quality
    assert more == []
    assert t == clock.t
    assert row == {
        "link_up": 0.0,  # never connected (the driver did not call link_up)
        "readings": 5.0,
        "bad": 1.0,
        "uncertain": 3.0,
        "gateway_time": 1.0,
        "late": 0.0,
        "unknown": 1.0,
        "dropped": 0.0,
        "a": 2.0,
        "b": 1.0,
    }
    clock.t += 10_000
    (_, row2), *_ = src.poll().quality
    assert row2["readings"] == 0.0 and "a" not in row2  # counters restart each interval


def test_outage_start_and_end_each_get_a_quality_row_even_in_one_poll() -> None:
    clock = Clock()
    src = _source(clock=clock)
    src.poll()
    src.sink.put([_r("a", NOW - 5, 1.0)])
    src.sink.link_down("connection refused")
    src.sink.link_up()
    batch = src.poll()
    codes = [e.code for e in batch.events]
    assert codes == ["source_down", "source_up"]
    assert [row["link_up"] for _, row in batch.quality] == [0.0, 1.0]
    times = [t for t, _ in batch.quality]
    assert times[0] < times[1]  # never two rows at one time (the store would overwrite)
    assert batch.quality[0][1]["readings"] == 1.0
    assert batch.quality[1][1]["readings"] == 0.0


def test_quality_row_times_strictly_increase() -> None:
    clock = Clock()
    src = _source(clock=clock, quality_interval_s=1)
    src.poll()
    times: list[int] = []
    for _ in range(3):
        src.sink.link_down("x")
        src.sink.link_up()
        clock.t += 1000
        times += [t for t, _ in src.poll().quality]
    assert times == sorted(set(times))
    assert len(times) == 6


def test_link_is_not_up_before_the_first_connect() -> None:
    clock = Clock()
    src = _source(clock=clock, quality_interval_s=1)
    src.poll()
    clock.t += 1000
    assert [row["link_up"] for _, row in src.poll().quality] == [0.0]
    assert src.status()["link_up"] is False
    src.sink.link_up()
    clock.t += 1000
    assert [row["link_up"] for _, row in src.poll().quality] == [1.0]
    clock.t += 1000
    assert [row["link_up"] for _, row in src.poll().quality] == [1.0]


def test_dropped_readings_reach_the_quality_row() -> None:
    clock = Clock()
    src = _source(clock=clock, quality_interval_s=1)
    src.sink = LiveSink(max_pending=3)
    src.poll()
    src.sink.put(_r("a", NOW - 10 + i, float(i)) for i in range(5))
    assert src.sink.dropped == 2
    clock.t += 1000
    batch = src.poll()
    assert _same(_slow(batch)[1]["a"], [2.0, 3.0, 4.0])  # the oldest went
    assert batch.quality[0][1]["dropped"] == 2.0


# ------------------------------------------------------------------ events


def test_signal_bad_and_good_are_grouped_by_reason_and_net_per_poll() -> None:
    src = _source(("a", "b", "c"))
    src.sink.put(
        [
            _r("a", NOW - 9, 0.0, Quality.BAD, reason="timeout"),
            _r("b", NOW - 9, 0.0, Quality.BAD, reason="timeout"),
            _r("c", NOW - 9, 0.0, Quality.BAD, reason="exception 2"),
        ]
    )
    ev = src.poll().events
    assert [(e.code, e.message) for e in ev] == [
        ("signal_bad", "2 signal(s) bad: timeout: a, b"),
        ("signal_bad", "1 signal(s) bad: exception 2: c"),
    ]
    # a flaps bad->good->bad inside one poll: still bad, nothing announced; b recovers
    src.sink.put(
        [
            _r("a", NOW - 8, 1.0),
            _r("a", NOW - 7, 0.0, Quality.BAD, reason="timeout"),
            _r("b", NOW - 7, 1.0),
            _r("c", NOW - 7, 0.0, Quality.BAD, reason="exception 2"),
        ]
    )
    ev = src.poll().events
    assert [(e.code, e.message) for e in ev] == [("signal_good", "1 signal(s) good again: b")]


def test_signal_event_names_are_capped() -> None:
    names = [f"s{i}" for i in range(25)]
    src = _source(names)
    src.sink.put_bad(names, "timeout", t_ms=NOW - 1)
    (ev,) = src.poll().events
    assert ev.message.endswith("s9 and 15 more")
    assert ev.message.startswith("25 signal(s) bad: timeout: s0, s1")


def test_link_events_once_per_outage_and_duration() -> None:
    sink = LiveSink()
    sink.link_up("opc.tcp://x")
    for _ in range(5):
        sink.link_down("refused")
    sink.link_up()
    sink.link_up()
    _, events, _ = sink.take()
    assert [e.code for e in events] == ["source_up", "source_down", "source_up"]
    assert events[0].message == "connected (opc.tcp://x)"
    assert events[2].message.startswith("connected again after ")
    assert (sink.outages, sink.connects) == (1, 2)


# ------------------------------------------------------------------ bounds


def test_sink_bounds_events_and_ignores_units_of_unknown_signals() -> None:
    sink = LiveSink(max_events=3, signals=["a"])
    for i in range(10):
        sink.event("condition_fault", "alarm", f"m{i}")
    sink.set_unit("a", "degC")
    for i in range(1000):
        sink.set_unit(f"metric{i}", "x")
    _, events, units = sink.take()
    assert [e.message for e in events] == ["m7", "m8", "m9"]
    assert sink.events_dropped == 7
    assert units == {"a": "degC"}
    sink.event("x", "info", "y" * 2000)
    assert len(sink.take()[1][0].message) == 512


def test_no_per_reading_growth_of_internal_maps() -> None:
    clock = Clock()
    src = _source(("a", "b"), clock=clock, quality_interval_s=1)
    for k in range(200):
        clock.t += 7
        src.sink.put(
            [
                _r(
                    "a",
                    clock.t - 1,
                    float(k),
                    Quality.BAD if k % 3 else Quality.GOOD,
                    reason=f"r{k}",
                ),
                _r("b", clock.t - 1, float(k), Quality.UNCERTAIN),
                _r(f"unknown{k}", clock.t - 1, 1.0),
            ]
        )
        src.sink.set_unit(f"unknown{k}", "m")
        src.poll()
    assert set(src._rows._bad) <= {"a", "b"}
    assert set(src._quality.worst) <= {"a", "b"}
    assert len(src._quality.counts) <= 8
    assert set(src.totals) == {
        "readings",
        "bad",
        "uncertain",
        "gateway_time",
        "late",
        "unknown",
        "rows",
    }
    assert src.fields == {"a": "", "b": ""}


def test_units_config_wins_over_device_unit() -> None:
    src = _source(signals=[SignalMap(name="a", unit="bar"), SignalMap(name="b")])
    src.sink.set_unit("a", "Pa")
    src.sink.set_unit("b", "degC")
    src.poll()
    assert src.fields == {"a": "bar", "b": "degC"}


def test_duplicate_signal_and_shot_naming_no_signal_refused() -> None:
    with pytest.raises(LiveSourceError, match="'a' is listed twice"):
        _source(("a", "a"))
    with pytest.raises(LiveSourceError, match=r"not read: \['zz'\]"):
        _source(("a",), shots=ShotsConfig(counter="a", values=["zz"]))
    with pytest.raises(LiveSourceError, match=r"shots.values\[0\]: 'p_mean' is also"):
        _source(
            ("n", "p", "p_mean"), shots=ShotsConfig(counter="n", values=["p_mean"], stats=["p"])
        )


# ------------------------------------------------------------------ shots via the source


def test_shot_rows_from_the_counter_signal() -> None:
    shots = ShotsConfig(counter="n", values=["cushion"], stats=["p"])
    src = _source(("n", "cushion", "p"), shots=shots)
    assert src.streams == {"slow", "shot"}
    src.sink.put(
        [
            _r("n", NOW - 3000, 10.0),
            _r("p", NOW - 2500, 100.0),
            _r("p", NOW - 2000, 300.0),
            _r("cushion", NOW - 1500, 4.5),
            _r("n", NOW - 1000, 11.0),
        ]
    )
    batch = src.poll()
    (shot,) = [b for b in batch.blocks if b.stream == "shot"]
    assert shot.t_ms.tolist() == [NOW - 1000]
    assert list(shot.fields) == ["shot_count", "cycle_time_s", "cushion", "p_mean", "p_max"]
    assert shot.fields["shot_count"].tolist() == [11.0]
    assert np.isnan(shot.fields["cycle_time_s"][0])  # first cycle after start
    assert shot.fields["p_mean"].tolist() == [200.0]
    assert shot.fields["p_max"].tolist() == [300.0]
    # an outage: the next cycle's time is unknown
    src.sink.link_down("x")
    src.sink.link_up()
    src.sink.put([_r("n", NOW - 500, 12.0)])
    (shot,) = [b for b in src.poll().blocks if b.stream == "shot"]
    assert np.isnan(shot.fields["cycle_time_s"][0])
    src.sink.put([_r("n", NOW, 13.0)])
    (shot,) = [b for b in src.poll().blocks if b.stream == "shot"]
    assert shot.fields["cycle_time_s"].tolist() == [0.5]


# ------------------------------------------------------------------ supervision


def test_failing_driver_restarts_with_backoff_and_reports_driver_failed() -> None:
    def boom(sink: LiveSink, stop: threading.Event) -> None:
        raise RuntimeError("device said no")

    src = _source(body=boom, link=LinkConfig(reconnect_min_s=0.05, reconnect_max_s=0.2))
    src.start()
    try:
        wait_for(lambda: src.driver_failures >= 4, 5, "four restarts")
    finally:
        src.stop(timeout_s=2)
    assert not src.running
    batch = src.poll()
    codes = [e.code for e in batch.events]
    assert codes.count("source_down") == 1  # one outage, however many restarts
    assert codes.count("driver_failed") == src.driver_failures
    assert "RuntimeError: device said no" in batch.events[-1].message
    # backoff: 0.05, 0.1, 0.2, 0.2 ... (±20 %) -> not a tight loop
    assert src.driver_failures < 15


def test_driver_returning_before_stop_is_restarted() -> None:
    def quits(sink: LiveSink, stop: threading.Event) -> None:
        return None

    src = _source(body=quits, link=LinkConfig(reconnect_min_s=0.02, reconnect_max_s=0.05))
    src.start()
    try:
        wait_for(lambda: src.driver_failures >= 2, 5, "restart after an early return")
    finally:
        src.stop(timeout_s=2)
    assert any("returned before stop" in e.message for e in src.poll().events)


def test_stop_joins_the_driver_thread_and_keeps_what_arrived() -> None:
    def body(sink: LiveSink, stop: threading.Event) -> None:
        sink.link_up()
        i = 0
        while not stop.wait(0.01):
            sink.put([Reading("a", NOW + i, float(i))])
            i += 1

    src = _source(body=body)
    src.start()
    wait_for(lambda: len(src.sink._readings) >= 3, 5, "driver reading")
    t0 = time.monotonic()
    src.stop(timeout_s=2)
    assert time.monotonic() - t0 < 1.0
    assert not src.running
    ts, _ = _slow(src.poll())
    assert len(ts) > 0
    assert ts == sorted(ts)


def test_status_reports_link_and_counters() -> None:
    src = _source()
    src.sink.link_down("x")
    st = src.status()
    assert st["link_up"] is False and st["outages"] == 1
    assert st["events_dropped"] == 0 and st["driver_failures"] == 0


def test_link_event_type_is_frozen() -> None:
    ev = LinkEvent(1, "a", "info", "m")
    with pytest.raises(AttributeError):
        ev.code = "b"  # type: ignore[misc]


# ------------------------------------------------------------------ reading blocks

_G, _U, _B = Quality.GOOD, Quality.UNCERTAIN, Quality.BAD
_NAMES3 = ("a", "b", "c")


def _blk(
    t: int,
    entries: Sequence[tuple[int, float, Quality]],
    *,
    names: tuple[str, ...] = _NAMES3,
    reason: str = "",
    reasons: dict[int, str] | None = None,
    device_time: bool = False,
) -> ReadingBlock:
    qs = [q for _, _, q in entries]
    return ReadingBlock(
        names,
        np.asarray([i for i, _, _ in entries], dtype=np.intp),
        np.asarray([v for _, v, _ in entries], dtype=np.float64),
        t,
        None if all(q is _G for q in qs) else np.asarray(qs, dtype=np.uint8),
        reason,
        reasons or {},
        device_time=device_time,
    )


def _summary(batch: LiveBatch) -> tuple[Any, ...]:
    ts, fields = _slow(batch)
    return (
        ts,
        {k: [None if math.isnan(x) else x for x in v] for k, v in fields.items()},
        [(e.code, e.severity, e.message) for e in batch.events],
        [(t, dict(sorted(row.items()))) for t, row in batch.quality],
        batch.more,
    )


def test_blocks_make_exactly_the_rows_events_and_counts_of_their_readings() -> None:
    """The columnar path against the per-reading one, over polls that exercise every rule:
    shared timestamps, one signal twice at one ms, bad/uncertain/non-finite with reasons,
    late blocks, device-clock skew, unknown names and out-of-range positions, recovery."""
    sigs = [SignalMap(name="a", scale=0.5, offset=1.0), SignalMap(name="b"), SignalMap(name="c")]
    rounds: list[list[ReadingBlock]] = [
        [
            _blk(NOW - 50, [(0, 1.0, _G), (1, 2.0, _G)]),
            _blk(NOW - 50, [(2, 3.0, _G)]),  # same ms: the same row
            _blk(NOW - 40, [(0, 4.0, _B), (1, 5.0, _U)], reason="modbus exception 2"),
            _blk(NOW - 40, [(0, math.inf, _G), (2, 6.0, _G)]),  # a again at one ms
            _blk(NOW - 45, [(2, 7.0, _B), (1, 8.0, _G)], reasons={0: "timeout"}),
        ],
        [
            _blk(NOW - 100, [(0, 9.0, _G), (1, 10.0, _G), (2, 11.0, _G)]),  # late
            _blk(NOW - 10**9, [(1, 12.0, _G)], device_time=True),  # clock far off
            _blk(NOW - 5, [(3, 13.0, _G), (0, 14.0, _G)], names=("a", "b", "c", "zz")),
            _blk(NOW - 5, [(7, 15.0, _G), (1, 16.0, _G)]),  # position 7: no signal
        ],
        [_blk(NOW + 20, [(0, 17.0, _G), (1, float("nan"), _U), (2, 18.0, _G)])],
        [_blk(NOW + 30, [(0, 19.0, _G), (1, 20.0, _G), (2, 21.0, _G)])],
        [],
    ]
    clock_a, clock_b = Clock(), Clock()
    codes: list[str] = []
    per_reading = _source(signals=sigs, clock=clock_a, max_clock_skew_s=60, quality_interval_s=1)
    columnar = _source(signals=sigs, clock=clock_b, max_clock_skew_s=60, quality_interval_s=1)
    for blocks in rounds:
        for b in blocks:
            per_reading.sink.put(b.readings())
        columnar.sink.put_blocks(blocks)
        a, b_ = per_reading.poll(), columnar.poll()
        assert _summary(b_) == _summary(a)
        assert columnar.totals == per_reading.totals
        codes += [e.code for e in b_.events]
        clock_a.t += 600
        clock_b.t += 600
    assert {"signal_bad", "signal_good", "clock_skew"} <= set(codes)
    t = columnar.totals
    assert t["late"] > 0 and t["unknown"] == 2 and t["bad"] == 4 and t["uncertain"] == 1


def test_block_with_a_repeated_position_counts_the_repeat_as_unknown() -> None:
    src = _source(("a", "b"))
    src.sink.put_blocks([_blk(NOW - 5, [(0, 1.0, _G), (0, 2.0, _G), (1, 3.0, _G)])])
    ts, fields = _slow(src.poll())
    assert ts == [NOW - 5] and fields == {"a": [1.0], "b": [3.0]}
    assert src.totals["unknown"] == 1 and src.totals["readings"] == 2


def test_blocks_with_row_merge_and_mixed_with_readings_take_the_per_reading_path() -> None:
    src = _source(("a", "b", "c"), row_merge_ms=100)
    src.sink.put_blocks([_blk(NOW - 399, [(0, 1.0, _G)]), _blk(NOW - 350, [(1, 2.0, _G)])])
    src.sink.put([_r("c", NOW - 320, 3.0)])
    ts, fields = _slow(src.poll(final=True))
    assert ts == [NOW - 399]  # one slot, one row at its earliest time
    assert fields == {"a": [1.0], "b": [2.0], "c": [3.0]}


def test_sink_bounds_blocks_whole_and_take_still_returns_readings() -> None:
    sink = LiveSink(max_pending=5)
    sink.put_blocks([_blk(1, [(0, 1.0, _G), (1, 2.0, _G)]) for _ in range(3)])
    assert sink.pending == 4 and sink.dropped == 2  # the oldest block, whole
    sink.put([_r("a", 2, 3.0)])
    items, _, _ = sink.take_items(3)  # blocks are never split; at least the budget
    assert [len(i) if isinstance(i, ReadingBlock) else 1 for i in items] == [2, 2]
    assert sink.pending == 1
    sink.put_blocks([_blk(3, [(2, 4.0, _B)], reason="timeout")])
    readings, _, _ = sink.take()
    assert readings == [
        _r("a", 2, 3.0),
        Reading("c", 3, 4.0, Quality.BAD, device_time=False, reason="timeout"),
    ]
    with pytest.raises(ValueError, match="one length"):
        ReadingBlock(_NAMES3, np.zeros(2, dtype=np.intp), np.zeros(3), 1)


def test_a_backlog_of_blocks_is_taken_in_bounded_parts() -> None:
    names = tuple(f"s{i}" for i in range(1000))
    src = _source(names)
    limit = MAX_POLL_CELLS // len(names)
    idx = np.arange(1000, dtype=np.intp)
    n = 3 * limit // 1000 + 1  # blocks of 1000 values
    src.sink.put_blocks(
        ReadingBlock(names, idx, np.full(1000, float(i)), NOW - n + i) for i in range(n)
    )
    polls = 0
    ts_all: list[int] = []
    while True:
        batch = src.poll()
        ts, _ = _slow(batch)
        assert len(names) * len(ts) <= MAX_POLL_CELLS
        ts_all += ts
        polls += 1
        if not batch.more:
            break
    assert polls >= 3 and ts_all == list(range(NOW - n, NOW))


def test_raw_blocks_are_decoded_on_take_and_a_failing_decoder_loses_only_its_block() -> None:
    calls: list[tuple[Any, int]] = []

    def decode(payload: Any, t_ms: int) -> ReadingBlock:
        calls.append((payload, t_ms))
        if payload == "boom":
            raise ValueError("decoder bug")
        return _blk(t_ms, [(0, float(payload), _G), (1, 2.0, _G)])

    src = _source(("a", "b"))
    src.sink.put_blocks([RawBlock(decode, 1, NOW - 9, 2), RawBlock(decode, "boom", NOW - 8, 2)])
    assert src.sink.pending == 4 and not calls  # nothing decoded on the driver's side
    ts, fields = _slow(src.poll())
    assert ts == [NOW - 9] and fields == {"a": [1.0], "b": [2.0]}
    assert calls == [(1, NOW - 9), ("boom", NOW - 8)]
    assert src.sink.dropped == 2 and src.sink.pending == 0


def test_an_idle_poll_is_empty_until_data_arrives_or_the_quality_row_is_due() -> None:
    clock = Clock()
    src = _source(clock=clock, quality_interval_s=2)
    src.poll()
    clock.t += 1999
    idle = src.poll()
    assert (idle.blocks, idle.events, idle.quality, idle.more) == ([], [], [], False)
    src.sink.put_blocks([_blk(NOW + 1990, [(0, 1.0, _G)])])
    assert _slow(src.poll())[0] == [NOW + 1990]
    clock.t += 1
    assert [row["readings"] for _, row in src.poll().quality] == [1.0]
