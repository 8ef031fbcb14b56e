"""Anomaly scoring of one machine's model rows: score, threshold, onset/cleared events.

:class:`AnomalyScorer` scores the rows :class:`renkei.edge.model.inputs.ModelInputs` produces
with the machine's anomaly model (:class:`renkei.edge.model.inference.AnomalyModel`) and
keeps the machine's scoring counters. It returns what the caller publishes (an
:class:`ScoreResult`: the ``anomaly`` row's ``score``/``threshold``/``is_anomaly`` and, at an
anomaly onset or clear, the ``event``'s code, severity and message); buffering and sending
them is the caller's job (:class:`renkei.edge.pipeline.MachinePipeline`).

Rows that are not scored, and are counted:

- rows of a history baseline (:attr:`~renkei.edge.model.inputs.ModelRow.in_baseline`):
  skipped, not counted;
- rows with missing or non-finite inputs: ``unscored``;
- a model that raises while scoring (:class:`~renkei.edge.model.inference.ModelError`;
  onnxruntime's errors arrive as ``ModelRunError``): ``unscored`` and ``model_errors``,
  logged once (the first error);
- a score that is not finite: ``unscored`` and ``nonfinite_scores``.

``nonfinite_scores`` and ``model_errors`` are read by a new model's probation
(:mod:`renkei.edge.rollout`). :attr:`AnomalyScorer.model` may be replaced between two rows
(:meth:`renkei.edge.pipeline.MachinePipeline.set_model`); the counters carry on.

Drift: a model whose manifest has a ``drift`` section also gets a
:class:`~renkei.edge.model.drift.DriftWatch` (restarted whenever the model is replaced): every
finite score is pushed, the row carries ``drift_share`` once the window is full, and a
``drift_onset``/``drift_cleared`` event (distinct from the per-row anomaly events) is
returned as :attr:`ScoreResult.drift_event`.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Final

import numpy as np

from renkei.edge.model.drift import DriftWatch
from renkei.edge.model.inference import AnomalyModel, ModelError
from renkei.edge.model.inputs import ModelRow

__all__ = ["AnomalyScorer", "ScoreEvent", "ScoreResult"]

log = logging.getLogger(__name__)

_MAX_EVENTS_KEPT: Final = 20


@dataclass(frozen=True, slots=True)
class ScoreEvent:
    """An anomaly onset (``anomaly_onset``, severity ``warning``) or clear
    (``anomaly_cleared``, severity ``info``), with its human-readable message."""

    code: str
    severity: str
    message: str


@dataclass(frozen=True, slots=True)
class ScoreResult:
    """One scored row: the model's ``score``, its ``threshold`` and ``is_anomaly``
    (``score > threshold``); ``event`` is set when the row changes the anomaly state;
    ``drift_share``/``drift_event``: the drift watch's statistic and state change (models
    with a ``drift`` section only)."""

    score: float
    threshold: float
    is_anomaly: bool
    event: ScoreEvent | None = None
    drift_share: float | None = None
    drift_event: ScoreEvent | None = None

    def fields(self) -> dict[str, float]:
        """The ``anomaly`` row: ``score``, ``threshold``, ``is_anomaly`` (0.0 or 1.0), and
        ``drift_share`` when the model has a drift watch whose window is full."""
        out = {
            "score": self.score,
            "threshold": self.threshold,
            "is_anomaly": float(self.is_anomaly),
        }
        if self.drift_share is not None:
            out["drift_share"] = self.drift_share
        return out


class AnomalyScorer:
    """Scores one machine's model rows and counts them. Owned by the agent's main thread.

    Args:
        model: the anomaly model (``None``: no model; :meth:`score` must not be called).
        machine_id: the machine's id, for the log.
    """

    def __init__(self, model: AnomalyModel | None, *, machine_id: str) -> None:
        self.drift: DriftWatch | None = None
        """The model's drift watch (``None``: the model has no ``drift`` section)."""
        self._model: AnomalyModel | None = None
        self.model = model
        self.machine_id = machine_id
        self.scored = 0
        """Rows scored (finite score)."""
        self.unscored = 0
        """Rows not scored: non-finite inputs, a model error, a non-finite score."""
        self.nonfinite_scores = 0
        """Rows whose score was not finite."""
        self.model_errors = 0
        """Rows the model raised on (the first is logged)."""
        self.anomalies = 0
        """Anomaly onsets."""
        self.anomalous = False
        """Whether the last scored row was an anomaly."""
        self.last_score: float | None = None
        """Score of the last scored row."""
        self.last_label: int | None = None
        """Ground-truth label of the last scored row (``None``: the source has none)."""
        self.last_event: str | None = None
        """Code of the last event."""
        self.recent_events: list[str] = []
        """The last events (at most 20), ``"code: message"``, oldest first."""

    @property
    def model(self) -> AnomalyModel | None:
        """The anomaly model; assigning one restarts the drift watch from its manifest."""
        return self._model

    @model.setter
    def model(self, model: AnomalyModel | None) -> None:
        self._model = model
        # getattr: stand-in models (tests, shadow checks) may have no manifest
        spec = getattr(getattr(model, "manifest", None), "drift", None)
        if model is None or spec is None:
            self.drift = None
        else:
            self.drift = DriftWatch(spec, model_name=model.name)

    def drift_status(self) -> dict[str, float | bool | None] | None:
        """``{"drifting", "share", "onsets"}`` of the drift watch (``None``: no watch)."""
        if self.drift is None:
            return None
        d = self.drift
        return {"drifting": d.drifting, "share": d.share, "onsets": float(d.onsets)}

    def _drift(self, score: float) -> tuple[float | None, ScoreEvent | None]:
        if self.drift is None:
            return None, None
        change = self.drift.push(score)
        if change is None:
            return self.drift.share, None
        self.last_event = change.code
        self.recent_events = ([*self.recent_events, f"{change.code}: {change.message}"])[
            -_MAX_EVENTS_KEPT:
        ]
        return self.drift.share, ScoreEvent(change.code, change.severity, change.message)

    def score(self, row: ModelRow[int | None]) -> ScoreResult | None:
        """Score one row (its payload is its ground-truth label, if any).

        Returns:
            the score, threshold and anomaly state, with an event on an onset or clear;
            ``None`` if the row is not scored (see the module docstring).
        """
        model = self.model
        assert model is not None
        if row.in_baseline:
            return None  # the history baseline's own rows are not scored (renkei.edge.model.inputs)
        if row.x is None or not np.all(np.isfinite(row.x)):
            self.unscored += 1
            return None
        x = row.x.astype(np.float32).reshape(1, -1)
        try:
            score = float(model.score(x)[0])
        except ModelError as exc:  # onnxruntime's errors arrive as ModelRunError
            self.unscored += 1
            self.model_errors += 1
            if self.model_errors == 1:
                log.error("machine %s: model %s failed: %s", self.machine_id, model.name, exc)
            return None
        if not math.isfinite(score):
            self.unscored += 1
            self.nonfinite_scores += 1
            return None
        self.scored += 1
        threshold = float(model.threshold)
        is_anomaly = score > threshold
        self.last_score = score
        self.last_label = row.payload
        share, drift_event = self._drift(score)
        if is_anomaly == self.anomalous:
            return ScoreResult(score, threshold, is_anomaly, None, share, drift_event)
        self.anomalous = is_anomaly
        if is_anomaly:
            self.anomalies += 1
        code = "anomaly_onset" if is_anomaly else "anomaly_cleared"
        message = f"{model.name} score {score:.3g} vs threshold {threshold:.3g}"
        event = ScoreEvent(code, "warning" if is_anomaly else "info", message)
        self.last_event = code
        self.recent_events = ([*self.recent_events, f"{code}: {message}"])[-_MAX_EVENTS_KEPT:]
        return ScoreResult(score, threshold, is_anomaly, event, share, drift_event)
