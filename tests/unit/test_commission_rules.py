"""The commissioning rules on synthetic data: the alarms-per-day threshold
(:mod:`renkei.models.commission.threshold`), the checks' decision and the fit's channel
selection (:mod:`renkei.models.commission.decision`, :mod:`renkei.models.commission.fit`)."""

from __future__ import annotations

import numpy as np
import pytest

from renkei.models.commission.decision import (
    CommissionRefused,
    choose_auto_period,
    decide,
    shift_finding,
)
from renkei.models.commission.fit import fit_commission
from renkei.models.commission.query import FeatureTable, parse_utc
from renkei.models.commission.threshold import alarm_threshold, onsets
from renkei.models.mahalanobis import reference_scores

T0 = 1_600_000_000_000  # 2020-09-13T12:26:40Z


def _chi2_scores(rng: np.random.Generator, n: int, dof: int = 4) -> np.ndarray:
    return rng.chisquare(dof, size=n) / dof


def test_onsets_count_rising_edges() -> None:
    s = np.array([2.0, 2.0, 0.0, 3.0, 0.0, 0.0, 5.0, 5.0, 5.0])
    assert onsets(s, 1.0) == 3
    assert onsets(s, 10.0) == 0
    assert onsets(np.array([]), 1.0) == 0


def test_threshold_keeps_alarms_per_day_near_target_on_fresh_normal_data() -> None:
    """Held-back 2,000 rows at 10 s (5.6 h); the rate is then measured on 200 days."""
    rng = np.random.default_rng(7)
    spacing_s, target = 10.0, 1.0
    choice = alarm_threshold(_chi2_scores(rng, 2_000), spacing_s=spacing_s, target_per_day=target)
    days = 200
    fresh = _chi2_scores(rng, int(days * 86_400 / spacing_s))
    per_day = onsets(fresh, choice.threshold) / days
    # at or below the target, on the safe side (the mean excess over the 80 % quantile of a
    # chi-square overstates its far tail's scale: 0.25/day measured here), but it still
    # fires on normal data now and then: not the "never fires" of an over-safe rule
    assert target / 10 <= per_day <= 1.5 * target, (per_day, choice)
    assert choice.expected_per_day == pytest.approx(target)
    assert choice.holdout_days == pytest.approx(2_000 * spacing_s / 86_400)


def test_rate_conversion_uses_the_rows_real_spacing() -> None:
    """The same scores at 1 s rows allow 10× fewer alarming rows than at 10 s rows."""
    scores = _chi2_scores(np.random.default_rng(1), 1_000)
    fast = alarm_threshold(scores, spacing_s=1.0, target_per_day=1.0)
    slow = alarm_threshold(scores, spacing_s=10.0, target_per_day=1.0)
    assert fast.p_row == pytest.approx(slow.p_row / 10)
    assert fast.threshold > slow.threshold
    assert fast.threshold - slow.threshold == pytest.approx(slow.beta * np.log(10))
    looser = alarm_threshold(scores, spacing_s=1.0, target_per_day=24.0)
    assert looser.threshold < fast.threshold


def test_threshold_does_not_hinge_on_one_held_back_row() -> None:
    scores = _chi2_scores(np.random.default_rng(3), 400)
    base = alarm_threshold(scores, spacing_s=60.0, target_per_day=1.0)
    spiked = scores.copy()
    spiked[200] = 50 * scores.max()
    moved = alarm_threshold(spiked, spacing_s=60.0, target_per_day=1.0)
    assert moved.threshold < 2 * base.threshold
    assert moved.holdout_onsets == 1  # reported, not absorbed


def test_threshold_refuses_too_few_rows_and_bad_targets() -> None:
    scores = _chi2_scores(np.random.default_rng(0), 49)
    with pytest.raises(ValueError, match="49 rows, at least 50"):
        alarm_threshold(scores, spacing_s=1.0, target_per_day=1.0)
    scores = _chi2_scores(np.random.default_rng(0), 100)
    with pytest.raises(ValueError, match="at most 20%"):
        alarm_threshold(scores, spacing_s=3600.0, target_per_day=10.0)
    with pytest.raises(ValueError, match="> 0"):
        alarm_threshold(scores, spacing_s=0.0, target_per_day=1.0)


def _table(x: np.ndarray, names: tuple[str, ...], step_ms: int = 1_000) -> FeatureTable:
    t = T0 + step_ms * np.arange(len(x), dtype=np.int64)
    return FeatureTable(t, names, x)


