"""Model inputs on the gateway (renkei.edge.model.inputs): plans from manifests, the streaming
inputs against the batch history features the recipes train on, and the shadow rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from renkei.core.manifest import ModelManifest, read_manifest
from renkei.edge.features.history import HistoryConfig, history_feature_names, history_features
from renkei.edge.model.inputs import (
    InputPlan,
    InputPlanError,
    ModelInputs,
    batch_inputs,
    field_value,
    plan_inputs,
)

ARTIFACTS = Path(__file__).resolve().parents[2] / "models" / "artifacts"


def _with_inputs(names: list[str], **params: object) -> ModelManifest:
    base = read_manifest(ARTIFACTS / "skab-pump-mahal")
    inputs = [base.inputs[0].model_copy(update={"name": n}) for n in names]
    return base.model_copy(update={"inputs": inputs, "algorithm_params": params})


def test_plans_of_the_committed_anomaly_models() -> None:
    skab = plan_inputs(read_manifest(ARTIFACTS / "skab-pump-mahal"))
    assert skab.history == HistoryConfig(baseline_rows=400, zmean_rows=(10,), sd_floor_rel=0.02)
    assert skab.fields[:2] == ("accel1_rms_g", "accel2_rms_g") and skab.rows_needed == 400
    nab = plan_inputs(read_manifest(ARTIFACTS / "nab-temp-stream"))
    assert nab.history == HistoryConfig(mean_rows=(288,)) and nab.fields == ("machine_temperature",)
    assert nab.rows_needed == 0
    for plain in ("cwru-bearing-mahal", "skab-pump-t2", "kassel-shot-t2", "cell-t2"):
        manifest = read_manifest(ARTIFACTS / plain)
        assert plan_inputs(manifest) == InputPlan(names=manifest.input_names)


def test_the_sd_floor_comes_from_the_manifest_or_the_default() -> None:
    plan = plan_inputs(_with_inputs(["a_zm10"], baseline_rows=5, sd_floor_rel=0.05))
    assert plan.history == HistoryConfig(baseline_rows=5, zmean_rows=(10,), sd_floor_rel=0.05)
    plan = plan_inputs(_with_inputs(["a_zm10"], baseline_rows=5))
    assert plan.history == HistoryConfig(baseline_rows=5, zmean_rows=(10,))
    with pytest.raises(InputPlanError, match="sd_floor_rel='x' is not a number"):
        plan_inputs(_with_inputs(["a_zm10"], baseline_rows=5, sd_floor_rel="x"))
    with pytest.raises(InputPlanError, match="sd floors"):
        plan_inputs(_with_inputs(["a_zm10"], baseline_rows=5, sd_floor_rel=-1.0))


def test_plan_errors_name_the_model_and_the_inputs() -> None:
    with pytest.raises(InputPlanError, match=r"skab-pump-mahal: inputs \['temperature_C_mean'\]"):
        plan_inputs(_with_inputs(["a_zm10", "temperature_C_mean"], baseline_rows=5))
    with pytest.raises(InputPlanError, match="need a baseline length"):
        plan_inputs(_with_inputs(["a_zm10"]))
    with pytest.raises(InputPlanError, match="column order"):
        plan_inputs(_with_inputs(["a_s5", "a_m5"]))
    plan = plan_inputs(_with_inputs(["a_zm10"]), baseline_rows=7)
    assert plan.history is not None and plan.history.baseline_rows == 7


def test_field_value_prefers_the_field_then_its_window_mean() -> None:
    assert field_value({"a": 1.0, "a_mean": 2.0}, "a") == 1.0
    assert field_value({"a_mean": 2.0}, "a") == 2.0
    assert np.isnan(field_value({"b": 1.0}, "a"))


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(min_value=1, max_value=60),
    baseline=st.integers(min_value=0, max_value=12),
    seed=st.integers(min_value=0, max_value=2**31),
)
def test_streaming_inputs_equal_the_batch_features(n: int, baseline: int, seed: int) -> None:
    config = HistoryConfig(
        mean_rows=(3,),
        slope_rows=(4,),
        baseline_rows=baseline,
        zmean_rows=(5,) if baseline else (),
        count=True,
    )
    fields = ("p", "q")
    plan = InputPlan(
        names=tuple(history_feature_names(fields, config)), fields=fields, history=config
    )
    x = np.random.default_rng(seed).normal(size=(n, 2)) * 3 + 10
    stream: ModelInputs[int] = ModelInputs(plan)
    out = []
    for i, (p, q) in enumerate(x):
        out += stream.push(1000 * i, {"p_mean": float(p), "q": float(q)}, i)
    if n < baseline:
        assert out == [] and stream.collecting == n
        return
    assert [r.payload for r in out] == list(range(n)) and [r.t_ms for r in out] == [
        1000 * i for i in range(n)
    ]
    assert [r.in_baseline for r in out] == [i < baseline for i in range(n)]
    got = np.array([r.x for r in out])
    np.testing.assert_allclose(got, history_features(x, config), rtol=1e-9, atol=1e-9)
    rows = [{"p": float(p), "q": float(q)} for p, q in x]
    batch = batch_inputs(plan, rows)
    assert len(batch) == max(0, n - baseline) if n > baseline else batch == []
    if batch:
        np.testing.assert_allclose(
            [[b[k] for k in plan.names] for b in batch], got[baseline:], rtol=1e-9, atol=1e-9
        )


def test_row_feature_plans_pass_rows_through_and_flag_missing_inputs() -> None:
    plan = InputPlan(names=("a", "b"))
    stream: ModelInputs[None] = ModelInputs(plan)
    (ok,) = stream.push(5, {"a": 1.0, "b": 2.0, "c": 3.0}, None)
    assert ok.x is not None and ok.x.tolist() == [1.0, 2.0] and not ok.in_baseline
    (missing,) = stream.push(6, {"a": 1.0}, None)
    assert missing.x is None
    assert batch_inputs(plan, [{"a": 1.0}]) == [{"a": 1.0}]
