"""Recipe ``cmapss-fd001-rul``: NASA C-MAPSS FD001 turbofan remaining useful life.

Data (cmapss/SOURCE.md): Saxena, Goebel, Simon & Eklund (2008), "Damage propagation
modeling for aircraft engine run-to-failure simulation", PHM08; NASA PCoE, US-Government
work. ``train_FD001.txt`` (100 engines run to failure, 20,631 cycles),
``test_FD001.txt`` (100 engines truncated before failure) and ``RUL_FD001.txt`` (true RUL
after each test engine's last cycle). One row per flight cycle.

Recipe (standard practice on FD001, fitted on the training engines only):

- sensors: the ones with more than two distinct values in the training file (drops
  s1, s5, s6, s10, s16, s18, s19: the usual 14-sensor set);
- target: piecewise-linear RUL, ``min(last_cycle - cycle, 125)`` (Heimes 2008; most
  FD001 papers use a cap of 125-130);
- features per engine (:mod:`renkei.edge.features.history`, causal, one row per cycle): EWMA
  (α 0.1), OLS slope over the last 20 / 40 / 80 cycles, drift of the EWMA from the engine's
  own first 25 cycles (removes engine-to-engine offsets of the initial wear /
  manufacturing; every test engine has ≥ 31 cycles), and the cycle count; 71 inputs. The
  window set and the baseline length (15 / 20 / 25 / 30 cycles) were chosen by the same
  grouped cross-validation on the training engines (models/RESULTS.md);
- ``HistGradientBoostingRegressor`` models (squared error; 10 % and 90 % quantiles) in one
  ONNX graph (:mod:`renkei.models.rul`); the mean estimate may be the average of several
  regressors with feature subsampling and different seeds. Hyper-parameters and ensemble
  size chosen by 5-fold cross-validation grouped by training engine
  (:func:`cross_validate`; candidates in ``CANDIDATES``), scored like the test set
  (engines cut at a random cycle ≥ 31, capped RUL at the cut).

Evaluation (official test set, never used for fitting or selection): RMSE and the PHM08
score ``S = Σ exp(-d/13) - 1 (d < 0), exp(d/10) - 1 (d ≥ 0)``, ``d = predicted - true``, on
each engine's last cycle, against the true (uncapped) RUL and, as many papers report it,
against the RUL capped at 125; coverage of the 10-90 % band.

Alarm: ``score = 125 - rul > 95``, i.e. predicted RUL < 30 cycles (a maintenance-planning
horizon, not fitted).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from renkei.core.manifest import InputSpec, ModelManifest, OutputSpec
from renkei.edge.features.history import HistoryConfig, history_feature_names, history_features
from renkei.models.artifact import make_session, run_outputs, sha256_hex, write_artifact
from renkei.models.profiles._common import require_file

__all__ = [
    "CANDIDATES",
    "CONFIG",
    "NAME",
    "RUL_CAP",
    "CmapssData",
    "build",
    "cross_validate",
    "evaluate",
    "fit",
    "phm08_score",
    "train",
]

NAME: Final = "cmapss-fd001-rul"
VERSION: Final = "1.1.0"
RUL_CAP: Final = 125.0
ALARM_RUL: Final = 30.0
BASELINE_CYCLES: Final = 25
CONFIG: Final = HistoryConfig(
    ewma_alphas=(0.1,),
    slope_rows=(20, 40, 80),
    baseline_rows=BASELINE_CYCLES,
    dev_alphas=(0.1,),
    count=True,
)
#: Hyper-parameter candidates compared by grouped cross-validation on the training engines
#: (``mean_members``: mean regressors with seeds 0, 1, ... averaged; the others are
#: HistGradientBoostingRegressor arguments).
CANDIDATES: Final[tuple[dict[str, Any], ...]] = (
    {"learning_rate": 0.03, "max_iter": 400, "max_leaf_nodes": 15, "min_samples_leaf": 200},
    {
        "learning_rate": 0.03,
        "max_iter": 400,
        "max_leaf_nodes": 15,
        "min_samples_leaf": 200,
        "max_features": 0.5,
        "mean_members": 3,
    },
)
CV_FOLDS: Final = 5
MIN_CUT: Final = 31  # shortest test engine history, cycles
FILES: Final = ("cmapss/train_FD001.txt", "cmapss/test_FD001.txt", "cmapss/RUL_FD001.txt")
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


@dataclass(frozen=True)
class Engine:
    """One engine's cycles: ``x`` (n, 21) sensor values; ``rul_end`` = RUL after its last
    cycle (0 for training engines, from ``RUL_FD001.txt`` for test engines)."""

    unit: int
    x: NDArray[np.float64]
    rul_end: float


@dataclass(frozen=True)
class CmapssData:
    """Training and test engines."""

    train: tuple[Engine, ...]
    test: tuple[Engine, ...]


def _engines(table: NDArray[np.float64], rul_end: NDArray[np.float64] | None) -> list[Engine]:
    units = table[:, 0].astype(int)
    out = []
    for i, u in enumerate(np.unique(units)):
        rows = table[units == u]
        if not np.all(np.diff(rows[:, 1]) == 1) or rows[0, 1] != 1:
            raise ValueError(f"engine {u}: cycles are not 1, 2, 3, ...")
        out.append(Engine(int(u), rows[:, 5:26], 0.0 if rul_end is None else float(rul_end[i])))
    return out


def build(data_dir: Path) -> CmapssData:
    """Read FD001 (train, test, test RUL).

    Raises:
        FileNotFoundError: a file is missing.
        ValueError: malformed tables (column count, cycle order, RUL count).
    """
    train_t, test_t, rul_t = (np.loadtxt(require_file(data_dir, f), ndmin=2) for f in FILES)
    if train_t.shape[1] != 26 or test_t.shape[1] != 26:
        raise ValueError("FD001 tables must have 26 columns (unit, cycle, 3 settings, 21 sensors)")
    rul = rul_t.ravel()
    test = _engines(test_t, rul)
    if len(test) != rul.size:
        raise ValueError(f"{len(test)} test engines but {rul.size} RUL values")
    return CmapssData(tuple(_engines(train_t, None)), tuple(test))


def informative_sensors(train: tuple[Engine, ...] | list[Engine]) -> list[int]:
    """Sensor columns with more than two distinct values in the training engines."""
    x = np.vstack([e.x for e in train])
    return [j for j in range(x.shape[1]) if np.unique(x[:, j]).size > 2]


def engine_features(engine: Engine, sensors: list[int]) -> NDArray[np.float64]:
    """(n, F) history features of every cycle of one engine."""
    return history_features(engine.x[:, sensors], CONFIG)


def targets(engine: Engine) -> NDArray[np.float64]:
    """Capped RUL of every cycle: ``min(rul_end + n - 1 - t, cap)``."""
    n = engine.x.shape[0]
    out: NDArray[np.float64] = np.minimum(
        engine.rul_end + np.arange(n, dtype=np.float64)[::-1], RUL_CAP
    )
    return out


def phm08_score(d: NDArray[np.float64]) -> float:
    """PHM08 score of errors ``d = predicted - true`` (lower is better)."""
    d = np.asarray(d, dtype=np.float64)
    return float(np.sum(np.where(d < 0, np.expm1(-d / 13.0), np.expm1(d / 10.0))))


def cross_validate(
    train: list[Engine], sensors: list[int], *, seed: int = 0
) -> list[dict[str, float]]:
    """Grouped K-fold CV of each candidate (median model) on the TRAINING engines only.

    Each validation engine is scored at 5 random cuts (cycle ≥ 31, like the test
    truncation) against its capped RUL at the cut.

    Returns:
        Per candidate: ``rmse`` and ``phm08_per_100`` (means over the folds).
    """
    from sklearn.ensemble import HistGradientBoostingRegressor
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    rng = np.random.default_rng(seed)
    folds = np.array_split(rng.permutation(len(train)), CV_FOLDS)
    feats = [engine_features(e, sensors).astype(np.float32) for e in train]
    ys = [targets(e) for e in train]
    cuts = [rng.integers(MIN_CUT - 1, f.shape[0], size=5) for f in feats]
    results = []
    for candidate in CANDIDATES:
        params, members = _split(candidate)
        rmses, scores = [], []
        for k in range(CV_FOLDS):
            val = sorted(folds[k].tolist())
            fit_idx = [i for i in range(len(train)) if i not in set(val)]
            x_fit = np.vstack([feats[i] for i in fit_idx])
            y_fit = np.concatenate([ys[i] for i in fit_idx])
            x_val = np.vstack([feats[i][cuts[i]] for i in val])
            y_val = np.concatenate([ys[i][cuts[i]] for i in val])
            pred = np.zeros(y_val.size)
            for seed in range(members):  # the mean of the members, as in fit_rul
                with threadpool_limits(limits=1, user_api="openmp"):
                    model = HistGradientBoostingRegressor(
                        random_state=seed, early_stopping=False, **params
                    ).fit(x_fit, y_fit)
                pred += model.predict(x_val) / members
            d = np.clip(pred, 0.0, RUL_CAP) - y_val
            rmses.append(float(np.sqrt(np.mean(d * d))))
            scores.append(phm08_score(d) / d.size * 100)
        results.append({"rmse": float(np.mean(rmses)), "phm08_per_100": float(np.mean(scores))})
    return results


def _split(candidate: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """(HistGradientBoostingRegressor kwargs, number of averaged mean models)."""
    params = {k: v for k, v in candidate.items() if k != "mean_members"}
    return params, int(candidate.get("mean_members", 1))


@dataclass(frozen=True)
class Fitted:
    """The exported model and what produced it."""

    onnx_bytes: bytes
    sensors: list[int]
    params: dict[str, Any]
    cv: list[dict[str, float]]
    fit_rows: int
    band_adjust: float
    calib_rows: int


def fit(train: list[Engine], *, cv: bool = True) -> Fitted:
    """Select hyper-parameters (optional CV) and fit on the TRAINING engines only."""
    from renkei.models.rul import fit_rul, to_onnx_bytes

    sensors = informative_sensors(train)
    results = cross_validate(train, sensors) if cv else []
    best = int(np.argmin([r["rmse"] for r in results])) if results else 0
    x = np.vstack([engine_features(e, sensors) for e in train])
    y = np.concatenate([targets(e) for e in train])
    groups = np.concatenate([np.full(e.x.shape[0], e.unit) for e in train])
    history = np.concatenate([np.arange(e.x.shape[0]) >= MIN_CUT - 1 for e in train])
    params, members = _split(CANDIDATES[best])
    model = fit_rul(
        x,
        y,
        cap=RUL_CAP,
        groups=groups,
        calib_mask=history,
        params=params,
        mean_members=members,
    )
    onnx_bytes = to_onnx_bytes(model, doc="Renkei C-MAPSS FD001 RUL; see manifest.json")
    return Fitted(
        onnx_bytes,
        sensors,
        dict(CANDIDATES[best]),
        results,
        x.shape[0],
        model.band_adjust,
        model.calib_rows,
    )


def test_last_cycle_rows(data: CmapssData, sensors: list[int]) -> NDArray[np.float64]:
    """(100, F) features at each test engine's last cycle."""
    return np.array([engine_features(e, sensors)[-1] for e in data.test])


