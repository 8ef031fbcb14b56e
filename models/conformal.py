"""Cross-conformal thresholds and score-drift reference levels from normal calibration data.

Threshold (split/cross-conformal quantile; Vovk 2015 "Cross-conformal predictors", Ann.
Math. Artif. Intell. 74; Barber et al. 2021 "Predictive inference with the jackknife+",
Ann. Statist. 49): every normal calibration shot gets an OUT-OF-FOLD score (the model of the
other folds scores it), and the threshold is the ``k``-th smallest of the ``n`` out-of-fold
scores with ``k = ceil((n + 1)(1 - alpha))``. For exchangeable normal shots the chance that a
new normal shot scores above it is at most ``alpha`` (split conformal; cross-conformal adds
at most ~``alpha`` of slack, Barber et al.). ``alpha`` is the stated per-shot false-alarm
level.

Why it does not hinge on one shot: the threshold is an order statistic with ``n - k ≥
n * alpha - 1`` scores above it, and :func:`conformal_threshold` refuses (``CalibrationError``)
unless at least :data:`MIN_TAIL` calibration scores lie above it (``n ≥ MIN_TAIL / alpha``).
Removing one calibration score moves the threshold to at most its neighbouring order
statistic; changing one score to any value keeps it within ``[s_(k-1), s_(k+1)]``
(:func:`single_shot_bounds`). A maximum (``k = n``) has no upper neighbour: that is the rule
this module replaces.

Drift reference (:func:`drift_spec`): the share of the last ``window`` scored shots above the
calibration's ``quantile``-quantile is, on the commissioned regime, Binomial(``window``,
``1 - quantile``)/``window`` for independent shots; the watch fires at the level whose
binomial upper-tail probability is ``p_fire`` and clears below its 90 % quantile. The
gateway side is :mod:`renkei.edge.model.drift`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Final

import numpy as np
from numpy.typing import NDArray
from scipy.stats import binom

from renkei.core.errors import RenkeiError
from renkei.core.manifest import DriftSpec

__all__ = [
    "MIN_TAIL",
    "CalibrationError",
    "conformal_rank",
    "conformal_threshold",
    "contiguous_folds",
    "drift_spec",
    "min_calibration_size",
    "out_of_fold_scores",
    "require_calibration_size",
    "single_shot_bounds",
]

#: Calibration scores that must lie above the threshold (so that no single shot decides it).
MIN_TAIL: Final = 10


class CalibrationError(RenkeiError, ValueError):
    """Calibration data cannot support the requested threshold (too few normal shots,
    non-finite scores, a bad ``alpha`` or fold layout); the message names the numbers."""


def min_calibration_size(alpha: float) -> int:
    """Smallest calibration size ``n`` with at least :data:`MIN_TAIL` scores above the
    conformal threshold at false-alarm level ``alpha``: ``ceil(MIN_TAIL / alpha)``.

    Raises:
        CalibrationError: ``alpha`` not in (0, 0.5).
    """
    if not 0.0 < alpha < 0.5:
        raise CalibrationError(f"alpha must be in (0, 0.5), got {alpha}")
    return math.ceil(MIN_TAIL / alpha - 1e-9)


def require_calibration_size(n: int, alpha: float) -> None:
    """Refuse a calibration of ``n`` shots at level ``alpha`` (call before fitting).

    Raises:
        CalibrationError: ``n < min_calibration_size(alpha)``; the message says how many
            shots are needed and the smallest usable ``alpha``.
    """
    need = min_calibration_size(alpha)
    if n < need:
        raise CalibrationError(
            f"{n} normal calibration shots are too few for a false-alarm level of "
            f"{alpha:g}: need at least {need} (so that ≥ {MIN_TAIL} lie above the threshold); "
            f"collect more normal shots or use alpha ≥ {MIN_TAIL / max(n, 1):.3g}"
        )


def conformal_rank(n: int, alpha: float) -> int:
    """1-based rank ``k = ceil((n + 1)(1 - alpha))`` of the threshold among ``n`` scores."""
    return min(n, math.ceil((n + 1) * (1.0 - alpha) - 1e-9))


def conformal_threshold(scores: NDArray[np.floating], alpha: float) -> float:
    """The conformal threshold of out-of-fold normal ``scores`` (n,) at level ``alpha``.

    Raises:
        CalibrationError: a non-finite score, or ``n < min_calibration_size(alpha)`` (the
            message says how many shots are needed and the smallest usable ``alpha``).
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    if not np.all(np.isfinite(s)):
        raise CalibrationError(f"{int(np.sum(~np.isfinite(s)))} calibration scores are not finite")
    require_calibration_size(s.size, alpha)
    return float(np.sort(s)[conformal_rank(s.size, alpha) - 1])


