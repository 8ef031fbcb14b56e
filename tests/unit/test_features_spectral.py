"""The numpy Welch PSD and kurtosis equal SciPy's to floating-point precision."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.signal import welch
from scipy.stats import kurtosis

from renkei.edge.features.spectral import kurtosis_fisher, welch_psd


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(min_value=8, max_value=5000),
    nperseg=st.integers(min_value=4, max_value=2048),
    seed=st.integers(0, 2**32 - 1),
)
def test_welch_matches_scipy(n: int, nperseg: int, seed: int) -> None:
    x = np.random.default_rng(seed).normal(size=n) + 0.3
    f_ref, p_ref = welch(
        x,
        fs=10_000.0,
        window="hann",
        nperseg=min(nperseg, n),
        detrend="constant",
        scaling="density",
    )
    f, p = welch_psd(x, 10_000.0, nperseg)
    np.testing.assert_allclose(f, f_ref, rtol=1e-12)
    np.testing.assert_allclose(p, p_ref, rtol=1e-9, atol=1e-18)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(min_value=1, max_value=3000), seed=st.integers(0, 2**32 - 1))
def test_kurtosis_matches_scipy(n: int, seed: int) -> None:
    x = np.random.default_rng(seed).standard_t(5, size=n)
    ref = float(kurtosis(x, fisher=True, bias=True))
    got = kurtosis_fisher(x)
    if np.isnan(ref):
        assert np.isnan(got)
    else:
        assert got == pytest.approx(ref, rel=1e-9, abs=1e-12)


def test_constant_signal_kurtosis_is_nan() -> None:
    assert np.isnan(kurtosis_fisher(np.ones(100)))
