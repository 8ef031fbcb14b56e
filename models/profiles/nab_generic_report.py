"""Report data of ``nab-stream-generic`` (:mod:`renkei.models.profiles.nab_generic`): score
traces of a few representative files (windows shaded, detections marked), the per-file table
(raw standard score vs the null detector and vs the published ARTime / numentaTM per-file
scores of ``nab/results``) and the per-folder summary.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Final

import numpy as np

from renkei.models.nab_scoring import PROFILES as NAB_PROFILES
from renkei.models.reporting.data import ReportData, ScoreTrace, Table

__all__ = ["PUBLISHED", "TRACE_FILES", "build_report", "published_scores"]

#: one file per folder with windows, plus one without (representative, fixed before scoring)
TRACE_FILES: Final = (
    "realKnownCause/machine_temperature_system_failure.csv",
    "artificialWithAnomaly/art_daily_jumpsup.csv",
    "realAWSCloudwatch/ec2_cpu_utilization_24ae8d.csv",
    "realAdExchange/exchange-2_cpc_results.csv",
    "realTraffic/occupancy_6005.csv",
    "realTweets/Twitter_volume_AAPL.csv",
    "artificialNoAnomaly/art_daily_small_noise.csv",
)
PUBLISHED: Final = ("ARTime", "numentaTM")
NOTES: Final = (
    "Subset: 52 of NAB's 58 files (101 of 116 windows; realKnownCause holds only "
    "machine_temperature). Normalisation uses the present files' null / perfect sums, so "
    "the published 58-file scoreboard figures are context, not a like-for-like comparison.",
    "Published per-file scores are at each detector's own corpus-optimised threshold on the "
    "58-file corpus; ours at our threshold on the 52 files.",
    "Design honesty: about 80 variants were compared on this scored corpus before the "
    "configuration was fixed (models/RESULTS.md); the figure is therefore optimistic.",
)


def published_scores(data_dir: Path, detector: str) -> dict[str, float]:
    """Published per-file raw standard scores of ``detector`` (``nab/results``), by file;
    empty when the score file is absent."""
    path = data_dir / "nab" / "results" / detector / f"{detector}_standard_scores.csv"
    if not path.is_file():
        return {}
    with path.open(encoding="utf-8", newline="") as fh:
        return {r["File"]: float(r["Score"]) for r in csv.DictReader(fh) if r["File"] != "Totals"}


def build_report(data_dir: Path, model_dir: Path) -> ReportData:
    """The :class:`ReportData` of the artifact in ``model_dir`` on the corpus in ``data_dir``."""
    from renkei.edge.model.inference import AnomalyModel
    from renkei.edge.model.stream_detector import StreamDetectorConfig
    from renkei.models.profiles import nab_generic as ng

    model = AnomalyModel.load(model_dir=model_dir)
    config = StreamDetectorConfig.from_params(model.manifest.algorithm_params)
    corpus = ng.build(data_dir)
    scores = [model.score(s[:, None]) for s in ng.detector_scores(corpus, config)]
    metrics, results = ng.corpus_metrics(corpus, scores)
    std = results["standard"]
    traces = []
    for name in TRACE_FILES:
        if name not in {f.name for f in corpus.files}:
            continue
        i = [f.name for f in corpus.files].index(name)
        f, t, s = corpus.files[i], corpus.times_s[i], scores[i]
        det = np.flatnonzero(s > model.threshold)
        det = det[det >= f.probation]
        traces.append(
            ScoreTrace(
                name=name,
                t=t,
                score=s,
                threshold=model.threshold,
                windows=[(float(t[a]), float(t[b])) for a, b in f.windows],
                detections=[float(t[j]) for j in det],
            )
        )
    pub = {d: published_scores(data_dir, d) for d in PUBLISHED}
    rows: list[tuple[str | int | float, ...]] = []
    for f, r in zip(corpus.files, std.per_file, strict=True):
        rows.append(
            (
                f.name,
                r.windows,
                r.windows_detected,
                r.false_positives,
                round(r.raw, 3),
                r.null,
                *(round(pub[d].get(f.name, math.nan), 3) for d in PUBLISHED),
            )
        )
    folders = []
    for folder in sorted({f.name.split("/")[0] for f in corpus.files}):
        idx = [k for k, f in enumerate(corpus.files) if f.name.startswith(folder + "/")]
        raw = sum(std.per_file[k].raw for k in idx)
        null = sum(std.per_file[k].null for k in idx)
        folders.append(
            (
                folder,
                len(idx),
                sum(std.per_file[k].windows for k in idx),
                sum(std.per_file[k].windows_detected for k in idx),
                sum(std.per_file[k].false_positives for k in idx),
                round(raw, 3),
                null,
                round(100.0 * (raw - null) / (-2.0 * null), 1) if null < 0 else math.nan,
                *(
                    round(sum(pub[d].get(corpus.files[k].name, math.nan) for k in idx), 3)
                    for d in PUBLISHED
                ),
            )
        )
    profiles = [
        (p, round(results[p].normalized, 1), round(results[p].raw, 3), results[p].threshold)
        for p in NAB_PROFILES
    ]
    return ReportData(
        model=model.name,
        title="NAB generic streaming detector (CAD OSE, gateway scale rule), whole corpus",
        summary=(
            f"{len(corpus.files)} NAB files ({int(metrics['nab.windows'])} windows), one "
            "configuration, NAB corpus protocol (one threshold per profile). Standard "
            f"normalised {results['standard'].normalized:.1f} (published 58-file scoreboard: "
            "ARTime 74.9, numenta HTM ~70, CAD OSE 69.9, windowedGaussian 39.6, null 0); files "
            "worse than null by more than one window: "
            f"{int(metrics['nab.standard.files_worse_than_null_by_a_window'])}."
        ),
        metrics=metrics,
        traces=traces,
        tables=[
            Table(
                "NAB profiles (corpus-normalised)",
                ("profile", "normalised", "raw", "threshold"),
                profiles,
            ),
            Table(
                "Per folder, standard profile",
                (
                    "folder",
                    "files",
                    "windows",
                    "detected",
                    "FP",
                    "raw",
                    "null",
                    "normalised",
                    *(f"{d} raw" for d in PUBLISHED),
                ),
                folders,
            ),
            Table(
                "Per file, standard profile (raw; published scores at their own corpus threshold)",
                (
                    "file",
                    "windows",
                    "detected",
                    "FP",
                    "raw",
                    "null",
                    *(f"{d} raw" for d in PUBLISHED),
                ),
                rows,
            ),
        ],
        notes=NOTES,
    )
