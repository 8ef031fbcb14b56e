"""Train, export and re-evaluate one C-MAPSS subset with the recipe of
:mod:`renkei.models.profiles.cmapss_recipe` (used by the ``cmapss-fd00x-rul`` profiles).

The regime table travels in the manifest's ``algorithm_params``
(:meth:`renkei.edge.model.regimes.RegimeTable.to_params`), so the gateway's
:class:`~renkei.edge.model.rul.RulRunner` normalises each row as the recipe did before the
history features; rows carry the settings ``op1_altitude``, ``op2_mach``, ``op3_tra`` and
the sensors ``s2_T24`` ... (:data:`~renkei.models.profiles.cmapss_recipe.SENSORS`).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from renkei.core.manifest import InputSpec, ModelManifest, OutputSpec
from renkei.edge.features.history import history_feature_names
from renkei.edge.model.regimes import RegimeTable
from renkei.models.artifact import make_session, run_outputs, sha256_hex, write_artifact
from renkei.models.profiles import cmapss_recipe as recipe

__all__ = ["PUBLISHED", "evaluate_subset", "train_subset"]

#: Published test-set results (RMSE / PHM08) quoted in the manifests (SOURCE.md).
PUBLISHED = {
    "FD001": "SVR 20.96 / 1,380, ELM 17.27 / 523, CNN 18.45 / 1,299, deep LSTM 16.14 / 338, "
    "DCNN 12.61 / 274, AGCNN 12.42 / 225.5, MS-DCNN 11.44 / 196.22",
    "FD002": "SVR 42.00 / 590,000, CNN 30.29 / 13,600, deep LSTM 24.49 / 4,450, "
    "AGCNN 19.43 / 1,492, MS-DCNN 19.35 / 3,747, MTSTAN 16.81 / 1,154, FFVE 12.55 / 772",
}


def train_subset(
    subset: str, name: str, version: str, data_dir: Path, out_dir: Path
) -> ModelManifest:
    """Fit ``subset``'s training engines, export, score the official test engines once."""
    started = time.perf_counter()
    data = recipe.build(data_dir, subset)
    fitted = recipe.fit(data.train, doc=f"Renkei C-MAPSS {subset} RUL; see manifest.json")
    outputs = run_outputs(
        make_session(fitted.onnx_bytes), recipe.last_cycle_rows(fitted.table, data.test)
    )
    metrics = recipe.scored_metrics(data.test, outputs)
    metrics.update(fitted.cv)
    metrics["train_seconds"] = round(time.perf_counter() - started, 2)
    names = history_feature_names(recipe.field_names(fitted.table), recipe.CONFIG)
    table = fitted.table
    band = ", ".join(f"{v:.2f}" for v in fitted.band_table)
    return write_artifact(
        out_dir,
        onnx_bytes=fitted.onnx_bytes,
        name=name,
        version=version,
        algorithm="hgb_quantile_rul",
        algorithm_params={
            **recipe.PARAMS,
            "mean_members": recipe.MEAN_MEMBERS,
            "quantiles": "0.1, 0.9",
            "rul_cap_cycles": recipe.RUL_CAP,
            "truncation_model": (
                f"test-like cut: RUL uniform on 0..{recipe.TRUNC_RUL_MAX} cycles; regressors "
                f"fitted on the rows with RUL <= {recipe.TRUNC_RUL_MAX}, band calibration rows "
                "weighted as one such cut per engine"
            ),
            "band_calibration": f"cross-conformal, {recipe.CALIB_FOLDS} folds of training engines",
            "band_history_edges_cycles": ", ".join(f"{e:g}" for e in recipe.HIST_EDGES),
            "band_rul_edges_cycles": ", ".join(f"{e:g}" for e in recipe.RUL_EDGES),
            "band_conformal_adjust_cycles": band,
            "band_conformal_adjust_pooled_cycles": round(fitted.band_adjust, 4),
            **table.to_params(),
        },
        inputs=_inputs(names, table),
        outputs=[
            OutputSpec(
                name="rul",
                unit="cycles",
                description=f"predicted RUL (true RUL target, clipped at {recipe.RUL_CAP:g})",
            ),
            OutputSpec(
                name="rul_lo", unit="cycles", description="80 % band of the RUL: lower edge"
            ),
            OutputSpec(
                name="rul_hi", unit="cycles", description="80 % band of the RUL: upper edge"
            ),
            OutputSpec(
                name="score",
                unit="cycles",
                description=f"{recipe.RUL_CAP:g} - rul; alarm when score > threshold "
                f"(RUL < {recipe.ALARM_RUL:g} cycles)",
            ),
        ],
        feature_kind="shot",
        window_s=None,
        threshold=recipe.RUL_CAP - recipe.ALARM_RUL,
        threshold_rule=(
            f"maintenance-planning horizon: alarm when predicted RUL < {recipe.ALARM_RUL:g} cycles "
            "(not fitted)"
        ),
        data_source=(
            f"NASA C-MAPSS {subset} (Saxena et al. 2008, PHM08; NASA PCoE data repository, "
            "US-Government work): " + ", ".join(recipe.files(subset))
        ),
        rows=fitted.fit_rows,
        holdout_rows=fitted.calib_rows,
        fitted_on=(
            f"supervised: the {len(data.train)} {subset} training engines (run to failure), "
            f"rows with RUL <= {recipe.TRUNC_RUL_MAX} (truncation model: a test-like cut at "
            f"RUL uniform on 0..{recipe.TRUNC_RUL_MAX}), target the true RUL; regimes and "
            "per-regime sensor statistics from all their rows; "
            f"band calibrated cross-conformally ({recipe.CALIB_FOLDS} folds of those engines; "
            "holdout_rows = out-of-fold calibration rows); the test engines were never "
            "fitted; only their history lengths (inputs, no RUL) chose the truncation model"
        ),
        metrics=metrics,
        opset=17,
        task="rul",
        rul_cap=recipe.RUL_CAP,
        notes=[
            "Rows: one per flight cycle (feature_kind 'shot' = one row per machine cycle) "
            "with the settings op1_altitude, op2_mach, op3_tra and the sensor fields; the "
            "gateway (renkei.edge.model.rul.RulRunner) normalises each row by its regime "
            "(renkei.edge.model.regimes, table in algorithm_params regime_*) and then "
            "computes the history features; a RUL with its band is emitted from the first "
            "cycle on.",
            f"Recipe: renkei.models.profiles.cmapss_recipe, the same for FD001 and FD002 "
            f"(one model per subset). {len(table.centroids)} regime(s), "
            f"{len(table.sensors)} sensors.",
            "Metrics: `test.*` on the official test engines' last cycles vs the true RUL; "
            "`test_capped_truth.*` vs min(true, 125) (comparable with the literature); "
            "`test.hist_<bucket>.*` by history length; `cv_train_engines*` = out-of-fold "
            f"predictions of the calibration folds (one regressor per fold) at {recipe.CV_CUTS} "
            "truncation-model cuts per training engine, vs the true RUL, with band coverage. "
            f"Published {subset} (RMSE / PHM08, SOURCE.md): {PUBLISHED[subset]}.",
            "Uncertainty: rul_lo / rul_hi = 10 % / 90 % quantile regressors widened per "
            "cell of history length x predicted RUL (band_conformal_adjust_cycles, row-major "
            "by history bucket), nominal 80 % band of the true RUL of an engine truncated "
            "like the test sets (truncation_model); calibrated on held-out training engines "
            "cut that way.",
            "Selection: the truncation model was fitted to the test sets' history lengths "
            "(inputs, no labels); cap and row weighting were chosen by CV at truncation-model "
            "cuts on the training engines (models/RESULTS.md section 5), before the test "
            "RUL was used with them.",
        ],
    )


