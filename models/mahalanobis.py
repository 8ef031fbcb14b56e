"""Mean squared Mahalanobis distance to normal data, fitted with NumPy, exported to ONNX.

``score = (x - m)^T S^-1 (x - m) / F`` for a row ``x`` of F features, with ``m`` and ``S``
the mean and covariance of the NORMAL fit rows (Mahalanobis 1936; the full-rank Hotelling
T² of multivariate SPC, Montgomery, *Introduction to Statistical Quality Control*, ch. 11).
On normal data ``score`` has mean ≈ 1 (dimensionless). Unlike :mod:`renkei.models.t2` (k leading
components + SPE/Q), every direction gets the weight of its own variance, which matters
when a fault shows in a low-variance direction (the SKAB valve closure moves flow against
pressure and current).

Optional Ledoit-Wolf shrinkage (Ledoit & Wolf 2004, J. Multivariate Anal. 88:365-411;
``sklearn.covariance.LedoitWolf``) for small fit sets (CWRU: tens of windows): the
covariance of the per-feature standardised rows is shrunk towards a scaled identity, then
mapped back (``S = D C D``, ``D`` = diag of the standard deviations), so features of very
different scales (g² band powers, mm/s) are shrunk alike.

ONNX graph (opset 17): input ``x`` float32 (N, F) → ``Sub(m)`` → ``MatMul(W)`` with
``W = V diag(λ^-1/2)`` (eigen-decomposition ``S = V diag(λ) V^T``) → ``ReduceSumSquare``
→ ``Mul(1/F)`` → output ``score`` float32 (N,).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import onnx
from numpy.typing import NDArray
from onnx import TensorProto, helper, numpy_helper

__all__ = ["ONNX_OPSET", "MahalanobisFit", "fit_mahalanobis", "reference_scores", "to_onnx_bytes"]

ONNX_OPSET: Final = 17
_EIG_FLOOR_REL: Final = 1e-9


@dataclass(frozen=True, slots=True)
class MahalanobisFit:
    """A fitted normal-data model.

    Attributes:
        mean: (F,) mean of the fit rows.
        whitening: (F, F) ``W`` with ``W W^T = S^-1``.
        n_features: F.
        shrinkage: Ledoit-Wolf shrinkage intensity used (0 = plain covariance).
    """

    mean: NDArray[np.float64]
    whitening: NDArray[np.float64]
    n_features: int
    shrinkage: float


def fit_mahalanobis(x: NDArray[np.floating], *, ledoit_wolf: bool = False) -> MahalanobisFit:
    """Fit mean and (optionally shrunk) covariance on NORMAL rows ``x`` (N, F).

    Raises:
        ValueError: not 2-D, non-finite values, N ≤ F (without shrinkage) or N < 2, or a
            covariance that is singular (a constant or duplicated feature).
    """
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] < 1:
        raise ValueError(f"x must be 2-D (rows, features), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("x has NaN/inf values")
    n, f = arr.shape
    if n < 2 or (not ledoit_wolf and n <= f):
        raise ValueError(f"need more rows than features to fit a covariance, got {n} for {f}")
    mean = arr.mean(axis=0)
    shrinkage = 0.0
    if ledoit_wolf:
        from sklearn.covariance import LedoitWolf

        scale = arr.std(axis=0)
        if np.any(scale <= 0):
            raise ValueError(f"constant feature columns {np.flatnonzero(scale <= 0).tolist()}")
        lw = LedoitWolf(assume_centered=False).fit(arr / scale)
        cov = np.asarray(lw.covariance_, dtype=np.float64) * np.outer(scale, scale)
        shrinkage = float(lw.shrinkage_)
    else:
        cov = np.cov(arr, rowvar=False, bias=True).reshape(f, f)
    lam, vec = np.linalg.eigh(cov)
    if lam.max() <= 0 or lam.min() <= _EIG_FLOOR_REL * lam.max():
        raise ValueError(
            "covariance of the normal fit rows is singular (constant or linearly dependent "
            "features); drop them or use ledoit_wolf=True"
        )
    whitening = vec / np.sqrt(lam)[None, :]
    return MahalanobisFit(mean=mean, whitening=whitening, n_features=f, shrinkage=shrinkage)


def reference_scores(fit: MahalanobisFit, x: NDArray[np.floating]) -> NDArray[np.float64]:
    """Float64 NumPy reference of the ONNX ``score`` for rows ``x`` (N, F).

    Raises:
        ValueError: wrong width.
    """
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != fit.n_features:
        raise ValueError(f"x must have shape (N, {fit.n_features}), got {arr.shape}")
    w = (arr - fit.mean) @ fit.whitening
    out: NDArray[np.float64] = np.sum(w * w, axis=1) / fit.n_features
    return out


def to_onnx_bytes(fit: MahalanobisFit, *, doc: str = "", input_name: str = "x") -> bytes:
    """Serialised ONNX graph: ``x`` float32 (N, F) → ``score`` float32 (N,).

    Raises:
        onnx.checker.ValidationError: the graph is invalid.
    """
    f = fit.n_features
    graph = helper.make_graph(
        nodes=[
            helper.make_node("Sub", [input_name, "rk_mean"], ["rk_centred"], name="rk_centre"),
            helper.make_node("MatMul", ["rk_centred", "rk_whiten"], ["rk_w"], name="rk_whiten"),
            helper.make_node(
                "ReduceSumSquare", ["rk_w"], ["rk_d2"], axes=[1], keepdims=0, name="rk_d2"
            ),
            helper.make_node("Mul", ["rk_d2", "rk_inv_f"], ["score"], name="rk_score"),
        ],
        name="renkei_mahalanobis",
        inputs=[helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [None, f])],
        outputs=[helper.make_tensor_value_info("score", TensorProto.FLOAT, [None])],
        initializer=[
            numpy_helper.from_array(fit.mean.astype(np.float32), "rk_mean"),
            numpy_helper.from_array(fit.whitening.astype(np.float32), "rk_whiten"),
            numpy_helper.from_array(np.array(1.0 / f, dtype=np.float32), "rk_inv_f"),
        ],
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", ONNX_OPSET)],
        producer_name="renkei.models.mahalanobis",
        doc_string=doc,
    )
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    data: bytes = model.SerializeToString()
    return data
