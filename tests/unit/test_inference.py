"""Gateway loader: integrity checks (tampered bytes, hash pins), input validation, latency."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from renkei.core.manifest import MANIFEST_FILE, MODEL_FILE
from renkei.edge.model.inference import (
    AnomalyModel,
    ModelError,
    ModelInputError,
    ModelIntegrityError,
)
from renkei.models.train import export, fit_t2

NAMES = ["a_mean", "b_mean", "c_max"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    base = rng.normal(size=(600, 1))
    x = np.c_[base, 2 * base, -base] + rng.normal(scale=0.2, size=(600, 3))
    out = tmp_path_factory.mktemp("model")
    export(
        fit_t2(x, NAMES),
        out,
        name="unit-t2",
        version="1.0.0",
        data_source="synthetic",
        fitted_on="normal only: synthetic",
        window_s=1.0,
    )
    return out


def _copy(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for name in (MANIFEST_FILE, MODEL_FILE):
        (dst / name).write_bytes((src / name).read_bytes())
    return dst


def test_loads_and_scores(model_dir: Path) -> None:
    model = AnomalyModel.load(model_dir=model_dir)
    assert model.input_names == tuple(NAMES)
    single = model.score(np.zeros(3))
    assert single.shape == (1,) and np.isfinite(single).all()
    assert model.score_features({"c_max": 0.0, "a_mean": 0.0, "b_mean": 0.0, "extra": 5.0}) == (
        pytest.approx(float(single[0]))
    )
    assert "unit-t2" in repr(model)


def test_refuses_flipped_byte(model_dir: Path, tmp_path: Path) -> None:
    bad = _copy(model_dir, tmp_path / "bad")
    data = bytearray((bad / MODEL_FILE).read_bytes())
    data[len(data) // 2] ^= 0x01
    (bad / MODEL_FILE).write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="manifest says"):
        AnomalyModel.load(model_dir=bad)


def test_refuses_manifest_sha_mismatch(model_dir: Path, tmp_path: Path) -> None:
    bad = _copy(model_dir, tmp_path / "bad")
    manifest = json.loads((bad / MANIFEST_FILE).read_text())
    manifest["sha256"] = "0" * 64
    (bad / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(ModelIntegrityError, match="refusing model unit-t2"):
        AnomalyModel.load(model_dir=bad)


def test_refuses_pin_mismatch_and_missing_pin(model_dir: Path) -> None:
    with pytest.raises(ModelIntegrityError, match="gateway configuration pins"):
        AnomalyModel.load(model_dir=model_dir, expected_sha256="a" * 64)
    with pytest.raises(ModelIntegrityError, match="require_pin"):
        AnomalyModel.load(model_dir=model_dir, require_pin=True)
    with pytest.raises(ModelError, match="64 hex"):
        AnomalyModel.load(model_dir=model_dir, expected_sha256="abc")
    good = AnomalyModel.load(model_dir=model_dir)
    pinned = AnomalyModel.load(
        model_dir=model_dir, expected_sha256=good.sha256.upper(), require_pin=True
    )
    assert pinned.sha256 == good.sha256


def test_missing_files(tmp_path: Path, model_dir: Path) -> None:
    with pytest.raises(ModelError, match="no model manifest"):
        AnomalyModel.load(model_dir=tmp_path)
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / MANIFEST_FILE).write_bytes((model_dir / MANIFEST_FILE).read_bytes())
    with pytest.raises(ModelError, match="does not exist"):
        AnomalyModel.load(model_dir=partial)
    (partial / MANIFEST_FILE).write_text("{}")
    with pytest.raises(ModelError, match="invalid model manifest"):
        AnomalyModel.load(model_dir=partial)


def test_refuses_manifest_graph_mismatch(model_dir: Path, tmp_path: Path) -> None:
    bad = _copy(model_dir, tmp_path / "bad")
    manifest = json.loads((bad / MANIFEST_FILE).read_text())
    manifest["inputs"] = manifest["inputs"][:2]
    (bad / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="does not match 2 manifest inputs"):
        AnomalyModel.load(model_dir=bad)


def test_input_validation(model_dir: Path) -> None:
    model = AnomalyModel.load(model_dir=model_dir)
    with pytest.raises(ModelInputError, match="expects rows of 3 features"):
        model.score(np.zeros((2, 4)))
    with pytest.raises(ModelInputError, match="expects rows of 3 features"):
        model.score(np.zeros((2, 3, 1)))
    with pytest.raises(ModelInputError, match="not numeric"):
        model.score([["a", "b", "c"]])
    with pytest.raises(ModelInputError, match=r"\['b_mean'\]"):
        model.score(np.array([[0.0, np.nan, 0.0]]))
    with pytest.raises(ModelInputError, match=r"\['c_max'\]"):
        model.score_features({"a_mean": 0.0, "b_mean": 0.0})
    with pytest.raises(ModelInputError, match="c_max"):
        model.check_feature_names(["a_mean", "b_mean"])
    model.check_feature_names(["c_max", "b_mean", "a_mean", "other"])


def test_single_row_latency(model_dir: Path) -> None:
    model = AnomalyModel.load(model_dir=model_dir)
    row = np.zeros((1, 3), dtype=np.float32)
    for _ in range(50):
        model.score(row)
    n = 2000
    start = time.perf_counter()
    for _ in range(n):
        model.score(row)
    per_call = (time.perf_counter() - start) / n
    assert per_call < 2e-3  # generous bound for loaded CI machines; target is ≤ 0.2 ms