def _normal(rng: np.random.Generator, n: int) -> np.ndarray:
    a = rng.normal(0.0, 1.0, n)
    b = 0.6 * a + rng.normal(0.0, 0.8, n)
    c = rng.normal(240.0, 5.0, n)  # volts next to unit-scale channels
    return np.column_stack([a, b, c])


def test_decision_refuses_contamination_with_channel_and_utc_range() -> None:
    x = _normal(np.random.default_rng(5), 600)
    x[300:340, 0] += 12.0
    with pytest.raises(CommissionRefused) as info:
        decide(_table(x, ("a", "b", "c")), min_holdout_rows=50, holdout_fraction=0.25)
    text = str(info.value)
    assert "contamination [a] 2020-09-13T12:31:" in text, text
    assert "Z .. 2020-09-13T12:" in text


def test_decision_refuses_a_holdout_below_the_minimum() -> None:
    x = _normal(np.random.default_rng(5), 150)
    with pytest.raises(CommissionRefused, match="hold back 38 .* at least 50 needed"):
        decide(_table(x, ("a", "b", "c")), min_holdout_rows=50, holdout_fraction=0.25)


def test_flat_and_sparse_channels_are_left_out_and_duplicates_dropped_by_the_fit() -> None:
    rng = np.random.default_rng(11)
    x = _normal(rng, 800)
    flat = np.full((800, 1), 3.0)
    sparse = np.where(rng.random((800, 1)) < 0.5, 1.0, np.nan)
    dup = x[:, :1] * 2.0 + 1.0  # a window's _max equal to its _mean, scaled
    names = ("a", "b", "c", "flat", "sparse", "a_dup")
    table = _table(np.hstack([x, flat, sparse, dup]), names)
    decision = decide(table, min_holdout_rows=50, holdout_fraction=0.25)
    assert decision.sparse == ("sparse",)
    assert decision.dropped == ("flat",)
    assert any(line.startswith("flat [flat]") for line in decision.confirm)
    fitted = fit_commission(
        decision.table,
        decision.channels,
        holdout_fraction=0.25,
        target_per_day=1.0,
        min_holdout_rows=50,
        mean_rows=5,
    )
    assert fitted.fields == ("a", "b", "c")
    assert fitted.channels == ("a_m5", "b_m5", "c_m5")
    assert fitted.duplicates == {"a_dup": "a"}
    assert fitted.fit_rows == 600 - 4 and fitted.holdout_rows == 200
    assert shift_finding(fitted.holdout_shift, fitted.holdout_t_ms) is None
    # the raw-unit graph equals the standardised fit (volts and unit-scale channels)
    assert np.isfinite(reference_scores(fitted.fit, np.zeros((1, 3)))).all()


def test_shift_finding_flags_a_state_change_in_the_held_back_part() -> None:
    rng = np.random.default_rng(2)
    x = _normal(rng, 800)
    x[:, 1] = 0.95 * x[:, 0] + rng.normal(0.0, 0.3, 800)
    x[600:, 1] = -0.95 * x[600:, 0] + rng.normal(0.0, 0.3, 200)  # correlation flips
    fitted = fit_commission(
        _table(x, ("a", "b", "c")),
        ("a", "b", "c"),
        holdout_fraction=0.25,
        target_per_day=1.0,
        min_holdout_rows=50,
    )
    line = shift_finding(fitted.holdout_shift, fitted.holdout_t_ms)
    assert line is not None and line.startswith("shift 2020-09-13T12:36:40.000Z"), line


def test_auto_picks_the_latest_clean_stretch() -> None:
    rng = np.random.default_rng(9)
    x = _normal(rng, 1_000)
    x[700:760, 2] += 80.0  # a stop near the end
    chosen = choose_auto_period(_table(x, ("a", "b", "c")), min_rows=300)
    last = int((chosen.t_ms[-1] - T0) // 1_000)
    assert len(chosen) >= 300 and last < 700, (len(chosen), last)
    with pytest.raises(CommissionRefused, match="no stretch"):
        choose_auto_period(_table(x, ("a", "b", "c")), min_rows=300, accept=lambda _t: False)


def test_times_parse_as_utc() -> None:
    assert parse_utc("2020-09-13T12:26:40Z", "--start") == T0
    assert parse_utc("2020-09-13T12:26:40", "--start") == T0
    assert parse_utc("2020-09-13T21:26:40+09:00", "--start") == T0
    with pytest.raises(ValueError, match="--end: 'yesterday'"):
        parse_utc("yesterday", "--end")
