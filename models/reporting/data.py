"""What a model report contains, independent of how it is drawn.

Each recipe builds a :class:`ReportData` from its evaluation (the same numbers its
``evaluate`` prints, computed with the exported ONNX artifact); the renderer only draws it.
Arrays are 1-D float64 (or int8 for labels) of equal length within one object; the
constructors check the shapes and raise :class:`ValueError` naming the field.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

__all__ = ["Classification", "ReportData", "RulTrace", "ScoreTrace", "Table"]


def _same_length(owner: str, **arrays: NDArray[np.generic] | None) -> None:
    lengths = {k: len(v) for k, v in arrays.items() if v is not None}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"{owner}: arrays must have equal lengths, got {lengths}")
    for k, v in arrays.items():
        if v is not None and v.ndim != 1:
            raise ValueError(f"{owner}.{k}: expected a 1-D array, got shape {v.shape}")


@dataclass(frozen=True)
class ScoreTrace:
    """One file or run: anomaly score against its threshold over time.

    Attributes:
        name: file or run (e.g. ``realTweets/Twitter_volume_AAPL.csv``).
        t: (n,) x axis: epoch seconds, or row index when ``t_label`` says so.
        score: (n,) model score (NaN where not scored, e.g. a baseline).
        threshold: alarm when ``score > threshold``.
        windows: labelled anomaly windows as ``(start, end)`` in ``t`` units (shaded).
        detections: ``t`` of the reported detections (alarm onsets), drawn as marks.
        t_label: axis label (``"time (UTC)"`` for epoch seconds, else e.g. ``"row"``). The
            renderer draws ``t`` as UTC dates exactly when the label contains ``"UTC"``.
        log_score: draw the score on a log axis.
    """

    name: str
    t: NDArray[np.float64]
    score: NDArray[np.float64]
    threshold: float
    windows: Sequence[tuple[float, float]] = ()
    detections: Sequence[float] = ()
    t_label: str = "time (UTC)"
    log_score: bool = False

    def __post_init__(self) -> None:
        _same_length(f"ScoreTrace {self.name}", t=self.t, score=self.score)


@dataclass(frozen=True)
class Classification:
    """Per-point labels and scores for ROC and precision-recall curves.

    Attributes:
        name: what was pooled (e.g. ``"SKAB valve1+valve2 test parts"``).
        y_true: (n,) 0 = normal, 1 = anomaly (labels of the evaluation data).
        score: (n,) model score, higher = more anomalous.
        threshold: the shipped threshold (marked on both curves).
    """

    name: str
    y_true: NDArray[np.int8]
    score: NDArray[np.float64]
    threshold: float

    def __post_init__(self) -> None:
        _same_length(f"Classification {self.name}", y_true=self.y_true, score=self.score)


@dataclass(frozen=True)
class RulTrace:
    """Remaining useful life predicted vs true, with the uncertainty band.

    Attributes:
        name: e.g. ``"FD002 test, last cycle per engine"`` or one engine's id.
        x: (n,) x axis (engine index, or cycle number for one engine's trajectory).
        true: (n,) true RUL, cycles (or shots).
        predicted: (n,) point prediction, same units.
        lower: (n,) lower band edge, same units.
        upper: (n,) upper band edge, same units.
        nominal: the band's nominal coverage (e.g. 0.8 for a 10–90 % band).
        x_label: axis label.
    """

    name: str
    x: NDArray[np.float64]
    true: NDArray[np.float64]
    predicted: NDArray[np.float64]
    lower: NDArray[np.float64]
    upper: NDArray[np.float64]
    nominal: float
    x_label: str = "engine"

    def __post_init__(self) -> None:
        _same_length(
            f"RulTrace {self.name}",
            x=self.x,
            true=self.true,
            predicted=self.predicted,
            lower=self.lower,
            upper=self.upper,
        )


@dataclass(frozen=True)
class Table:
    """A table of results (e.g. per-file scores beside published baselines).

    Attributes:
        title: heading.
        columns: column names.
        rows: one tuple per row, ``len(columns)`` cells each (str, int or float).
    """

    title: str
    columns: tuple[str, ...]
    rows: Sequence[tuple[str | int | float, ...]]

    def __post_init__(self) -> None:
        for i, row in enumerate(self.rows):
            if len(row) != len(self.columns):
                raise ValueError(
                    f"Table {self.title!r} row {i}: {len(row)} cells, "
                    f"expected {len(self.columns)} ({self.columns})"
                )


@dataclass(frozen=True)
class ReportData:
    """Everything ``renkei models report NAME`` draws for one model.

    Attributes:
        model: model name (artifact directory name).
        title: one-line title.
        summary: a paragraph: data, protocol, headline figures (plain text).
        metrics: headline metrics by name (as the manifest's ``metrics``).
        traces: score-over-time plots (at most a few dozen; pick representative files:
            each is a ~30 kB PNG in the page, and a committed report should stay < 1 MB).
        classifications: ROC/PR curves.
        ruls: RUL predicted-vs-true plots.
        tables: result tables.
        notes: honesty notes and caveats, one paragraph each.
    """

    model: str
    title: str
    summary: str
    metrics: dict[str, float] = field(default_factory=dict)
    traces: Sequence[ScoreTrace] = ()
    classifications: Sequence[Classification] = ()
    ruls: Sequence[RulTrace] = ()
    tables: Sequence[Table] = ()
    notes: Sequence[str] = ()
