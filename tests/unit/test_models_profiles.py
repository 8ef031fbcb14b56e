"""Training profiles on the real datasets (skipped locally / failing in CI without them),
and the committed artifacts: they load, and their inputs are what the gateway computes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from renkei.core.manifest import read_manifest
from renkei.edge.features import slow_feature_names
from renkei.edge.model.inference import AnomalyModel
from renkei.edge.sources.presets import PRESETS
from renkei.models import DEFAULT_ARTIFACTS_DIR, PROFILES, train_profile
from renkei.models.profiles import cell
from renkei.models.profiles._common import evaluate
from renkei.models.t2 import reference_scores
from renkei.models.train import fit_t2
from tests.datasets import require_data_dir

REPO = Path(__file__).resolve().parents[2]


def test_unknown_profile_and_missing_data(tmp_path: Path) -> None:
    with pytest.raises(KeyError, match="known"):
        train_profile("nope", data_dir=tmp_path, out_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "skab/data/valve1/0.csv")):
        train_profile("skab-pump-t2", data_dir=tmp_path, out_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="machine_temperature_system_failure.csv"):
        train_profile("nab-temp-t2", data_dir=tmp_path, out_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="static_data.csv"):
        train_profile("kassel-shot-t2", data_dir=tmp_path, out_dir=tmp_path)


@pytest.mark.parametrize("name", ["skab-pump-t2", "nab-temp-t2", "kassel-shot-t2"])
def test_dataset_profile_round_trip(name: str, tmp_path: Path) -> None:
    data_dir = require_data_dir()
    manifest = train_profile(name, data_dir=data_dir, out_dir=tmp_path)
    model = AnomalyModel.load(model_dir=tmp_path / name, expected_sha256=manifest.sha256)
    assert model.name == name and np.isfinite(model.threshold)
    assert manifest.training.fitted_on.startswith("normal only: ")
    auc = [v for k, v in manifest.metrics.items() if k.endswith("roc_auc")]
    assert auc and all(0.5 < v <= 1.0 for v in auc)
    assert manifest.metrics["holdout_normal.far"] < 0.05


def test_skab_inputs_are_gateway_slow_features() -> None:
    manifest = read_manifest(DEFAULT_ARTIFACTS_DIR / "skab-pump-t2")
    fields = PRESETS["skab"].columns.values()
    assert list(manifest.input_names) == slow_feature_names(fields)


def test_kassel_inputs_are_shot_fields() -> None:
    manifest = read_manifest(DEFAULT_ARTIFACTS_DIR / "kassel-shot-t2")
    assert manifest.feature_kind == "shot"
    assert set(manifest.input_names) <= set(PRESETS["kassel"].columns.values())


def test_onnx_parity_on_real_shots() -> None:
    data_dir = require_data_dir()
    data = PROFILES["kassel-shot-t2"].build(data_dir)
    assert data.x_holdout is not None
    model = fit_t2(data.x_fit, data.names, holdout=data.x_holdout)
    probe = np.vstack([data.x_holdout, *(ev.x[-200:] for ev in data.eval_sets)])
    ref = reference_scores(model.fit, probe.astype(np.float32).astype(np.float64))["score"]
    got = model.score(probe)
    assert np.max(np.abs(got - ref) / np.maximum(1.0, np.abs(ref))) < 1e-4
    again = fit_t2(data.x_fit, data.names, holdout=data.x_holdout)
    assert again.onnx_bytes == model.onnx_bytes  # retraining reproduces the same bytes


def test_cell_profile_small(tmp_path: Path) -> None:
    data = cell.build(
        tmp_path,
        run_s=40.0,
        fit_seeds=(1, 2, 3),
        holdout_seeds=(4,),
        fault_run_s=40.0,
        fault_start_s=20.0,
        fault_ramp_s=0.0,
        workers=1,
    )
    assert data.window_s == 1.0
    assert data.names[-1].startswith("vib_") and "oil_temp_C_mean" in data.names
    model = fit_t2(data.x_fit, data.names, holdout=data.x_holdout)
    metrics = evaluate(model, data.eval_sets)
    assert metrics["bearing_wear.roc_auc"] > 0.9
    assert metrics["heater_band_failure.roc_auc"] > 0.9


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_committed_artifact_loads(name: str) -> None:
    model_dir = DEFAULT_ARTIFACTS_DIR / name
    model = AnomalyModel.load(model_dir=model_dir)
    manifest = model.manifest
    assert model.score(np.zeros((1, len(model.input_names)))).shape == (1,)
    assert (model_dir / "MODEL_CARD.md").is_file()
    assert manifest.version == PROFILES[name].version
    # Demo gateway configs that use this model must cut the same windows.
    for cfg_path in sorted((REPO / "firmware-config").glob("*.yaml")):
        cfg = yaml.safe_load(cfg_path.read_text())
        for machine in cfg.get("machines", []):
            model_cfg = machine.get("model") or {}
            if Path(str(model_cfg.get("dir", ""))).name == name and manifest.window_s:
                assert machine.get("window_s", 10.0) == manifest.window_s, cfg_path