def test_metrics(data: CmapssData, outputs: dict[str, NDArray[np.float64]]) -> dict[str, float]:
    """RMSE / PHM08 / band coverage on the official test engines (last cycles)."""
    true = np.array([e.rul_end for e in data.test])
    rul, lo, hi = outputs["rul"], outputs["rul_lo"], outputs["rul_hi"]
    d = rul - true
    dc = rul - np.minimum(true, RUL_CAP)
    alarm_true, alarm_pred = true < ALARM_RUL, rul < ALARM_RUL
    return {
        "test.rmse": float(np.sqrt(np.mean(d * d))),
        "test.phm08": phm08_score(d),
        "test.mae": float(np.mean(np.abs(d))),
        "test_capped_truth.rmse": float(np.sqrt(np.mean(dc * dc))),
        "test_capped_truth.phm08": phm08_score(dc),
        "test.band_coverage": float(np.mean((true >= lo) & (true <= hi))),
        "test_capped_truth.band_coverage": float(
            np.mean((np.minimum(true, RUL_CAP) >= lo) & (np.minimum(true, RUL_CAP) <= hi))
        ),
        "test.band_width_mean": float(np.mean(hi - lo)),
        "test.alarm_recall": float(np.mean(alarm_pred[alarm_true])) if alarm_true.any() else 0.0,
        "test.alarm_precision": (
            float(np.mean(alarm_true[alarm_pred])) if alarm_pred.any() else 0.0
        ),
        "test.engines": float(true.size),
    }


