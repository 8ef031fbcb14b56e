"""One C-MAPSS RUL recipe for single- and multi-condition subsets (FD001, FD002).

Data (cmapss/SOURCE.md): Saxena, Goebel, Simon & Eklund (2008), "Damage propagation
modeling for aircraft engine run-to-failure simulation", PHM08; NASA PCoE, US-Government
work. Per subset ``train_FD00x.txt`` (engines run to failure), ``test_FD00x.txt`` (engines
truncated before failure) and ``RUL_FD00x.txt`` (true RUL after each test engine's last
cycle); one row per flight cycle: unit, cycle, 3 operating settings, 21 sensors.

Recipe — the same code and constants for every subset, one model per subset, fitted on
that subset's training engines only:

1. regimes (rule fixed in code): round the settings to the grid ``GRID`` (1 kft altitude,
   0.01 Mach, 1° TRA); every rounded value holding ≥ ``MIN_REGIME_SHARE`` of the training
   rows is a regime, its centroid the mean of its rows' settings; each row then belongs
   to the nearest centroid in grid units (FD001: 1 regime; FD002: 6);
2. sensors: those with more than two distinct values inside every regime (the usual 14;
   SOURCE.md); per-regime mean / sd from the training rows;
3. per row, streaming (:mod:`renkei.edge.model.regimes`, the gateway's own code):
   ``{s}_rn`` = regime-standardised sensor, ``{s}_rb`` = ``_rn`` minus its expanding mean
   over the engine's first ``min(t, 25)`` cycles (drift from the engine's own start,
   defined from cycle 1 on);
4. history features of those 28 fields (:mod:`renkei.edge.features.history`, no frozen
   baseline, so every cycle from the first has inputs): EWMA (α 0.1), OLS slopes over
   20 / 40 / 80 cycles (fewer at the start), cycle count — 113 inputs;
5. truncation model (:func:`truncation_weights`): a test engine is a training-like engine
   cut at a remaining life drawn uniformly from ``0 .. TRUNC_RUL_MAX`` cycles (fitted to the
   test sets' *history lengths* — inputs, not labels — by a Kolmogorov-Smirnov grid over
   ``RUL ~ U(a, b)``, ``t = L - RUL`` with ``L`` from the training lifetimes;
   models/RESULTS.md §5). Each training row weighs its probability of being such a cut
   point: ``1 / min(L, TRUNC_RUL_MAX + 1)`` if its RUL ≤ ``TRUNC_RUL_MAX``, else 0;
6. the regressors are fitted on the rows a test-like cut can reach (each engine's last
   ``TRUNC_RUL_MAX + 1`` cycles, unweighted: the truncation weights up to their
   ``1 / min(L, 151)`` factor, 4x faster than HGB with sample weights and the same CV
   RMSE), target ``min(RUL, RUL_CAP)`` = the true RUL on those rows; the cycle count
   ``rows_seen`` is an input, so a healthy-looking engine gets the fleet's expected RUL for
   its age. Mean = average of 3 ``HistGradientBoostingRegressor`` (feature subsampling 0.5,
   seeds 0-2); 10 % / 90 % quantile regressors; the band is calibrated by cross-conformal
   Mondrian calibration (:mod:`renkei.models.rul`): 5 folds of training engines, the
   held-out engines' rows weighted by the truncation model, one widening per cell of
   history length (cycles 1-24, 25-74, 75-149, ≥ 150) × predicted RUL (< 40, 40-79, 80-109,
   ≥ 110). The band is an 80 % interval of the true RUL of an engine truncated like the
   test sets.

Feature set chosen by 5-fold grouped CV on the training engines (models/RESULTS.md §5); the
cap and the weighting too (CV at truncation-model cuts, before the test sets were scored
with them). Published baselines: SOURCE.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from renkei.edge.features.history import HistoryConfig, history_features
from renkei.edge.model.regimes import DRIFT_SUFFIX, NORM_SUFFIX, RegimeTable, normalise
from renkei.models.profiles._common import require_file

__all__ = [
    "ALARM_RUL",
    "CALIB_FOLDS",
    "CONFIG",
    "HIST_EDGES",
    "LEGACY_CAP",
    "PARAMS",
    "RUL_CAP",
    "RUL_EDGES",
    "SENSORS",
    "SETTINGS",
    "TRUNC_RUL_MAX",
    "CmapssData",
    "Engine",
    "Fitted",
    "build",
    "engine_features",
    "files",
    "fit",
    "fit_regimes",
    "history_bucket",
    "phm08_score",
    "scored_metrics",
    "targets",
    "true_rul",
    "truncation_weights",
]

#: target cap and the graph's clip (cycles): above the truncation model's range
RUL_CAP: Final = 150.0
#: cap of the "capped truth" figures, comparable with the literature (and with 2.0.0 / 1.0.0)
LEGACY_CAP: Final = 125.0
#: truncation model: a test engine's RUL is uniform on 0 .. TRUNC_RUL_MAX cycles
TRUNC_RUL_MAX: Final = 150
ALARM_RUL: Final = 30.0
NOMINAL: Final = 0.8
GRID: Final = (1.0, 0.01, 1.0)
MIN_REGIME_SHARE: Final = 0.01
DRIFT_ROWS: Final = 25
CONFIG: Final = HistoryConfig(ewma_alphas=(0.1,), slope_rows=(20, 40, 80), count=True)
PARAMS: Final[dict[str, Any]] = {
    "learning_rate": 0.03,
    "max_iter": 400,
    "max_leaf_nodes": 15,
    "min_samples_leaf": 200,
    "max_features": 0.5,
}
MEAN_MEMBERS: Final = 3
CALIB_FOLDS: Final = 5
#: history-length buckets (lower edges of buckets 2.., cycles) and predicted-RUL buckets
HIST_EDGES: Final = (25.0, 75.0, 150.0)
RUL_EDGES: Final = (40.0, 80.0, 110.0)
MIN_CELL_ROWS: Final = 200
CV_CUTS: Final = 5
#: (field, unit, what) of the 3 operating settings (SOURCE.md).
SETTINGS: Final = (
    ("op1_altitude", "kft", "altitude"),
    ("op2_mach", "1", "Mach number"),
    ("op3_tra", "deg", "throttle resolver angle"),
)
#: (field name, unit, what) of the 21 sensor columns s1..s21 (Saxena et al. 2008, Table 2).
SENSORS: Final = (
    ("s1_T2", "degR", "total temperature at fan inlet"),
    ("s2_T24", "degR", "total temperature at LPC outlet"),
    ("s3_T30", "degR", "total temperature at HPC outlet"),
    ("s4_T50", "degR", "total temperature at LPT outlet"),
    ("s5_P2", "psia", "pressure at fan inlet"),
    ("s6_P15", "psia", "total pressure in bypass duct"),
    ("s7_P30", "psia", "total pressure at HPC outlet"),
    ("s8_Nf", "rpm", "physical fan speed"),
    ("s9_Nc", "rpm", "physical core speed"),
    ("s10_epr", "1", "engine pressure ratio P50/P2"),
    ("s11_Ps30", "psia", "static pressure at HPC outlet"),
    ("s12_phi", "pps/psi", "ratio of fuel flow to Ps30"),
    ("s13_NRf", "rpm", "corrected fan speed"),
    ("s14_NRc", "rpm", "corrected core speed"),
    ("s15_BPR", "1", "bypass ratio"),
    ("s16_farB", "1", "burner fuel-air ratio"),
    ("s17_htBleed", "1", "bleed enthalpy"),
    ("s18_Nf_dmd", "rpm", "demanded fan speed"),
    ("s19_PCNfR_dmd", "rpm", "demanded corrected fan speed"),
    ("s20_W31", "lbm/s", "HPT coolant bleed"),
    ("s21_W32", "lbm/s", "LPT coolant bleed"),
)
BUCKET_LABELS: Final = ("1-24", "25-74", "75-149", ">=150")


def files(subset: str) -> tuple[str, str, str]:
    """(train, test, test RUL) paths of ``subset`` (``"FD001"``, ...) under the data dir."""
    return (
        f"cmapss/train_{subset}.txt",
        f"cmapss/test_{subset}.txt",
        f"cmapss/RUL_{subset}.txt",
    )


@dataclass(frozen=True)
class Engine:
    """One engine: ``settings`` (n, 3), ``x`` (n, 21) sensors; ``rul_end`` = RUL after its
    last cycle (0 for training engines)."""

    unit: int
    settings: NDArray[np.float64]
    x: NDArray[np.float64]
    rul_end: float

    @property
    def cycles(self) -> int:
        """n, cycles recorded."""
        return int(self.x.shape[0])

    def head(self, n: int) -> Engine:
        """The engine's first ``n`` cycles (RUL at the cut = ``rul_end + cycles - n``)."""
        return Engine(self.unit, self.settings[:n], self.x[:n], self.rul_end + self.cycles - n)


