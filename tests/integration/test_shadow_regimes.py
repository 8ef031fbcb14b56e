"""Shadow rows of a multi-condition RUL model (renkei.edge.model.inputs.batch_inputs, used by
the rollout shadow check, renkei.edge.rollout.shadow) equal the streaming inputs the
gateway's RulRunner scores: both regime-normalise each row from the manifest's table before
the history features. Real FD002 test engines (six regimes). Needs ../shared/datasets."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from renkei.edge.config import ShadowConfig
from renkei.edge.model.inference import AnomalyModel
from renkei.edge.model.inputs import ModelInputs, batch_inputs
from renkei.edge.model.rul import RulRunner, plan_inputs
from renkei.edge.rollout.shadow import shadow_check
from renkei.models.profiles import cmapss_recipe as recipe
from tests.datasets import require_data_dir

MODEL_DIR = Path(__file__).resolve().parents[2] / "models" / "artifacts" / "cmapss-fd002-rul"


def _rows(engine: recipe.Engine) -> list[dict[str, float]]:
    names = [f for f, _, _ in recipe.SETTINGS] + [f for f, _, _ in recipe.SENSORS]
    values = np.hstack([engine.settings, engine.x])
    return [dict(zip(names, r.tolist(), strict=True)) for r in values]


def test_shadow_rows_equal_the_streaming_inputs_of_a_regime_model() -> None:
    model = AnomalyModel.load(model_dir=MODEL_DIR)
    plan = plan_inputs(model.manifest)
    assert plan.regimes is not None and len(plan.regimes.centroids) == 6
    data = recipe.build(require_data_dir(), "FD002")
    engine = next(e for e in data.test if e.cycles >= 60).head(60)
    rows = _rows(engine)
    shadow = batch_inputs(plan, rows)
    assert len(shadow) == len(rows)
    x_shadow = np.array([[r[n] for n in plan.names] for r in shadow])
    inputs: ModelInputs[None] = ModelInputs(plan)
    x_stream = np.array([inputs.push(i, r, None)[0].x for i, r in enumerate(rows)])
    np.testing.assert_array_equal(x_shadow, x_stream)
    # ... which are the recipe's (training) inputs and the RulRunner's
    np.testing.assert_allclose(x_shadow, recipe.engine_features(plan.regimes, engine), atol=0)
    runner = RulRunner(model, plan)
    got = [runner.push(i, r)[0].inputs for i, r in enumerate(rows)]
    np.testing.assert_array_equal(np.array(got), x_stream)
    # the gap this closes: without the regime step the shadow inputs are NaN (no _rn fields)
    bare = batch_inputs(replace(plan, regimes=None), rows)
    assert np.isnan(bare[0]["s2_T24_rn_e0p1"])
    result = shadow_check(model, None, shadow, ShadowConfig(min_windows=50))
    assert result.checks["windows"] == len(rows) and result.checks["nonfinite_scores"] == 0
