"""Alarm threshold from a target false-alarm rate per day, on held-back normal scores.

The rule (fixed in code; never sees a label): the gateway raises an alarm *onset* when a
row's score goes above the threshold after a row that was not
(:mod:`renkei.edge.model.scoring`). Onsets cannot outnumber rows above the threshold, so
keeping the probability that a normal row scores above the threshold at

    p_row = target_per_day * spacing_s / 86 400

keeps the expected onsets at or below ``target_per_day`` (``spacing_s`` = the rows' real
median spacing, e.g. 1 s windows -> 86 400 rows a day). At 1/day that probability is far
beyond what a few hundred held-back rows can resolve empirically, and their maximum would
make the threshold hinge on one row. So the tail of the held-back scores is modelled:
peaks over a threshold ``u`` (the held-back scores' :data:`TAIL_QUANTILE` quantile) are
fitted with an exponential distribution (the generalised Pareto with shape 0; Pickands
1975, Balkema & de Haan 1974; Coles 2001, *An Introduction to Statistical Modeling of
Extreme Values*, ch. 4; the same peaks-over-threshold idea as SPOT, Siffer et al. KDD 2017)
whose scale ``beta`` is estimated robustly from the median excess (``median / ln 2`` for an
exponential), so one extreme held-back row does not move it:

    P(score > t) = (1 - TAIL_QUANTILE) * exp(-(t - u) / beta),   t >= u
    threshold    = u + beta * ln((1 - TAIL_QUANTILE) / p_row)

A squared Mahalanobis distance of Gaussian data is chi-square distributed, whose tail is
close to exponential, so the extrapolation is of the right kind for the models fitted here.
The held-back rows' own onsets at that threshold are reported next to the target
(:attr:`ThresholdChoice.holdout_onsets_per_day`): more than the target there means the
tail fit is too light for this machine (use a longer period).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray

__all__ = ["MIN_HOLDOUT_ROWS", "TAIL_QUANTILE", "ThresholdChoice", "alarm_threshold", "onsets"]

TAIL_QUANTILE: Final = 0.8
MIN_HOLDOUT_ROWS: Final = 50
"""Fewest held-back rows: the tail fit then rests on at least 10 excesses."""
SECONDS_PER_DAY: Final = 86_400.0


@dataclass(frozen=True, slots=True)
class ThresholdChoice:
    """A threshold and how it was obtained.

    Attributes:
        threshold: alarm when ``score > threshold``.
        p_row: allowed probability of a normal row above the threshold.
        u: start of the fitted tail (score units).
        beta: scale of the exponential tail over ``u`` (median excess / ln 2; score units).
        holdout_rows: held-back rows scored.
        holdout_days: their duration, days (rows × spacing).
        holdout_onsets: onsets the held-back rows give at ``threshold``.
        target_per_day: the target onsets per day.
        spacing_s: row spacing used for the conversion, s.
    """

    threshold: float
    p_row: float
    u: float
    beta: float
    holdout_rows: int
    holdout_days: float
    holdout_onsets: int
    target_per_day: float
    spacing_s: float

    @property
    def holdout_onsets_per_day(self) -> float:
        """Onsets per day on the held-back rows at the threshold."""
        return self.holdout_onsets / self.holdout_days

    @property
    def expected_per_day(self) -> float:
        """Onsets per day the fitted tail predicts at the threshold (≤ the target)."""
        return self.p_row * SECONDS_PER_DAY / self.spacing_s

    def rule(self) -> str:
        """One sentence for the manifest's ``threshold_rule``."""
        return (
            f"≤ {self.target_per_day:g} expected alarm onsets/day on held-back normal rows "
            f"({self.spacing_s:g} s apart: P(score > threshold) ≤ {self.p_row:.3g} per row), "
            f"exponential tail fitted to the held-back scores above their "
            f"{TAIL_QUANTILE:.0%} quantile (u={self.u:.4g}, scale {self.beta:.4g}); "
            f"{self.holdout_onsets} onsets on the {self.holdout_rows} held-back rows"
        )


def onsets(scores: NDArray[np.floating], threshold: float) -> int:
    """Alarm onsets of a score sequence (time order): rows above ``threshold`` whose
    previous row was not (the first row counts when above)."""
    above = np.asarray(scores, dtype=np.float64) > threshold
    if above.size == 0:
        return 0
    return int(above[0]) + int(np.count_nonzero(above[1:] & ~above[:-1]))


def alarm_threshold(
    holdout_scores: NDArray[np.floating],
    *,
    spacing_s: float,
    target_per_day: float,
    min_rows: int = MIN_HOLDOUT_ROWS,
) -> ThresholdChoice:
    """The threshold of the module docstring's rule.

    Args:
        holdout_scores: (H,) scores of the held-back normal rows, time order.
        spacing_s: the rows' median spacing, s (> 0).
        target_per_day: allowed alarm onsets per day on normal data (> 0).
        min_rows: fewest held-back rows accepted.

    Raises:
        ValueError: fewer than ``min_rows`` scores, non-finite scores, ``spacing_s`` or
            ``target_per_day`` not positive, or a target so high that more than the tail
            share of rows may alarm.
    """
    h = np.asarray(holdout_scores, dtype=np.float64).reshape(-1)
    if h.size < min_rows:
        raise ValueError(f"held-back part has {h.size} rows, at least {min_rows} needed")
    if not np.all(np.isfinite(h)):
        raise ValueError("held-back scores contain NaN/inf")
    if not (spacing_s > 0 and math.isfinite(spacing_s)):
        raise ValueError(f"spacing_s must be > 0, got {spacing_s}")
    if not (target_per_day > 0 and math.isfinite(target_per_day)):
        raise ValueError(f"target alarms per day must be > 0, got {target_per_day}")
    p_row = target_per_day * spacing_s / SECONDS_PER_DAY
    tail = 1.0 - TAIL_QUANTILE
    if p_row >= tail:
        raise ValueError(
            f"a target of {target_per_day:g} alarms/day at {spacing_s:g} s rows allows "
            f"{p_row:.2%} of the rows to alarm; at most {tail:.0%} is supported"
        )
    u = float(np.quantile(h, TAIL_QUANTILE))
    excess = h[h > u] - u
    spread = float(np.quantile(h, 0.75) - np.quantile(h, 0.25))
    beta = float(np.median(excess)) / math.log(2.0) if excess.size else 0.0
    # a degenerate tail (ties at u) still gets a positive scale
    beta = max(beta, 1e-6 * max(abs(u), spread, 1e-12))
    threshold = u + beta * math.log(tail / p_row)
    days = h.size * spacing_s / SECONDS_PER_DAY
    return ThresholdChoice(
        threshold=float(threshold),
        p_row=p_row,
        u=u,
        beta=beta,
        holdout_rows=int(h.size),
        holdout_days=days,
        holdout_onsets=onsets(h, threshold),
        target_per_day=target_per_day,
        spacing_s=spacing_s,
    )