@dataclass(frozen=True)
class CmapssData:
    """Training and test engines of one subset."""

    subset: str
    train: tuple[Engine, ...]
    test: tuple[Engine, ...]


def _engines(table: NDArray[np.float64], rul_end: NDArray[np.float64] | None) -> list[Engine]:
    units = table[:, 0].astype(int)
    out = []
    for i, u in enumerate(np.unique(units)):
        rows = table[units == u]
        if not np.all(np.diff(rows[:, 1]) == 1) or rows[0, 1] != 1:
            raise ValueError(f"engine {u}: cycles are not 1, 2, 3, ...")
        end = 0.0 if rul_end is None else float(rul_end[i])
        out.append(Engine(int(u), rows[:, 2:5], rows[:, 5:26], end))
    return out


def build(data_dir: Path, subset: str) -> CmapssData:
    """Read one subset (train, test, test RUL).

    Raises:
        FileNotFoundError: a file is missing.
        ValueError: malformed tables (column count, cycle order, RUL count).
    """
    paths = files(subset)
    train_t, test_t, rul_t = (np.loadtxt(require_file(data_dir, f), ndmin=2) for f in paths)
    if train_t.shape[1] != 26 or test_t.shape[1] != 26:
        raise ValueError(
            f"{subset} tables must have 26 columns (unit, cycle, 3 settings, 21 sensors)"
        )
    rul = rul_t.ravel()
    test = _engines(test_t, rul)
    if len(test) != rul.size:
        raise ValueError(f"{subset}: {len(test)} test engines but {rul.size} RUL values")
    return CmapssData(subset, tuple(_engines(train_t, None)), tuple(test))


