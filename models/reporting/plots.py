"""The report's plots: matplotlib figures rendered to PNG bytes with the Agg canvas.

No pyplot and no global backend switch: each plot builds its own
:class:`matplotlib.figure.Figure` on a :class:`~matplotlib.backends.backend_agg.FigureCanvasAgg`,
so rendering is thread-safe, needs no display, and never touches the process's matplotlib
state. Epoch-second axes are drawn as UTC dates (``datetime64`` values, formatter and locator
pinned to UTC), whatever the machine's time zone.

Sizes: a figure is 8 × 3 in at 80 dpi (≈ 20-60 kB PNG); long traces are reduced to at most
:data:`MAX_POINTS` points by keeping each bucket's minimum and maximum (peaks survive).
ROC and precision-recall come from :mod:`sklearn.metrics` (``roc_curve``,
``precision_recall_curve``, ``roc_auc_score``, ``average_precision_score``); the shipped
threshold is marked at the operating point of the alarm rule ``score > threshold``.
"""

from __future__ import annotations

import io
from datetime import UTC
from typing import TYPE_CHECKING, Final

import numpy as np
from numpy.typing import NDArray

from renkei.models.reporting.data import Classification, RulTrace, ScoreTrace

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "MAX_POINTS",
    "classification_png",
    "decimate_minmax",
    "operating_point",
    "rul_coverage",
    "rul_png",
    "score_trace_png",
]

MAX_POINTS: Final = 4000
_DPI: Final = 80
_SCORE_COLOR: Final = "#1f77b4"
_THRESHOLD_COLOR: Final = "#d62728"
_WINDOW_COLOR: Final = "#ff7f0e"


def decimate_minmax(
    t: NDArray[np.float64], y: NDArray[np.float64], max_points: int = MAX_POINTS
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """At most ``max_points`` points of ``(t, y)``: per bucket of consecutive points, the
    first point plus the minimum and maximum of ``y`` (NaN ignored), in time order.

    Args:
        t: (n,) x values, ascending.
        y: (n,) y values (may hold NaN).
        max_points: bound on the result length (≥ 3).

    Returns:
        ``(t', y')``, unchanged when ``n <= max_points``.
    """
    n = t.size
    if n <= max_points:
        return t, y
    buckets = max(1, max_points // 3)
    keep: list[int] = []
    finite = np.isfinite(y)
    for idx in np.array_split(np.arange(n), buckets):
        keep.append(int(idx[0]))
        ok = idx[finite[idx]]
        if ok.size:
            keep.append(int(ok[np.argmin(y[ok])]))
            keep.append(int(ok[np.argmax(y[ok])]))
    sel = np.unique(np.asarray(keep, dtype=np.int64))
    return t[sel], y[sel]


def _figure(width: float = 8.0, height: float = 3.0) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, metadata={"Software": None})
    return buf.getvalue()


def _is_epoch(trace: ScoreTrace) -> bool:
    """Epoch-second x axis: the trace's ``t_label`` names UTC (the contract's default)."""
    return "UTC" in trace.t_label


def _to_x(values: NDArray[np.float64], epoch: bool) -> NDArray[np.generic]:
    if not epoch:
        return values
    return (np.round(values * 1000.0)).astype("datetime64[ms]")


def _utc_axis(ax: Axes) -> None:
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(tz=UTC, maxticks=8)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    fmt = mdates.ConciseDateFormatter(locator, tz=UTC)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_formatter(fmt)


def score_trace_png(trace: ScoreTrace) -> bytes:
    """Score over time against the threshold: labelled windows shaded, detections marked."""
    epoch = _is_epoch(trace)
    t, s = decimate_minmax(
        np.asarray(trace.t, dtype=np.float64), np.asarray(trace.score, dtype=np.float64)
    )
    fig = _figure()
    ax = fig.add_subplot()
    for i, (lo, hi) in enumerate(trace.windows):
        lo_hi = _to_x(np.array([lo, hi], dtype=np.float64), epoch)
        ax.axvspan(
            lo_hi[0],
            lo_hi[1],
            color=_WINDOW_COLOR,
            alpha=0.2,
            lw=0,
            label="labelled anomaly" if i == 0 else None,
        )
    ax.plot(_to_x(t, epoch), s, color=_SCORE_COLOR, lw=0.8, label="score")
    ax.axhline(trace.threshold, color=_THRESHOLD_COLOR, ls="--", lw=1.0, label="threshold")
    if len(trace.detections):
        det = np.asarray(trace.detections, dtype=np.float64)
        full_t = np.asarray(trace.t, dtype=np.float64)
        full_s = np.asarray(trace.score, dtype=np.float64)
        idx = np.clip(np.searchsorted(full_t, det), 0, max(full_t.size - 1, 0))
        y = full_s[idx] if full_s.size else np.full(det.size, trace.threshold)
        y = np.where(np.isfinite(y), y, trace.threshold)
        ax.plot(_to_x(det, epoch), y, ls="none", marker="v", color="black", ms=6, label="detection")
    if trace.log_score:
        ax.set_yscale("log", nonpositive="mask")
    if epoch:
        _utc_axis(ax)
    ax.set_xlabel(trace.t_label)
    ax.set_ylabel("score")
    ax.set_title(trace.name, fontsize=10)
    ax.legend(loc="best", fontsize=8, framealpha=0.8)
    return _png(fig)


def operating_point(c: Classification) -> tuple[float, float, float, float]:
    """(FPR, TPR = recall, precision, F1) of the alarm rule ``score > threshold``.

    Precision is NaN when nothing alarms; FPR / TPR are NaN without negatives / positives.
    """
    y = np.asarray(c.y_true) == 1
    alarm = np.asarray(c.score, dtype=np.float64) > c.threshold
    tp = int(np.sum(alarm & y))
    fp = int(np.sum(alarm & ~y))
    pos, neg = int(y.sum()), int((~y).sum())
    fpr = fp / neg if neg else float("nan")
    tpr = tp / pos if pos else float("nan")
    precision = tp / (tp + fp) if tp + fp else float("nan")
    f1 = 2 * precision * tpr / (precision + tpr) if tp else 0.0
    return fpr, tpr, precision, f1


def classification_png(c: Classification) -> tuple[bytes, dict[str, float]]:
    """ROC and precision-recall side by side, shipped threshold marked.

    Returns:
        The PNG and the figures shown: ``roc_auc``, ``average_precision``, ``fpr``,
        ``recall``, ``precision``, ``f1`` (at the threshold), ``positives``, ``negatives``.
        With one class only, the curves are replaced by a message and the AUCs are NaN.
    """
    from sklearn.metrics import (
        average_precision_score,
        precision_recall_curve,
        roc_auc_score,
        roc_curve,
    )

    y = (np.asarray(c.y_true) == 1).astype(np.int8)
    s = np.asarray(c.score, dtype=np.float64)
    ok = np.isfinite(s)
    y, s = y[ok], s[ok]
    fpr_t, tpr_t, prec_t, f1_t = operating_point(Classification(c.name, y, s, c.threshold))
    pos, neg = int(y.sum()), int(y.size - y.sum())
    figures = {
        "roc_auc": float("nan"),
        "average_precision": float("nan"),
        "fpr": fpr_t,
        "recall": tpr_t,
        "precision": prec_t,
        "f1": f1_t,
        "positives": float(pos),
        "negatives": float(neg),
    }
    fig = _figure(8.0, 3.4)
    ax_roc, ax_pr = fig.subplots(1, 2)
    if pos == 0 or neg == 0:
        for ax in (ax_roc, ax_pr):
            ax.text(0.5, 0.5, "one class only: no curve", ha="center", va="center")
            ax.set_axis_off()
        fig.suptitle(c.name, fontsize=10)
        return _png(fig), figures
    fpr, tpr, _ = roc_curve(y, s)
    precision, recall, _ = precision_recall_curve(y, s)
    figures["roc_auc"] = float(roc_auc_score(y, s))
    figures["average_precision"] = float(average_precision_score(y, s))
    ax_roc.plot(fpr, tpr, color=_SCORE_COLOR, lw=1.2)
    ax_roc.plot([0, 1], [0, 1], color="grey", lw=0.6, ls=":")
    ax_roc.plot(fpr_t, tpr_t, "o", color=_THRESHOLD_COLOR, label=f"threshold {c.threshold:.4g}")
    ax_roc.set_xlabel("false-positive rate")
    ax_roc.set_ylabel("true-positive rate")
    ax_roc.set_title(f"ROC (AUC {figures['roc_auc']:.3f})", fontsize=10)
    ax_roc.legend(loc="lower right", fontsize=8)
    ax_pr.plot(recall, precision, color=_SCORE_COLOR, lw=1.2, drawstyle="steps-post")
    ax_pr.axhline(pos / y.size, color="grey", lw=0.6, ls=":")
    if np.isfinite(prec_t):
        ax_pr.plot(tpr_t, prec_t, "o", color=_THRESHOLD_COLOR, label=f"threshold {c.threshold:.4g}")
        ax_pr.legend(loc="lower left", fontsize=8)
    ax_pr.set_xlabel("recall")
    ax_pr.set_ylabel("precision")
    ax_pr.set_title(f"precision-recall (AP {figures['average_precision']:.3f})", fontsize=10)
    for ax in (ax_roc, ax_pr):
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.02, 1.02)
    fig.suptitle(c.name, fontsize=10)
    return _png(fig), figures


