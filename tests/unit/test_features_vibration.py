"""Vibration features on signals with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from renkei.edge.features import (
    EnvelopeConfig,
    VibrationConfig,
    vibration_feature_names,
    vibration_features,
)
from tests.datasets import require_data_dir

FS = 10_000.0


def _sine(amp: float, freq: float, n: int = 10_000) -> np.ndarray:
    return np.asarray(amp * np.sin(2 * np.pi * freq * np.arange(n) / FS), dtype=np.float64)


def test_names_are_deterministic() -> None:
    assert vibration_feature_names(FS) == [
        "vib_rms_g",
        "vib_peak_g",
        "vib_crest",
        "vib_kurtosis",
        "vib_velocity_rms_mm_s",
        "vib_band_0_500Hz_g2",
        "vib_band_500_2000Hz_g2",
        "vib_band_2000_5000Hz_g2",
        "vib_env_5_500Hz_g2",
    ]
    cfg = VibrationConfig(prefix="fan", bands_hz=((12.5, 100.0),), envelope=None)
    assert vibration_feature_names(12_000.0, cfg)[-1] == "fan_band_12p5_100Hz_g2"
    assert list(vibration_features(np.zeros(64), 12_000.0, cfg)) == vibration_feature_names(
        12_000.0, cfg
    )


def test_sine_rms_crest_kurtosis_band_and_velocity() -> None:
    f = vibration_features(_sine(2.0, 100.0), FS)
    assert f["vib_rms_g"] == pytest.approx(2.0 / np.sqrt(2), rel=1e-6)
    assert f["vib_peak_g"] == pytest.approx(2.0, rel=1e-6)
    assert f["vib_crest"] == pytest.approx(np.sqrt(2), rel=1e-6)
    assert f["vib_kurtosis"] == pytest.approx(-1.5, abs=1e-3)  # Fisher
    # all power (A^2/2 = 2 g^2) lies in the 0-500 Hz band
    assert f["vib_band_0_500Hz_g2"] == pytest.approx(2.0, rel=0.01)
    assert f["vib_band_2000_5000Hz_g2"] < 1e-6
    # velocity amplitude = a / (2 pi f): 2 g at 100 Hz -> 31.2 mm/s peak, 22.07 mm/s RMS
    expected_v = 2.0 * 9.80665 * 1000 / (2 * np.pi * 100.0) / np.sqrt(2)
    assert f["vib_velocity_rms_mm_s"] == pytest.approx(expected_v, rel=0.02)


def test_gaussian_kurtosis_near_zero() -> None:
    x = np.random.default_rng(1).standard_normal(100_000)
    f = vibration_features(x, FS, VibrationConfig(envelope=None))
    assert f["vib_kurtosis"] == pytest.approx(0.0, abs=0.05)
    assert f["vib_rms_g"] == pytest.approx(1.0, rel=0.01)
    total = sum(f[n] for n in vibration_feature_names(FS)[5:8])
    assert total == pytest.approx(1.0, rel=0.02)  # Welch bands add up to the variance


def test_envelope_detects_impacts() -> None:
    rng = np.random.default_rng(2)
    n = 10_000
    impulses = np.zeros(n)
    impulses[::113] = 1.0  # ~88 Hz impacts
    ring = np.exp(-np.arange(60) / 8.0) * np.sin(2 * np.pi * 3000 * np.arange(60) / FS)
    faulty = np.convolve(impulses, ring)[:n] + 0.05 * rng.standard_normal(n)
    healthy = 0.05 * rng.standard_normal(n)
    env = EnvelopeConfig(demod_band_hz=(2000.0, None), band_hz=(50.0, 400.0))
    cfg = VibrationConfig(envelope=env)
    assert (
        vibration_features(faulty, FS, cfg)["vib_env_50_400Hz_g2"]
        > 20 * vibration_features(healthy, FS, cfg)["vib_env_50_400Hz_g2"]
    )


def test_nan_handling() -> None:
    x = _sine(1.0, 50.0, 1000)
    x[10] = np.nan
    f = vibration_features(x, FS)
    assert f["vib_peak_g"] == pytest.approx(1.0, rel=1e-3)
    assert np.isnan(f["vib_band_0_500Hz_g2"])  # spectra need a gap-free window
    assert all(np.isnan(v) for v in vibration_features(np.full(100, np.nan), FS).values())
    assert all(np.isnan(v) for v in vibration_features(np.array([]), FS).values())
    zero = vibration_features(np.zeros(100), FS)
    assert zero["vib_rms_g"] == 0.0
    assert np.isnan(zero["vib_crest"])
    assert np.isnan(zero["vib_kurtosis"])


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="1-D"):
        vibration_features(np.zeros((2, 2)), FS)
    with pytest.raises(ValueError, match="band"):
        vibration_feature_names(FS, VibrationConfig(bands_hz=((100.0, 6000.0),)))


@settings(max_examples=25, deadline=None)
@given(scale=st.floats(0.01, 100.0), seed=st.integers(0, 2**16))
def test_scaling_property(scale: float, seed: int) -> None:
    """RMS/peak scale linearly, band powers quadratically; crest/kurtosis are invariant."""
    x = np.random.default_rng(seed).standard_normal(2048)
    cfg = VibrationConfig(envelope=None)
    a, b = vibration_features(x, FS, cfg), vibration_features(scale * x, FS, cfg)
    assert b["vib_rms_g"] == pytest.approx(scale * a["vib_rms_g"], rel=1e-9)
    assert b["vib_peak_g"] == pytest.approx(scale * a["vib_peak_g"], rel=1e-9)
    assert b["vib_crest"] == pytest.approx(a["vib_crest"], rel=1e-9)
    assert b["vib_kurtosis"] == pytest.approx(a["vib_kurtosis"], rel=1e-6, abs=1e-9)
    assert b["vib_band_0_500Hz_g2"] == pytest.approx(scale**2 * a["vib_band_0_500Hz_g2"], rel=1e-9)


def test_cwru_outer_race_fault_vs_normal() -> None:
    """Real data sanity check (CWRU 12 kHz drive end; normal decimated from 48 kHz)."""
    from scipy.io import loadmat
    from scipy.signal import decimate

    root = require_data_dir() / "bearing" / "cwru"
    normal = decimate(loadmat(root / "normal_0_97.mat")["X097_DE_time"].ravel(), 4)
    outer = loadmat(root / "12k_Drive_End_OR007@6_0_130.mat")["X130_DE_time"].ravel()
    fs = 12_000.0
    cfg = VibrationConfig(envelope=EnvelopeConfig(demod_band_hz=(2000.0, 5000.0)))
    for k in range(3):
        sl = slice(k * 12_000, (k + 1) * 12_000)
        n, o = vibration_features(normal[sl], fs, cfg), vibration_features(outer[sl], fs, cfg)
        assert o["vib_kurtosis"] > n["vib_kurtosis"] + 2.0
        assert o["vib_env_5_500Hz_g2"] > 10 * n["vib_env_5_500Hz_g2"]