def fit_regimes(train: tuple[Engine, ...] | list[Engine]) -> RegimeTable:
    """Regimes, informative sensors and per-regime statistics of the training engines
    (steps 1-2 of the module docstring).

    Raises:
        ValueError: no regime holds ``MIN_REGIME_SHARE`` of the rows, or no sensor varies.
    """
    s = np.vstack([e.settings for e in train])
    x = np.vstack([e.x for e in train])
    grid = np.asarray(GRID)
    keys, inv, counts = np.unique(
        np.round(s / grid), axis=0, return_inverse=True, return_counts=True
    )
    inv = inv.ravel()
    big = [k for k in range(keys.shape[0]) if counts[k] >= MIN_REGIME_SHARE * s.shape[0]]
    if not big:
        raise ValueError("no operating regime holds 1 % of the training rows")
    centroids = np.array([s[inv == k].mean(axis=0) for k in big])
    probe = RegimeTable(
        tuple(f for f, _, _ in SETTINGS),
        grid,
        centroids,
        ("probe",),
        np.zeros((len(big), 1)),
        np.ones((len(big), 1)),
        DRIFT_ROWS,
    )
    regime = probe.assign(s)
    sensors = [
        j
        for j in range(x.shape[1])
        if min(np.unique(x[regime == r, j]).size for r in range(len(big))) > 2
    ]
    if not sensors:
        raise ValueError("no sensor varies inside every regime")
    xs = x[:, sensors]
    mean = np.array([xs[regime == r].mean(axis=0) for r in range(len(big))])
    sd = np.array([xs[regime == r].std(axis=0) for r in range(len(big))])
    sd = np.maximum(sd, np.maximum(1e-6 * np.abs(mean), 1e-9))
    return RegimeTable(
        probe.settings,
        grid,
        centroids,
        tuple(SENSORS[j][0] for j in sensors),
        mean,
        sd,
        DRIFT_ROWS,
    )


def sensor_columns(table: RegimeTable) -> list[int]:
    """Columns of ``Engine.x`` the table normalises."""
    names = [f for f, _, _ in SENSORS]
    return [names.index(f) for f in table.sensors]


def engine_features(table: RegimeTable, engine: Engine) -> NDArray[np.float64]:
    """(n, F) model inputs of every cycle of one engine (steps 3-4)."""
    z = normalise(table, engine.settings, engine.x[:, sensor_columns(table)])
    return history_features(z, CONFIG)


def field_names(table: RegimeTable) -> list[str]:
    """The history fields: ``{s}_rn`` then ``{s}_rb`` for every sensor."""
    return [f + NORM_SUFFIX for f in table.sensors] + [f + DRIFT_SUFFIX for f in table.sensors]


