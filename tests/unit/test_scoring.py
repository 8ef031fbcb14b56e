"""AnomalyScorer (renkei.edge.model.scoring): what is scored, counted, logged and reported."""

from __future__ import annotations

import logging
from typing import cast

import numpy as np
import pytest
from numpy.typing import NDArray

from renkei.edge.model.inference import AnomalyModel, ModelRunError
from renkei.edge.model.inputs import ModelRow
from renkei.edge.model.scoring import AnomalyScorer, ScoreEvent


class _Model:
    """Scores a row as its first input; raises on a negative one."""

    def __init__(self, name: str = "m", threshold: float = 1.0) -> None:
        self.name, self.threshold = name, threshold

    def score(self, x: NDArray[np.float32]) -> NDArray[np.float64]:
        assert x.dtype == np.float32 and x.shape == (1, 1)
        if x[0, 0] < 0:
            raise ModelRunError("boom")
        return x[:, 0].astype(np.float64) * (np.inf if x[0, 0] == 99 else 1.0)


def _row(
    v: float | None, *, label: int | None = None, baseline: bool = False
) -> ModelRow[int | None]:
    x = None if v is None else np.array([v])
    return ModelRow(t_ms=1, row={}, payload=label, x=x, in_baseline=baseline)


def _scorer(model: _Model | None = None) -> AnomalyScorer:
    return AnomalyScorer(cast(AnomalyModel, model or _Model()), machine_id="m1")


def test_unscored_rows_are_counted(caplog: pytest.LogCaptureFixture) -> None:
    s = _scorer()
    assert s.score(_row(0.5, baseline=True)) is None  # baseline rows: skipped, not counted
    assert s.score(_row(None)) is None and s.score(_row(float("nan"))) is None
    assert s.score(_row(99.0)) is None  # a non-finite score
    with caplog.at_level(logging.ERROR, logger="renkei.edge.model.scoring"):
        assert s.score(_row(-1.0)) is None and s.score(_row(-2.0)) is None
    assert [r.getMessage() for r in caplog.records] == ["machine m1: model m failed: boom"]
    assert (s.scored, s.unscored, s.nonfinite_scores, s.model_errors) == (0, 5, 1, 2)
    assert s.last_score is None and s.anomalies == 0


def test_onset_and_clear_events() -> None:
    s = _scorer()
    res = s.score(_row(0.5, label=0))
    assert res is not None and res.event is None and not res.is_anomaly
    assert res.fields() == {"score": 0.5, "threshold": 1.0, "is_anomaly": 0.0}
    res = s.score(_row(2.0, label=1))
    assert res is not None and res.fields()["is_anomaly"] == 1.0
    assert res.event == ScoreEvent("anomaly_onset", "warning", "m score 2 vs threshold 1")
    assert (s.anomalous, s.anomalies, s.last_score, s.last_label) == (True, 1, 2.0, 1)
    res = s.score(_row(3.0))
    assert res is not None and res.event is None  # still anomalous: no new event
    res = s.score(_row(0.25))
    assert res is not None
    assert res.event == ScoreEvent("anomaly_cleared", "info", "m score 0.25 vs threshold 1")
    assert s.last_event == "anomaly_cleared" and s.anomalies == 1 and s.scored == 4
    assert s.recent_events == [
        "anomaly_onset: m score 2 vs threshold 1",
        "anomaly_cleared: m score 0.25 vs threshold 1",
    ]


def test_recent_events_keep_the_last_20_and_follow_a_new_model() -> None:
    s = _scorer()
    for i in range(15):
        s.score(_row(2.0 if i % 2 == 0 else 0.0))
    s.model = cast(AnomalyModel, _Model(name="new", threshold=5.0))
    for i in range(15):
        s.score(_row(6.0 if i % 2 == 0 else 0.0))
    assert len(s.recent_events) == 20 and s.scored == 30 and s.anomalies == 15
    assert s.recent_events[-1] == "anomaly_onset: new score 6 vs threshold 5"
