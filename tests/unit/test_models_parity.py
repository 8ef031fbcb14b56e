"""ONNX (onnxruntime, gateway session options) vs the NumPy / scikit-learn reference, for
every model family, plus the committed artifacts' contracts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from renkei.core.manifest import read_manifest
from renkei.edge.model.inference import AnomalyModel
from renkei.models import DEFAULT_ARTIFACTS_DIR, PROFILES
from renkei.models.artifact import make_session, run_outputs
from renkei.models.mahalanobis import fit_mahalanobis, reference_scores, to_onnx_bytes
from renkei.models.rul import fit_rul, reference_outputs
from renkei.models.rul import to_onnx_bytes as rul_onnx
from tests.datasets import require_data_dir


def _rel_err(got: np.ndarray, ref: np.ndarray) -> float:
    return float(np.max(np.abs(got - ref) / np.maximum(1.0, np.abs(ref))))


def test_mahalanobis_parity_plain_and_shrunk() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(6, 6))
    x = rng.normal(size=(500, 6)) @ a + 10.0
    probe = np.vstack([rng.normal(size=(200, 6)) @ a + 10.0, rng.normal(size=(50, 6)) * 30.0])
    probe32 = probe.astype(np.float32).astype(np.float64)
    for lw in (False, True):
        fit = fit_mahalanobis(x, ledoit_wolf=lw)
        got = run_outputs(make_session(to_onnx_bytes(fit)), probe)["score"]
        assert _rel_err(got, reference_scores(fit, probe32)) < 1e-4
        assert abs(float(np.mean(reference_scores(fit, x))) - 1.0) < (0.3 if lw else 1e-9)
    with pytest.raises(ValueError, match="singular"):
        fit_mahalanobis(np.c_[x[:, :2], x[:, :1]])


def test_rul_trees_parity_including_nan_and_threshold_ties() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2000, 5))
    x[:, 1] = np.round(x[:, 1], 1)  # many rows sit exactly on split thresholds
    y = np.clip(60 + 25 * x[:, 0] + 10 * x[:, 1] + rng.normal(size=2000), 0, 125)
    groups = np.repeat(np.arange(40), 50)
    fit = fit_rul(x, y, cap=125.0, groups=groups, params={"max_iter": 30, "max_leaf_nodes": 7})
    assert fit.calib_rows == 8 * 50 and np.isfinite(fit.band_adjust)  # CQR may also shrink
    probe = np.vstack([x[:300], rng.normal(size=(300, 5)) * 3])
    probe[::7, 2] = np.nan  # missing values follow scikit-learn's learned direction
    got = run_outputs(make_session(rul_onnx(fit)), probe)
    ref = reference_outputs(fit, probe)
    for key in ("rul", "rul_lo", "rul_hi", "score"):
        assert np.max(np.abs(got[key] - ref[key])) < 1e-3, key
    assert np.all(got["rul_lo"] <= got["rul"] + 1e-6) and np.all(got["rul"] <= got["rul_hi"] + 1e-6)
    np.testing.assert_allclose(got["score"], 125.0 - got["rul"], atol=1e-4)


def test_rul_mean_ensemble_parity_and_determinism() -> None:
    """Averaged mean regressors (feature subsampling, seeds 0..K-1), as cmapss ships them."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(1500, 6))
    y = np.clip(60 + 20 * x[:, 0] - 8 * x[:, 3] + rng.normal(size=1500), 0, 125)
    groups = np.repeat(np.arange(30), 50)
    params = {"max_iter": 25, "max_leaf_nodes": 7, "max_features": 0.5}
    fit = fit_rul(x, y, cap=125.0, groups=groups, params=params, mean_members=3)
    assert isinstance(fit.models[0], tuple) and len(fit.models[0]) == 3
    preds = [m.predict(x[:50].astype(np.float32).astype(np.float64)) for m in fit.models[0]]
    assert np.max(np.abs(preds[0] - preds[1])) > 1e-6  # the members do differ
    probe = np.vstack([x[:200], rng.normal(size=(200, 6)) * 3])
    got = run_outputs(make_session(rul_onnx(fit)), probe)
    ref = reference_outputs(fit, probe)
    for key in ("rul", "rul_lo", "rul_hi", "score"):
        assert np.max(np.abs(got[key] - ref[key])) < 1e-3, key
    np.testing.assert_allclose(ref["rul"][:50], np.clip(np.mean(preds, axis=0), 0, 125))
    again = fit_rul(x, y, cap=125.0, groups=groups, params=params, mean_members=3)
    assert rul_onnx(again) == rul_onnx(fit)  # deterministic bytes
    with pytest.raises(ValueError, match="mean_members"):
        fit_rul(x, y, cap=125.0, mean_members=0)


