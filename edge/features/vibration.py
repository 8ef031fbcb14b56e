"""Condition-monitoring features of one vibration (acceleration) window.

Feature names (``{p}`` = prefix, default ``vib``; band edges formatted by :func:`hz_label`):

- ``{p}_rms_g``: RMS of the raw window (no mean removal), g. Overall vibration severity;
  ISO 10816-1 / ISO 20816-1 judge machines by broadband RMS (of velocity; see below).
- ``{p}_peak_g``: max |x|, g.
- ``{p}_crest``: peak / RMS (sine: sqrt 2).
- ``{p}_kurtosis``: *Fisher* (excess) kurtosis, ``scipy.stats.kurtosis(fisher=True,
  bias=True)``: Gaussian 0, sine -1.5; impulsive bearing faults give >> 0.
- ``{p}_velocity_rms_mm_s``: RMS velocity in 10-1000 Hz (the ISO 10816-1 band), mm/s,
  from the Welch acceleration PSD divided by (2 pi f)^2.
- ``{p}_band_{lo}_{hi}Hz_g2``: acceleration power in [lo, hi) Hz, g^2 (integral of the Welch
  PSD, ``scipy.signal.welch``, Hann window, ``nperseg`` samples, 50 % overlap,
  mean removed per segment). Default bands 0-500, 500-2000, 2000-fs/2 Hz.
- ``{p}_env_{lo}_{hi}Hz_g2`` (optional): envelope-spectrum power in [lo, hi) Hz, g^2.
  Envelope analysis after Randall & Antoni (2011), "Rolling element bearing diagnostics -
  a tutorial", MSSP 25:485-520: band-pass the signal around a resonance
  (``demod_band_hz``), take the magnitude of the analytic signal (Hilbert transform, done in
  the frequency domain), remove its mean and integrate its power spectrum over ``band_hz``
  (which should contain the bearing defect frequencies and a few harmonics).

Undefined values are NaN: all features when the window is empty or all-NaN; crest of an
all-zero window; kurtosis of a constant window; spectral features if any sample is NaN
(time-domain features then use the finite samples) or the window has < 8 samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from renkei.edge.features.spectral import kurtosis_fisher, welch_psd

__all__ = [
    "DEFAULT_BANDS_HZ",
    "EnvelopeConfig",
    "VibrationConfig",
    "hz_label",
    "vibration_feature_names",
    "vibration_features",
]

FloatArray = npt.NDArray[np.float64]
G_N: Final = 9.80665  # standard gravity, m/s^2
#: Default bands; ``None`` as upper edge means fs/2.
DEFAULT_BANDS_HZ: Final[tuple[tuple[float, float | None], ...]] = (
    (0.0, 500.0),
    (500.0, 2000.0),
    (2000.0, None),
)
_ISO_BAND_HZ: Final = (10.0, 1000.0)


def hz_label(hz: float) -> str:
    """Frequency for a feature name: ``500.0`` -> ``"500"``, ``12.5`` -> ``"12p5"``."""
    return f"{hz:g}".replace(".", "p").replace("-", "m")


@dataclass(frozen=True, slots=True)
class EnvelopeConfig:
    """Envelope analysis settings.

    Attributes:
        demod_band_hz: band-pass before demodulation, Hz (upper ``None`` = fs/2).
        band_hz: envelope-spectrum band whose power is reported, Hz.
    """

    demod_band_hz: tuple[float, float | None] = (2000.0, None)
    band_hz: tuple[float, float] = (5.0, 500.0)


@dataclass(frozen=True, slots=True)
class VibrationConfig:
    """What :func:`vibration_features` computes.

    Attributes:
        prefix: feature-name prefix.
        bands_hz: Welch bands ``(lo, hi)`` in Hz (``hi`` ``None`` = fs/2).
        welch_nperseg: Welch segment length (clipped to the window length).
        envelope: envelope settings, or ``None`` to skip envelope features.
    """

    prefix: str = "vib"
    bands_hz: Sequence[tuple[float, float | None]] = DEFAULT_BANDS_HZ
    welch_nperseg: int = 1024
    envelope: EnvelopeConfig | None = EnvelopeConfig()


def _edges(band: tuple[float, float | None], fs_hz: float) -> tuple[float, float]:
    lo, hi = band
    return lo, fs_hz / 2 if hi is None else hi


def vibration_feature_names(fs_hz: float, config: VibrationConfig = VibrationConfig()) -> list[str]:
    """The names :func:`vibration_features` returns for ``fs_hz``, in order.

    Raises:
        ValueError: if a band is empty or outside [0, fs/2].
    """
    p = config.prefix
    names = [f"{p}_rms_g", f"{p}_peak_g", f"{p}_crest", f"{p}_kurtosis", f"{p}_velocity_rms_mm_s"]
    for band in config.bands_hz:
        lo, hi = _edges(band, fs_hz)
        if not 0 <= lo < hi <= fs_hz / 2:
            raise ValueError(f"band {band} Hz must satisfy 0 <= lo < hi <= fs/2 = {fs_hz / 2}")
        names.append(f"{p}_band_{hz_label(lo)}_{hz_label(hi)}Hz_g2")
    if config.envelope is not None:
        lo, hi = config.envelope.band_hz
        names.append(f"{p}_env_{hz_label(lo)}_{hz_label(hi)}Hz_g2")
    return names


def _envelope_power(x: FloatArray, fs_hz: float, env: EnvelopeConfig) -> float:
    n = x.size
    spec = np.fft.fft(x - x.mean())
    f = np.fft.fftfreq(n, 1.0 / fs_hz)
    lo, hi = _edges(env.demod_band_hz, fs_hz)
    keep = (f >= lo) & (f <= hi)  # positive frequencies only -> analytic signal
    analytic = np.fft.ifft(np.where(keep, 2.0 * spec, 0.0))
    envelope = np.abs(analytic)
    envelope -= envelope.mean()
    e_spec = np.fft.rfft(envelope)
    e_f = np.fft.rfftfreq(n, 1.0 / fs_hz)
    # one-sided power per bin so that the sum over all bins = mean square of the envelope
    power = np.abs(e_spec) ** 2 / n**2
    power[1:] *= 2.0
    if n % 2 == 0:
        power[-1] /= 2.0
    lo_e, hi_e = env.band_hz
    return float(power[(e_f >= lo_e) & (e_f < hi_e)].sum())


def vibration_features(
    x: FloatArray, fs_hz: float, config: VibrationConfig = VibrationConfig()
) -> dict[str, float]:
    """Features of one acceleration window.

    Args:
        x: (n,) acceleration, g; NaN = missing sample.
        fs_hz: sampling rate, Hz.
        config: bands, envelope and prefix.

    Returns:
        ``{name: value}`` with the names of :func:`vibration_feature_names`, in that order.

    Raises:
        ValueError: if ``x`` is not 1-D, ``fs_hz`` <= 0, or a band is invalid.
    """
    if x.ndim != 1:
        raise ValueError(f"expected a 1-D waveform, got shape {x.shape}")
    if not fs_hz > 0:
        raise ValueError(f"fs_hz must be > 0, got {fs_hz!r}")
    names = vibration_feature_names(fs_hz, config)
    out = dict.fromkeys(names, float("nan"))
    finite = x[np.isfinite(x)]
    if finite.size == 0:
        return out
    p = config.prefix
    rms = float(np.sqrt(np.mean(finite * finite)))
    peak = float(np.max(np.abs(finite)))
    out[f"{p}_rms_g"] = rms
    out[f"{p}_peak_g"] = peak
    if rms > 0:
        out[f"{p}_crest"] = peak / rms
    if np.ptp(finite) > 0:
        out[f"{p}_kurtosis"] = kurtosis_fisher(finite)
    if finite.size != x.size or x.size < 8:
        return out
    f, psd = welch_psd(x, fs_hz, config.welch_nperseg)
    df = float(f[1] - f[0])
    iso = (f >= _ISO_BAND_HZ[0]) & (f <= _ISO_BAND_HZ[1])
    vel_psd = psd[iso] * (G_N * 1000.0 / (2 * np.pi * f[iso])) ** 2  # (mm/s)^2/Hz
    out[f"{p}_velocity_rms_mm_s"] = float(np.sqrt(vel_psd.sum() * df))
    band_names = names[5 : 5 + len(config.bands_hz)]
    for name, band in zip(band_names, config.bands_hz, strict=True):
        lo, hi = _edges(band, fs_hz)
        sel = (f >= lo) & (f < hi) if hi < fs_hz / 2 else (f >= lo)
        out[name] = float(psd[sel].sum() * df)
    if config.envelope is not None:
        out[names[-1]] = _envelope_power(x, fs_hz, config.envelope)
    return out