def truncation_weights(engines: tuple[Engine, ...] | list[Engine]) -> NDArray[np.float64]:
    """(sum of cycles,) probability of each row being an engine's truncation point under the
    truncation model (step 5 of the module docstring): ``1 / min(L, TRUNC_RUL_MAX + 1)`` for
    rows with RUL ≤ ``TRUNC_RUL_MAX``, else 0 (every engine sums to 1)."""
    out = []
    for e in engines:
        rul = e.rul_end + np.arange(e.cycles, dtype=np.float64)[::-1]
        span = min(float(e.cycles), TRUNC_RUL_MAX + 1.0)
        out.append(np.where(rul <= TRUNC_RUL_MAX, 1.0 / span, 0.0))
    return np.concatenate(out)


def targets(engine: Engine) -> NDArray[np.float64]:
    """Capped RUL of every cycle: ``min(rul_end + n - 1 - t, cap)``."""
    n = engine.cycles
    out: NDArray[np.float64] = np.minimum(
        engine.rul_end + np.arange(n, dtype=np.float64)[::-1], RUL_CAP
    )
    return out


def phm08_score(d: NDArray[np.float64]) -> float:
    """PHM08 score of errors ``d = predicted - true`` (lower is better)."""
    d = np.asarray(d, dtype=np.float64)
    return float(np.sum(np.where(d < 0, np.expm1(-d / 13.0), np.expm1(d / 10.0))))


def history_bucket(cycles: NDArray[np.float64]) -> NDArray[np.int64]:
    """Bucket index (:data:`BUCKET_LABELS`) of history lengths in cycles."""
    out: NDArray[np.int64] = (
        np.asarray(cycles, dtype=np.float64)[:, None] >= np.asarray(HIST_EDGES)[None]
    ).sum(axis=1)
    return out


@dataclass(frozen=True)
class Fitted:
    """The exported model and what produced it."""

    onnx_bytes: bytes
    table: RegimeTable
    fit_rows: int
    calib_rows: int
    band_adjust: float
    band_table: tuple[float, ...]
    cell_rows: tuple[int, ...]
    cv: dict[str, float]


def fit(train: tuple[Engine, ...] | list[Engine], *, doc: str) -> Fitted:
    """Fit regimes, features and the RUL model on the TRAINING engines only."""
    from renkei.models import rul

    table = fit_regimes(train)
    feats = [engine_features(table, e) for e in train]
    x = np.vstack(feats)
    y = np.concatenate([targets(e) for e in train])
    groups = np.concatenate([np.full(e.cycles, e.unit) for e in train])
    w = truncation_weights(train)
    keep = w > 0  # rows a test-like cut can reach (the last TRUNC_RUL_MAX + 1 of each engine)
    model = rul.fit_rul(
        x[keep],
        y[keep],
        cap=RUL_CAP,
        groups=groups[keep],
        params=dict(PARAMS),
        mean_members=MEAN_MEMBERS,
        calib_folds=CALIB_FOLDS,
        band_col=x.shape[1] - 1,  # rows_seen, the cycle count
        band_edges=HIST_EDGES,
        rul_edges=RUL_EDGES,
        min_cell_rows=MIN_CELL_ROWS,
        # calibration rows weighted as truncation points of a test-like cut (one per engine)
        calib_weights=w[keep],
    )
    cv_pred, cv_conf = np.full(w.size, np.nan), np.full(w.size, np.nan)
    cv_pred[keep], cv_conf[keep] = model.cv_pred, model.cv_conformity
    cv = cv_metrics(
        train, model.band_table, cv_pred, cv_conf, np.concatenate([true_rul(e) for e in train])
    )
    return Fitted(
        rul.to_onnx_bytes(model, doc=doc),
        table,
        int(keep.sum()),
        model.calib_rows,
        model.band_adjust,
        model.band_table,
        model.cell_rows,
        cv,
    )


def true_rul(engine: Engine) -> NDArray[np.float64]:
    """True (uncapped) RUL of every cycle of one engine."""
    out: NDArray[np.float64] = engine.rul_end + np.arange(engine.cycles, dtype=np.float64)[::-1]
    return out