def _inputs(names: list[str], table: RegimeTable) -> list[InputSpec]:
    meaning = {f: w for f, _, w in recipe.SENSORS}
    specs = []
    for n in names:
        if n == "rows_seen":
            specs.append(InputSpec(name=n, unit="cycles", description="cycle count of the engine"))
            continue
        field, suffix = n.rsplit("_", 1)
        sensor, kind = field.rsplit("_", 1)
        what = (
            f"regime-standardised {meaning[sensor]}"
            if kind == "rn"
            else f"regime-standardised {meaning[sensor]} minus its mean over the engine's "
            f"first min(t, {table.drift_rows}) cycles"
        )
        if suffix.startswith("s"):
            unit, d = "1/cycle", f"OLS slope over the last {suffix[1:]} cycles of the {what}"
        else:
            unit, d = "1", f"EWMA ({suffix[1:].replace('0p', '0.')}) of the {what}"
        specs.append(InputSpec(name=n, unit=unit, description=d))
    return specs


def evaluate_subset(subset: str, data_dir: Path, model_dir: Path) -> dict[str, float]:
    """Re-score the test engines with the artifact in ``model_dir`` (hash-checked), the
    regime table read back from its manifest."""
    from renkei.edge.model.inference import AnomalyModel

    model = AnomalyModel.load(model_dir=model_dir)  # verifies the sha256
    table = RegimeTable.from_params(model.manifest.algorithm_params)
    if table is None:
        raise ValueError(f"{model_dir}: manifest has no regime table (algorithm_params regime_*)")
    data = recipe.build(data_dir, subset)
    x = recipe.last_cycle_rows(table, data.test)
    onnx_bytes = (Path(model_dir) / model.manifest.onnx_file).read_bytes()
    if sha256_hex(onnx_bytes) != model.sha256:
        raise RuntimeError(f"{model_dir}: model file changed after it was verified")
    outputs = run_outputs(make_session(onnx_bytes), x)
    if not np.allclose(outputs["score"], model.score(x)):
        raise RuntimeError("ONNX outputs differ between the gateway loader and the session")
    return recipe.scored_metrics(data.test, outputs)
