"""ShotAssembler: shot rows from a counter or a cycle signal."""

from __future__ import annotations

import math

import pytest

from renkei.edge.sources.live.shots import MAX_COUNTER_JUMP, ShotAssembler
from renkei.edge.sources.live.signals import ShotsConfig

NAN = math.nan


def _counter(**kw: list[str]) -> ShotAssembler:
    return ShotAssembler(ShotsConfig(counter="n", **kw))


def test_fields_in_order() -> None:
    sa = _counter(values=["cushion"], stats=["p", "t"])
    assert sa.fields == (
        "shot_count",
        "cycle_time_s",
        "cushion",
        "p_mean",
        "p_max",
        "t_mean",
        "t_max",
    )


def test_counter_increment_completes_one_cycle_with_stats_reset_per_cycle() -> None:
    sa = _counter(values=["cushion"], stats=["p"])
    assert sa.push(0, {"n": 5.0, "p": 10.0}) == []  # baseline
    assert sa.push(500, {"p": 30.0, "cushion": 4.0}) == []
    ((t, row),) = sa.push(1000, {"n": 6.0, "p": 20.0})
    assert t == 1000
    assert row == {
        "shot_count": 6.0,
        "cycle_time_s": row["cycle_time_s"],
        "cushion": 4.0,
        "p_mean": 20.0,  # 10, 30, 20 (the baseline row's reading counts for cycle 1)
        "p_max": 30.0,
    }
    assert math.isnan(row["cycle_time_s"])  # no previous cycle end known
    ((_, row),) = sa.push(3000, {"n": 7.0})
    assert row["cycle_time_s"] == 2.0
    assert math.isnan(row["p_mean"]) and math.isnan(row["p_max"])  # no reading this cycle
    assert row["cushion"] == 4.0  # latest value kept


def test_counter_jump_by_n_is_n_cycles_and_divides_cycle_time() -> None:
    sa = _counter()
    sa.push(0, {"n": 1.0})
    sa.push(1000, {"n": 2.0})
    ((_, row),) = sa.push(7000, {"n": 5.0})
    assert row["shot_count"] == 5.0
    assert row["cycle_time_s"] == 2.0
    assert sa.missed == 2


@pytest.mark.parametrize("new", [0.0, 3.0, 10.0 + MAX_COUNTER_JUMP + 1, 11.5])
def test_reset_decrease_implausible_jump_or_fraction_restarts_counting(new: float) -> None:
    sa = _counter()
    sa.push(0, {"n": 9.0})
    sa.push(1000, {"n": 10.0})
    assert sa.push(2000, {"n": new}) == []
    assert sa.resets == 1
    ((_, row),) = sa.push(3000, {"n": new + 1})
    assert row["shot_count"] == new + 1
    assert math.isnan(row["cycle_time_s"])  # the time since the reset is not a cycle time


def test_jump_of_exactly_max_is_counted() -> None:
    sa = _counter()
    sa.push(0, {"n": 0.0})
    ((_, row),) = sa.push(1000, {"n": float(MAX_COUNTER_JUMP)})
    assert row["shot_count"] == MAX_COUNTER_JUMP
    assert sa.missed == MAX_COUNTER_JUMP - 1 and sa.resets == 0


def test_same_counter_value_is_no_cycle_and_no_reset() -> None:
    sa = _counter()
    sa.push(0, {"n": 4.0})
    assert sa.push(10, {"n": 4.0}) == []
    assert sa.resets == 0


def test_nan_trigger_and_nan_values_are_ignored() -> None:
    sa = _counter(values=["c"], stats=["p"])
    sa.push(0, {"n": 1.0, "c": 2.0})
    assert sa.push(10, {"n": NAN, "c": NAN, "p": NAN}) == []
    sa.push(20, {"p": math.inf})
    ((_, row),) = sa.push(30, {"n": 2.0})
    assert row["c"] == 2.0  # a NaN reading does not erase the last value
    assert math.isnan(row["p_mean"])  # no finite reading of p


def test_gap_makes_the_next_cycle_time_unknown() -> None:
    sa = _counter()
    sa.push(0, {"n": 1.0})
    sa.push(1000, {"n": 2.0})
    sa.gap()
    ((_, row),) = sa.push(60_000, {"n": 3.0})
    assert math.isnan(row["cycle_time_s"])
    ((_, row),) = sa.push(61_000, {"n": 4.0})
    assert row["cycle_time_s"] == 1.0


def test_cycle_signal_rising_edges() -> None:
    sa = ShotAssembler(ShotsConfig(cycle_signal="end", stats=["p"]))
    out = []
    for t, level, p in [
        (0, 0.0, 1.0),
        (100, 1.0, 2.0),  # edge 1
        (200, 1.0, 3.0),  # still high
        (300, 0.0, 4.0),
        (500, 1.0, 5.0),  # edge 2
        (600, NAN, 6.0),  # no level: ignored, not a falling edge
        (700, 1.0, 7.0),
    ]:
        out += sa.push(t, {"end": level, "p": p})
    assert [(t, r["shot_count"]) for t, r in out] == [(100, 1.0), (500, 2.0)]
    assert math.isnan(out[0][1]["cycle_time_s"])
    assert out[1][1]["cycle_time_s"] == 0.4
    assert out[1][1]["p_mean"] == 4.0 and out[1][1]["p_max"] == 5.0  # 3, 4, 5


def test_cycle_signal_first_high_reading_is_a_baseline() -> None:
    sa = ShotAssembler(ShotsConfig(cycle_signal="end"))
    assert sa.push(0, {"end": 1.0}) == []
