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
- optionally (``band_col`` with ``band_edges`` / ``rul_edges``) ``q`` depends on the row:
  one conformal quantile per cell of (history-length bucket of input column ``band_col``,
  e.g. the cycle count) × (bucket of the predicted ``rul``) — Mondrian conformal
  prediction (Vovk et al. 2005), so short histories get their own (wider) band and the
  coverage holds per predicted-RUL level, whatever the mix of levels in the scored data;
  cells with fewer than ``min_cell_rows`` calibration rows use the pooled ``q``. The
  calibration may be cross-conformal (``calib_folds`` folds of units: quantile models
  fitted without the fold score its rows; Vovk 2015, Barber et al. 2021 "CV+"), so every
  training unit calibrates the band;
- ``score = cap - rul`` (life consumed beyond the healthy plateau), so the gateway's
  ``score > threshold`` rule means "predicted RUL below ``cap - threshold``".

Input ``x`` float32 (N, F); outputs ``rul``, ``rul_lo``, ``rul_hi``, ``score``: float32 (N,)
in the units of the target (cycles or shots).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
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
        band_adjust: conformal widening ``q`` of the quantile band (units of the target);
            the pooled value when the band has cells.
        calib_rows: rows the band was calibrated on (0 = not calibrated).
        band_col: input column whose value picks the history bucket (-1 = no cells).
        band_edges: lower edges of history buckets 2, 3, ... (values of ``band_col``).
        rul_edges: lower edges of predicted-RUL buckets 2, 3, ... (target units).
        band_table: per cell ``hb * (len(rul_edges) + 1) + rb``: its widening ``q``.
        cell_rows: calibration rows of each cell.
        cv_pred: (N,) out-of-fold mean predictions of the cross-conformal folds (one
            regressor per fold, clipped to ``[0, cap]``), NaN on rows not calibrated;
            empty without ``calib_folds``.
        cv_conformity: (N,) out-of-fold conformity scores ``max(lo - y, y - hi)`` of the same
            rows (a row is covered by its cell's band iff its score ≤ the cell's widening,
            before clipping), NaN on rows not calibrated; empty without ``calib_folds``.
    """

    models: tuple[Any, Any, Any]
    cap: float
    quantiles: tuple[float, float]
    n_features: int
    band_adjust: float = 0.0
    calib_rows: int = 0
    band_col: int = -1
    band_edges: tuple[float, ...] = ()
    rul_edges: tuple[float, ...] = ()
    band_table: tuple[float, ...] = ()
    cell_rows: tuple[int, ...] = ()
    cv_pred: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    cv_conformity: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))


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
    calib_folds: int = 0,
    band_col: int | None = None,
    band_edges: tuple[float, ...] = (),
    rul_edges: tuple[float, ...] = (),
    min_cell_rows: int = 200,
    calib_weights: NDArray[np.floating] | None = None,
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
        calib_folds: > 0 (needs ``groups``): cross-conformal calibration over this many
            folds of units instead of one held-out share; the quantile models shipped are
            then fitted on all rows.
        band_col, band_edges, rul_edges: the band's cells (module docstring); ``band_col``
            is required with edges.
        min_cell_rows: calibration rows below which a cell uses the pooled widening.
        calib_weights: (N,) weight of each row as a calibration point (cross-conformal
            only; e.g. ``1 / cycles of its engine`` so every unit weighs the same, like a
            test set with one truncation point per unit); default equal weights.

    Raises:
        ValueError: shapes disagree, non-finite values, a quantile outside (0, 1),
            ``mean_members < 1``, edges without ``band_col`` or unsorted, or
            ``calib_folds`` without ``groups``.
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
    if (band_edges or rul_edges) and band_col is None:
        raise ValueError("band_edges / rul_edges need band_col")
    if list(band_edges) != sorted(band_edges) or list(rul_edges) != sorted(rul_edges):
        raise ValueError("band_edges and rul_edges must be sorted ascending")
    if calib_folds and groups is None:
        raise ValueError("calib_folds needs groups")
    if calib_folds:
        return _fit_cross_conformal(
            xa,
            ya,
            cap=float(cap),
            groups=np.asarray(groups),
            calib_mask=calib_mask,
            folds=calib_folds,
            quantiles=quantiles,
            params=params or {},
            seed=seed,
            mean_members=mean_members,
            cells=_Cells(-1 if band_col is None else band_col, band_edges, rul_edges),
            min_cell_rows=min_cell_rows,
            weights=None if calib_weights is None else np.asarray(calib_weights, np.float64),
        )
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
    fit = RulFit((mean, lo, hi), float(cap), quantiles, xa.shape[1], adjust, int(calib.sum()))
    if band_col is None or not calib.any():
        return fit
    cells = _Cells(band_col, band_edges, rul_edges)
    rul = np.clip(_predict(mean, xa[calib]), 0.0, float(cap))
    return cells.calibrate(fit, xa[calib], rul, conformity, quantiles, min_cell_rows)


@dataclass(frozen=True)
class _Cells:
    """History-length × predicted-RUL cells of the band (module docstring)."""

    col: int
    band_edges: tuple[float, ...]
    rul_edges: tuple[float, ...]

    def index(self, x: NDArray[np.float64], rul: NDArray[np.float64]) -> NDArray[np.int64]:
        hb = (x[:, self.col, None] >= np.asarray(self.band_edges)[None]).sum(axis=1)
        rb = (rul[:, None] >= np.asarray(self.rul_edges)[None]).sum(axis=1)
        out: NDArray[np.int64] = (hb * (len(self.rul_edges) + 1) + rb).astype(np.int64)
        return out

    def calibrate(
        self,
        fit: RulFit,
        x: NDArray[np.float64],
        rul: NDArray[np.float64],
        conformity: NDArray[np.float64],
        quantiles: tuple[float, float],
        min_rows: int,
        weights: NDArray[np.float64] | None = None,
    ) -> RulFit:
        """``fit`` with one conformal widening per cell (pooled below ``min_rows``)."""
        idx = self.index(x, rul)
        w = np.ones(conformity.size) if weights is None else weights
        n_cells = (len(self.band_edges) + 1) * (len(self.rul_edges) + 1)
        table, counts = [], []
        for c in range(n_cells):
            sel = conformity[idx == c]
            counts.append(int(sel.size))
            table.append(
                _conformal_q(sel, quantiles, w[idx == c])
                if sel.size >= min_rows
                else fit.band_adjust
            )
        return replace(
            fit,
            band_col=self.col,
            band_edges=tuple(float(e) for e in self.band_edges),
            rul_edges=tuple(float(e) for e in self.rul_edges),
            band_table=tuple(table),
            cell_rows=tuple(counts),
        )


def _conformal_q(
    conformity: NDArray[np.float64],
    quantiles: tuple[float, float],
    weights: NDArray[np.float64] | None = None,
) -> float:
    """Split-conformal quantile of the conformity scores at coverage ``hi - lo``.

    Unweighted: the ``ceil((n+1)·coverage)/n`` empirical quantile. Weighted (Tibshirani,
    Barber, Candès & Ramdas 2019, the test point weighted like an average calibration
    row): the smallest score whose cumulative weight reaches ``coverage · (W + w̄)``.
    """
    n = conformity.size
    coverage = quantiles[1] - quantiles[0]
    if weights is None:
        level = min(1.0, np.ceil((n + 1) * coverage) / n)
        return float(np.quantile(conformity, level, method="higher"))
    order = np.argsort(conformity, kind="stable")
    cum = np.cumsum(weights[order])
    k = int(np.searchsorted(cum, coverage * (cum[-1] + cum[-1] / n)))
    return float(conformity[order][min(k, n - 1)])


def _predict(entry: Any, x: NDArray[np.float64]) -> NDArray[np.float64]:
    out: NDArray[np.float64] = np.mean(
        [np.asarray(m.predict(x), dtype=np.float64) for m in _members(entry)], axis=0
    )
    return out


def _fit_cross_conformal(
    xa: NDArray[np.float64],
    ya: NDArray[np.float64],
    *,
    cap: float,
    groups: NDArray[np.generic],
    calib_mask: NDArray[np.bool_] | None,
    folds: int,
    quantiles: tuple[float, float],
    params: dict[str, Any],
    seed: int,
    mean_members: int,
    cells: _Cells,
    min_cell_rows: int,
    weights: NDArray[np.float64] | None,
) -> RulFit:
    """:func:`fit_rul` with cross-conformal calibration (see its docstring)."""
    from rich.progress import track
    from sklearn.ensemble import HistGradientBoostingRegressor
    from threadpoolctl import threadpool_limits

    kw = {"random_state": seed, "early_stopping": False, **params}
    units = np.unique(groups)
    rng = np.random.default_rng(seed)
    parts = np.array_split(rng.permutation(units), folds)
    eligible = np.ones(ya.size, dtype=bool) if calib_mask is None else np.asarray(calib_mask)
    conformity = np.full(ya.size, np.nan)
    cv_pred = np.full(ya.size, np.nan)
    steps: list[NDArray[np.generic] | None] = [*parts, None]  # folds, then shipped models
    shipped: tuple[Any, Any, Any] | None = None
    with threadpool_limits(limits=1, user_api="openmp"):
        for part in track(steps, description="RUL: cross-conformal folds + final fit"):
            if part is None:
                means = tuple(
                    HistGradientBoostingRegressor(
                        loss="squared_error", **{**kw, "random_state": seed + k}
                    ).fit(xa, ya)
                    for k in range(mean_members)
                )
                shipped = (
                    means[0] if mean_members == 1 else means,
                    HistGradientBoostingRegressor(loss="quantile", quantile=quantiles[0], **kw).fit(
                        xa, ya
                    ),
                    HistGradientBoostingRegressor(loss="quantile", quantile=quantiles[1], **kw).fit(
                        xa, ya
                    ),
                )
                continue
            held = np.isin(groups, part)
            rows = held & eligible
            fold = [
                HistGradientBoostingRegressor(loss=loss, **kw, **extra).fit(xa[~held], ya[~held])
                for loss, extra in (
                    ("squared_error", {}),
                    ("quantile", {"quantile": quantiles[0]}),
                    ("quantile", {"quantile": quantiles[1]}),
                )
            ]
            cv_pred[rows] = np.clip(fold[0].predict(xa[rows]), 0.0, cap)
            conformity[rows] = np.maximum(
                fold[1].predict(xa[rows]) - ya[rows], ya[rows] - fold[2].predict(xa[rows])
            )
    assert shipped is not None
    calib = np.isfinite(conformity)
    fit = RulFit(
        shipped,
        cap,
        quantiles,
        xa.shape[1],
        _conformal_q(conformity[calib], quantiles, None if weights is None else weights[calib]),
        int(calib.sum()),
        cv_pred=cv_pred,
        cv_conformity=conformity,
    )
    if cells.col < 0:
        return fit
    # cells by the out-of-fold prediction: the quantity the shipped graph will bucket on
    return cells.calibrate(
        fit,
        xa[calib],
        cv_pred[calib],
        conformity[calib],
        quantiles,
        min_cell_rows,
        None if weights is None else weights[calib],
    )


def reference_outputs(fit: RulFit, x: NDArray[np.floating]) -> dict[str, NDArray[np.float64]]:
    """NumPy/scikit-learn reference of the ONNX outputs (rows cast to float32 first)."""
    xa = np.asarray(x, dtype=np.float32).astype(np.float64)
    t = [
        np.mean([np.asarray(m.predict(xa), dtype=np.float64) for m in _members(e)], axis=0)
        for e in fit.models
    ]
    rul = np.clip(t[0], 0.0, fit.cap)
    adj: NDArray[np.float64] | float = fit.band_adjust
    if fit.band_table:
        cells = _Cells(fit.band_col, fit.band_edges, fit.rul_edges)
        adj = np.asarray(fit.band_table)[cells.index(xa, rul)]
    return {
        "rul": rul,
        "rul_lo": np.minimum(np.clip(t[1] - adj, 0.0, fit.cap), rul),
        "rul_hi": np.maximum(np.clip(t[2] + adj, 0.0, fit.cap), rul),
        "score": fit.cap - rul,
    }


def _members(entry: Any) -> tuple[Any, ...]:
    return tuple(entry) if isinstance(entry, (tuple, list)) else (entry,)


def _cell_lookup(fit: RulFit) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """Nodes computing ``rk_adj`` (N,) = ``band_table[hb * R + rb]`` from ``x`` and ``rul``."""
    n_rul = len(fit.rul_edges) + 1
    nodes = [
        helper.make_node("Gather", ["x", "rk_bcol"], ["rk_h"], axis=1, name="rk_h"),
        helper.make_node("Unsqueeze", ["rk_h", "rk_ax1"], ["rk_h1"], name="rk_h1"),
        helper.make_node("GreaterOrEqual", ["rk_h1", "rk_hedges"], ["rk_hge"], name="rk_hge"),
        helper.make_node("Cast", ["rk_hge"], ["rk_hgei"], to=TensorProto.INT64, name="rk_hgei"),
        helper.make_node("ReduceSum", ["rk_hgei", "rk_ax1"], ["rk_hb"], keepdims=0, name="rk_hb"),
        helper.make_node("Unsqueeze", ["rul", "rk_ax1"], ["rk_r1"], name="rk_r1"),
        helper.make_node("GreaterOrEqual", ["rk_r1", "rk_redges"], ["rk_rge"], name="rk_rge"),
        helper.make_node("Cast", ["rk_rge"], ["rk_rgei"], to=TensorProto.INT64, name="rk_rgei"),
        helper.make_node("ReduceSum", ["rk_rgei", "rk_ax1"], ["rk_rb"], keepdims=0, name="rk_rb"),
        helper.make_node("Mul", ["rk_hb", "rk_nrul"], ["rk_hbr"], name="rk_hbr"),
        helper.make_node("Add", ["rk_hbr", "rk_rb"], ["rk_cell"], name="rk_cell"),
        helper.make_node("Gather", ["rk_table", "rk_cell"], ["rk_adj"], axis=0, name="rk_adj"),
    ]
    # an empty edge list still needs a (1,) tensor: an edge above any value (bucket 0 only)
    big = np.float32(np.finfo(np.float32).max)
    inits = [
        numpy_helper.from_array(np.array(fit.band_col, dtype=np.int64), "rk_bcol"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "rk_ax1"),
        numpy_helper.from_array(
            np.array(fit.band_edges or (big,), dtype=np.float32).reshape(1, -1), "rk_hedges"
        ),
        numpy_helper.from_array(
            np.array(fit.rul_edges or (big,), dtype=np.float32).reshape(1, -1), "rk_redges"
        ),
        numpy_helper.from_array(np.array(n_rul, dtype=np.int64), "rk_nrul"),
        numpy_helper.from_array(np.array(fit.band_table, dtype=np.float32), "rk_table"),
    ]
    return nodes, inits


def to_onnx_bytes(fit: RulFit, *, doc: str = "") -> bytes:
    """Serialised ONNX graph (see the module docstring).

    Raises:
        onnx.checker.ValidationError: the graph is invalid.
    """
    trees = tree_ensemble_node(list(fit.models), input_name="x", output_name="rk_t")
    nodes = [trees]
    for j, name in enumerate(("rk_t0", "rk_t1", "rk_t2")):
        nodes.append(helper.make_node("Gather", ["rk_t", f"rk_i{j}"], [name], axis=1, name=name))
    nodes.append(helper.make_node("Clip", ["rk_t0", "rk_zero", "rk_cap"], ["rul"], name="rk_rul"))
    cell_nodes, cell_inits = _cell_lookup(fit) if fit.band_table else ([], [])
    nodes += cell_nodes  # rk_adj per row, from x and rul
    nodes += [
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
    ]
    if fit.band_table:
        inits += cell_inits
    else:
        inits.append(numpy_helper.from_array(np.array(fit.band_adjust, dtype=np.float32), "rk_adj"))
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
