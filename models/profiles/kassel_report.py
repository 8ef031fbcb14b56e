"""Report data of ``kassel-shot-t2`` 2.x: shot scores over the production stream with the
deviation runs shaded, ROC/PR per family, the drift statistic trace, and result tables.

Everything is computed with the committed artifact (loaded as the gateway loads it) and
the gateway's drift watch (:func:`renkei.edge.model.drift.drift_trace`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from renkei.edge.model.drift import drift_trace
from renkei.edge.model.inference import AnomalyModel
from renkei.models.profiles.kassel_eval import evaluation_metrics, family_sets, segments
from renkei.models.profiles.kassel_recipe import FAMILIES, load
from renkei.models.reporting import Classification, ReportData, ScoreTrace, Table

__all__ = ["report"]


def report(data_dir: Path, model_dir: Path) -> ReportData:
    """Build the report of the artifact in ``model_dir`` on the Kassel data in ``data_dir``.

    Raises:
        FileNotFoundError: data or artifact missing.
        ValueError: the artifact has no drift section.
    """
    model = AnomalyModel.load(model_dir=model_dir)
    spec = model.manifest.drift
    if spec is None:
        raise ValueError(f"{model_dir}: manifest has no drift section (expected 2.x)")
    shots = load(data_dir)
    scores = np.full(shots.runs.size, np.nan)
    scores[shots.ok] = model.score(shots.x[shots.ok])
    m = evaluation_metrics(shots, scores, model.threshold, spec)
    idx = np.arange(shots.runs.size, dtype=np.float64)
    windows = [
        (float(a), float(b - 1))
        for name, a, b in segments(shots.runs)
        if not name.startswith("reference")
    ]
    alarms = np.flatnonzero(
        np.diff((np.nan_to_num(scores) > model.threshold).astype(np.int8), prepend=np.int8(0)) == 1
    )
    share, state = drift_trace(scores[shots.ok], spec)
    share_all = np.full(shots.runs.size, np.nan)
    share_all[shots.ok] = share
    onsets = np.flatnonzero(shots.ok)[np.diff(state.astype(np.int8), prepend=np.int8(0)) == 1]
    traces = [
        ScoreTrace(
            "all shots, production order (deviation runs shaded)",
            idx,
            scores,
            model.threshold,
            windows=windows,
            detections=[float(i) for i in alarms],
            t_label="shot index (file order)",
            log_score=True,
        ),
        ScoreTrace(
            f"drift statistic: share of the last {spec.window} shots above "
            f"{spec.reference_score:.3g} (marks: drift onsets)",
            idx,
            share_all,
            spec.fire_share,
            windows=windows,
            detections=[float(i) for i in onsets],
            t_label="shot index (file order)",
        ),
    ]
    neg = scores[(shots.part == "eval") & shots.ok]
    classes = []
    for name, mask in family_sets(shots).items():
        if name == "all_deviations" or name in FAMILIES:
            pos = scores[mask]
            classes.append(
                Classification(
                    f"held-out reference shots vs {name}",
                    np.r_[np.zeros(neg.size, np.int8), np.ones(pos.size, np.int8)],
                    np.r_[neg, pos],
                    model.threshold,
                )
            )
    fam_rows = [
        (
            fam,
            int(m[f"ref_heldout_vs_{fam}.n_pos"]),
            round(m[f"ref_heldout_vs_{fam}.roc_auc"], 4),
            round(m[f"ref_heldout_vs_{fam}.recall"], 4),
            round(m[f"ref_heldout_vs_{fam}.far"], 4),
        )
        for fam in (*FAMILIES, "all_deviations")
    ]
    seg_rows = [
        (
            name,
            b - a,
            int(m[f"drift.switch.{name}.delay"]),
            round(m[f"drift.stream.{name}.time_in_drift"], 3),
            round(float(np.mean(np.nan_to_num(scores[a:b]) > model.threshold)), 3),
        )
        for name, a, b in segments(shots.runs)
    ]
    day_rows = [
        (
            run,
            *(
                ("refused (t4052 constant in a fold)", "", "")
                if f"other_day.{run}.refused" in m
                else (
                    round(m[f"other_day.{run}.far"], 4),
                    round(m[f"other_day.{run}.time_in_drift"], 3),
                    round(m[f"other_day.{run}.recall_all"], 4),
                )
            ),
        )
        for run in shots.reference_runs
    ]
    stab_keys = [k for k in m if k.startswith("threshold.")]
    return ReportData(
        model=model.name,
        title=f"{model.name} {model.version}: Kassel CPC injection molding, per-shot T²+Q",
        summary=(
            f"PCA T²+Q on 7 per-shot actuals, fitted on the first 75 % of each reference "
            f"run (3,068 shots); cross-conformal threshold {model.threshold:.4g} at a "
            f"per-shot false-alarm level of 1 %; drift watch over the last {spec.window} "
            f"shots. Held-out reference FAR {m['ref_heldout_vs_all_deviations.far']:.2%}, "
            f"recall of all deviation shots {m['ref_heldout_vs_all_deviations.recall']:.3f}, "
            f"ROC-AUC {m['ref_heldout_vs_all_deviations.roc_auc']:.3f}."
        ),
        metrics=m,
        traces=traces,
        classifications=classes,
        tables=[
            Table(
                "per deviation family", ("family", "shots", "ROC-AUC", "recall", "FAR"), fam_rows
            ),
            Table(
                "runs in production order: drift onset after a switch from normal (shots; "
                "-1 never), share of the run in drift (whole-file replay), share of shots "
                "above the threshold",
                ("run", "shots", "drift delay", "time in drift", "above threshold"),
                seg_rows,
            ),
            Table(
                "another day: calibrated without the run, scored on all of it",
                ("left-out run", "FAR", "time in drift", "recall all deviations"),
                day_rows,
            ),
            Table(
                "threshold stability",
                ("metric", "value"),
                [(k, round(m[k], 5)) for k in stab_keys],
            ),
        ],
        notes=[
            "Shaded: deviation runs (designed process changes). Score axis logarithmic.",
            "The drift watch is the gateway's own code; on a switch from normal production it "
            "needs 18 shots to fire (the window must fill with elevated scores).",
        ],
    )
