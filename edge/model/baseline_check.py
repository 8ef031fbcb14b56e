"""Checks on a stretch of data before it is trusted as a machine's "normal".

Used twice with the same code and settings: by ``renkei models commission`` on the
telemetry range an engineer marks as normal (or one chosen automatically), and by the
gateway on an in-run baseline (the first ``baseline_rows`` rows a history model collects,
SKAB-style), which it reports as ``baseline_suspect`` instead of silently freezing it.

Input: ``x`` (n rows, c channels) float64, oldest first, NaN = missing; optional ``t_s``
(n,) row times, epoch seconds. Output: a :class:`BaselineReport` whose issues name the
check, the channels and the row range (first, last; inclusive) responsible. Issues have a
severity: ``"refuse"`` (the data cannot be a baseline: too short, contaminated) or
``"confirm"`` (usable if the engineer confirms: gaps, flat or drifting channels; flat
channels are dropped from a model's inputs by the caller).

Checks (settings in :class:`BaselineCheckConfig`; the rule is fixed in code, never tuned on
evaluation labels):

- ``short``: fewer than ``min_rows`` rows with every channel finite;
- ``gap``: a row spacing over ``gap_factor`` × the median spacing (needs ``t_s``), or a
  run of rows with a NaN channel;
- ``flat``: a channel with (near) zero spread (it carries no information);
- ``drift``: a channel whose least-squares trend over the period moves its level by more
  than ``drift_sigma`` robust standard deviations (warm-up, slow leak);
- ``contamination``: a stretch of at least ``min_run`` rows where a channel's level,
  smoothed over ``smooth_rows``, sits more than ``contamination_sigma`` robust standard
  deviations from the period's median (a fault or stop inside the "normal" period).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "BaselineCheckConfig",
    "BaselineIssue",
    "BaselineReport",
    "IssueKind",
    "check_baseline",
]

IssueKind = Literal["short", "gap", "flat", "drift", "contamination"]
_REFUSE: Final[frozenset[str]] = frozenset({"short", "contamination"})


@dataclass(frozen=True, slots=True)
class BaselineCheckConfig:
    """Settings of :func:`check_baseline` (defaults are the shipped rule).

    Attributes:
        min_rows: fewest complete rows a baseline may have.
        gap_factor: a spacing over this × the median spacing is a gap.
        flat_rel: a channel whose robust sd is ≤ ``flat_rel`` × max(|median|, 1) is flat.
        drift_sigma: trend over the period, in robust sd, above which a channel drifts.
        contamination_sigma: smoothed level offset, in robust sd, that marks contamination.
        smooth_rows: rows of the trailing mean used by the contamination check.
        min_run: rows the offset must last to count as contamination.
    """

    min_rows: int = 100
    gap_factor: float = 5.0
    flat_rel: float = 1e-9
    drift_sigma: float = 3.0
    contamination_sigma: float = 4.0
    smooth_rows: int = 10
    min_run: int = 10


@dataclass(frozen=True, slots=True)
class BaselineIssue:
    """One finding.

    Attributes:
        kind: which check.
        channels: channel names responsible (empty for ``short``/time gaps).
        first_row: first row of the range responsible (0-based, inclusive).
        last_row: last row of the range responsible (inclusive).
        detail: a sentence with the measured value and the limit.
    """

    kind: IssueKind
    channels: tuple[str, ...]
    first_row: int
    last_row: int
    detail: str

    @property
    def severity(self) -> Literal["refuse", "confirm"]:
        """``"refuse"`` for ``short`` and ``contamination``, else ``"confirm"``."""
        return "refuse" if self.kind in _REFUSE else "confirm"

    def describe(self, t_s: NDArray[np.float64] | None = None) -> str:
        """One line: kind, channels, range (ISO UTC times when ``t_s`` is given), detail."""
        if t_s is not None and len(t_s) > self.last_row:
            start = np.datetime64(int(t_s[self.first_row] * 1000), "ms")
            end = np.datetime64(int(t_s[self.last_row] * 1000), "ms")
            where = f"{start}Z .. {end}Z"
        else:
            where = f"rows {self.first_row}..{self.last_row}"
        chans = f" [{', '.join(self.channels)}]" if self.channels else ""
        return f"{self.kind}{chans} {where}: {self.detail}"


@dataclass(frozen=True, slots=True)
class BaselineReport:
    """All findings on one period.

    Attributes:
        rows: rows checked.
        channels: channel names, in column order.
        issues: findings, in check order.
    """

    rows: int
    channels: tuple[str, ...]
    issues: tuple[BaselineIssue, ...]

    @property
    def ok(self) -> bool:
        """No issue at all."""
        return not self.issues

    @property
    def refused(self) -> bool:
        """Some issue has severity ``"refuse"``."""
        return any(i.severity == "refuse" for i in self.issues)

    @property
    def flat_channels(self) -> tuple[str, ...]:
        """Channels found flat (to drop from a model's inputs)."""
        return tuple(c for i in self.issues if i.kind == "flat" for c in i.channels)


def _robust_sd(x: NDArray[np.float64]) -> NDArray[np.float64]:
    med = np.nanmedian(x, axis=0)
    mad = np.nanmedian(np.abs(x - med), axis=0) * 1.4826
    sd = np.nanstd(x, axis=0)
    return np.where(mad > 0, mad, sd)


def _runs(mask: NDArray[np.bool_]) -> list[tuple[int, int]]:
    """(first, last) inclusive index ranges where ``mask`` is true."""
    if not mask.any():
        return []
    padded = np.concatenate(([False], mask, [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def check_baseline(
    x: NDArray[np.float64],
    channels: Sequence[str],
    *,
    t_s: NDArray[np.float64] | None = None,
    config: BaselineCheckConfig | None = None,
) -> BaselineReport:
    """Check a candidate baseline period (see the module docstring).

    Args:
        x: (n, c) values, oldest first; NaN = missing.
        channels: c channel names.
        t_s: optional (n,) row times, epoch seconds, increasing.
        config: settings; default :class:`BaselineCheckConfig`.

    Returns:
        The :class:`BaselineReport`.

    Raises:
        ValueError: ``x`` not 2-D, or ``channels``/``t_s`` lengths not matching it.
    """
    cfg = config or BaselineCheckConfig()
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"x: expected (rows, channels), got shape {x.shape}")
    n, c = x.shape
    if len(channels) != c:
        raise ValueError(f"channels: {len(channels)} names for {c} columns")
    if t_s is not None and len(t_s) != n:
        raise ValueError(f"t_s: {len(t_s)} times for {n} rows")
    names = tuple(channels)
    issues: list[BaselineIssue] = []
    complete = np.isfinite(x).all(axis=1)
    if int(complete.sum()) < cfg.min_rows:
        issues.append(
            BaselineIssue(
                "short",
                (),
                0,
                max(n - 1, 0),
                f"{int(complete.sum())} complete rows, at least {cfg.min_rows} needed",
            )
        )
        return BaselineReport(n, names, tuple(issues))
    if t_s is not None and n > 2:
        dt = np.diff(np.asarray(t_s, dtype=np.float64))
        step = float(np.median(dt))
        for i in np.flatnonzero(dt > cfg.gap_factor * step):
            issues.append(
                BaselineIssue(
                    "gap",
                    (),
                    int(i),
                    int(i) + 1,
                    f"{dt[i]:.1f} s between rows, median spacing {step:.3g} s",
                )
            )
    for j in range(c):
        for a, b in _runs(~np.isfinite(x[:, j])):
            issues.append(BaselineIssue("gap", (names[j],), a, b, f"{b - a + 1} rows missing"))
    good = x[complete]
    sd = _robust_sd(good)
    med = np.nanmedian(good, axis=0)
    flat = sd <= cfg.flat_rel * np.maximum(np.abs(med), 1.0)
    for j in np.flatnonzero(flat).tolist():
        issues.append(
            BaselineIssue("flat", (names[j],), 0, n - 1, f"spread {sd[j]:.3g}, channel constant")
        )
    idx = np.arange(len(good), dtype=np.float64)
    for j in np.flatnonzero(~flat).tolist():
        slope = np.polyfit(idx, good[:, j], 1)[0]
        moved = abs(slope) * (len(good) - 1) / sd[j]
        if moved > cfg.drift_sigma:
            issues.append(
                BaselineIssue(
                    "drift",
                    (names[j],),
                    0,
                    n - 1,
                    f"trend moves the level by {moved:.1f} robust sd, limit {cfg.drift_sigma}",
                )
            )
    k = max(1, cfg.smooth_rows)
    kernel = np.ones(k) / k
    for j in np.flatnonzero(~flat).tolist():
        z = (x[:, j] - med[j]) / sd[j]
        z = np.where(np.isfinite(z), z, 0.0)
        smooth = np.convolve(z, kernel, mode="full")[:n]
        for a, b in _runs(np.abs(smooth) > cfg.contamination_sigma):
            if b - a + 1 >= cfg.min_run:
                peak = float(np.max(np.abs(smooth[a : b + 1])))
                issues.append(
                    BaselineIssue(
                        "contamination",
                        (names[j],),
                        a,
                        b,
                        f"level {peak:.1f} robust sd from the period's median for "
                        f"{b - a + 1} rows, limit {cfg.contamination_sigma} sd for "
                        f"{cfg.min_run} rows",
                    )
                )
    return BaselineReport(n, names, tuple(issues))
