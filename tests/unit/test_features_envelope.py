"""Bearing fault orders in the squared-envelope spectrum: synthetic faults and CWRU."""

from __future__ import annotations

import numpy as np
import pytest

from renkei.edge.features.envelope import (
    BearingOrders,
    diagnose,
    envelope_order_feature_names,
    envelope_order_features,
)

FS = 12_000.0
SHAFT = 29.95


def _impacts(order: float, n: int = 12_000, seed: int = 0) -> np.ndarray:
    """Decaying 3.2 kHz bursts repeating at order × shaft frequency, plus noise (g)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / FS
    x = rng.normal(0.0, 0.05, n)
    period = 1.0 / (order * SHAFT)
    for t0 in np.arange(0.0, t[-1], period):
        k = t >= t0
        x[k] += 0.5 * np.exp(-(t[k] - t0) * 800.0) * np.sin(2 * np.pi * 3200.0 * (t[k] - t0))
    return x


@pytest.mark.parametrize(
    ("order", "kind"),
    [
        (BearingOrders().bpfo, "outer_race"),
        (BearingOrders().bpfi, "inner_race"),
        (2 * BearingOrders().bsf, "ball"),
    ],
)
def test_synthetic_fault_is_diagnosed(order: float, kind: str) -> None:
    feats = envelope_order_features(_impacts(order), FS, SHAFT)
    assert list(feats) == envelope_order_feature_names()
    assert diagnose(feats) == kind
    assert max(feats.values()) > 10.0  # dB above the envelope-spectrum floor


def test_noise_has_no_strong_order_and_bad_windows_are_nan() -> None:
    noise = np.random.default_rng(1).normal(0.0, 0.05, 12_000)
    assert max(envelope_order_features(noise, FS, SHAFT).values()) < 10.0
    short = envelope_order_features(noise[:32], FS, SHAFT)
    assert all(np.isnan(v) for v in short.values()) and diagnose(short) == "unknown"
    gap = noise.copy()
    gap[5] = np.nan
    assert all(np.isnan(v) for v in envelope_order_features(gap, FS, SHAFT).values())
    with pytest.raises(ValueError, match="shaft_hz"):
        envelope_order_features(noise, FS, 0.0)