def train(data_dir: Path, out_dir: Path) -> ModelManifest:
    """Select, fit, export and evaluate ``cmapss-fd001-rul`` into ``out_dir``."""
    started = time.perf_counter()
    data = build(data_dir)
    fitted = fit(list(data.train))
    outputs = run_outputs(
        make_session(fitted.onnx_bytes), test_last_cycle_rows(data, fitted.sensors)
    )
    metrics = test_metrics(data, outputs)
    for i, r in enumerate(fitted.cv):
        metrics[f"cv_train_engines.candidate{i}.rmse_capped"] = r["rmse"]
        metrics[f"cv_train_engines.candidate{i}.phm08_per_100"] = r["phm08_per_100"]
    metrics["train_seconds"] = round(time.perf_counter() - started, 2)
    fields = [SENSORS[j] for j in fitted.sensors]
    names = history_feature_names([f for f, _, _ in fields], CONFIG)
    return write_artifact(
        out_dir,
        onnx_bytes=fitted.onnx_bytes,
        name=NAME,
        version=VERSION,
        algorithm="hgb_quantile_rul",
        algorithm_params={
            **{k: v for k, v in fitted.params.items()},
            "quantiles": "0.1, 0.9",
            "band_conformal_adjust_cycles": round(fitted.band_adjust, 4),
            "rul_cap_cycles": RUL_CAP,
            "baseline_cycles": BASELINE_CYCLES,
        },
        inputs=_inputs(names, fields),
        outputs=[
            OutputSpec(name="rul", unit="cycles", description="predicted RUL (capped at 125)"),
            OutputSpec(name="rul_lo", unit="cycles", description="10 % quantile of the RUL"),
            OutputSpec(name="rul_hi", unit="cycles", description="90 % quantile of the RUL"),
            OutputSpec(
                name="score",
                unit="cycles",
                description="125 - rul; alarm when score > threshold (RUL < 30 cycles)",
            ),
        ],
        feature_kind="shot",
        window_s=None,
        threshold=RUL_CAP - ALARM_RUL,
        threshold_rule=(
            f"maintenance-planning horizon: alarm when predicted RUL < {ALARM_RUL:g} cycles "
            "(not fitted)"
        ),
        data_source=(
            "NASA C-MAPSS FD001 (Saxena et al. 2008, PHM08; NASA PCoE data repository, "
            "US-Government work): " + ", ".join(FILES)
        ),
        rows=fitted.fit_rows,
        holdout_rows=fitted.calib_rows,
        fitted_on=(
            "supervised: the 100 training engines (run to failure), target min(RUL, 125); "
            "mean model(s) on all of them, quantile models on 80, band calibrated on the other "
            "20 training engines (holdout_rows = their cycles ≥ 31); hyper-parameters by "
            f"{CV_FOLDS}-fold CV grouped by training engine; the test engines were never "
            "fitted or used for selection"
        ),
        metrics=metrics,
        opset=17,
        task="rul",
        rul_cap=RUL_CAP,
        notes=[
            "Rows: one per flight cycle (manifest feature_kind 'shot' = one row per machine "
            "cycle). Gateway use: feed each cycle's 14 sensor values to renkei.edge.features."
            "history.HistoryFeatures(14, cmapss.CONFIG) (it holds the first "
            f"{BASELINE_CYCLES} cycles as the "
            "engine's baseline, then emits one row per cycle) and score the rows.",
            "Metrics: `test.*` on the official test engines' last cycles vs the true RUL; "
            "`test_capped_truth.*` vs min(true, 125) as many papers report it. Published "
            "FD001 (RMSE / PHM08): SVR 20.96 / 1,380, ELM 17.27 / 523, CNN 18.45 / 1,299, "
            "deep LSTM 16.14 / 338, DCNN 12.61 / 274, AGCNN 12.42 / 225.5, MS-DCNN 11.44 / "
            "196.22 (dataset SOURCE.md).",
            "Selection (training engines only, 5-fold CV grouped by engine, 5 random cuts "
            "≥ 31 cycles per engine, capped truth): baseline 25 cycles among 15/20/25/30; "
            "`cv_train_engines.candidate{i}.*` are the CANDIDATES compared in this run "
            "(candidate 1 = mean of 3 regressors with max_features 0.5, seeds 0-2). The "
            "test engines were scored once, after the choice (models/RESULTS.md).",
            "Uncertainty: `rul_lo`/`rul_hi` = 10 %/90 % quantile regressors widened by "
            "split-conformal calibration on 20 held-out training engines (nominal 80 % "
            "band); `test.band_coverage` is the empirical coverage on the test engines.",
        ],
    )


