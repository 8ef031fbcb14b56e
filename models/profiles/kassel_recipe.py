"""``kassel-shot-t2`` 2.x: PCA T²+Q on 7 per-shot actuals, cross-conformal threshold, drift watch.

Data and inputs: :mod:`renkei.models.profiles.kassel` (Kassel CPC lower workpiece, 7,861
shots in production order). One configuration, fixed before scoring the deviations:

- calibration = first 75 % (production order) of each reference run (3,068 shots);
  evaluation negatives = last 25 % (1,022 shots, the same as 1.x);
- model: :func:`renkei.models.t2.fit_pca_t2` (variance kept 0.95) on all calibration shots;
- threshold: cross-conformal (:mod:`renkei.models.conformal`) at ``ALPHA`` = 1 % per shot,
  5 contiguous blocks per reference run as folds, refused below 1,000 calibration shots;
- drift watch (:mod:`renkei.edge.model.drift`): share of the last 50 scored shots above the
  75 % quantile of the out-of-fold calibration scores; fires at the binomial 10⁻³ tail.

Evaluation (:mod:`renkei.models.profiles.kassel_eval`): ROC-AUC / recall / FAR per
deviation family, threshold stability, drift behaviour, and "another day" (leave one
reference run out of the calibration).
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
from numpy.typing import NDArray

from renkei.core.manifest import DriftSpec, ModelManifest, OutputSpec
from renkei.edge.sources.presets import KASSEL_CLASS_CODES
from renkei.edge.sources.replay import ReplayOptions, ReplaySource
from renkei.models.artifact import input_specs, make_session, run_outputs, write_artifact
from renkei.models.conformal import (
    conformal_threshold,
    contiguous_folds,
    drift_spec,
    min_calibration_size,
    out_of_fold_scores,
    require_calibration_size,
)
from renkei.models.profiles._common import require_file
from renkei.models.profiles._features import shot_feature_rows
from renkei.models.profiles.kassel import FEATURES, FILE, _centre_point_runs
from renkei.models.t2 import fit_pca_t2, reference_scores, to_onnx_bytes

__all__ = [
    "ALPHA",
    "Calibrated",
    "KasselShots",
    "calibrate",
    "evaluate",
    "fit_score",
    "load",
    "train",
]

NAME: Final = "kassel-shot-t2"
VERSION: Final = "2.0.0"
CAL_FRACTION: Final = 0.75
N_FOLDS: Final = 5
ALPHA: Final = 0.01
VARIANCE_TO_KEEP: Final = 0.95
DRIFT_QUANTILE: Final = 0.75
DRIFT_WINDOW: Final = 50
DRIFT_P_FIRE: Final = 1e-3
FAMILIES: Final = (
    "cooling_time",
    "injection_velocity",
    "switching_point",
    "mold_temperature",
    "glass_fiber_content",
)


@dataclass(frozen=True)
class KasselShots:
    """All shots in production (file) order.

    Attributes:
        x: (n, 7) inputs (:data:`~renkei.models.profiles.kassel.FEATURES`), NaN where missing.
        runs: (n,) ``class_value`` (run name).
        family: (n,) ``reference`` or the deviation family.
        ok: (n,) all 7 inputs finite (the gateway scores exactly these shots).
        part: (n,) ``cal`` / ``eval`` for reference shots, ``""`` otherwise.
        centre: the design's centre-point runs (every set-point equals the reference's).
    """

    x: NDArray[np.float64]
    runs: NDArray[np.str_]
    family: NDArray[np.str_]
    ok: NDArray[np.bool_]
    part: NDArray[np.str_]
    centre: frozenset[str]

    @property
    def reference_runs(self) -> list[str]:
        """Names of the reference runs, sorted."""
        return sorted({r for r in self.runs.tolist() if r.startswith("reference")})


def load(data_dir: Path) -> KasselShots:
    """Read the shots through the gateway's replay source and shot features.

    Raises:
        FileNotFoundError: the CSV is missing (path named).
        ValueError: shot order or run labels not as documented.
    """
    path = require_file(data_dir, FILE)
    src = ReplaySource(ReplayOptions(path=path, preset="kassel", timestamps="keep", block_rows=256))
    table = shot_feature_rows(src.blocks()).select(FEATURES)
    with path.open(newline="", encoding="utf-8-sig") as fh:
        runs = np.array([row["class_value"] for row in csv.DictReader(fh, delimiter=";")])
    if runs.size != table.x.shape[0] or not np.all(np.diff(src.recorded_t_ms) > 0):
        raise ValueError(f"{path}: expected one feature row per shot in file order")
    family = np.array(
        [next((f for f in FAMILIES if r.startswith(f)), "reference") for r in runs.tolist()]
    )
    if np.any((family == "reference") != np.char.startswith(runs, "reference")):
        raise ValueError(f"{path}: a run is neither reference_* nor a known deviation family")
    if np.any((table.labels > 0) != (family != "reference")):
        raise ValueError(f"{path}: class codes disagree with the run names ({KASSEL_CLASS_CODES})")
    ok = table.finite_rows()
    part = np.full(runs.size, "", dtype="<U4")
    for run in sorted({r for r in runs.tolist() if r.startswith("reference")}):
        idx = np.flatnonzero((runs == run) & ok)
        n_cal = round(CAL_FRACTION * idx.size)
        part[idx[:n_cal]] = "cal"
        part[idx[n_cal:]] = "eval"
    return KasselShots(
        x=table.x,
        runs=runs,
        family=family,
        ok=ok,
        part=part,
        centre=frozenset(_centre_point_runs(path, runs)),
    )


def fit_score(x_fit: NDArray[np.float64], x_score: NDArray[np.float64]) -> NDArray[np.float64]:
    """Fit the T²+Q model on ``x_fit`` (N, 7) and score ``x_score`` (M, 7) (float64)."""
    return reference_scores(fit_pca_t2(x_fit, variance_to_keep=VARIANCE_TO_KEEP), x_score)["score"]


@dataclass(frozen=True)
class Calibrated:
    """Threshold and drift reference of one calibration set.

    Attributes:
        oof: (n_cal,) out-of-fold scores of the calibration shots (production order).
        threshold: conformal threshold at :data:`ALPHA`.
        drift: drift-watch reference levels.
    """

    oof: NDArray[np.float64]
    threshold: float
    drift: DriftSpec


def calibrate(x_cal: NDArray[np.float64], runs_cal: NDArray[np.str_]) -> Calibrated:
    """Out-of-fold scores (5 contiguous blocks per run), conformal threshold, drift levels.

    Raises:
        CalibrationError: fewer than ``min_calibration_size(ALPHA)`` shots, or a run with
            fewer shots than folds.
    """
    require_calibration_size(len(x_cal), ALPHA)
    fold = contiguous_folds(runs_cal, N_FOLDS)
    oof = out_of_fold_scores(x_cal, fold, fit_score)
    return Calibrated(
        oof=oof,
        threshold=conformal_threshold(oof, ALPHA),
        drift=drift_spec(oof, quantile=DRIFT_QUANTILE, window=DRIFT_WINDOW, p_fire=DRIFT_P_FIRE),
    )


def train(data_dir: Path, out_dir: Path) -> ModelManifest:
    """Fit on the calibration shots, threshold, export and evaluate ``kassel-shot-t2``."""
    from renkei.models.profiles.kassel_eval import evaluation_metrics

    started = time.perf_counter()
    shots = load(data_dir)
    cal = shots.part == "cal"
    calibrated = calibrate(shots.x[cal], shots.runs[cal])
    fit = fit_pca_t2(shots.x[cal], variance_to_keep=VARIANCE_TO_KEEP)
    onnx_bytes = to_onnx_bytes(fit, doc=f"{NAME} {VERSION}: PCA T2+Q on per-shot actuals")
    session = make_session(onnx_bytes)
    scores = np.full(shots.runs.size, np.nan)
    scores[shots.ok] = run_outputs(session, shots.x[shots.ok])["score"]
    metrics = evaluation_metrics(shots, scores, calibrated.threshold, calibrated.drift)
    metrics["train_seconds"] = round(time.perf_counter() - started, 2)
    units = dict(ReplaySource(ReplayOptions(path=data_dir / FILE, preset="kassel")).fields)
    return write_artifact(
        out_dir,
        onnx_bytes=onnx_bytes,
        name=NAME,
        version=VERSION,
        algorithm="pca_t2_spe",
        algorithm_params={
            "n_components": fit.n_components,
            "variance_kept": round(fit.variance_kept, 6),
            "q_scale": fit.q_scale,
            "score": "t2 / n_components + spe / q_scale",
        },
        inputs=input_specs(
            FEATURES,
            {n: units.get(n, "") or "1" for n in FEATURES},
            {
                n: f"per-shot actual value of machine parameter {n.split('_')[0]} (vendor "
                "code; semantics not documented upstream)"
                for n in FEATURES
            },
        ),
        outputs=[
            OutputSpec(
                name="score",
                unit="1 (T2/k + SPE/q_scale, dimensionless; ≈2 on normal data)",
                description="anomaly score, alarm when score > threshold",
            ),
            OutputSpec(name="t2", unit="1 (Hotelling T2, dimensionless)", description="T2"),
            OutputSpec(name="spe", unit="1 (squared standardised residual)", description="SPE"),
        ],
        feature_kind="shot",
        window_s=None,
        threshold=calibrated.threshold,
        threshold_rule=(
            f"cross-conformal at a per-shot false-alarm level of {ALPHA:g}: the "
            f"ceil((n+1)(1-{ALPHA:g}))-th smallest of the n = {int(cal.sum())} out-of-fold "
            f"scores of the calibration shots ({N_FOLDS} contiguous blocks per reference "
            f"run as folds); refused below {min_calibration_size(ALPHA)} calibration shots"
        ),
        data_source=(
            "Kassel CPC data, lower workpiece (N. West, Univ. Kassel 2025; "
            f"github.com/nikolaiwest/cpc-data @ e079115; MIT): {FILE}"
        ),
        rows=int(cal.sum()),
        holdout_rows=int(cal.sum()),
        fitted_on=(
            "normal only: first 75 % (production order) of each reference_01…05 run; the "
            "same shots, out of fold, set the threshold and the drift reference"
        ),
        metrics=metrics,
        opset=17,
        drift=calibrated.drift,
        notes=[
            "Negatives (`ref_heldout`): last 25 % of every reference run, never fitted. "
            "`<family>.recall` = share of the family's shots above the threshold. "
            "`*_without_centre_points`: without the design's centre-point runs "
            "(injection_velocity_030_1/_2, switching_point_22_1/_2: every recorded set-point "
            "equals the reference). `holdout_normal.far` = share of out-of-fold calibration "
            "scores above the threshold (≤ alpha by construction).",
            "`threshold.*`: stability. `single_shot_low/high_rel` = relative move when one "
            "calibration score is removed or replaced by any value (order-statistic bound); "
            "`loo_refit_max_rel` = largest relative move when one of 40 calibration shots "
            "(the 20 highest-scoring + 20 spread) is removed and all folds are refitted; "
            "`outlier_injected_rel` = move when the highest-scoring deviation shot is added "
            "to the calibration data.",
            "`drift.*`: the gateway's drift watch. `switch.<run>.delay` = shots from the "
            "start of a run (watch warmed up on 50 held-out reference shots) to the drift "
            "onset (-1: never); `stream.<run>.time_in_drift` = share of the run's shots in "
            "the drift state when the whole file is replayed in production order. "
            "`other_day.<run>.*`: calibrated without that reference run, scored on it.",
        ],
    )


def evaluate(data_dir: Path, model_dir: Path) -> dict[str, float]:
    """Re-score every shot with the artifact in ``model_dir`` and recompute the metrics."""
    from renkei.edge.model.inference import AnomalyModel
    from renkei.models.profiles.kassel_eval import evaluation_metrics

    model = AnomalyModel.load(model_dir=model_dir)
    if model.manifest.drift is None:
        raise ValueError(f"{model_dir}: manifest has no drift section (expected 2.x)")
    shots = load(data_dir)
    scores = np.full(shots.runs.size, np.nan)
    scores[shots.ok] = model.score(shots.x[shots.ok])
    return evaluation_metrics(shots, scores, model.threshold, model.manifest.drift)
