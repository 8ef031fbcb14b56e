"""Report data of a C-MAPSS RUL artifact (``renkei models report cmapss-fd00x-rul``).

Computed with the exported ONNX model and the regime table of its manifest (as
:func:`renkei.models.profiles.cmapss_export.evaluate_subset`): predicted vs true RUL with the
band at every test engine's last cycle (sorted by true RUL), the trajectories of the
shortest and the longest test engine, and tables by history-length bucket (test engines,
and the training engines' out-of-fold cuts from the manifest's ``cv_train_engines.*``) and by
subset
(the sibling subset's artifact is read when it sits beside ``model_dir``) beside the
published baselines (cmapss/SOURCE.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import numpy as np

from renkei.core.manifest import read_manifest
from renkei.edge.model.regimes import RegimeTable
from renkei.models.artifact import make_session, run_outputs
from renkei.models.profiles import cmapss_recipe as recipe
from renkei.models.reporting.data import ReportData, RulTrace, Table

__all__ = ["PUBLISHED_ROWS", "report_subset"]

#: (method, FD001 RMSE / PHM08, FD002 RMSE / PHM08) from cmapss/SOURCE.md.
PUBLISHED_ROWS: Final = (
    ("SVR (Babu et al. 2016)", "20.96 / 1,380", "42.00 / 590,000"),
    ("CNN (Babu et al. 2016)", "18.45 / 1,299", "30.29 / 13,600"),
    ("Deep LSTM (Zheng et al. 2017)", "16.14 / 338", "24.49 / 4,450"),
    ("DCNN (Li, Ding, Sun 2018)", "12.61 / 274", "–"),
    ("AGCNN (Liu et al. 2020)", "12.42 / 225.5", "19.43 / 1,492"),
    ("MS-DCNN (Li et al. 2020)", "11.44 / 196.22", "19.35 / 3,747"),
    ("MTSTAN", "10.97 / 175.36", "16.81 / 1,154.36"),
    ("FFVE", "12.31 / 280.21", "12.55 / 772.17"),
)
SIBLINGS: Final = {"FD001": "cmapss-fd001-rul", "FD002": "cmapss-fd002-rul"}


def report_subset(subset: str, name: str, data_dir: Path, model_dir: Path) -> ReportData:
    """The :class:`ReportData` of the artifact in ``model_dir`` for ``subset``.

    Raises:
        FileNotFoundError: data or artifact files missing.
        ValueError: the manifest has no regime table.
    """
    manifest = read_manifest(Path(model_dir))
    table = RegimeTable.from_params(manifest.algorithm_params)
    if table is None:
        raise ValueError(f"{model_dir}: manifest has no regime table (algorithm_params regime_*)")
    session = make_session((Path(model_dir) / manifest.onnx_file).read_bytes())
    data = recipe.build(data_dir, subset)
    out = run_outputs(session, recipe.last_cycle_rows(table, data.test))
    metrics = recipe.scored_metrics(data.test, out, "test")
    true = np.array([e.rul_end for e in data.test])
    order = np.argsort(true, kind="stable")
    ruls = [
        RulTrace(
            name=f"{subset} test, last cycle per engine (sorted by true RUL)",
            x=np.arange(true.size, dtype=np.float64),
            true=true[order],
            predicted=out["rul"][order],
            lower=out["rul_lo"][order],
            upper=out["rul_hi"][order],
            nominal=recipe.NOMINAL,
            x_label="test engine (sorted by true RUL)",
        )
    ]
    lengths = [e.cycles for e in data.test]
    for i in dict.fromkeys((int(np.argmin(lengths)), int(np.argmax(lengths)))):
        e = data.test[i]
        traj = run_outputs(session, recipe.engine_features(table, e))
        ruls.append(
            RulTrace(
                name=f"{subset} test engine {e.unit} ({e.cycles} cycles), every cycle",
                x=np.arange(1, e.cycles + 1, dtype=np.float64),
                true=np.minimum(e.rul_end + np.arange(e.cycles)[::-1], recipe.RUL_CAP),
                predicted=traj["rul"],
                lower=traj["rul_lo"],
                upper=traj["rul_hi"],
                nominal=recipe.NOMINAL,
                x_label=f"cycle (true RUL capped at {recipe.RUL_CAP:g})",
            )
        )
    return ReportData(
        model=name,
        title=f"{name} {manifest.version}: C-MAPSS {subset} remaining useful life",
        summary=(
            f"C-MAPSS {subset}: {len(data.train)} training engines, {len(data.test)} official "
            f"test engines scored at their last cycle. One recipe for FD001 and FD002: "
            f"{len(table.centroids)} operating regime(s) from the settings, per-regime "
            "sensor standardisation, history features from the first cycle, boosted trees "
            "trained on the true RUL of engines truncated like the test sets, with an 80 % "
            "band calibrated per history length x predicted RUL. Test RMSE vs the true RUL "
            f"{metrics['test.rmse']:.2f}, PHM08 {metrics['test.phm08']:.0f}, band coverage "
            f"{100 * metrics['test.band_coverage']:.0f} % (RMSE vs min(RUL, 125): "
            f"{metrics['test_capped_truth.rmse']:.2f})."
        ),
        metrics=metrics,
        ruls=ruls,
        tables=[
            _buckets_table(subset, metrics),
            _cv_table(subset, dict(manifest.metrics)),
            _subsets_table(subset, metrics, model_dir),
        ],
        notes=[
            "The band is an 80 % interval of the true RUL of an engine truncated like the "
            f"test sets (truncation model: RUL uniform on 0-{recipe.TRUNC_RUL_MAX} cycles); "
            f"outputs are clipped at {recipe.RUL_CAP:g} cycles.",
            "Published rows are from their papers via cmapss/SOURCE.md (mostly deep "
            "networks, RUL cap 125-130); context, not like-for-like comparisons.",
            "Trajectories: the shortest and the longest test engine (chosen by length, not "
            f"by result); their true RUL per cycle is capped at {recipe.RUL_CAP:g}.",
        ],
    )


def _buckets_table(subset: str, m: dict[str, float]) -> Table:
    rows: list[tuple[str | int | float, ...]] = []
    for label in recipe.BUCKET_LABELS:
        p = f"test.hist_{label.replace('>=', 'ge')}"
        if f"{p}.engines" not in m:
            continue
        rows.append(
            (
                label,
                int(m[f"{p}.engines"]),
                round(m[f"{p}.rmse"], 2),
                round(m[f"{p}.phm08"], 1),
                round(100 * m[f"{p}.band_coverage"], 1),
                round(m[f"{p}_capped_truth.rmse"], 2),
                round(m[f"{p}.band_width_mean"], 1),
            )
        )
    return Table(
        title=f"{subset} test engines by history length (cycles)",
        columns=(
            "history",
            "engines",
            "RMSE",
            "PHM08",
            "coverage %",
            "RMSE vs min(RUL, 125)",
            "band width",
        ),
        rows=rows,
    )


def _cv_table(subset: str, m: dict[str, float]) -> Table:
    rows: list[tuple[str | int | float, ...]] = []
    for label in ("all", *recipe.BUCKET_LABELS):
        p = "cv_train_engines" + ("" if label == "all" else f".hist_{label.replace('>=', 'ge')}")
        if f"{p}.rmse" in m:
            rows.append(
                (
                    label,
                    int(m.get(f"{p}.cuts", 0)),
                    round(m[f"{p}.rmse"], 2),
                    round(100 * m[f"{p}.band_coverage"], 1),
                )
            )
    return Table(
        title=(
            f"{subset} training engines, out-of-fold, {recipe.CV_CUTS} truncation-model cuts "
            "per engine, by history length (cycles)"
        ),
        columns=("history", "cuts", "RMSE vs true RUL", "coverage %"),
        rows=rows,
    )


def _subsets_table(subset: str, m: dict[str, float], model_dir: Path) -> Table:
    ours: dict[str, dict[str, float]] = {subset: m}
    for other, name in SIBLINGS.items():
        sibling = Path(model_dir).parent / name / "manifest.json"
        if other != subset and sibling.is_file():
            ours[other] = dict(read_manifest(sibling.parent).metrics)

    def cell(sub: str) -> str:
        x = ours.get(sub)
        if x is None or "test.rmse" not in x:
            return "–"
        return (
            f"{x['test.rmse']:.2f} / {x['test.phm08']:.0f} "
            f"(coverage {100 * x['test.band_coverage']:.0f} %, RMSE vs min(RUL, 125) "
            f"{x['test_capped_truth.rmse']:.2f})"
        )

    rows: list[tuple[str | int | float, ...]] = [
        ("Renkei (this recipe)", cell("FD001"), cell("FD002"))
    ]
    rows += list(PUBLISHED_ROWS)
    return Table(
        title="C-MAPSS test sets, last cycle per engine: RMSE / PHM08 (published beside)",
        columns=("method", "FD001", "FD002"),
        rows=rows,
    )