def test_nab_stream_graph_parity() -> None:
    from renkei.models.profiles.nab_stream import reference_scores as nab_ref
    from renkei.models.profiles.nab_stream import to_onnx_bytes as nab_onnx

    x = np.linspace(0.0, 120.0, 301)[:, None]
    got = run_outputs(make_session(nab_onnx(82.7, 6.8)), x)["score"]
    assert _rel_err(got, nab_ref(82.7, 6.8, x)) < 1e-5


@pytest.mark.parametrize("name", ["skab-pump-mahal", "nab-temp-stream", "cwru-bearing-mahal"])
def test_retraining_reproduces_the_committed_bytes(name: str, tmp_path: Path) -> None:
    data_dir = require_data_dir()
    manifest = PROFILES[name].train(data_dir, tmp_path / name)
    committed = read_manifest(DEFAULT_ARTIFACTS_DIR / name)
    assert manifest.sha256 == committed.sha256
    assert manifest.threshold == pytest.approx(committed.threshold)


def test_skab_artifact_parity_on_real_rows() -> None:
    from renkei.models.profiles import skab_z

    data = skab_z.build(require_data_dir())
    parts = skab_z.normal_parts(data)
    fitted = skab_z.fit_and_threshold(parts)
    from renkei.models.mahalanobis import fit_mahalanobis as fm

    feats = [skab_z.run_features(p, fitted.kept) for p in parts]
    fit = fm(np.vstack([f[: skab_z.FIT_ROWS] for f in feats]))
    probe = np.vstack([skab_z.run_features(r.x, fitted.kept) for r in data.runs])
    model = AnomalyModel.load(model_dir=DEFAULT_ARTIFACTS_DIR / skab_z.NAME)
    got = model.score(probe)
    ref = reference_scores(fit, probe.astype(np.float32).astype(np.float64))
    assert _rel_err(got, ref) < 1e-4


@pytest.mark.parametrize("name", ["cmapss-fd001-rul", "cmapss-fd002-rul", "mold-maint-rul"])
def test_rul_artifacts_contract(name: str) -> None:
    model_dir = DEFAULT_ARTIFACTS_DIR / name
    model = AnomalyModel.load(model_dir=model_dir)  # the gateway's loader accepts it
    manifest = model.manifest
    assert manifest.task == "rul" and manifest.rul_cap is not None
    assert manifest.training.fitted_on.startswith("supervised: ")
    assert [o.name for o in manifest.outputs] == ["rul", "rul_lo", "rul_hi", "score"]
    session = make_session((model_dir / manifest.onnx_file).read_bytes())
    rng = np.random.default_rng(2)
    x = rng.normal(size=(64, len(manifest.inputs)))
    out = run_outputs(session, x)
    assert np.all((out["rul"] >= 0) & (out["rul"] <= manifest.rul_cap))
    assert np.all(out["rul_lo"] <= out["rul"] + 1e-4) and np.all(out["rul"] <= out["rul_hi"] + 1e-4)
    np.testing.assert_allclose(model.score(x), out["score"], rtol=1e-6)
    np.testing.assert_allclose(out["score"], manifest.rul_cap - out["rul"], atol=1e-3)


def test_mold_recipe_parity_small() -> None:
    from renkei.models.profiles import mold

    runs = mold.simulate_runs(5000, 6)
    x = np.vstack([mold.run_features(r) for r in runs])
    y = np.concatenate([r.target for r in runs])
    fit = fit_rul(x, y, cap=mold.CAP, params={"max_iter": 20})
    got = run_outputs(make_session(rul_onnx(fit)), x)
    ref = reference_outputs(fit, x)
    assert np.max(np.abs(got["rul"] - ref["rul"])) < 1e-3
