"""The simulated cell's run state: scheduled stops and the ``machine_state`` signal.

A :class:`StopSpec` stops the machine from ``start_s`` for ``duration_s`` (simulated s):
the cycle in progress at ``start_s`` finishes, no cycle starts before the stop ends, and
the next cycle starts right at its end. ``machine_state`` (a slow channel, when enabled) is
:data:`MACHINE_STATE_CODES` ``running`` (1) while a cycle is in progress and the stop's
state (``idle`` 2, ``down`` 3) in the gaps, so a gateway maps it with ``oee.run_state``
``{signal: machine_state, running: [1], idle: [2], down: [3]}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from renkei.edge.sources.base import SourceError

__all__ = ["MACHINE_STATE_CODES", "MACHINE_STATE_FIELD", "StopSpec", "machine_state", "resume_at"]

StopState = Literal["idle", "down"]
MACHINE_STATE_FIELD: Final = "machine_state"
MACHINE_STATE_CODES: Final[dict[str, int]] = {"running": 1, "idle": 2, "down": 3}


@dataclass(frozen=True, slots=True, kw_only=True)
class StopSpec:
    """A scheduled stop: ``state`` from ``start_s`` for ``duration_s`` (simulated s, > 0).

    Raises:
        SourceError: on an unknown state or out-of-range numbers.
    """

    state: StopState
    start_s: float
    duration_s: float

    def __post_init__(self) -> None:
        if self.state not in ("idle", "down"):
            raise SourceError(f"stop state {self.state!r} is not 'idle' or 'down'")
        if self.start_s < 0 or self.duration_s <= 0:
            raise SourceError(
                f"stop: start_s must be >= 0 and duration_s > 0, got {self.start_s!r}, "
                f"{self.duration_s!r}"
            )


def resume_at(t_s: float, stops: Sequence[StopSpec]) -> float:
    """When a cycle due at ``t_s`` starts: the end of the stop(s) covering ``t_s``, else it."""
    for _ in range(len(stops) + 1):  # chained stops: at most one pass per stop
        inside = [
            s.start_s + s.duration_s for s in stops if s.start_s <= t_s < s.start_s + s.duration_s
        ]
        if not inside:
            return t_s
        t_s = max(inside)
    return t_s


def machine_state(
    t_s: npt.NDArray[np.float64],
    cycle_spans: Sequence[tuple[float, float]],
    stops: Sequence[StopSpec],
) -> npt.NDArray[np.float64]:
    """``machine_state`` at times ``t_s`` (s): running inside a cycle ``(start_s, end_s)``,
    else the state of the (last-starting) stop covering the time, else idle."""
    out = np.full(t_s.shape, float(MACHINE_STATE_CODES["idle"]))
    for s in sorted(stops, key=lambda s: s.start_s):
        inside = (t_s >= s.start_s) & (t_s < s.start_s + s.duration_s)
        out[inside] = MACHINE_STATE_CODES[s.state]
    for start, end in cycle_spans:
        out[(t_s >= start) & (t_s < end)] = MACHINE_STATE_CODES["running"]
    return out
