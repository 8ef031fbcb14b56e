"""Welch PSD and kurtosis in numpy, for the gateway's hot path.

They reproduce ``scipy.signal.welch(x, fs, window="hann", nperseg, noverlap=nperseg//2,
detrend="constant", scaling="density")`` and ``scipy.stats.kurtosis(x, fisher=True,
bias=True)`` to floating-point precision (checked against SciPy in
``tests/unit/test_features_spectral.py``). Importing ``scipy.signal`` costs a gateway about
80 MB of resident memory, more than half its budget, for these two functions.

Sources: P. D. Welch (1967), "The use of fast Fourier transform for the estimation of power
spectra", IEEE Trans. Audio Electroacoust. 15(2):70-73; kurtosis as the fourth standardized
moment minus 3 (Fisher's definition, biased estimator), as in SciPy.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["hann_periodic", "kurtosis_fisher", "welch_psd"]

FloatArray = npt.NDArray[np.float64]


def hann_periodic(n: int) -> FloatArray:
    """Periodic (DFT-even) Hann window of ``n`` samples, as ``scipy.signal.get_window``."""
    if n == 1:
        return np.ones(1)
    k = np.arange(n)
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * k / n)


def welch_psd(x: FloatArray, fs_hz: float, nperseg: int) -> tuple[FloatArray, FloatArray]:
    """One-sided Welch power spectral density.

    Args:
        x: (n,) signal, n >= 1; ``nperseg`` is clipped to n.
        fs_hz: sampling rate, Hz.
        nperseg: segment length (Hann window, 50 % overlap, mean removed per segment).

    Returns:
        ``(f, psd)``: frequencies (nperseg//2 + 1,) in Hz and the PSD in units²/Hz.
    """
    n = x.size
    nperseg = min(nperseg, n)
    step = nperseg - nperseg // 2
    nseg = (n - nperseg) // step + 1
    idx = np.arange(nperseg)[None, :] + step * np.arange(nseg)[:, None]
    seg = x[idx]
    seg = seg - seg.mean(axis=1, keepdims=True)
    win = hann_periodic(nperseg)
    spec = np.fft.rfft(seg * win, axis=1)
    psd = (spec.real**2 + spec.imag**2).mean(axis=0) / (fs_hz * float(np.dot(win, win)))
    if nperseg % 2:
        psd[1:] *= 2.0
    else:
        psd[1:-1] *= 2.0
    freqs: FloatArray = np.fft.rfftfreq(nperseg, 1.0 / fs_hz).astype(np.float64)
    return freqs, np.asarray(psd, dtype=np.float64)


def kurtosis_fisher(x: FloatArray) -> float:
    """Excess kurtosis m4 / m2² − 3 (biased); NaN for a constant or empty signal."""
    if x.size == 0:
        return float("nan")
    d = x - x.mean()
    d2 = d * d
    m2 = float(d2.mean())
    if m2 == 0.0:
        return float("nan")
    return float((d2 * d2).mean() / (m2 * m2) - 3.0)
