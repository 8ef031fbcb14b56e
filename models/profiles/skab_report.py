"""Report data of ``skab-pump-mahal`` (:mod:`renkei.models.profiles.skab_z`): score traces
of a few runs with the labelled anomaly shaded, pooled ROC/PR, per-run and cross-check
tables. Numbers are computed with the exported ONNX artifact loaded as the gateway loads it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import numpy as np

from renkei.models.metrics import binary_metrics
from renkei.models.profiles import skab_z
from renkei.models.reporting.data import Classification, ReportData, ScoreTrace, Table

__all__ = ["TRACE_RUNS", "report"]

#: Runs drawn as score traces: the weakest valve1 run (0), a typical one (1) and two valve2.
TRACE_RUNS: Final = (
    "skab/data/valve1/0.csv",
    "skab/data/valve1/1.csv",
    "skab/data/valve2/0.csv",
    "skab/data/valve2/3.csv",
)
_LEADERBOARD: Final = (
    ("Conv-AE (leaderboard, 34 files)", 0.78, 0.1355, 0.2802),
    ("T-squared+Q PCA (leaderboard)", 0.76, 0.2662, 0.2492),
    ("LSTM-AE (leaderboard)", 0.74, 0.2996, 0.2592),
)


def _windows(labels: np.ndarray) -> list[tuple[float, float]]:
    """(start, end) row ranges of the runs of 1s in ``labels``."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], labels.astype(np.int8), [0]])))
    return [(float(a), float(b - 1)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def report(data_dir: Path, model_dir: Path) -> ReportData:
    """Build the report data of the artifact in ``model_dir`` on the data in ``data_dir``.

    Raises:
        FileNotFoundError: a data file or the artifact is missing.
    """
    from renkei.edge.model.inference import AnomalyModel

    model = AnomalyModel.load(model_dir=model_dir)
    data = skab_z.build(data_dir)
    kept = [data.fields.index(n.rsplit("_zm", 1)[0]) for n in model.input_names]
    thr = model.threshold
    traces, rows = [], []
    for run in data.runs:
        full = np.asarray(model.score(skab_z.run_features(run.x, kept)), dtype=np.float64)
        score = full.copy()
        score[: skab_z.TRAIN_ROWS] = np.nan  # baseline rows are not scored
        test_y = run.labels[skab_z.TRAIN_ROWS :]
        m = binary_metrics(full[skab_z.TRAIN_ROWS :], test_y, thr)
        rows.append(
            (
                run.path.removeprefix("skab/data/"),
                round(m["f1"], 3),
                round(m["far"], 3),
                round(m["mar"], 3),
            )
        )
        if run.path in TRACE_RUNS:
            alarm = full > thr
            alarm[: skab_z.TRAIN_ROWS] = False
            onsets = np.flatnonzero(alarm & ~np.concatenate([[False], alarm[:-1]]))
            traces.append(
                ScoreTrace(
                    name=run.path,
                    t=np.arange(full.size, dtype=np.float64),
                    score=score,
                    threshold=thr,
                    windows=_windows(run.labels),
                    detections=[float(i) for i in onsets],
                    t_label="row (≈ 1 s)",
                    log_score=True,
                )
            )
    per_run = skab_z.run_scores(model.score, data, kept)
    metrics = skab_z.metrics_of(data, per_run, thr)
    metrics["anomaly_free_after_baseline.far"] = skab_z.free_far(model.score, data, kept, thr)
    cross = {k: v for k, v in model.manifest.metrics.items() if k.startswith("cross.")}
    y = np.concatenate([r.labels[skab_z.TRAIN_ROWS :] for r in data.runs]).astype(np.int8)
    bench = [
        (
            f"ours pooled, {g}",
            round(metrics[f"{g}_test.point.f1"], 3),
            round(metrics[f"{g}_test.point.far"], 3),
            round(metrics[f"{g}_test.point.mar"], 3),
        )
        for g in ("all", "valve1", "valve2")
    ]
    cross_rows = [
        (
            f"{a} → {b}",
            round(cross.get(f"cross.{a}_to_{b}.f1", np.nan), 3),
            round(cross.get(f"cross.{a}_to_{b}.far", np.nan), 3),
            round(cross.get(f"cross.{a}_to_{b}.mar", np.nan), 3),
            round(cross.get(f"cross.{a}_to_{b}.anomaly_free_far", np.nan), 3),
        )
        for a, b in (("valve1", "valve2"), ("valve2", "valve1"))
    ]
    return ReportData(
        model=skab_z.NAME,
        title="SKAB pump rig, valve1 + valve2: per-run baseline z, Mahalanobis",
        summary=(
            "SKAB leaderboard protocol over all 20 valve1+valve2 runs (rows 0-399 train, "
            f"rows ≥ 400 test, per point, pooled): F1 {metrics['all_test.point.f1']:.3f}, "
            f"FAR {100 * metrics['all_test.point.far']:.1f} %, MAR "
            f"{100 * metrics['all_test.point.mar']:.1f} %. Alarm rate on anomaly-free rows "
            f"after a frozen baseline: {100 * metrics['anomaly_free_after_baseline.far']:.1f} %."
        ),
        metrics=metrics,
        traces=traces,
        classifications=[
            Classification("SKAB valve1+valve2 test parts", y, np.concatenate(per_run), thr)
        ],
        tables=[
            Table(
                "Whole benchmark (per point) beside the published leaderboard",
                ("detector", "F1", "FAR", "MAR"),
                bench + list(_LEADERBOARD),
            ),
            Table("Per run (test part)", ("run", "F1", "FAR", "MAR"), rows),
            Table(
                "Cross-check: designed on one valve (+ anomaly-free baselines), scored on the "
                "other",
                ("design → scored", "F1", "FAR", "MAR", "anomaly-free FAR"),
                cross_rows,
            ),
        ],
        notes=skab_z.model_notes(
            str(model.manifest.algorithm_params.get("channels_dropped", "none")).split(", ")
        ),
    )