def cv_metrics(
    train: tuple[Engine, ...] | list[Engine],
    band_table: tuple[float, ...],
    cv_pred: NDArray[np.float64],
    cv_conformity: NDArray[np.float64],
    true: NDArray[np.float64],
) -> dict[str, float]:
    """Out-of-fold RMSE / PHM08 / band coverage on the training engines at ``CV_CUTS`` cuts
    per engine drawn from the truncation model (seed 0; RUL uniform on
    ``0 .. min(TRUNC_RUL_MAX, L - 1)``), vs the true RUL, overall and per history bucket.

    ``cv_pred`` / ``cv_conformity`` (all rows of ``train``): out-of-fold outputs of
    :class:`renkei.models.rul.RulFit` (one regressor per fold); a cut is covered iff its
    conformity score ≤ its cell's widening in ``band_table`` (before the graph's clipping
    to ``[0, RUL_CAP]``).
    """
    rng = np.random.default_rng(0)
    start = np.cumsum([0] + [e.cycles for e in train])
    ruls = [rng.integers(0, min(TRUNC_RUL_MAX, e.cycles - 1) + 1, size=CV_CUTS) for e in train]
    rows = np.concatenate([start[i] + train[i].cycles - 1 - r for i, r in enumerate(ruls)])
    hist = (rows - np.repeat(start[:-1], CV_CUTS) + 1).astype(np.float64)
    pred = cv_pred[rows]
    cells = (history_bucket(hist) * (len(RUL_EDGES) + 1)) + (
        pred[:, None] >= np.asarray(RUL_EDGES)[None]
    ).sum(axis=1)
    covered = cv_conformity[rows] <= np.asarray(band_table)[cells]
    d = pred - true[rows]
    out: dict[str, float] = {"cv_train_engines.cuts": float(rows.size)}
    bucket = history_bucket(hist)
    groups = [("", np.ones(rows.size, dtype=bool))] + [
        (f".hist_{lab.replace('>=', 'ge')}", bucket == b) for b, lab in enumerate(BUCKET_LABELS)
    ]
    for label, sel in groups:
        if sel.any():
            ds = d[sel]
            p = f"cv_train_engines{label}"
            out[f"{p}.rmse"] = float(np.sqrt(np.mean(ds * ds)))
            out[f"{p}.phm08_per_100"] = phm08_score(ds) / ds.size * 100
            out[f"{p}.band_coverage"] = float(np.mean(covered[sel]))
            out[f"{p}.cuts"] = float(sel.sum())
    return out


def last_cycle_rows(table: RegimeTable, engines: tuple[Engine, ...]) -> NDArray[np.float64]:
    """(E, F) inputs at each engine's last cycle."""
    return np.array([engine_features(table, e)[-1] for e in engines])


def scored_metrics(
    engines: tuple[Engine, ...], outputs: dict[str, NDArray[np.float64]], prefix: str = "test"
) -> dict[str, float]:
    """RMSE / PHM08 / band coverage at the engines' last cycles, overall and per history
    bucket (``{prefix}.hist_{label}.*``), vs the true RUL and vs ``min(true, 125)``."""
    true = np.array([e.rul_end for e in engines])
    capped = np.minimum(true, LEGACY_CAP)
    rul, lo, hi = outputs["rul"], outputs["rul_lo"], outputs["rul_hi"]
    hist = np.array([e.cycles for e in engines], dtype=np.float64)
    alarm_true, alarm_pred = true < ALARM_RUL, rul < ALARM_RUL
    m = _errors(prefix, rul, lo, hi, true, capped)
    m[f"{prefix}.band_width_mean"] = float(np.mean(hi - lo))
    m[f"{prefix}.alarm_recall"] = (
        float(np.mean(alarm_pred[alarm_true])) if alarm_true.any() else 0.0
    )
    m[f"{prefix}.alarm_precision"] = (
        float(np.mean(alarm_true[alarm_pred])) if alarm_pred.any() else 0.0
    )
    m[f"{prefix}.engines"] = float(true.size)
    bucket = history_bucket(hist)
    for b, label in enumerate(BUCKET_LABELS):
        sel = bucket == b
        if sel.any():
            p = f"{prefix}.hist_{label.replace('>=', 'ge')}"
            m.update(_errors(p, rul[sel], lo[sel], hi[sel], true[sel], capped[sel]))
            m[f"{p}.engines"] = float(sel.sum())
            m[f"{p}.band_width_mean"] = float(np.mean(hi[sel] - lo[sel]))
    return m


def _errors(
    p: str,
    rul: NDArray[np.float64],
    lo: NDArray[np.float64],
    hi: NDArray[np.float64],
    true: NDArray[np.float64],
    capped: NDArray[np.float64],
) -> dict[str, float]:
    d, dc = rul - true, rul - capped
    return {
        f"{p}.rmse": float(np.sqrt(np.mean(d * d))),
        f"{p}.phm08": phm08_score(d),
        f"{p}.mae": float(np.mean(np.abs(d))),
        f"{p}.band_coverage": float(np.mean((true >= lo) & (true <= hi))),
        f"{p}_capped_truth.rmse": float(np.sqrt(np.mean(dc * dc))),
        f"{p}_capped_truth.phm08": phm08_score(dc),
        f"{p}_capped_truth.band_coverage": float(np.mean((capped >= lo) & (capped <= hi))),
    }
