"""Rolling-element bearing fault orders in the squared-envelope spectrum of one window.

Envelope analysis after Randall & Antoni (2011), "Rolling element bearing diagnostics - a
tutorial", MSSP 25:485-520, and Smith & Randall (2015), "Rolling element bearing
diagnostics using the Case Western Reserve University data: a benchmark study", MSSP
64-65:100-131: band-pass the acceleration around the resonances the impacts excite
(``demod_band_hz``, done in the frequency domain), take the squared magnitude of the
analytic signal (the squared envelope), and look at its spectrum (SES) at the bearing's
characteristic frequencies = order × shaft frequency:

- ``{p}_bpfo_db``: ball-pass frequency, outer race (outer-race defect);
- ``{p}_bpfi_db``: ball-pass frequency, inner race (inner-race defect);
- ``{p}_bsf2_db``: twice the ball-spin frequency (a ball defect hits both races per spin).

Each feature = ``10 log10(mean over harmonics h = 1..H of the SES peak within ±tol of
h·order·f_shaft / median SES level in [lo_hz, hi_hz])``, dB above the envelope-spectrum
noise floor (dimensionless ratio). ``tol`` = max(one SES bin, 2 % of the harmonic's
frequency) absorbs slip and speed error. NaN for windows with NaN samples, fewer than 64
samples, or a zero envelope spectrum.

Default orders: SKF 6205-2RS JEM, the drive-end bearing of the CWRU rig (CWRU spec sheet:
BPFO 3.5848, BPFI 5.4152, BSF 2.3570 × shaft speed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = [
    "FAULT_KINDS",
    "BearingOrders",
    "EnvelopeOrderConfig",
    "diagnose",
    "envelope_order_feature_names",
    "envelope_order_features",
    "squared_envelope_spectrum",
]

FloatArray = npt.NDArray[np.float64]
#: Feature suffixes and the fault each points at, in output order.
FAULT_KINDS: Final = {"bpfo": "outer_race", "bpfi": "inner_race", "bsf2": "ball"}


@dataclass(frozen=True, slots=True)
class BearingOrders:
    """Characteristic frequencies of a bearing as multiples of the shaft frequency."""

    bpfo: float = 3.5848
    bpfi: float = 5.4152
    bsf: float = 2.3570


@dataclass(frozen=True, slots=True)
class EnvelopeOrderConfig:
    """Settings of :func:`envelope_order_features`.

    Attributes:
        prefix: feature-name prefix.
        orders: bearing characteristic orders.
        demod_band_hz: band kept before demodulation, Hz (upper edge ≤ fs/2).
        harmonics: H, harmonics averaged per order.
        floor_band_hz: SES band whose median is the noise floor, Hz.
    """

    prefix: str = "env"
    orders: BearingOrders = BearingOrders()
    demod_band_hz: tuple[float, float] = (2000.0, 4500.0)
    harmonics: int = 3
    floor_band_hz: tuple[float, float] = (5.0, 600.0)


def envelope_order_feature_names(config: EnvelopeOrderConfig = EnvelopeOrderConfig()) -> list[str]:
    """Names of :func:`envelope_order_features`, in order."""
    return [f"{config.prefix}_{k}_db" for k in FAULT_KINDS]


def squared_envelope_spectrum(
    x: FloatArray, fs_hz: float, demod_band_hz: tuple[float, float]
) -> tuple[FloatArray, FloatArray]:
    """One-sided power spectrum of the squared envelope of ``x`` band-limited to the band.

    Args:
        x: (n,) acceleration, g.
        fs_hz: sampling rate, Hz.
        demod_band_hz: (lo, hi) Hz kept before demodulation.

    Returns:
        ``(f, ses)``: frequencies (n//2 + 1,) Hz and |FFT(squared envelope - mean)|² / n²
        (g⁴, relative units).

    Raises:
        ValueError: a band edge outside [0, fs/2] or lo ≥ hi.
    """
    lo, hi = demod_band_hz
    if not 0 <= lo < hi <= fs_hz / 2:
        raise ValueError(f"demod band {demod_band_hz} must satisfy 0 <= lo < hi <= fs/2")
    n = x.size
    spec = np.fft.fft(x - x.mean())
    f = np.fft.fftfreq(n, 1.0 / fs_hz)
    keep = (f >= lo) & (f <= hi)  # positive frequencies only → analytic signal
    env: FloatArray = np.abs(np.fft.ifft(np.where(keep, 2.0 * spec, 0.0))).astype(np.float64)
    env2 = env * env
    env2 = env2 - env2.mean()
    ses = np.abs(np.fft.rfft(env2)) ** 2 / float(n * n)
    freqs = np.asarray(np.fft.rfftfreq(n, 1.0 / fs_hz), dtype=np.float64)
    return freqs, np.asarray(ses, dtype=np.float64)


def envelope_order_features(
    x: FloatArray,
    fs_hz: float,
    shaft_hz: float,
    config: EnvelopeOrderConfig = EnvelopeOrderConfig(),
) -> dict[str, float]:
    """Fault-order levels of one acceleration window (see the module docstring).

    Args:
        x: (n,) acceleration, g.
        fs_hz: sampling rate, Hz.
        shaft_hz: shaft rotation frequency, Hz (rpm / 60).
        config: orders, bands, harmonics.

    Returns:
        ``{name: dB}`` in the order of :func:`envelope_order_feature_names`.

    Raises:
        ValueError: ``x`` not 1-D, non-positive rates, or an invalid band.
    """
    if x.ndim != 1:
        raise ValueError(f"expected a 1-D waveform, got shape {x.shape}")
    if not (fs_hz > 0 and shaft_hz > 0):
        raise ValueError("fs_hz and shaft_hz must be > 0")
    names = envelope_order_feature_names(config)
    out = dict.fromkeys(names, float("nan"))
    if x.size < 64 or not np.all(np.isfinite(x)):
        return out
    f, ses = squared_envelope_spectrum(x, fs_hz, config.demod_band_hz)
    lo, hi = config.floor_band_hz
    floor = float(np.median(ses[(f >= lo) & (f <= hi)])) if np.any((f >= lo) & (f <= hi)) else 0.0
    if not floor > 0:
        return out
    df = float(f[1] - f[0])
    orders = config.orders
    for name, order in zip(names, (orders.bpfo, orders.bpfi, 2.0 * orders.bsf), strict=True):
        peaks = []
        for h in range(1, config.harmonics + 1):
            target = h * order * shaft_hz
            sel = np.abs(f - target) <= max(df, 0.02 * target)
            if target < f[-1] and np.any(sel):
                peaks.append(float(ses[sel].max()))
        if peaks:
            out[name] = float(10.0 * np.log10(np.mean(peaks) / floor))
    return out


def diagnose(
    features: dict[str, float], config: EnvelopeOrderConfig = EnvelopeOrderConfig()
) -> str:
    """The fault kind whose order stands out most (``"outer_race"``, ``"inner_race"``,
    ``"ball"``), or ``"unknown"`` if every level is NaN. Meant for windows an anomaly model
    has already flagged; it does not decide normal vs fault."""
    levels = {
        kind: features.get(f"{config.prefix}_{key}_db", float("nan"))
        for key, kind in FAULT_KINDS.items()
    }
    finite = {k: v for k, v in levels.items() if np.isfinite(v)}
    return max(finite, key=lambda k: finite[k]) if finite else "unknown"