def _inputs(names: list[str], fields: list[tuple[str, str, str]]) -> list[InputSpec]:
    meaning = {f: (u, w) for f, u, w in fields}
    specs = []
    for n in names:
        if n == "rows_seen":
            specs.append(InputSpec(name=n, unit="cycles", description="cycle count of the engine"))
            continue
        field, suffix = n.rsplit("_", 1)
        unit, what = meaning[field]
        if suffix.startswith("s"):
            u, d = f"{unit}/cycle", f"OLS slope of {what} over the last {suffix[1:]} cycles"
        elif suffix.startswith("d"):
            u, d = (
                unit,
                (
                    f"EWMA ({suffix[1:]}) of {what} minus its mean over the first "
                    f"{BASELINE_CYCLES} cycles"
                ),
            )
        else:
            u, d = unit, f"EWMA ({suffix[1:]}) of {what}"
        specs.append(InputSpec(name=n, unit=u, description=d.replace("0p", "0.")))
    return specs


def evaluate(data_dir: Path, model_dir: Path) -> dict[str, float]:
    """Re-score the test engines with the artifact in ``model_dir`` (hash-checked)."""
    from renkei.edge.model.inference import AnomalyModel

    model = AnomalyModel.load(model_dir=model_dir)  # verifies the sha256
    data = build(data_dir)
    names = {f for f, _, _ in SENSORS}
    used = sorted({n.rsplit("_", 1)[0] for n in model.input_names} & names)
    sensors = [i for i, (f, _, _) in enumerate(SENSORS) if f in used]
    x = test_last_cycle_rows(data, sensors)
    onnx_bytes = (Path(model_dir) / model.manifest.onnx_file).read_bytes()
    if sha256_hex(onnx_bytes) != model.sha256:
        raise RuntimeError(f"{model_dir}: model file changed after it was verified")
    session = make_session(onnx_bytes)
    outputs = run_outputs(session, x)
    if not np.allclose(outputs["score"], model.score(x)):
        raise RuntimeError("ONNX outputs differ between the gateway loader and the session")
    return test_metrics(data, outputs)
