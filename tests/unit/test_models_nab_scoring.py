"""NAB scoring rules (models/nab_scoring.py) against values derived from NAB's sweeper.py."""

from __future__ import annotations

import math

import numpy as np
import pytest

from renkei.models.nab_scoring import PROFILES, nab_score, probationary_length, scaled_sigmoid

WINDOWS = [(100, 149), (300, 349)]  # width 50 each
N = 1000


def _det(*rows: int) -> np.ndarray:
    d = np.zeros(N, dtype=bool)
    d[list(rows)] = True
    return d


def test_scaled_sigmoid_matches_nab_doc_values() -> None:
    assert scaled_sigmoid(-1.0) == pytest.approx(0.98661, abs=1e-5)
    assert scaled_sigmoid(-0.5) == pytest.approx(0.84828, abs=1e-5)
    assert scaled_sigmoid(0.0) == 0.0
    assert scaled_sigmoid(1.0) == pytest.approx(-0.98661, abs=1e-5)
    assert scaled_sigmoid(3.0) == -1.0


def test_probationary_length() -> None:
    assert probationary_length(22_695) == 750  # capped at 0.15 * 5000
    assert probationary_length(1000) == 150


def test_null_and_perfect_detectors() -> None:
    null = nab_score(np.zeros(N, bool), WINDOWS, probation=0)
    assert null.raw == -2.0 and null.normalized == 0.0 and null.windows_detected == 0
    perfect = nab_score(_det(100, 300), WINDOWS, probation=0)
    assert perfect.raw == pytest.approx(2.0) and perfect.normalized == pytest.approx(100.0)


def test_true_positive_position_and_first_detection_counts() -> None:
    # detection in the middle of window 1: position -(149 - 125 + 1) / 50 = -0.5
    r = nab_score(_det(125, 140), WINDOWS, probation=0)
    expected = scaled_sigmoid(-0.5) / scaled_sigmoid(-1.0) - 1.0  # window 2 missed
    assert r.raw == pytest.approx(expected)
    assert r.windows_detected == 1 and r.false_positives == 0


def test_false_positives() -> None:
    costs = PROFILES["standard"]
    before = nab_score(_det(50), WINDOWS, probation=0)
    assert before.raw == pytest.approx(-2.0 - costs.fp)  # before any window: -fpWeight
    after = nab_score(_det(174), WINDOWS, probation=0)  # 25 rows after window 1's end
    pos = 25 / 49  # NAB divides by width - 1
    assert after.raw == pytest.approx(-2.0 + costs.fp * (2 / (1 + math.exp(5 * pos)) - 1))
    assert after.false_positives == 1


def test_probation_rows_are_not_scored() -> None:
    r = nab_score(_det(10, 120), WINDOWS, probation=121)  # both inside the probation
    assert r.false_positives == 0 and r.windows_detected == 0
    # default probation 150 rows: window 1 (rows 100-149) lies inside it and is not scored
    low_fn = nab_score(np.zeros(N, bool), WINDOWS, costs=PROFILES["reward_low_FN_rate"])
    assert low_fn.windows == 1 and low_fn.null == -2.0


def test_bad_windows() -> None:
    with pytest.raises(ValueError, match="sorted"):
        nab_score(np.zeros(N, bool), [(300, 349), (100, 149)])
    with pytest.raises(ValueError, match="inside"):
        nab_score(np.zeros(N, bool), [(900, 1200)])
