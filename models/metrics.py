"""Evaluation metrics for anomaly scores against labels (evaluation only, never for fitting).

Definitions follow the SKAB benchmark (Katser & Kozitsin 2020, ``core/metrics.py``):
FAR = false-alarm rate = FP / (FP + TN), MAR = missed-alarm rate = FN / (FN + TP),
F1 = 2·TP / (2·TP + FP + FN). ROC-AUC is the threshold-free rank statistic (Mann-Whitney U),
ties counted half. All functions accept optional per-row weights (e.g. the number of
original sample points a feature window covers), so that window scores can be scored per
point without materialising the points.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["binary_metrics", "event_metrics", "roc_auc"]


def _prepare(
    scores: NDArray[np.floating],
    labels: NDArray[np.integer] | NDArray[np.bool_],
    weights: NDArray[np.floating] | None,
) -> tuple[NDArray[np.float64], NDArray[np.bool_], NDArray[np.float64]]:
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels).ravel().astype(bool)
    w = np.ones_like(s) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    if not s.shape == y.shape == w.shape:
        raise ValueError(
            f"scores {s.shape}, labels {y.shape} and weights {w.shape} must have one entry per row"
        )
    if not np.all(np.isfinite(s)):
        raise ValueError("scores must be finite")
    if np.any(w < 0):
        raise ValueError("weights must be non-negative")
    return s, y, w


def binary_metrics(
    scores: NDArray[np.floating],
    labels: NDArray[np.integer] | NDArray[np.bool_],
    threshold: float,
    *,
    weights: NDArray[np.floating] | None = None,
) -> dict[str, float]:
    """Detection metrics of ``score > threshold`` against ``labels`` (1 = anomaly).

    Args:
        scores: (N,) anomaly scores.
        labels: (N,) ground truth, 1/True = anomalous.
        threshold: alarm when ``score > threshold``.
        weights: optional (N,) non-negative row weights.

    Returns:
        ``f1``, ``precision``, ``recall``, ``far`` (false-alarm rate), ``mar`` (missed-alarm
        rate) as fractions in [0, 1] (NaN where undefined), and ``n_pos``/``n_neg`` (weighted).

    Raises:
        ValueError: mismatched lengths, non-finite scores or negative weights.
    """
    s, y, w = _prepare(scores, labels, weights)
    alarm = s > threshold
    tp = float(w[alarm & y].sum())
    fp = float(w[alarm & ~y].sum())
    fn = float(w[~alarm & y].sum())
    tn = float(w[~alarm & ~y].sum())

    def ratio(num: float, den: float) -> float:
        return num / den if den > 0 else float("nan")

    return {
        "f1": ratio(2 * tp, 2 * tp + fp + fn),
        "precision": ratio(tp, tp + fp),
        "recall": ratio(tp, tp + fn),
        "far": ratio(fp, fp + tn),
        "mar": ratio(fn, fn + tp),
        "n_pos": tp + fn,
        "n_neg": fp + tn,
    }


def roc_auc(
    scores: NDArray[np.floating],
    labels: NDArray[np.integer] | NDArray[np.bool_],
    *,
    weights: NDArray[np.floating] | None = None,
) -> float:
    """Area under the ROC curve of ``scores`` for ``labels`` (1 = anomaly), in [0, 1].

    Weighted Mann-Whitney statistic; ties count 1/2. Returns NaN when one class is absent.

    Raises:
        ValueError: mismatched lengths, non-finite scores or negative weights.
    """
    s, y, w = _prepare(scores, labels, weights)
    w_pos, w_neg = float(w[y].sum()), float(w[~y].sum())
    if w_pos <= 0 or w_neg <= 0:
        return float("nan")
    # For each distinct score value: negatives strictly below + half of the negatives tied.
    uniq, inverse = np.unique(s, return_inverse=True)
    neg_per_value = np.bincount(inverse, weights=np.where(y, 0.0, w), minlength=uniq.size)
    neg_below = np.cumsum(neg_per_value) - neg_per_value
    credit = neg_below[inverse] + 0.5 * neg_per_value[inverse]
    return float(np.sum(w[y] * credit[y]) / (w_pos * w_neg))


def event_metrics(
    scores: NDArray[np.floating],
    labels: NDArray[np.integer] | NDArray[np.bool_],
    threshold: float,
) -> dict[str, float]:
    """Event view of time-ordered rows (one series): episodes and alarm onsets.

    An episode is a maximal run of rows labelled 1; an alarm onset is a row with
    ``score > threshold`` whose predecessor has none.

    Returns:
        ``episodes``, ``episodes_detected`` (episodes containing ≥ 1 alarm row) and
        ``alarm_onsets_outside`` (onsets on a row labelled 0).

    Raises:
        ValueError: mismatched lengths or non-finite scores.
    """
    s, y, _ = _prepare(scores, labels, None)
    alarm = s > threshold
    starts = np.flatnonzero(y & ~np.r_[False, y[:-1]])
    ends = np.flatnonzero(y & ~np.r_[y[1:], False])
    detected = sum(bool(alarm[a : b + 1].any()) for a, b in zip(starts, ends, strict=True))
    onsets = alarm & ~np.r_[False, alarm[:-1]]
    return {
        "episodes": float(starts.size),
        "episodes_detected": float(detected),
        "alarm_onsets_outside": float(np.sum(onsets & ~y)),
    }
