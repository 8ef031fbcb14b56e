"""Row-history features: batch (training) and streaming (gateway) give the same rows."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from renkei.edge.features.history import (
    HistoryConfig,
    HistoryFeatures,
    history_feature_names,
    history_features,
)

FULL = HistoryConfig(
    mean_rows=(1, 5),
    ewma_alphas=(0.1,),
    slope_rows=(2, 7),
    baseline_rows=12,
    zmean_rows=(4,),
    dev_alphas=(0.3,),
    count=True,
)


def test_names_and_widths() -> None:
    names = history_feature_names(["a", "b"], FULL)
    assert names[:4] == ["a_m1", "b_m1", "a_m5", "b_m5"]
    assert "a_e0p1" in names and "b_s7" in names and "a_zm4" in names and "b_d0p3" in names
    assert names[-1] == "rows_seen"
    x = np.random.default_rng(0).normal(size=(40, 2))
    assert history_features(x, FULL).shape == (40, len(names))
    assert HistoryFeatures(2, FULL).n_features == len(names)


def test_values_by_hand() -> None:
    x = np.arange(1.0, 21.0)[:, None]  # 1..20
    cfg = HistoryConfig(mean_rows=(3,), slope_rows=(4,), baseline_rows=10, zmean_rows=(1,))
    f = history_features(x, cfg)
    assert f[0, 0] == 1.0 and f[1, 0] == 1.5 and f[5, 0] == 5.0  # trailing mean
    assert f[0, 1] == 0.0 and np.allclose(f[1:, 1], 1.0)  # slope of a ramp, per row
    mu, sd = 5.5, np.std(np.arange(1.0, 11.0))
    np.testing.assert_allclose(f[:, 2], (x[:, 0] - mu) / sd)  # frozen baseline of rows 0-9


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(12, 90),
    chunk=st.integers(1, 17),
)
def test_streaming_equals_batch(seed: int, n: int, chunk: int) -> None:
    x = np.random.default_rng(seed).normal(50.0, 3.0, size=(n, 3))
    batch = history_features(x, FULL)
    stream = HistoryFeatures(3, FULL)
    rows = [stream.push(x[i : i + chunk]) for i in range(0, n, chunk)]
    got = np.vstack(rows)
    np.testing.assert_allclose(got, batch, rtol=1e-9, atol=1e-9)


def test_streaming_holds_rows_until_the_baseline_is_frozen() -> None:
    cfg = HistoryConfig(baseline_rows=5, zmean_rows=(2,))
    stream = HistoryFeatures(1, cfg)
    assert stream.push(np.ones((4, 1))).shape == (0, 1) and not stream.ready
    out = stream.push(np.array([[1.0], [2.0]]))  # completes the baseline, then one more
    assert stream.ready and out.shape == (6, 1)
    assert stream.push(np.array([3.0])).shape == (1, 1)


def test_no_baseline_streams_immediately_and_nan_propagates() -> None:
    cfg = HistoryConfig(mean_rows=(3,))
    stream = HistoryFeatures(1, cfg)
    assert stream.push([[1.0]]).shape == (1, 1)
    x = np.array([[1.0], [np.nan], [3.0], [4.0], [5.0], [6.0]])
    f = history_features(x, cfg)
    assert np.isnan(f[1:4, 0]).all() and f[4, 0] == 4.0


def test_bad_configs_and_inputs() -> None:
    with pytest.raises(ValueError, match="baseline"):
        HistoryConfig(zmean_rows=(3,))
    with pytest.raises(ValueError, match="slope_rows"):
        HistoryConfig(slope_rows=(1,))
    with pytest.raises(ValueError, match="alphas"):
        HistoryConfig(ewma_alphas=(1.5,))
    with pytest.raises(ValueError, match="baseline needs"):
        history_features(np.ones((3, 1)), HistoryConfig(baseline_rows=5))
    with pytest.raises(ValueError, match="values"):
        HistoryFeatures(2, FULL).push(np.ones((1, 3)))
