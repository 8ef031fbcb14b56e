"""Run the GATEWAY's feature extraction (:mod:`renkei.edge.features`) over a source's blocks.

No feature is computed here: this module only drives the same extractors the gateway
pipeline (:mod:`renkei.edge.pipeline`) uses, so a model's inputs are bit-for-bit what the gateway
will feed it:

- window features: one :func:`renkei.edge.features.slow_windower` and one
  :func:`renkei.edge.features.vibration_windower` (default
  :class:`~renkei.edge.features.VibrationConfig`) per stream, both with the machine's ``window_s``;
  rows of the two streams with the same window end are merged into one feature dict (labels: max);
- shot features: :class:`renkei.edge.features.ShotFeatures` (default config) over the shot stream.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from renkei.edge.features import (
    FeatureRow,
    ShotFeatures,
    Windower,
    slow_windower,
    vibration_windower,
)
from renkei.edge.sources.base import SampleBlock

__all__ = ["FeatureTable", "shot_feature_rows", "window_feature_rows"]


@dataclass(frozen=True)
class FeatureTable:
    """Feature rows as arrays.

    Attributes:
        t_ms: (N,) row times (window end or shot time), epoch ms of the source's data time.
        x: (N, F) values in ``names`` order (NaN = undefined).
        labels: (N,) label codes (max over the window), -1 where unknown.
        names: F feature names.
    """

    t_ms: NDArray[np.int64]
    x: NDArray[np.float64]
    labels: NDArray[np.int16]
    names: list[str]

    def finite_rows(self) -> NDArray[np.bool_]:
        """(N,) mask of rows whose features are all finite (the gateway skips the others)."""
        mask: NDArray[np.bool_] = np.all(np.isfinite(self.x), axis=1)
        return mask

    def select(self, names: Sequence[str]) -> FeatureTable:
        """The same rows restricted to ``names`` (in that order).

        Raises:
            KeyError: naming features the table does not have.
        """
        missing = [n for n in names if n not in self.names]
        if missing:
            raise KeyError(f"features {missing} not produced by the extractor; have {self.names}")
        idx = [self.names.index(n) for n in names]
        return FeatureTable(self.t_ms, self.x[:, idx], self.labels, list(names))

    def rows(self, mask: NDArray[np.bool_]) -> FeatureTable:
        """The rows where ``mask`` is True."""
        return FeatureTable(self.t_ms[mask], self.x[mask], self.labels[mask], self.names)


def _table(rows: list[FeatureRow]) -> FeatureTable:
    if not rows:
        raise ValueError("the source produced no feature rows")
    names = list(rows[0].values)
    x = np.array([[r.values.get(n, np.nan) for n in names] for r in rows], dtype=np.float64)
    labels = np.array([-1 if r.label is None else r.label for r in rows], dtype=np.int16)
    t_ms = np.array([r.t_ms for r in rows], dtype=np.int64)
    return FeatureTable(t_ms, x, labels, names)


def window_feature_rows(blocks: Iterable[SampleBlock], window_s: float) -> FeatureTable:
    """Tumbling-window features of the ``slow`` and ``vibration`` blocks (shots ignored).

    Rows are sorted by window end; a window seen by only one stream has NaN for the
    other stream's features. Feature order: slow features then vibration features.
    """
    windowers: dict[str, Windower] = {}
    merged: dict[int, dict[str, float]] = {}
    labels: dict[int, int | None] = {}
    stream_names: dict[str, list[str]] = {"slow": [], "vibration": []}

    def add(stream: str, row: FeatureRow) -> None:
        merged.setdefault(row.t_ms, {}).update(row.values)
        known = stream_names[stream]
        known.extend(n for n in row.values if n not in known)
        old = labels.get(row.t_ms)
        if row.label is not None:
            labels[row.t_ms] = row.label if old is None else max(old, row.label)
        else:
            labels.setdefault(row.t_ms, None)

    for block in blocks:
        if block.stream == "shot":
            continue
        windower = windowers.get(block.stream)
        if windower is None:
            windower = windowers[block.stream] = (
                slow_windower(window_s) if block.stream == "slow" else vibration_windower(window_s)
            )
        for row in windower.push(block):
            add(block.stream, row)
    for stream, windower in windowers.items():
        for row in windower.flush():
            add(stream, row)
    names = stream_names["slow"] + stream_names["vibration"]
    rows = [
        FeatureRow(t, {n: merged[t].get(n, np.nan) for n in names}, labels[t])
        for t in sorted(merged)
    ]
    return _table(rows)


def shot_feature_rows(blocks: Iterable[SampleBlock]) -> FeatureTable:
    """Per-shot features (:class:`renkei.edge.features.ShotFeatures`) of the ``shot`` blocks."""
    extractor = ShotFeatures()
    rows: list[FeatureRow] = []
    for block in blocks:
        if block.stream == "shot":
            rows.extend(extractor.push(block))
    return _table(rows)
