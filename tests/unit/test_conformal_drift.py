"""Cross-conformal threshold rule (renkei.models.conformal) and the gateway's drift watch
(renkei.edge.model.drift, renkei.edge.model.scoring): refusal below the minimum calibration
size, the single-shot bound, fire/clear hysteresis, and the scorer's drift events."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from renkei.core.manifest import DriftSpec, read_manifest
from renkei.edge.model.drift import DRIFT_CLEARED, DRIFT_ONSET, DriftWatch, drift_trace
from renkei.edge.model.inference import AnomalyModel
from renkei.edge.model.inputs import ModelRow
from renkei.edge.model.scoring import AnomalyScorer
from renkei.models import DEFAULT_ARTIFACTS_DIR
from renkei.models.conformal import (
    CalibrationError,
    conformal_threshold,
    drift_spec,
    min_calibration_size,
    single_shot_bounds,
)


def test_refuses_below_the_minimum_calibration_size() -> None:
    assert min_calibration_size(0.01) == 1000
    rng = np.random.default_rng(0)
    with pytest.raises(CalibrationError, match=r"999 normal calibration shots .* at least 1000"):
        conformal_threshold(rng.gamma(2.0, size=999), 0.01)
    assert np.isfinite(conformal_threshold(rng.gamma(2.0, size=1000), 0.01))
    with pytest.raises(CalibrationError, match="not finite"):
        conformal_threshold(np.r_[rng.gamma(2.0, size=2000), np.nan], 0.01)
    with pytest.raises(CalibrationError, match="alpha"):
        conformal_threshold(rng.gamma(2.0, size=2000), 0.7)


def test_one_calibration_score_moves_the_threshold_at_most_one_order_statistic() -> None:
    rng = np.random.default_rng(1)
    s = rng.pareto(3.0, size=1200)  # heavy tail, like the shot scores
    t = conformal_threshold(s, 0.01)
    lo, hi = single_shot_bounds(s, 0.01)
    assert lo <= t <= hi
    for i in np.argsort(s)[::-1][:30].tolist():  # the tail decides; the rest cannot move it more
        assert lo <= conformal_threshold(np.delete(s, i), 0.01) <= hi
        for v in (0.0, 1e9):
            perturbed = s.copy()
            perturbed[i] = v
            assert lo <= conformal_threshold(perturbed, 0.01) <= hi
    # the maximum (the 1.x rule on a small hold-out) has no such bound
    assert np.max(np.delete(s, np.argmax(s))) < 0.8 * np.max(s)


def _spec() -> DriftSpec:
    return DriftSpec(
        reference_score=1.0, reference_quantile=0.75, window=10, fire_share=0.6, clear_share=0.3
    )


def test_drift_watch_fires_and_clears_with_hysteresis() -> None:
    watch = DriftWatch(_spec(), model_name="m")
    assert all(watch.push(0.5) is None for _ in range(10)) and watch.share == 0.0
    changes = [watch.push(2.0) for _ in range(6)]
    assert [c.code for c in changes if c] == [DRIFT_ONSET] and changes[5] is not None
    assert "recommission m" in changes[5].message and watch.drifting
    changes = [watch.push(0.5) for _ in range(10)]
    codes = [c.code for c in changes if c]
    assert codes == [DRIFT_CLEARED] and not watch.drifting and watch.onsets == 1
    with pytest.raises(ValueError, match="not finite"):
        watch.push(float("nan"))
    share, state = drift_trace(np.r_[np.zeros(10), np.full(6, 2.0)], _spec())
    assert np.isnan(share[:9]).all() and share[-1] == 0.6 and state[-1] and not state[-2]


def test_drift_spec_levels_and_validation() -> None:
    rng = np.random.default_rng(2)
    spec = drift_spec(rng.normal(size=5000), quantile=0.75, window=50, p_fire=1e-3)
    assert spec.fire_share == 0.48 and spec.clear_share == 0.32
    assert abs(spec.reference_score - 0.674) < 0.05
    with pytest.raises(ValidationError, match="clear_share"):
        DriftSpec(
            reference_score=1, reference_quantile=0.5, window=5, fire_share=0.3, clear_share=0.4
        )
    with pytest.raises(CalibrationError, match="window"):
        drift_spec(rng.normal(size=100), quantile=0.75, window=5, p_fire=1e-3)


def test_scorer_reports_drift_events_and_share_of_the_kassel_model() -> None:
    model = AnomalyModel.load(model_dir=DEFAULT_ARTIFACTS_DIR / "kassel-shot-t2")
    spec = read_manifest(DEFAULT_ARTIFACTS_DIR / "kassel-shot-t2").drift
    assert spec is not None and spec.window == 50
    scorer = AnomalyScorer(model, machine_id="m1")
    assert scorer.drift is not None and scorer.drift_status() == {
        "drifting": False,
        "share": None,
        "onsets": 0.0,
    }
    # a row far from the reference shots scores above the drift reference level
    far = np.array([0.75, 4.2, 700.0, 680.0, 1.7, 17.0, 37.5], dtype=np.float32)
    events = []
    res = None
    for i in range(60):
        res = scorer.score(ModelRow(t_ms=i, row={}, payload=None, x=far.astype(np.float64)))
        assert res is not None
        if res.drift_event is not None:
            events.append(res.drift_event.code)
    assert res is not None and events == [DRIFT_ONSET] and res.drift_share == 1.0
    assert res.fields()["drift_share"] == 1.0 and scorer.last_event in (
        DRIFT_ONSET,
        "anomaly_onset",
    )
    scorer.model = model  # a model switch restarts the watch
    assert scorer.drift is not None and scorer.drift.share is None
