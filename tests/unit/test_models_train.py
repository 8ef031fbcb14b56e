"""Train → export → load round trip on small synthetic data; threshold from normal data only."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from renkei.core.manifest import MANIFEST_FILE, MODEL_FILE, ModelManifest, read_manifest
from renkei.edge.model.inference import AnomalyModel
from renkei.models.train import export, fit_t2

NAMES = ["p_bar_mean", "p_bar_max", "t_C_mean", "i_A_mean"]
UNITS = {"p_bar_mean": "bar", "p_bar_max": "bar", "t_C_mean": "degC", "i_A_mean": "A"}


def _correlated(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    load = rng.normal(size=n)
    noise = rng.normal(scale=0.1, size=(n, 4))
    x: np.ndarray = np.c_[100 + 5 * load, 110 + 5 * load, 60 + 2 * load, 12 + load] + noise
    return x


def test_round_trip(tmp_path: Path) -> None:
    x = _correlated(1000, seed=1)
    model = fit_t2(x, NAMES, units=UNITS, quantile=0.99)
    manifest = export(
        model,
        tmp_path,
        name="synthetic-t2",
        version="0.1.0",
        data_source="synthetic (tests)",
        fitted_on="normal only: synthetic correlated rows",
        window_s=10.0,
        metrics={"auc": 0.9, "undefined": float("nan")},
        notes=["test note"],
    )
    assert (tmp_path / MODEL_FILE).is_file()
    assert (tmp_path / "MODEL_CARD.md").read_text().count("synthetic-t2") >= 1
    assert read_manifest(tmp_path) == manifest
    assert "undefined" not in manifest.metrics
    assert manifest.training.rows == 800
    assert manifest.training.holdout_rows == 200
    assert [s.unit for s in manifest.inputs] == [UNITS[n] for n in NAMES]
    raw = json.loads((tmp_path / MANIFEST_FILE).read_text())
    assert raw["created"].endswith("Z")

    loaded = AnomalyModel.load(model_dir=tmp_path, expected_sha256=manifest.sha256)
    assert loaded.input_names == tuple(NAMES)
    assert loaded.threshold == manifest.threshold
    assert (loaded.name, loaded.version) == ("synthetic-t2", "0.1.0")
    fresh_normal = _correlated(500, seed=2)
    scores = loaded.score(fresh_normal)
    assert scores.shape == (500,) and scores.dtype == np.float64
    assert np.all(np.isfinite(scores))
    np.testing.assert_allclose(scores, model.score(fresh_normal), rtol=1e-6)
    assert np.mean(scores > loaded.threshold) < 0.05
    broken = fresh_normal.copy()
    broken[:, 3] = broken[:, 3] - 3.0  # current no longer follows the load: correlation break
    assert np.mean(loaded.score(broken) > loaded.threshold) > 0.95


def test_threshold_is_quantile_of_holdout_normal_only() -> None:
    x = _correlated(1000, seed=3)
    model = fit_t2(x, NAMES, holdout_fraction=0.25, quantile=0.995)
    assert model.fit_rows == 750 and model.holdout_scores.size == 250
    expected = np.quantile(model.score(x[750:]), 0.995)
    assert model.threshold == pytest.approx(expected)
    # An explicit hold-out replaces the tail split and alone sets the threshold.
    hold = _correlated(300, seed=4)
    explicit = fit_t2(x, NAMES, holdout=hold)
    assert explicit.fit_rows == 1000
    assert explicit.threshold == pytest.approx(np.quantile(explicit.score(hold), 0.995))


def test_fit_names_constant_feature() -> None:
    x = _correlated(200, seed=5)
    x[:, 2] = 61.0
    with pytest.raises(ValueError, match="t_C_mean"):
        fit_t2(x, NAMES)


def test_fit_rejects_mismatched_names_and_tiny_holdout() -> None:
    x = _correlated(200, seed=6)
    with pytest.raises(ValueError, match="match names"):
        fit_t2(x, NAMES[:3])
    with pytest.raises(ValueError, match="hold-out has 10 rows"):
        fit_t2(x, NAMES, holdout_fraction=0.05)
    with pytest.raises(ValueError, match="not in names"):
        fit_t2(x, NAMES, units={"nope": "A"})


def test_manifest_requires_normal_only_and_semver(tmp_path: Path) -> None:
    model = fit_t2(_correlated(300, seed=7), NAMES)
    manifest = export(
        model,
        tmp_path,
        name="m",
        version="1.2.3",
        data_source="s",
        fitted_on="normal only: x",
        feature_kind="shot",
    )
    data = manifest.model_dump()
    with pytest.raises(ValueError, match="semantic"):
        ModelManifest.model_validate({**data, "version": "1.2"})
    with pytest.raises(ValueError, match="normal only"):
        ModelManifest.model_validate(
            {**data, "training": {**data["training"], "fitted_on": "everything"}}
        )
    with pytest.raises(ValueError, match="plain"):
        ModelManifest.model_validate({**data, "onnx_file": "../evil.onnx"})
