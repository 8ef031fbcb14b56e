"""Slow-signal window statistics."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from renkei.edge.features import slow_feature_names, slow_features


def test_names_and_ramp_slope() -> None:
    t = 1_700_000_000_000 + 100 * np.arange(50, dtype=np.int64)  # 10 Hz, 5 s
    ramp = 20.0 + 0.5 * (t - t[0]) / 1000.0
    f = slow_features(t, {"oil_temp_C": ramp, "clamp_force_kN": np.full(50, 800.0)})
    assert (
        list(f)
        == slow_feature_names(["oil_temp_C", "clamp_force_kN"])
        == [
            "oil_temp_C_mean",
            "oil_temp_C_min",
            "oil_temp_C_max",
            "oil_temp_C_slope_per_s",
            "clamp_force_kN_mean",
            "clamp_force_kN_min",
            "clamp_force_kN_max",
            "clamp_force_kN_slope_per_s",
        ]
    )
    assert f["oil_temp_C_slope_per_s"] == pytest.approx(0.5)
    assert f["oil_temp_C_min"] == 20.0
    assert f["oil_temp_C_max"] == pytest.approx(22.45)
    assert f["oil_temp_C_mean"] == pytest.approx(21.225)
    assert f["clamp_force_kN_slope_per_s"] == 0.0


def test_nan_handling() -> None:
    t = np.arange(5, dtype=np.int64) * 1000
    x = np.array([1.0, np.nan, 3.0, np.nan, 5.0])
    f = slow_features(t, {"a": x, "b": np.full(5, np.nan), "c": np.array([np.nan] * 4 + [2.0])})
    assert f["a_mean"] == 3.0
    assert f["a_slope_per_s"] == pytest.approx(1.0)
    assert all(np.isnan(f[f"b_{s}"]) for s in ("mean", "min", "max", "slope_per_s"))
    assert f["c_mean"] == 2.0
    assert f["c_min"] == 2.0
    assert np.isnan(f["c_slope_per_s"])


def test_empty_window_and_bad_shapes() -> None:
    f = slow_features(np.array([], dtype=np.int64), {"a": np.array([])})
    assert all(np.isnan(v) for v in f.values())
    with pytest.raises(ValueError, match=r"values must be \(k, n\)"):
        slow_features(np.arange(3, dtype=np.int64), {"a": np.zeros(4)})
    with pytest.raises(ValueError, match="64"):
        slow_feature_names(["x" * 60])


@settings(max_examples=40, deadline=None)
@given(
    a=st.floats(-1e3, 1e3),
    b=st.floats(-10.0, 10.0),
    n=st.integers(2, 200),
    gaps=st.lists(st.integers(0, 199), max_size=20),
)
def test_linear_signal_with_gaps(a: float, b: float, n: int, gaps: list[int]) -> None:
    t = 1_000 * np.cumsum(np.ones(n, dtype=np.int64))
    x = a + b * (t - t[0]) / 1000.0
    x[[g for g in gaps if g < n]] = np.nan
    f = slow_features(t, {"y": x})
    finite = x[np.isfinite(x)]
    if finite.size >= 2:
        assert f["y_slope_per_s"] == pytest.approx(b, abs=1e-6 * (1 + abs(a)))
    if finite.size:
        assert f["y_min"] <= f["y_mean"] + 1e-9
        assert f["y_mean"] <= f["y_max"] + 1e-9
        assert f["y_min"] == finite.min()
        assert f["y_max"] == finite.max()