def rul_coverage(r: RulTrace) -> float:
    """Share of points whose true RUL lies inside ``[lower, upper]`` (NaN for none)."""
    true = np.asarray(r.true, dtype=np.float64)
    inside = (true >= np.asarray(r.lower)) & (true <= np.asarray(r.upper))
    return float(inside.mean()) if true.size else float("nan")


def rul_png(r: RulTrace) -> bytes:
    """True RUL, prediction and band against ``x``, with the band's measured coverage."""
    order = np.argsort(np.asarray(r.x, dtype=np.float64), kind="stable")
    x = np.asarray(r.x, dtype=np.float64)[order]
    fig = _figure()
    ax = fig.add_subplot()
    ax.fill_between(
        x,
        np.asarray(r.lower, dtype=np.float64)[order],
        np.asarray(r.upper, dtype=np.float64)[order],
        color=_SCORE_COLOR,
        alpha=0.2,
        lw=0,
        step="mid",
        label=f"band (nominal {r.nominal:.0%})",
    )
    many = x.size > 400
    ax.plot(
        x,
        np.asarray(r.predicted, dtype=np.float64)[order],
        color=_SCORE_COLOR,
        lw=1.0,
        marker="" if many else ".",
        label="predicted",
    )
    ax.plot(
        x,
        np.asarray(r.true, dtype=np.float64)[order],
        color="black",
        lw=1.0,
        ls="-" if many else "none",
        marker="" if many else "x",
        ms=4,
        label="true",
    )
    ax.set_xlabel(r.x_label)
    ax.set_ylabel("RUL")
    ax.set_title(f"{r.name} (band coverage {rul_coverage(r):.0%})", fontsize=10)
    ax.legend(loc="upper right", fontsize=8, framealpha=0.8)
    return _png(fig)
