"""Fault schedule of the injection-molding cell simulator: kinds, codes, severity, labels.

A fault starts at ``start_s`` (simulation seconds), its effective severity grows linearly
from 0 to ``severity`` over ``ramp_s`` seconds and then stays (no repair). The ground-truth
label of every sample at ``t >= start_s`` is the fault's code (also during the ramp, when
its effect may still be invisible); when several faults are active the label is the code of
the one that started last. Severities of faults of the same kind add up.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from renkei.edge.sources.base import SourceError

__all__ = ["FAULT_CODES", "FaultKind", "FaultSchedule", "FaultSpec"]

FaultKind = Literal["heater_band_failure", "bearing_wear", "cooling_blockage", "mold_wear"]

#: Stable ground-truth label codes of the simulator (0 = normal, not listed).
FAULT_CODES: Final[Mapping[str, int]] = MappingProxyType(
    {
        "heater_band_failure": 1,
        "bearing_wear": 2,
        "cooling_blockage": 3,
        "mold_wear": 4,
    }
)


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """One injected fault.

    Attributes:
        kind: one of :data:`FAULT_CODES`.
        start_s: onset, seconds after the simulation start (>= 0).
        ramp_s: time to reach full severity, s (>= 0; 0 = step).
        severity: full severity in (0, 1]; 1 = fully developed fault (see the effects in
            :mod:`renkei.edge.sources.sim_process` and :mod:`renkei.edge.sources.sim_vibration`).

    Raises:
        SourceError: on an unknown kind or out-of-range numbers.
    """

    kind: FaultKind
    start_s: float
    ramp_s: float = 0.0
    severity: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_CODES:
            raise SourceError(f"fault kind {self.kind!r} is not one of {sorted(FAULT_CODES)}")
        if not (np.isfinite(self.start_s) and self.start_s >= 0):
            raise SourceError(f"fault {self.kind}: start_s must be >= 0, got {self.start_s!r}")
        if not (np.isfinite(self.ramp_s) and self.ramp_s >= 0):
            raise SourceError(f"fault {self.kind}: ramp_s must be >= 0, got {self.ramp_s!r}")
        if not 0 < self.severity <= 1:
            raise SourceError(
                f"fault {self.kind}: severity must be in (0, 1], got {self.severity!r}"
            )


class FaultSchedule:
    """Vectorised severity and label look-ups for a list of :class:`FaultSpec`."""

    def __init__(self, faults: Sequence[FaultSpec]) -> None:
        ordered = sorted(faults, key=lambda f: f.start_s)
        self._starts = np.array([f.start_s for f in ordered], dtype=np.float64)
        self._codes = np.array([0] + [FAULT_CODES[f.kind] for f in ordered], dtype=np.int16)
        self._by_kind: dict[str, list[FaultSpec]] = {}
        for f in ordered:
            self._by_kind.setdefault(f.kind, []).append(f)

    def has(self, kind: FaultKind) -> bool:
        """Whether any fault of ``kind`` is scheduled."""
        return kind in self._by_kind

    def severity(self, kind: FaultKind, t_s: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Effective severity of ``kind`` at times ``t_s`` (s), same shape, >= 0."""
        out = np.zeros_like(t_s, dtype=np.float64)
        for f in self._by_kind.get(kind, ()):
            if f.ramp_s > 0:
                out += f.severity * np.clip((t_s - f.start_s) / f.ramp_s, 0.0, 1.0)
            else:
                out += f.severity * (t_s >= f.start_s)
        return out

    def severity_at(self, kind: FaultKind, t_s: float) -> float:
        """Scalar version of :meth:`severity`."""
        return float(self.severity(kind, np.array([t_s]))[0]) if self.has(kind) else 0.0

    def labels(self, t_s: npt.NDArray[np.float64]) -> npt.NDArray[np.int16]:
        """Label code at each time ``t_s`` (s): the latest-started active fault, else 0."""
        if self._starts.size == 0:
            return np.zeros(t_s.shape, dtype=np.int16)
        idx = np.searchsorted(self._starts, t_s, side="right")
        return self._codes[idx]
