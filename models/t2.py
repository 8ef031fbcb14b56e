"""PCA-based Hotelling T² + SPE (Q) anomaly score, fitted with scikit-learn, exported to ONNX.

Algorithm (classical multivariate statistical process control, e.g. MacGregor & Kourti,
"Statistical process control of multivariate processes", Control Eng. Practice 3(3), 1995;
the "T-squared+Q (PCA)" baseline of the SKAB benchmark, Katser & Kozitsin 2020):

1. standardise each feature with the mean and standard deviation of the NORMAL fit rows;
2. PCA (full SVD, deterministic) keeps the ``k`` leading components that explain at least
   ``variance_to_keep`` of the standardised variance (at most ``n_features - 1`` so that a
   residual subspace remains);
3. per row ``z`` (standardised) with scores ``t = P^T (z - m)`` and whitened scores
   ``t_w = t / sqrt(lambda)``:

   - ``T² = sum(t_w**2)`` (Hotelling's T² in the principal subspace; mean ≈ k on normal data)
   - ``SPE = Q = ||(z - m) - P t||²`` (squared prediction error in the residual subspace)
   - ``score = T²/k + Q/q_scale`` with ``q_scale`` = mean Q on the fit rows, so each term has
     mean ≈ 1 on normal data and ``score`` ≈ 2 on normal data (dimensionless).

The ONNX graph is produced by skl2onnx for ``Pipeline(StandardScaler, PCA(whiten=True))``;
T², Q and ``score`` are then appended as standard ONNX nodes (``ReduceSumSquare``, ``MatMul``,
``Sub``, ``Mul``, ``Add``). Input ``x`` float32 (N, n_features); outputs ``score``, ``t2``,
``spe``, each float32 (N,).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import onnx
from numpy.typing import NDArray
from onnx import TensorProto, helper, numpy_helper
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType
from sklearn.decomposition import PCA
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

__all__ = ["ONNX_OPSET", "OUTPUT_NAMES", "T2Fit", "fit_pca_t2", "reference_scores", "to_onnx_bytes"]

#: Default ONNX opset (ReduceSumSquare takes ``axes`` as an attribute up to opset 17).
ONNX_OPSET: Final = 17
#: Graph outputs, in order.
OUTPUT_NAMES: Final = ("score", "t2", "spe")

#: Relative standard-deviation floor below which a feature counts as constant on normal data.
_CONSTANT_RTOL: Final = 1e-9


@dataclass(frozen=True, slots=True)
class T2Fit:
    """A fitted T²+Q model.

    Attributes:
        pipeline: ``Pipeline([("scaler", StandardScaler), ("pca", PCA(whiten=True))])``.
        n_components: k, kept principal components.
        variance_kept: explained-variance fraction of the k components (standardised space).
        q_scale: mean SPE on the fit rows (> 0), divides Q in ``score``.
        n_features: input width.
    """

    pipeline: Pipeline
    n_components: int
    variance_kept: float
    q_scale: float
    n_features: int


def _check_matrix(x: NDArray[np.floating], what: str) -> NDArray[np.float64]:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{what} must be 2-D (rows, features), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        bad = np.flatnonzero(~np.all(np.isfinite(arr), axis=0)).tolist()
        raise ValueError(f"{what} has NaN/inf values in feature columns {bad}")
    return arr


def constant_columns(x: NDArray[np.floating]) -> list[int]:
    """Indices of columns whose standard deviation is negligible relative to their magnitude."""
    arr = np.asarray(x, dtype=np.float64)
    std = arr.std(axis=0)
    scale = np.maximum(np.abs(arr).max(axis=0), 1e-300)
    return np.flatnonzero(std <= _CONSTANT_RTOL * scale).tolist()


def fit_pca_t2(
    x: NDArray[np.floating], *, variance_to_keep: float = 0.95, max_components: int | None = None
) -> T2Fit:
    """Fit the scaler, choose k and fit the whitened PCA on NORMAL rows ``x`` (N, F).

    Args:
        x: normal-operation feature rows, shape (N, F), F ≥ 2, N > F.
        variance_to_keep: smallest cumulative explained-variance fraction of the kept
            components, in (0, 1].
        max_components: optional cap on k (always ≤ F - 1).

    Raises:
        ValueError: wrong shape, non-finite values, too few rows, constant columns
            (the error lists their indices; drop them before fitting), bad ``variance_to_keep``.
    """
    arr = _check_matrix(x, "x")
    n_rows, n_features = arr.shape
    if n_features < 2:
        raise ValueError(f"T²+Q needs at least 2 features, got {n_features}")
    if n_rows <= n_features:
        raise ValueError(
            f"need more fit rows than features, got {n_rows} rows for {n_features} features"
        )
    if not 0.0 < variance_to_keep <= 1.0:
        raise ValueError(f"variance_to_keep must be in (0, 1], got {variance_to_keep}")
    constant = constant_columns(arr)
    if constant:
        raise ValueError(
            f"feature columns {constant} are constant on the normal fit data; drop them"
        )

    scaler = StandardScaler().fit(arr)
    z = scaler.transform(arr)
    ratios = PCA(svd_solver="full").fit(z).explained_variance_ratio_
    cap = n_features - 1 if max_components is None else min(max_components, n_features - 1)
    k = int(np.searchsorted(np.cumsum(ratios), variance_to_keep - 1e-12) + 1)
    k = max(1, min(k, cap))
    pca = PCA(n_components=k, whiten=True, svd_solver="full").fit(z)
    pipeline = Pipeline([("scaler", scaler), ("pca", pca)])
    _, q = _t2_q(pipeline, arr)
    q_scale = float(q.mean())
    if not q_scale > 0.0:
        raise ValueError("residual (SPE) is zero on all fit rows; features are linearly dependent")
    return T2Fit(
        pipeline=pipeline,
        n_components=k,
        variance_kept=float(ratios[:k].sum()),
        q_scale=q_scale,
        n_features=n_features,
    )


def _t2_q(
    pipeline: Pipeline, x: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    scaler: StandardScaler = pipeline.named_steps["scaler"]
    pca: PCA = pipeline.named_steps["pca"]
    zc = scaler.transform(x) - pca.mean_
    t = zc @ pca.components_.T
    t2 = np.sum(t**2 / pca.explained_variance_, axis=1)
    resid = zc - t @ pca.components_
    return t2, np.sum(resid**2, axis=1)


def reference_scores(fit: T2Fit, x: NDArray[np.floating]) -> dict[str, NDArray[np.float64]]:
    """Float64 NumPy reference of the ONNX outputs for rows ``x`` (N, F).

    Returns:
        ``{"score": (N,), "t2": (N,), "spe": (N,)}``.

    Raises:
        ValueError: wrong shape or width, non-finite values.
    """
    arr = _check_matrix(x, "x")
    if arr.shape[1] != fit.n_features:
        raise ValueError(f"x has {arr.shape[1]} features, model expects {fit.n_features}")
    t2, q = _t2_q(fit.pipeline, arr)
    return {"score": t2 / fit.n_components + q / fit.q_scale, "t2": t2, "spe": q}


def _find_node(
    graph: onnx.GraphProto, op_type: str, first_input: str | None = None
) -> onnx.NodeProto:
    for node in graph.node:
        if node.op_type == op_type and (first_input is None or node.input[0] == first_input):
            return node  # type: ignore[no-any-return]
    raise RuntimeError(
        f"skl2onnx graph has no {op_type} node (input {first_input}); converter changed?"
    )


def to_onnx_bytes(
    fit: T2Fit, *, input_name: str = "x", doc: str = "", opset: int = ONNX_OPSET
) -> bytes:
    """Convert a :class:`T2Fit` to a serialised ONNX model.

    Graph: input ``input_name`` float32 (N, F) → outputs ``score``, ``t2``, ``spe`` float32 (N,).

    Raises:
        RuntimeError: the skl2onnx graph does not have the expected structure.
        onnx.checker.ValidationError: the final graph is invalid.
    """
    model = to_onnx(
        fit.pipeline,
        initial_types=[(input_name, FloatTensorType([None, fit.n_features]))],
        target_opset={"": opset, "ai.onnx.ml": 3},
    )
    graph = model.graph
    # skl2onnx layout: Scaler(x) -> Sub(mean) -> MatMul(components^T) -> Div(sqrt(lambda)) -> out
    scaler = _find_node(graph, "Scaler", input_name)
    centred = _find_node(graph, "Sub", scaler.output[0]).output[0]
    projected = _find_node(graph, "MatMul", centred).output[0]
    whitened = graph.output[0].name
    pca: PCA = fit.pipeline.named_steps["pca"]

    inits = [
        numpy_helper.from_array(pca.components_.astype(np.float32), "rk_components"),
        numpy_helper.from_array(np.array(1.0 / fit.n_components, dtype=np.float32), "rk_inv_k"),
        numpy_helper.from_array(np.array(1.0 / fit.q_scale, dtype=np.float32), "rk_inv_q_scale"),
    ]
    nodes = [
        helper.make_node("ReduceSumSquare", [whitened], ["t2"], axes=[1], keepdims=0, name="rk_t2"),
        helper.make_node("MatMul", [projected, "rk_components"], ["rk_recon"], name="rk_recon"),
        helper.make_node("Sub", [centred, "rk_recon"], ["rk_resid"], name="rk_resid"),
        helper.make_node(
            "ReduceSumSquare", ["rk_resid"], ["spe"], axes=[1], keepdims=0, name="rk_spe"
        ),
        helper.make_node("Mul", ["t2", "rk_inv_k"], ["rk_t2n"], name="rk_t2n"),
        helper.make_node("Mul", ["spe", "rk_inv_q_scale"], ["rk_spen"], name="rk_spen"),
        helper.make_node("Add", ["rk_t2n", "rk_spen"], ["score"], name="rk_score"),
    ]
    graph.initializer.extend(inits)
    graph.node.extend(nodes)
    del graph.output[:]
    graph.output.extend(
        helper.make_tensor_value_info(name, TensorProto.FLOAT, [None]) for name in OUTPUT_NAMES
    )
    graph.name = "renkei_pca_t2_spe"
    model.doc_string = doc
    onnx.checker.check_model(model, full_check=True)
    data: bytes = model.SerializeToString()
    return data
