"""Process-drift watch on a model's scores: has the process left the commissioned regime?

A per-row anomaly says "this shot is unusual"; a drift says "the recent shots, taken
together, no longer look like the calibration data" (another day's set-points, a new
material lot, a slow change), i.e. the model should be recommissioned. The statistic
(reference levels from the manifest's :class:`renkei.core.manifest.DriftSpec`, written by
:func:`renkei.models.conformal.drift_spec`):

    share = (scored rows among the last ``window`` with ``score > reference_score``) / window

On the commissioned regime ``share`` ≈ ``1 - reference_quantile``. The watch raises a
``drift_onset`` event (severity ``warning``) when ``share >= fire_share`` and a
``drift_cleared`` event (``info``) when it falls to ``share <= clear_share``. Until
``window`` rows have been scored ``share`` is ``None`` and nothing fires. Only finite scores
are pushed (the caller skips unscored rows).

The training recipe runs this same class over its scores (:func:`drift_trace`), so the
gateway's drift statistic equals the recipe's. Cost: O(1) per row (a ring buffer).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from renkei.core.manifest import DriftSpec

__all__ = ["DRIFT_CLEARED", "DRIFT_ONSET", "DriftChange", "DriftWatch", "drift_trace"]

DRIFT_ONSET = "drift_onset"
DRIFT_CLEARED = "drift_cleared"


@dataclass(frozen=True, slots=True)
class DriftChange:
    """A change of the drift state: ``code`` (``drift_onset``/``drift_cleared``),
    ``severity`` and a human-readable ``message``."""

    code: str
    severity: str
    message: str


class DriftWatch:
    """The streaming drift statistic of one model on one machine.

    Args:
        spec: reference level, window and fire/clear shares (from the model's manifest).
        model_name: named in the event messages.
    """

    __slots__ = ("_above", "_count", "drifting", "model_name", "onsets", "spec")

    def __init__(self, spec: DriftSpec, *, model_name: str = "model") -> None:
        self.spec = spec
        self.model_name = model_name
        self._above: deque[bool] = deque(maxlen=spec.window)
        self._count = 0
        self.drifting = False
        """Whether the watch is in the drift state."""
        self.onsets = 0
        """Drift onsets so far."""

    @property
    def share(self) -> float | None:
        """Share of the last ``window`` scored rows above the reference level (``None``
        until ``window`` rows were pushed)."""
        if len(self._above) < self.spec.window:
            return None
        return self._count / self.spec.window

    def push(self, score: float) -> DriftChange | None:
        """Add one scored row's ``score``; return the state change it causes, if any.

        Raises:
            ValueError: ``score`` is not finite (unscored rows must not be pushed).
        """
        if not math.isfinite(score):
            raise ValueError(f"drift watch: score {score!r} is not finite")
        above = score > self.spec.reference_score
        if len(self._above) == self.spec.window:
            self._count -= self._above[0]
        self._above.append(above)
        self._count += above
        share = self.share
        if share is None:
            return None
        spec = self.spec
        if not self.drifting and share >= spec.fire_share:
            self.drifting = True
            self.onsets += 1
            return DriftChange(
                DRIFT_ONSET,
                "warning",
                f"process moved away from the commissioned regime; recommission "
                f"{self.model_name}: {share:.0%} of the last {spec.window} shots score above "
                f"the calibration's {spec.reference_quantile:.0%} quantile "
                f"({spec.reference_score:.3g}; commissioned ≈ "
                f"{1 - spec.reference_quantile:.0%}, fires at {spec.fire_share:.0%})",
            )
        if self.drifting and share <= spec.clear_share:
            self.drifting = False
            return DriftChange(
                DRIFT_CLEARED,
                "info",
                f"{self.model_name}: scores back to the commissioned regime ({share:.0%} of "
                f"the last {spec.window} shots above {spec.reference_score:.3g})",
            )
        return None


def drift_trace(
    scores: NDArray[np.floating], spec: DriftSpec
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Run a fresh :class:`DriftWatch` over finite ``scores`` (n,) in order.

    Returns:
        ``(share, drifting)``, each (n,): the statistic after each row (NaN before the
        window is full) and the drift state after it.

    Raises:
        ValueError: a score is not finite.
    """
    watch = DriftWatch(spec)
    arr = np.asarray(scores, dtype=np.float64).ravel()
    share = np.full(arr.size, np.nan)
    state = np.zeros(arr.size, dtype=bool)
    for i, s in enumerate(arr.tolist()):
        watch.push(s)
        v = watch.share
        share[i] = np.nan if v is None else v
        state[i] = watch.drifting
    return share, state
