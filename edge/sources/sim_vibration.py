"""Hydraulic-pump vibration model of the simulated cell (acceleration in g_n).

Healthy pump: shaft harmonics 1x/2x/3x (0.08/0.03/0.015 g), a 9x piston/vane-pass line
(0.05 g) and white broadband noise (0.03 g RMS).

``bearing_wear`` at severity ``s`` adds the classic outer-race defect signature (Randall &
Antoni 2011, MSSP 25:485-520, section 2): impacts repeating at the ball-pass frequency of
the outer race ``BPFO = bpfo_order x shaft speed`` (default 3.58x, about the SKF 6205 value
used by the CWRU data), with 1 % random period jitter (rolling-element slip) and 30 %
amplitude scatter, each exciting a structural resonance (default 3 kHz, damping ratio 5 %).
Peak impact response ~ ``2.5 * s`` g; the broadband noise also grows by ``50 % * s`` and the
1x line by ``30 % * s``. This raises kurtosis and crest factor and the energy of the band
around the resonance, which is what envelope analysis looks for.

The resonator is a two-pole IIR filter whose state is carried from block to block, so
impacts near a block boundary ring on into the next block.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from renkei.edge.sources.faults import FaultSchedule

__all__ = ["VibrationModel"]

FloatArray = npt.NDArray[np.float64]

_HARMONICS = ((1.0, 0.08), (2.0, 0.03), (3.0, 0.015), (9.0, 0.05))
_NOISE_G = 0.03
_IMPACT_G = 2.5
_DAMPING = 0.05


class VibrationModel:
    """Generates consecutive blocks of the pump acceleration waveform.

    Args:
        fs_hz: sampling rate, Hz.
        shaft_hz: pump shaft speed, Hz.
        bpfo_order: outer-race defect frequency as a multiple of the shaft speed.
        resonance_hz: resonance excited by the bearing impacts, Hz (< 0.45 fs).
        faults: the fault schedule.
        rng: random generator of this stream.
    """

    def __init__(
        self,
        *,
        fs_hz: float,
        shaft_hz: float,
        bpfo_order: float,
        resonance_hz: float,
        faults: FaultSchedule,
        rng: np.random.Generator,
    ) -> None:
        self._fs = fs_hz
        self._f0 = shaft_hz
        self._bpfo = bpfo_order * shaft_hz
        self._faults = faults
        self._rng = rng
        self._phases = rng.uniform(0.0, 2 * np.pi, len(_HARMONICS))
        wn = 2 * np.pi * resonance_hz
        r = np.exp(-_DAMPING * wn / fs_hz)
        theta = wn * np.sqrt(1 - _DAMPING**2) / fs_hz
        # h[n] = r^n sin((n+1) theta): unit impulse -> peak ~1
        self._b = np.array([np.sin(theta)])
        self._a = np.array([1.0, -2.0 * r * np.cos(theta), r * r])
        self._zi = np.zeros(2)
        self._next_impact_s = rng.uniform(0.0, 1.0 / self._bpfo)

    def block(self, n0: int, n: int) -> FloatArray:
        """Samples ``n0 .. n0+n-1`` (global sample index) of the waveform, shape (n,), g.

        Blocks must be requested consecutively (the resonator and impact timing carry state).
        """
        fs, rng = self._fs, self._rng
        t_s = (n0 + np.arange(n)) / fs
        t0, t1 = n0 / fs, (n0 + n) / fs
        # severity over the block's own samples (t1 is exclusive: the next block's start)
        wear = self._faults.severity("bearing_wear", t_s[[0, -1]])
        x = _NOISE_G * (1.0 + 0.5 * wear.max()) * rng.standard_normal(n)
        for (order, amp), phase in zip(_HARMONICS, self._phases, strict=True):
            if order == 1.0:
                amp *= 1.0 + 0.3 * wear.max()
            x += amp * np.sin(2 * np.pi * order * self._f0 * t_s + phase)
        impacts = self._impacts(t0, t1, n0, n)
        if impacts is not None or np.any(self._zi != 0.0):
            drive = np.zeros(n) if impacts is None else impacts
            # Imported here: only bearing impacts need it, and scipy.signal costs a gateway
            # ~80 MB of memory (see renkei.edge.features.spectral).
            from scipy.signal import lfilter

            y, self._zi = lfilter(self._b, self._a, drive, zi=self._zi)
            if not np.any(np.abs(self._zi) > 1e-12):
                self._zi = np.zeros(2)
            x += y
        return np.asarray(x, dtype=np.float64)

    def _impacts(self, t0: float, t1: float, n0: int, n: int) -> FloatArray | None:
        """Impulse train of the outer-race impacts in [t0, t1), or None if there are none."""
        period = 1.0 / self._bpfo
        m = int((t1 - self._next_impact_s) / period * 1.05) + 2
        if m <= 0:
            return None
        steps = period * (1.0 + 0.01 * self._rng.standard_normal(m))
        times = self._next_impact_s + np.concatenate(([0.0], np.cumsum(steps[:-1])))
        while times[-1] < t1:  # rare: jitter made the train too short
            times = np.append(times, times[-1] + period)
        inside = times < t1
        self._next_impact_s = float(times[~inside][0])
        times = times[inside & (times >= t0)]
        if times.size == 0 or not self._faults.has("bearing_wear"):
            return None
        amp = _IMPACT_G * self._faults.severity("bearing_wear", times)
        if not np.any(amp > 0):
            return None
        amp *= 1.0 + 0.3 * self._rng.standard_normal(times.size)
        idx = np.minimum(np.round(times * self._fs).astype(np.int64) - n0, n - 1)
        drive = np.zeros(n)
        np.add.at(drive, idx, amp)
        return drive
