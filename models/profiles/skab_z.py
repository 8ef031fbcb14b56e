"""Recipe ``skab-pump-mahal``: SKAB valve1, per-run baseline z-scores, 10-row means,
Mahalanobis distance; evaluated with the SKAB leaderboard protocol.

Data: SKAB v0.9 (Katser & Kozitsin 2020, doi:10.34740/KAGGLE/DSV/1693952; GPL-3.0),
``skab/data/valve1/{0..15}.csv`` read by the gateway's replay preset ``skab``; 8 signals at
~1 Hz, one row per sample.

Protocol (SKAB leaderboard, ``train_test_split(train_size=400, shuffle=False)`` per file):
rows 0-399 of each run are the "train" part (all labelled normal; checked), rows ≥ 400 the
test part, scored per point (F1, FAR = FP/(FP+TN), MAR = FN/(FN+TP); ``renkei.models.metrics``).

Recipe (everything fitted on train rows only):

1. Per run, the baseline = mean and standard deviation of its rows 0-399 (the protocol
   allows fitting on them; on a gateway: the first 400 samples after commissioning or a
   maintenance, operator-confirmed normal);
2. channel screening on train rows only: a channel whose baseline-standardised level drifts
   by more than ``DRIFT_LIMIT`` σ over the 400 train rows (median over runs of the OLS
   slope × 400) is not a stationary level and is left out. This drops
   ``temperature_C`` and ``thermocouple_C`` (motor and fluid warm up during a run: 2.5 σ and
   1.1 σ; the others ≤ 0.5 σ); the result is recorded in the manifest;
3. features ``{f}_zm10``: 10-row trailing mean of ``(x - mu) / sd`` of the kept channels
   (:mod:`renkei.edge.features.history`, ``HistoryConfig(baseline_rows=400, zmean_rows=(10,))``);
4. one pooled Mahalanobis model (:mod:`renkei.models.mahalanobis`) on rows 0-299 of all runs;
   threshold = 99.5 % quantile of the ONNX scores of rows 300-399 of all runs (normal
   hold-out, never fitted).

Gateway: slow stream at 1 Hz, machine ``window_s: 1`` (one sample per window: the
``{f}_mean`` features are the samples), then :class:`renkei.edge.features.history.HistoryFeatures`
with the config above on the kept channels' ``{f}_mean`` (it collects 400 rows, freezes the
baseline, emits the backlog and then one row per sample); the model scores each row.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
from numpy.typing import NDArray

from renkei.core.manifest import InputSpec, ModelManifest, OutputSpec
from renkei.edge.features.history import HistoryConfig, history_feature_names, history_features
from renkei.edge.sources.replay import ReplayOptions, ReplaySource
from renkei.models.artifact import make_session, run_outputs, write_artifact
from renkei.models.metrics import binary_metrics, roc_auc
from renkei.models.profiles._common import require_file

__all__ = [
    "CONFIG",
    "DRIFT_LIMIT",
    "NAME",
    "SkabData",
    "build",
    "evaluate",
    "fit_and_threshold",
    "screen_channels",
    "train",
]

NAME: Final = "skab-pump-mahal"
VERSION: Final = "1.0.0"
TRAIN_ROWS: Final = 400
FIT_ROWS: Final = 300
ROLL_ROWS: Final = 10
QUANTILE: Final = 0.995
DRIFT_LIMIT: Final = 1.0  # σ of the baseline per 400 train rows
CONFIG: Final = HistoryConfig(baseline_rows=TRAIN_ROWS, zmean_rows=(ROLL_ROWS,))
RUNS: Final = tuple(f"skab/data/valve1/{i}.csv" for i in range(16))
DATA_SOURCE: Final = (
    "SKAB v0.9 (Katser & Kozitsin 2020, doi:10.34740/KAGGLE/DSV/1693952; "
    "github.com/waico/SKAB @ b2c0d46; GPL-3.0): skab/data/valve1/0.csv … 15.csv"
)


@dataclass(frozen=True)
class Run:
    """One valve1 recording: ``x`` (n, 8) samples in ``fields`` order, ``labels`` (n,)."""

    path: str
    x: NDArray[np.float64]
    labels: NDArray[np.int8]


@dataclass(frozen=True)
class SkabData:
    """All runs plus field names and units (``fields`` order = columns of ``Run.x``)."""

    runs: tuple[Run, ...]
    fields: tuple[str, ...]
    units: dict[str, str]


def build(data_dir: Path) -> SkabData:
    """Read the 16 valve1 runs through the gateway's replay preset.

    Raises:
        FileNotFoundError: a file is missing (path named).
        ValueError: a label in rows 0-399 is not 0, or a run is shorter than 401 rows.
    """
    runs: list[Run] = []
    fields: tuple[str, ...] = ()
    units: dict[str, str] = {}
    for rel in RUNS:
        path = require_file(data_dir, rel)
        src = ReplaySource(ReplayOptions(path=path, preset="skab", timestamps="keep"))
        blocks = list(src.blocks())
        fields = fields or tuple(blocks[0].fields)
        units = units or dict(src.fields)
        x = np.vstack([np.column_stack([b.fields[f] for f in fields]) for b in blocks])
        labels = np.concatenate([b.labels for b in blocks if b.labels is not None])
        if x.shape[0] <= TRAIN_ROWS or labels.shape != (x.shape[0],):
            raise ValueError(f"{rel}: expected > {TRAIN_ROWS} labelled rows")
        if np.any(labels[:TRAIN_ROWS] != 0):
            raise ValueError(f"{rel}: rows 0-{TRAIN_ROWS - 1} are not all labelled normal")
        runs.append(Run(rel, x, (labels != 0).astype(np.int8)))
    return SkabData(tuple(runs), fields, units)


def screen_channels(train_parts: list[NDArray[np.float64]]) -> tuple[list[int], list[float]]:
    """Channels whose baseline-standardised level is stationary over the train rows.

    Args:
        train_parts: per run, its (400, k) train rows (never test rows).

    Returns:
        (kept channel indices, median |drift| per channel in baseline σ per 400 rows).
    """
    t = np.arange(TRAIN_ROWS, dtype=np.float64)
    tc = t - t.mean()
    drifts = []
    for part in train_parts:
        if part.shape[0] != TRAIN_ROWS:
            raise ValueError(f"train part must have {TRAIN_ROWS} rows, got {part.shape[0]}")
        mu = part.mean(axis=0)
        sd = np.maximum(
            part.std(axis=0), np.maximum(CONFIG.sd_floor_rel * np.abs(mu), CONFIG.sd_floor_abs)
        )
        z = (part - mu) / sd
        drifts.append(np.abs(tc @ (z - z.mean(axis=0)) / float(tc @ tc)) * TRAIN_ROWS)
    med = np.median(np.array(drifts), axis=0)
    kept = [j for j in range(med.size) if med[j] <= DRIFT_LIMIT]
    return kept, [float(d) for d in med]


@dataclass(frozen=True)
class Fitted:
    """Output of :func:`fit_and_threshold`."""

    onnx_bytes: bytes
    threshold: float
    holdout_scores: NDArray[np.float64]
    fit_rows: int
    kept: list[int]
    drift: list[float]


def run_features(x: NDArray[np.float64], kept: list[int]) -> NDArray[np.float64]:
    """(n, len(kept)) model inputs of one run (all its rows)."""
    return history_features(x[:, kept], CONFIG)


def fit_and_threshold(train_parts: list[NDArray[np.float64]]) -> Fitted:
    """Screen channels, fit on rows 0-299 and threshold on rows 300-399 of every run.

    Args:
        train_parts: per run, its rows 0-399 (the protocol's train part) only.

    The features of rows < 400 depend only on rows < 400 (causal trailing means and the
    baseline of rows 0-399), so this function cannot see a test row.
    """
    from renkei.models.mahalanobis import fit_mahalanobis, to_onnx_bytes

    kept, drift = screen_channels(train_parts)
    feats = [run_features(part, kept) for part in train_parts]
    x_fit = np.vstack([f[:FIT_ROWS] for f in feats])
    x_hold = np.vstack([f[FIT_ROWS:TRAIN_ROWS] for f in feats])
    fit = fit_mahalanobis(x_fit)
    onnx_bytes = to_onnx_bytes(fit, doc="Renkei SKAB pump Mahalanobis score; see manifest.json")
    hold = run_outputs(make_session(onnx_bytes), x_hold)["score"]
    return Fitted(
        onnx_bytes=onnx_bytes,
        threshold=float(np.quantile(hold, QUANTILE)),
        holdout_scores=hold,
        fit_rows=x_fit.shape[0],
        kept=kept,
        drift=drift,
    )


def score_test_part(
    score_fn: Callable[[NDArray[np.float64]], NDArray[np.float64]],
    data: SkabData,
    kept: list[int],
) -> tuple[NDArray[np.float64], NDArray[np.int8], list[NDArray[np.float64]]]:
    """Scores and labels of every test point (rows ≥ 400, runs concatenated), and per run."""
    scores, labels, per_run = [], [], []
    for run in data.runs:
        s = np.asarray(score_fn(run_features(run.x, kept)[TRAIN_ROWS:]), dtype=np.float64)
        scores.append(s)
        per_run.append(s)
        labels.append(run.labels[TRAIN_ROWS:])
    return np.concatenate(scores), np.concatenate(labels), per_run


def metrics_of(
    scores: NDArray[np.float64], labels: NDArray[np.int8], threshold: float
) -> dict[str, float]:
    """Leaderboard metrics of the pooled test points: ``valve1_test.point.*``."""
    out = {
        f"valve1_test.point.{k}": v for k, v in binary_metrics(scores, labels, threshold).items()
    }
    out["valve1_test.point.roc_auc"] = roc_auc(scores, labels)
    return out


def _ablation_all_channels(data: SkabData) -> dict[str, float]:
    """Same recipe without the drift screening (all 8 channels), for the model card."""
    from renkei.models.mahalanobis import fit_mahalanobis, reference_scores

    every = list(range(len(data.fields)))
    feats = [run_features(r.x[:TRAIN_ROWS], every) for r in data.runs]
    fit = fit_mahalanobis(np.vstack([f[:FIT_ROWS] for f in feats]))
    hold = reference_scores(fit, np.vstack([f[FIT_ROWS:] for f in feats]))
    thr = float(np.quantile(hold, QUANTILE))
    s, y, _ = score_test_part(lambda x: reference_scores(fit, x), data, every)
    m = binary_metrics(s, y, thr)
    return {f"ablation_all_8_channels.point.{k}": m[k] for k in ("f1", "far", "mar")}


def train(data_dir: Path, out_dir: Path) -> ModelManifest:
    """Fit, threshold, export and evaluate ``skab-pump-mahal`` into ``out_dir``."""
    started = time.perf_counter()
    data = build(data_dir)
    fitted = fit_and_threshold([r.x[:TRAIN_ROWS] for r in data.runs])
    session = make_session(fitted.onnx_bytes)
    scores, labels, per_run = score_test_part(
        lambda x: run_outputs(session, x)["score"], data, fitted.kept
    )
    metrics = metrics_of(scores, labels, fitted.threshold)
    f1_runs = [
        binary_metrics(s, r.labels[TRAIN_ROWS:], fitted.threshold)["f1"]
        for s, r in zip(per_run, data.runs, strict=True)
    ]
    metrics["valve1_test.per_run_f1.min"] = float(np.min(f1_runs))
    metrics["valve1_test.per_run_f1.median"] = float(np.median(f1_runs))
    metrics.update(_ablation_all_channels(data))
    metrics["holdout_normal.far"] = float(np.mean(fitted.holdout_scores > fitted.threshold))
    metrics["train_seconds"] = round(time.perf_counter() - started, 2)
    kept_fields = [data.fields[j] for j in fitted.kept]
    names = history_feature_names(kept_fields, CONFIG)
    dropped = [
        f"{f} ({d:.2f} σ)"
        for f, d in zip(data.fields, fitted.drift, strict=True)
        if f not in kept_fields
    ]
    return write_artifact(
        out_dir,
        onnx_bytes=fitted.onnx_bytes,
        name=NAME,
        version=VERSION,
        algorithm="mahalanobis",
        algorithm_params={
            "baseline_rows": TRAIN_ROWS,
            "roll_rows": ROLL_ROWS,
            "drift_limit_sigma_per_400_rows": DRIFT_LIMIT,
            "channels_dropped": ", ".join(dropped) or "none",
            "score": "mean squared Mahalanobis distance (x-m)^T S^-1 (x-m) / F",
        },
        inputs=[_input(n, f) for n, f in zip(names, kept_fields, strict=True)],
        outputs=[
            OutputSpec(
                name="score",
                unit="1 (mean squared Mahalanobis distance; ≈1 on normal data)",
                description="anomaly score, alarm when score > threshold",
            )
        ],
        feature_kind="window",
        window_s=1.0,
        threshold=fitted.threshold,
        threshold_rule=(
            f"{QUANTILE * 100:g} % quantile of ONNX scores of rows {FIT_ROWS}-"
            f"{TRAIN_ROWS - 1} of every run (normal hold-out)"
        ),
        data_source=DATA_SOURCE,
        rows=fitted.fit_rows,
        holdout_rows=int(fitted.holdout_scores.size),
        fitted_on=(
            f"normal only: rows 0-{FIT_ROWS - 1} of each valve1 run (SKAB train part, "
            f"labels all 0); baseline and channel screening from rows 0-{TRAIN_ROWS - 1}"
        ),
        metrics=metrics,
        opset=17,
        notes=_notes(dropped),
    )


def _input(name: str, field: str) -> InputSpec:
    return InputSpec(
        name=name,
        unit="1 (σ of the run baseline)",
        description=(
            f"{ROLL_ROWS}-row trailing mean of ({field} - baseline mean) / baseline sd; "
            f"baseline = first {TRAIN_ROWS} rows of the run (renkei.edge.features.history)"
        ),
    )


def _notes(dropped: list[str]) -> list[str]:
    return [
        "Protocol: SKAB leaderboard split per valve1 run (rows 0-399 train, rows ≥ 400 "
        "test), per-point F1/FAR/MAR over the 16 runs' test points pooled "
        "(`valve1_test.point.*`). One pooled model for all runs, fed per-run "
        "standardised inputs. Published (all 34 SKAB files, per-file models, different "
        "subset): Conv-AE F1 0.78 / FAR 13.55 % / MAR 28.02 %; T-squared+Q (PCA) 0.76 / "
        "26.62 % / 24.92 %.",
        f"Channels left out by the train-rows drift screening: {', '.join(dropped) or 'none'}. "
        "`ablation_all_8_channels.*`: the same recipe on all 8 channels.",
        "Gateway: machine `window_s: 1` (1 Hz rows), then renkei.edge.features.history."
        "HistoryFeatures(6, HistoryConfig(baseline_rows=400, zmean_rows=(10,))) on the "
        "kept channels' `_mean` features, in the input order; no score during the "
        "400-row commissioning period (renkei.edge.model.inputs; firmware-config/skab-pump.yaml; "
        "gateway parity: tests/integration/test_gateway_dataset_models.py).",
    ]


def evaluate(data_dir: Path, model_dir: Path) -> dict[str, float]:
    """Re-score the test points with the artifact in ``model_dir`` (gateway loader)."""
    from renkei.edge.model.inference import AnomalyModel

    model = AnomalyModel.load(model_dir=model_dir)
    data = build(data_dir)
    kept_fields = [n.rsplit("_zm", 1)[0] for n in model.input_names]
    kept = [data.fields.index(f) for f in kept_fields]
    scores, labels, _ = score_test_part(model.score, data, kept)
    return metrics_of(scores, labels, model.threshold)
