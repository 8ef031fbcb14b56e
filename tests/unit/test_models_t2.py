"""PCA T²+SPE model: ONNX (onnxruntime) vs NumPy/scikit-learn parity, determinism, errors."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from renkei.models.metrics import binary_metrics, roc_auc
from renkei.models.t2 import OUTPUT_NAMES, fit_pca_t2, reference_scores, to_onnx_bytes


def _normal(n: int, f: int = 6, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(f, f))
    return rng.normal(size=(n, f)) @ mixing + rng.uniform(-200, 200, size=f)


def test_onnx_matches_numpy_reference() -> None:
    x = _normal(600)
    fit = fit_pca_t2(x, variance_to_keep=0.9)
    session = ort.InferenceSession(to_onnx_bytes(fit), providers=["CPUExecutionProvider"])
    probe = np.vstack([x[:50], x[:50] * 1.5, _normal(50, seed=9)])
    outputs = session.run(list(OUTPUT_NAMES), {"x": probe.astype(np.float32)})
    ref = reference_scores(fit, probe.astype(np.float32).astype(np.float64))
    for name, got in zip(OUTPUT_NAMES, outputs, strict=True):
        assert got.shape == (probe.shape[0],)
        assert got.dtype == np.float32
        rel = np.abs(got - ref[name]) / np.maximum(1.0, np.abs(ref[name]))
        assert rel.max() < 1e-4, name


def test_normal_score_is_about_two_and_components_capped() -> None:
    x = _normal(2000)
    fit = fit_pca_t2(x, variance_to_keep=1.0)
    assert fit.n_components == x.shape[1] - 1  # a residual subspace always remains
    score = reference_scores(fit, x)["score"]
    assert score.mean() == pytest.approx(2.0, rel=0.01)


def test_export_is_byte_deterministic() -> None:
    x = _normal(300)
    assert to_onnx_bytes(fit_pca_t2(x)) == to_onnx_bytes(fit_pca_t2(x.copy()))


@pytest.mark.parametrize(
    ("x", "message"),
    [
        (np.ones((10, 1)), "at least 2 features"),
        (np.random.default_rng(0).normal(size=(3, 5)), "more fit rows"),
        (np.c_[np.random.default_rng(0).normal(size=(50, 3)), np.full(50, 7.0)], "constant"),
        (np.array([[1.0, np.nan]] * 20), "NaN"),
    ],
)
def test_fit_rejects_bad_input(x: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        fit_pca_t2(x)


def test_metrics_weighted_and_auc() -> None:
    scores = np.array([0.1, 0.4, 0.35, 0.8])
    labels = np.array([0, 0, 1, 1])
    assert roc_auc(scores, labels) == pytest.approx(0.75)
    assert roc_auc(np.ones(4), labels) == pytest.approx(0.5)
    m = binary_metrics(scores, labels, 0.3, weights=np.array([1.0, 1.0, 2.0, 2.0]))
    assert m["far"] == pytest.approx(0.5)  # 1 of 2 weighted negatives alarms
    assert m["mar"] == pytest.approx(0.0)
    assert m["f1"] == pytest.approx(2 * 4 / (2 * 4 + 1))
