"""Remaining-useful-life regressors: median + quantile gradient boosting, one ONNX graph.

Three ``sklearn.ensemble.HistGradientBoostingRegressor`` models on the same features: the
mean estimate (squared-error loss, fitted on all training groups; optionally the average of
``mean_members`` models that differ only in their random seed, which matters with feature
subsampling ``max_features < 1``) and two quantile models
(pinball loss, Koenker & Bassett 1978) fitted on the training groups minus a calibration
share; the band is then widened by split-conformal calibration on the held-out groups
(conformalized quantile regression, Romano, Patterson & Candès 2019): ``q`` = the
``ceil((n+1)·coverage)/n`` quantile of ``max(lo - y, y - hi)`` over the calibration rows.
They are exported as one ``TreeEnsembleRegressor`` node with three targets
(:mod:`renkei.models.trees`), then:

- ``rul = clip(t0, 0, cap)``, ``rul_lo = min(clip(t1 - q, 0, cap), rul)``,
  ``rul_hi = max(clip(t2 + q, 0, cap), rul)`` (no quantile crossing);
- ``score = cap - rul`` (life consumed beyond the healthy plateau), so the gateway's
  ``score > threshold`` rule means "predicted RUL below ``cap - threshold``".

Input ``x`` float32 (N, F); outputs ``rul``, ``rul_lo``, ``rul_hi``, ``score``: float32 (N,)
in the units of the target (cycles or shots).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import onnx
from numpy.typing import NDArray
from onnx import TensorProto, helper, numpy_helper

from renkei.models.trees import ML_OPSET, tree_ensemble_node

__all__ = ["ONNX_OPSET", "OUTPUTS", "RulFit", "fit_rul", "reference_outputs", "to_onnx_bytes"]

ONNX_OPSET: Final = 17
OUTPUTS: Final = ("rul", "rul_lo", "rul_hi", "score")


@dataclass(frozen=True)
class RulFit:
    """Three fitted regressors and the target cap.

    Attributes:
        models: (mean, lower quantile, upper quantile) regressors; each entry is one
            regressor or a tuple of regressors whose predictions are averaged.
        cap: RUL cap (units of the target).
        quantiles: (lower, upper) quantile levels.
        n_features: input width.
        band_adjust: conformal widening ``q`` of the quantile band (units of the target).
        calib_rows: rows the band was calibrated on (0 = not calibrated).
    """

    models: tuple[Any, Any, Any]
    cap: float
    quantiles: tuple[float, float]
    n_features: int
    band_adjust: float = 0.0
    calib_rows: int = 0


def fit_rul(
    x: NDArray[np.floating],
    y: NDArray[np.floating],
    *,
    cap: float,
    groups: NDArray[np.integer] | None = None,
    calib_mask: NDArray[np.bool_] | None = None,
    calib_fraction: float = 0.2,
    quantiles: tuple[float, float] = (0.1, 0.9),
    params: dict[str, Any] | None = None,
    seed: int = 0,
    mean_members: int = 1,
) -> RulFit:
    """Fit the three regressors on rows ``x`` (N, F) and capped targets ``y`` (N,).

    Args:
        groups: (N,) unit id of each row (engine, machine run). With groups, a random
            ``calib_fraction`` of the units is held out from the quantile models and
            calibrates the band (conformal); without, the band is not calibrated.
        calib_mask: (N,) rows eligible as calibration points (e.g. cycles with enough
            history, like the rows that will be scored); default all rows of the held-out
            units.
        params: HistGradientBoostingRegressor keyword arguments shared by the three models.
        mean_members: number of mean regressors (seeds ``seed .. seed + mean_members - 1``)
            averaged into the ``rul`` output.

    Raises:
        ValueError: shapes disagree, non-finite values, a quantile outside (0, 1), or
            ``mean_members < 1``.
    """
    from sklearn.ensemble import HistGradientBoostingRegressor
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    xa = np.asarray(x, dtype=np.float32).astype(np.float64)  # the graph sees float32
    ya = np.asarray(y, dtype=np.float64)
    if xa.ndim != 2 or ya.shape != (xa.shape[0],):
        raise ValueError(f"x {xa.shape} and y {ya.shape} must have one target per row")
    if not (np.all(np.isfinite(xa)) and np.all(np.isfinite(ya))):
        raise ValueError("x and y must be finite")
    if not all(0 < q < 1 for q in quantiles) or quantiles[0] >= quantiles[1]:
        raise ValueError(f"quantiles must satisfy 0 < lo < hi < 1, got {quantiles}")
    if mean_members < 1:
        raise ValueError(f"mean_members must be >= 1, got {mean_members}")
    quant_rows = np.ones(ya.size, dtype=bool)
    calib = np.zeros(ya.size, dtype=bool)
    if groups is not None:
        g = np.asarray(groups)
        units = np.unique(g)
        rng = np.random.default_rng(seed)
        held = rng.choice(units, size=max(1, round(calib_fraction * units.size)), replace=False)
        in_held = np.isin(g, held)
        quant_rows = ~in_held
        calib = in_held & (np.ones_like(in_held) if calib_mask is None else calib_mask)
    kw = {"random_state": seed, "early_stopping": False, **(params or {})}
    mean_kw = [{**kw, "random_state": seed + k} for k in range(mean_members)]
    # One OpenMP thread: identical results on any machine, and no thread oversubscription
    # on a shared 2-core box (where OpenMP spinning made fits 5-100x slower).
    with threadpool_limits(limits=1, user_api="openmp"):
        means = tuple(
            HistGradientBoostingRegressor(loss="squared_error", **k).fit(xa, ya) for k in mean_kw
        )
        lo = HistGradientBoostingRegressor(loss="quantile", quantile=quantiles[0], **kw)
        lo.fit(xa[quant_rows], ya[quant_rows])
        hi = HistGradientBoostingRegressor(loss="quantile", quantile=quantiles[1], **kw)
        hi.fit(xa[quant_rows], ya[quant_rows])
    adjust = 0.0
    if calib.any():
        conformity = np.maximum(
            lo.predict(xa[calib]) - ya[calib], ya[calib] - hi.predict(xa[calib])
        )
        n = conformity.size
        level = min(1.0, np.ceil((n + 1) * (quantiles[1] - quantiles[0])) / n)
        adjust = float(np.quantile(conformity, level, method="higher"))
    mean: Any = means[0] if mean_members == 1 else means
    return RulFit((mean, lo, hi), float(cap), quantiles, xa.shape[1], adjust, int(calib.sum()))


def reference_outputs(fit: RulFit, x: NDArray[np.floating]) -> dict[str, NDArray[np.float64]]:
    """NumPy/scikit-learn reference of the ONNX outputs (rows cast to float32 first)."""
    xa = np.asarray(x, dtype=np.float32).astype(np.float64)
    t = [
        np.mean([np.asarray(m.predict(xa), dtype=np.float64) for m in _members(e)], axis=0)
        for e in fit.models
    ]
    rul = np.clip(t[0], 0.0, fit.cap)
    return {
        "rul": rul,
        "rul_lo": np.minimum(np.clip(t[1] - fit.band_adjust, 0.0, fit.cap), rul),
        "rul_hi": np.maximum(np.clip(t[2] + fit.band_adjust, 0.0, fit.cap), rul),
        "score": fit.cap - rul,
    }


def _members(entry: Any) -> tuple[Any, ...]:
    return tuple(entry) if isinstance(entry, (tuple, list)) else (entry,)


def to_onnx_bytes(fit: RulFit, *, doc: str = "") -> bytes:
    """Serialised ONNX graph (see the module docstring).

    Raises:
        onnx.checker.ValidationError: the graph is invalid.
    """
    trees = tree_ensemble_node(list(fit.models), input_name="x", output_name="rk_t")
    nodes = [trees]
    for j, name in enumerate(("rk_t0", "rk_t1", "rk_t2")):
        nodes.append(helper.make_node("Gather", ["rk_t", f"rk_i{j}"], [name], axis=1, name=name))
    nodes += [
        helper.make_node("Clip", ["rk_t0", "rk_zero", "rk_cap"], ["rul"], name="rk_rul"),
        helper.make_node("Sub", ["rk_t1", "rk_adj"], ["rk_t1a"], name="rk_t1a"),
        helper.make_node("Add", ["rk_t2", "rk_adj"], ["rk_t2a"], name="rk_t2a"),
        helper.make_node("Clip", ["rk_t1a", "rk_zero", "rk_cap"], ["rk_lo"], name="rk_lo"),
        helper.make_node("Clip", ["rk_t2a", "rk_zero", "rk_cap"], ["rk_hi"], name="rk_hi"),
        helper.make_node("Min", ["rk_lo", "rul"], ["rul_lo"], name="rk_rul_lo"),
        helper.make_node("Max", ["rk_hi", "rul"], ["rul_hi"], name="rk_rul_hi"),
        helper.make_node("Sub", ["rk_cap", "rul"], ["score"], name="rk_score"),
    ]
    inits = [numpy_helper.from_array(np.array(j, dtype=np.int64), f"rk_i{j}") for j in range(3)] + [
        numpy_helper.from_array(np.array(0.0, dtype=np.float32), "rk_zero"),
        numpy_helper.from_array(np.array(fit.cap, dtype=np.float32), "rk_cap"),
        numpy_helper.from_array(np.array(fit.band_adjust, dtype=np.float32), "rk_adj"),
    ]
    graph = helper.make_graph(
        nodes,
        "renkei_rul_hgb",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, fit.n_features])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [None]) for n in OUTPUTS],
        initializer=inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[
            helper.make_opsetid("", ONNX_OPSET),
            helper.make_opsetid("ai.onnx.ml", ML_OPSET),
        ],
        producer_name="renkei.models.rul",
        doc_string=doc,
    )
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    data: bytes = model.SerializeToString()
    return data