def single_shot_bounds(scores: NDArray[np.floating], alpha: float) -> tuple[float, float]:
    """``(s_(k-1), s_(k+1))``: the range the threshold stays in when one calibration score is
    removed (``n - 1`` scores) or replaced by any value (``n`` scores), out-of-fold scores
    of the other shots held fixed.

    Raises:
        CalibrationError: as :func:`conformal_threshold`.
    """
    conformal_threshold(scores, alpha)  # validates
    s = np.sort(np.asarray(scores, dtype=np.float64).ravel())
    k = conformal_rank(s.size, alpha)
    return float(s[k - 2]), float(s[min(k, s.size - 1)])


def contiguous_folds(groups: NDArray[np.str_], n_folds: int) -> NDArray[np.int64]:
    """(n,) fold index of each row: every group's rows (in their given order, e.g. one
    production run) are cut into ``n_folds`` contiguous blocks, block ``j`` → fold ``j``.

    Contiguous blocks keep neighbouring, autocorrelated shots in the same fold, so the
    out-of-fold scores include the slow drift within a run.

    Raises:
        CalibrationError: ``n_folds < 2`` or a group with fewer rows than folds.
    """
    if n_folds < 2:
        raise CalibrationError(f"n_folds must be ≥ 2, got {n_folds}")
    fold = np.full(groups.size, -1, dtype=np.int64)
    for g in sorted(set(groups.tolist())):
        idx = np.flatnonzero(groups == g)
        if idx.size < n_folds:
            raise CalibrationError(f"group {g!r} has {idx.size} rows, fewer than {n_folds} folds")
        for j, block in enumerate(np.array_split(idx, n_folds)):
            fold[block] = j
    return fold


def out_of_fold_scores(
    x: NDArray[np.floating],
    fold: NDArray[np.int64],
    fit_score: Callable[[NDArray[np.float64], NDArray[np.float64]], NDArray[np.float64]],
) -> NDArray[np.float64]:
    """(n,) score of every row of ``x`` (n, F) by a model fitted without its fold.

    Args:
        x: normal calibration rows.
        fold: (n,) fold index per row (:func:`contiguous_folds`).
        fit_score: ``fit_score(x_fit, x_score) -> scores`` fits on ``x_fit`` and scores
            ``x_score``.

    Raises:
        CalibrationError: ``fold`` does not match ``x`` or has fewer than 2 folds.
    """
    arr = np.asarray(x, dtype=np.float64)
    if fold.shape != (arr.shape[0],) or np.unique(fold).size < 2:
        raise CalibrationError(f"fold {fold.shape} must be one index per row of x {arr.shape}")
    out = np.full(arr.shape[0], np.nan)
    for j in np.unique(fold).tolist():
        held = fold == j
        out[held] = fit_score(arr[~held], arr[held])
    return out


def drift_spec(
    calibration: NDArray[np.floating],
    *,
    quantile: float,
    window: int,
    p_fire: float,
) -> DriftSpec:
    """The drift watch's reference level and fire/clear shares (see the module docstring).

    Raises:
        CalibrationError: non-finite scores, ``quantile`` not in (0, 1), ``window < 10``,
            ``p_fire`` not in (0, 0.5).
    """
    s = np.asarray(calibration, dtype=np.float64).ravel()
    if s.size == 0 or not np.all(np.isfinite(s)):
        raise CalibrationError("drift reference needs finite calibration scores")
    if not 0.0 < quantile < 1.0 or window < 10 or not 0.0 < p_fire < 0.5:
        raise CalibrationError(
            f"drift_spec: quantile {quantile} must be in (0, 1), window {window} ≥ 10, "
            f"p_fire {p_fire} in (0, 0.5)"
        )
    p0 = 1.0 - quantile
    fire = (float(binom.isf(p_fire, window, p0)) + 1.0) / window
    clear = float(binom.ppf(0.9, window, p0)) / window
    return DriftSpec(
        reference_score=float(np.quantile(s, quantile)),
        reference_quantile=quantile,
        window=window,
        fire_share=min(fire, 1.0),
        clear_share=clear,
        rule=(
            f"share of the last {window} scored shots above the {quantile:.0%} quantile of "
            f"the calibration's out-of-fold scores; fires at ≥ {min(fire, 1.0):.2f} "
            f"(binomial tail {p_fire:g} for independent normal shots, expected "
            f"{p0:.2f}), clears at ≤ {clear:.2f} (binomial 90 %)"
        ),
    )
