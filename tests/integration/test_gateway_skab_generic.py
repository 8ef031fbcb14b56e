"""``skab-pump-mahal`` 2.0 runs unchanged on the gateway, on both valve groups: a real SKAB
run (valve1 and valve2) goes through the gateway's replay source, 1 s windows, history
inputs (400-row baseline, the manifest's 2 % sd floor) and ONNX scoring
(renkei.edge.pipeline.MachinePipeline), and every scored row equals the training recipe's
score (renkei.models.profiles.skab_z). Needs ../shared/datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from renkei.core.manifest import read_manifest
from renkei.edge.features.history import HistoryConfig
from renkei.edge.model.inputs import plan_inputs
from renkei.models.profiles import skab_z
from tests.datasets import require_data_dir
from tests.integration.test_gateway_dataset_models import (
    ARTIFACTS,
    _onnx_scores,
    _pipeline,
    _rows,
    _run,
)


def _machine(path: Path) -> dict[str, Any]:
    return {
        "id": "pump-1",
        "area": "utilities",
        "line": "loop",
        "window_s": 1,
        "source": {"type": "replay", "preset": "skab", "path": str(path), "timestamps": "keep"},
    }


def test_the_gateway_plans_the_recipe_inputs_with_its_sd_floor() -> None:
    plan = plan_inputs(read_manifest(ARTIFACTS / skab_z.NAME))
    assert plan.history == skab_z.CONFIG
    assert plan.history == HistoryConfig(baseline_rows=400, zmean_rows=(10,), sd_floor_rel=0.02)
    assert "temperature_C" not in plan.fields and "flow_rate_l_min" in plan.fields


@pytest.mark.parametrize("rel", ["skab/data/valve1/0.csv", "skab/data/valve2/0.csv"])
def test_gateway_scores_equal_the_recipe_on_valve1_and_valve2(rel: str) -> None:
    data_dir = require_data_dir()
    pipe, _ = _pipeline(_machine(data_dir / rel), skab_z.NAME)
    _, scores = _rows(_run(pipe), "anomaly")
    data = skab_z.build(data_dir, runs=(rel,))
    run = data.runs[0]
    fields = [i.name.removesuffix("_zm10") for i in read_manifest(ARTIFACTS / skab_z.NAME).inputs]
    ref = _onnx_scores(
        skab_z.NAME, skab_z.run_features(run.x, [data.fields.index(f) for f in fields])
    )
    assert pipe.scored == run.x.shape[0] - skab_z.TRAIN_ROWS and pipe.unscored == 0
    np.testing.assert_allclose(scores["score"], ref[skab_z.TRAIN_ROWS :], rtol=1e-6, atol=1e-6)
    flagged = np.asarray(scores["is_anomaly"], dtype=bool)
    thr = read_manifest(ARTIFACTS / skab_z.NAME).threshold
    np.testing.assert_array_equal(flagged, ref[skab_z.TRAIN_ROWS :] > thr)
