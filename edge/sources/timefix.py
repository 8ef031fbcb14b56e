"""Repair the timestamps of recorded files so a replay is strictly increasing in time.

Real files have quirks (documented per preset in :mod:`renkei.edge.sources.presets`):

- rows whose time was not recorded (Kassel CPC: ``00:00:00`` when the curve file is
  missing) -> :func:`impute_unknown_times`;
- clock steps backwards (NAB machine_temperature: one -55 min step, i.e. a repeated hour)
  or unsorted rows -> :func:`make_increasing`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt

from renkei.edge.sources.base import SourceError

__all__ = ["TimeRepair", "impute_unknown_times", "make_increasing", "median_step_ms"]

TimeRepair = Literal["error", "sort", "shift"]
IntArray = npt.NDArray[np.int64]


def median_step_ms(t_ms: IntArray) -> int:
    """Median of the positive steps of ``t_ms`` (ms); 1000 if there is no positive step."""
    steps = np.diff(t_ms)
    steps = steps[steps > 0]
    return int(np.median(steps)) if steps.size else 1000


def impute_unknown_times(t_ms: IntArray, unknown: npt.NDArray[np.bool_], *, path: Path) -> IntArray:
    """Fill unknown timestamps by interpolating in row order.

    Rows between two known rows get linearly interpolated times (the file order is the
    recording order); leading/trailing unknown rows are extrapolated with the median step of
    the known rows.

    Args:
        t_ms: (n,) int64 epoch ms; values at ``unknown`` rows are ignored.
        unknown: (n,) bool mask of rows without a valid time.
        path: file name for error messages.

    Raises:
        SourceError: if no row has a known time.
    """
    if not unknown.any():
        return t_ms
    known = np.flatnonzero(~unknown)
    if known.size == 0:
        raise SourceError(f"{path}: no row has a known timestamp, cannot impute")
    step = median_step_ms(t_ms[known])
    idx = np.arange(t_ms.size)
    filled = np.interp(idx, known, t_ms[known].astype(np.float64))
    first, last = known[0], known[-1]
    filled[:first] = t_ms[first] - (first - idx[:first]) * step
    filled[last + 1 :] = t_ms[last] + (idx[last + 1 :] - last) * step
    return np.round(filled).astype(np.int64)


def make_increasing(
    t_ms: IntArray, *, policy: TimeRepair, path: Path, line_numbers: Sequence[int]
) -> tuple[IntArray, npt.NDArray[np.intp]]:
    """Return strictly increasing timestamps and the row order to use.

    Policies:
        ``"error"``: the rows must already be strictly increasing.
        ``"sort"``: stable sort by time; equal timestamps remain an error.
        ``"shift"``: keep file order; treat every non-increasing step as a clock reset and
            shift that row and all later rows so the step equals the median step.

    Returns:
        ``(t_fixed, order)``: ``t_fixed[k]`` is the time of original row ``order[k]``.

    Raises:
        SourceError: naming the two line numbers of the first non-increasing pair.
    """
    order = np.arange(t_ms.size, dtype=np.intp)
    if policy == "sort":
        order = np.argsort(t_ms, kind="stable")
        t_ms = t_ms[order]
    elif policy == "shift":
        d = np.diff(t_ms)
        fix = np.where(d <= 0, median_step_ms(t_ms) - d, 0)
        t_ms = t_ms.copy()
        t_ms[1:] += np.cumsum(fix)
    elif policy != "error":
        raise SourceError(f"unknown time repair policy {policy!r}")
    bad = np.flatnonzero(np.diff(t_ms) <= 0)
    if bad.size:
        a, b = order[bad[0]], order[bad[0] + 1]
        raise SourceError(
            f"{path}: timestamps not strictly increasing (policy {policy!r}): line "
            f"{line_numbers[a]} at {t_ms[bad[0]]} ms is followed by line {line_numbers[b]} "
            f"at {t_ms[bad[0] + 1]} ms"
        )
    return t_ms, order
