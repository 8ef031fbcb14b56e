"""Recipe ``cwru-bearing-mahal``: CWRU drive-end bearing, 0.2 s vibration windows, normal vs
fault by a Mahalanobis distance fitted on normal windows; fault kind by envelope orders.

Data (bearing/SOURCE.md; CWRU Bearing Data Center, no formal licence, cite CWRU; method
after Smith & Randall 2015, MSSP 64-65:100-131): drive-end accelerometer (``X*_DE_time``,
g) at 0 HP, ~1797 rpm: ``normal_0_97.mat`` (48 kHz, decimated by 4 to 12 kHz here with
``scipy.signal.decimate(ftype="fir", zero_phase=True)``: CWRU has no 12 kHz normal record;
a gateway would sample at 12 kHz directly) and the 12 kHz fault records IR007 (inner race),
B007 (ball), OR007@6 (outer race), all 0.007" (0.18 mm) EDM faults. Only this one fault size
is in the subset.

Windows: 2,400 samples (0.2 s), hop 1,200 (50 % overlap). Features
(:func:`renkei.edge.features.vibration_features`, bands kept below 4.5 kHz because the decimation
filter removes 4.8-6 kHz from the normal record only): RMS, peak, crest, kurtosis, ISO
velocity RMS, band powers 0-0.5 / 0.5-2 / 2-4.5 kHz, envelope power 5-500 Hz (demodulated
2-4.5 kHz).

Protocol: the normal record is split in time: first 50 % → fit, next 20 % → threshold
hold-out, last 30 % → normal test windows (windows never straddle a boundary). Model:
Ledoit-Wolf-shrunk Mahalanobis (:mod:`renkei.models.mahalanobis`; ~24 fit windows for 9 features);
threshold = 2 × the highest hold-out score (a safety factor for a 9-window hold-out, fixed
a priori). Evaluation: every window of every fault record (never fitted) and the normal
test windows; per class detection rate, FAR, ROC-AUC and margins; plus the envelope-order
diagnosis (:func:`renkei.edge.features.envelope.diagnose`, no training) per fault class.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np
from numpy.typing import NDArray

from renkei.core.manifest import InputSpec, ModelManifest, OutputSpec
from renkei.edge.features.envelope import diagnose, envelope_order_features
from renkei.edge.features.vibration import EnvelopeConfig, VibrationConfig, vibration_feature_names
from renkei.edge.features.vibration import vibration_features as _vibration_features
from renkei.models.artifact import make_session, run_outputs, write_artifact
from renkei.models.metrics import roc_auc
from renkei.models.profiles._common import require_file, window_descriptions

if TYPE_CHECKING:
    from renkei.models.reporting import ReportData

__all__ = [
    "CLASSES",
    "FEATURES",
    "FS_HZ",
    "NAME",
    "CwruData",
    "build",
    "evaluate",
    "fit_and_threshold",
    "gateway_rows",
    "report",
    "train",
    "window_features",
]

NAME: Final = "cwru-bearing-mahal"
VERSION: Final = "1.0.0"
FS_HZ: Final = 12_000.0
WINDOW: Final = 2400
HOP: Final = 1200
SPLIT: Final = (0.5, 0.7)  # normal record: fit < 50 % ≤ hold-out < 70 % ≤ test
SAFETY: Final = 2.0
FEATURES: Final = VibrationConfig(
    bands_hz=((0.0, 500.0), (500.0, 2000.0), (2000.0, 4500.0)),
    envelope=EnvelopeConfig(demod_band_hz=(2000.0, 4500.0), band_hz=(5.0, 500.0)),
)
#: class → (file, fault diameter in inches; 0 for normal)
CLASSES: Final = {
    "normal": ("bearing/cwru/normal_0_97.mat", 0.0),
    "inner_race": ("bearing/cwru/12k_Drive_End_IR007_0_105.mat", 0.007),
    "ball": ("bearing/cwru/12k_Drive_End_B007_0_118.mat", 0.007),
    "outer_race": ("bearing/cwru/12k_Drive_End_OR007@6_0_130.mat", 0.007),
}


@dataclass(frozen=True)
class Record:
    """One record: drive-end acceleration at 12 kHz (g) and shaft speed (rpm)."""

    name: str
    x: NDArray[np.float64]
    rpm: float


@dataclass(frozen=True)
class CwruData:
    """The four records, keyed by class."""

    records: dict[str, Record]


def _load_mat(path: Path) -> tuple[NDArray[np.float64], float]:
    from scipy.io import loadmat

    mat = loadmat(path)
    de = [k for k in mat if k.endswith("_DE_time")]
    rpm = [k for k in mat if k.endswith("RPM")]
    if len(de) != 1 or len(rpm) != 1:
        raise ValueError(f"{path}: expected one *_DE_time and one *RPM variable, got {list(mat)}")
    return np.asarray(mat[de[0]], dtype=np.float64).ravel(), float(np.ravel(mat[rpm[0]])[0])


def build(data_dir: Path) -> CwruData:
    """Load the four records; decimate the 48 kHz normal record to 12 kHz.

    Raises:
        FileNotFoundError: a .mat file is missing.
    """
    from scipy.signal import decimate

    records = {}
    for cls, (rel, _) in CLASSES.items():
        x, rpm = _load_mat(require_file(data_dir, rel))
        if cls == "normal":  # 48 kHz → 12 kHz (SOURCE.md)
            x = np.asarray(decimate(x, 4, ftype="fir", zero_phase=True), dtype=np.float64)
        records[cls] = Record(cls, x, rpm)
    return CwruData(records)


def windows(
    x: NDArray[np.float64], lo: int = 0, hi: int | None = None
) -> list[NDArray[np.float64]]:
    """Windows of ``WINDOW`` samples, hop ``HOP``, lying entirely inside ``x[lo:hi]``."""
    hi = x.size if hi is None else hi
    return [x[s : s + WINDOW] for s in range(lo, hi - WINDOW + 1, HOP)]


def window_features(segs: list[NDArray[np.float64]]) -> NDArray[np.float64]:
    """(n, 9) gateway vibration features of windows (FEATURES config, 12 kHz)."""
    return np.array([list(_vibration_features(s, FS_HZ, FEATURES).values()) for s in segs])


@dataclass(frozen=True)
class Fitted:
    """The exported model and its threshold."""

    onnx_bytes: bytes
    threshold: float
    holdout_scores: NDArray[np.float64]
    fit_rows: int
    shrinkage: float


def fit_and_threshold(normal_train: NDArray[np.float64]) -> Fitted:
    """Fit on the first 50 % of the normal record and threshold on the next 20 %.

    Args:
        normal_train: the first 70 % of the normal record only (samples at 12 kHz).
    """
    from renkei.models.mahalanobis import fit_mahalanobis, to_onnx_bytes

    n = normal_train.size
    cut = round(SPLIT[0] / SPLIT[1] * n)
    x_fit = window_features(windows(normal_train, 0, cut))
    x_hold = window_features(windows(normal_train, cut, n))
    fit = fit_mahalanobis(x_fit, ledoit_wolf=True)
    onnx_bytes = to_onnx_bytes(fit, doc="Renkei CWRU bearing Mahalanobis score; see manifest")
    hold = run_outputs(make_session(onnx_bytes), x_hold)["score"]
    return Fitted(onnx_bytes, SAFETY * float(hold.max()), hold, x_fit.shape[0], fit.shrinkage)


def eval_windows(data: CwruData) -> dict[str, tuple[NDArray[np.float64], list[float]]]:
    """Per class: (features of its evaluation windows, envelope diagnosis input rpm list)."""
    out = {}
    for cls, rec in data.records.items():
        lo = round(SPLIT[1] * rec.x.size) if cls == "normal" else 0
        segs = windows(rec.x, lo)
        out[cls] = (window_features(segs), [rec.rpm] * len(segs))
    return out


def class_metrics(
    data: CwruData,
    score_fn: object,
    threshold: float,
) -> dict[str, float]:
    """Per-class detection (``{cls}.detected``), FAR, AUC, margins and diagnosis rates."""
    assert callable(score_fn)
    out: dict[str, float] = {}
    ev = eval_windows(data)
    normal_scores = np.asarray(score_fn(ev["normal"][0]), dtype=np.float64)
    out["normal_test.windows"] = float(normal_scores.size)
    out["normal_test.far"] = float(np.mean(normal_scores > threshold))
    out["normal_test.max_score_over_threshold"] = float(normal_scores.max() / threshold)
    for cls in ("inner_race", "ball", "outer_race"):
        s = np.asarray(score_fn(ev[cls][0]), dtype=np.float64)
        out[f"{cls}_007.windows"] = float(s.size)
        out[f"{cls}_007.detected"] = float(np.mean(s > threshold))
        out[f"{cls}_007.min_score_over_threshold"] = float(s.min() / threshold)
        y = np.r_[np.zeros(normal_scores.size), np.ones(s.size)]
        out[f"{cls}_007.roc_auc"] = roc_auc(np.r_[normal_scores, s], y)
        rec = data.records[cls]
        shaft = rec.rpm / 60.0
        kinds = [diagnose(envelope_order_features(seg, FS_HZ, shaft)) for seg in windows(rec.x)]
        out[f"{cls}_007.diagnosed_correctly"] = float(np.mean([k == cls for k in kinds]))
    return out


def train(data_dir: Path, out_dir: Path) -> ModelManifest:
    """Fit on normal windows, export, and evaluate ``cwru-bearing-mahal``."""
    started = time.perf_counter()
    data = build(data_dir)
    normal = data.records["normal"].x
    fitted = fit_and_threshold(normal[: round(SPLIT[1] * normal.size)])
    session = make_session(fitted.onnx_bytes)
    metrics = class_metrics(data, lambda x: run_outputs(session, x)["score"], fitted.threshold)
    metrics["holdout_normal.far"] = float(np.mean(fitted.holdout_scores > fitted.threshold))
    metrics["train_seconds"] = round(time.perf_counter() - started, 2)
    names = vibration_feature_names(FS_HZ, FEATURES)
    units = {
        "vib_rms_g": "g",
        "vib_peak_g": "g",
        "vib_crest": "1",
        "vib_kurtosis": "1",
        "vib_velocity_rms_mm_s": "mm/s",
    }
    desc = window_descriptions(names, WINDOW / FS_HZ)
    return write_artifact(
        out_dir,
        onnx_bytes=fitted.onnx_bytes,
        name=NAME,
        version=VERSION,
        algorithm="mahalanobis",
        algorithm_params={
            "ledoit_wolf_shrinkage": round(fitted.shrinkage, 6),
            "sample_rate_hz": FS_HZ,
            "window_samples": WINDOW,
            "score": "mean squared Mahalanobis distance (x-m)^T S^-1 (x-m) / F",
        },
        inputs=[
            InputSpec(name=n, unit=units.get(n, "g^2"), description=desc.get(n, "")) for n in names
        ],
        outputs=[
            OutputSpec(
                name="score",
                unit="1 (mean squared Mahalanobis distance; ≈1 on normal data)",
                description="anomaly score, alarm when score > threshold",
            )
        ],
        feature_kind="window",
        window_s=WINDOW / FS_HZ,
        threshold=fitted.threshold,
        threshold_rule=(
            f"{SAFETY:g} × the highest ONNX score of {fitted.holdout_scores.size} normal "
            "hold-out windows (50-70 % of the normal record)"
        ),
        data_source=(
            "CWRU Bearing Data Center (case.edu bearingdatacenter; no formal licence, cite "
            "CWRU; mirror github.com/yyxyz/CaseWesternReserveUniversityData @ b19e5a7): "
            + ", ".join(rel for rel, _ in CLASSES.values())
        ),
        rows=fitted.fit_rows,
        holdout_rows=int(fitted.holdout_scores.size),
        fitted_on=(
            "normal only: 0.2 s windows (50 % overlap) of the first 50 % of normal_0_97 "
            "(48 kHz decimated to 12 kHz)"
        ),
        metrics=metrics,
        opset=17,
        notes=[
            'Per class (0 HP, 0.007" faults only in this subset): `{class}_007.detected` = '
            "share of the record's windows above the threshold, `.roc_auc` vs the normal "
            "test windows, `.min_score_over_threshold` = margin of the weakest fault window; "
            "`normal_test.*` = last 30 % of the normal record.",
            "`{class}_007.diagnosed_correctly`: share of the record's windows whose largest "
            "envelope-order level (renkei.edge.features.envelope, BPFO / BPFI / 2×BSF of the SKF "
            "6205, demodulation 2-4.5 kHz) names the right fault; no training involved. "
            "B007 is known not to show ball-spin orders at the drive end (Smith & Randall "
            "2015 class it as not clearly diagnosable).",
            "Caveats: one record per class, all at 0 HP and the same speed; the normal "
            "record is 48 kHz decimated (different anti-alias path than the 12 kHz fault "
            "records), which is why no feature uses 4.5-6 kHz. Published window-level "
            "accuracies on CWRU (≈99-100 %, WDCNN) are for supervised classifiers and "
            "saturate; this is a normal-only detector.",
        ],
    )


def evaluate(data_dir: Path, model_dir: Path) -> dict[str, float]:
    """Re-score every evaluation window with the artifact in ``model_dir``."""
    from renkei.edge.model.inference import AnomalyModel

    model = AnomalyModel.load(model_dir=model_dir)
    return class_metrics(build(data_dir), model.score, model.threshold)


def gateway_rows(data_dir: Path, n: int) -> list[dict[str, float]]:
    """Up to ``n`` feature rows as the gateway's vibration windows give them to the model
    stage (``{feature name: value}``): the normal test windows, then every fault record's
    windows, in that order (for ``bench/bench_inference.py``).

    Raises:
        FileNotFoundError: a .mat file is missing.
    """
    data = build(data_dir)
    rows: list[dict[str, float]] = []
    for cls, rec in data.records.items():
        lo = round(SPLIT[1] * rec.x.size) if cls == "normal" else 0
        for seg in windows(rec.x, lo):
            if len(rows) >= n:
                return rows
            rows.append(_vibration_features(seg, FS_HZ, FEATURES))
    return rows


def _onsets(alarm: NDArray[np.bool_]) -> NDArray[np.intp]:
    """Indices where ``alarm`` turns on (the first row counts when it is on)."""
    return np.flatnonzero(alarm & ~np.r_[False, alarm[:-1]])


def report(data_dir: Path, model_dir: Path) -> ReportData:
    """The report of ``cwru-bearing-mahal``: every evaluation window scored with the artifact
    in ``model_dir`` (loaded as the gateway loads it), the per-class table of
    :func:`class_metrics`, ROC/PR of normal test vs all fault windows.

    The score trace concatenates the records (normal hold-out, normal test, IR007, B007,
    OR007@6; x = window number, hop 0.1 s); fault records are shaded whole (each is one
    fault), detections are alarm onsets counted per record.
    """
    from renkei.edge.model.inference import AnomalyModel
    from renkei.models.reporting import Classification, ReportData, ScoreTrace, Table

    model = AnomalyModel.load(model_dir=model_dir)
    thr = float(model.threshold)
    data = build(data_dir)
    normal = data.records["normal"].x
    n70 = round(SPLIT[1] * normal.size)
    cut = round(SPLIT[0] / SPLIT[1] * n70)
    ev = eval_windows(data)
    parts = [("normal hold-out", window_features(windows(normal[:n70], cut, n70)))]
    parts += [("normal test", ev["normal"][0])]
    parts += [(f"{cls} 0.007 in", ev[cls][0]) for cls in ("inner_race", "ball", "outer_race")]
    scores, spans, detections, start = [], [], [], 0
    for label, x in parts:
        s = model.score(x)
        scores.append(s)
        if not label.startswith("normal"):
            spans.append((start - 0.5, start + s.size - 0.5))
        detections += [float(start + i) for i in _onsets(s > thr)]
        start += s.size
    score = np.concatenate(scores)
    metrics = class_metrics(data, model.score, thr)
    n_test = parts[1][1].shape[0]
    fault_scores = np.concatenate(scores[2:])
    rows: list[tuple[str | int | float, ...]] = [
        (
            "normal (test, last 30 %)",
            CLASSES["normal"][0].rsplit("/", 1)[-1],
            n_test,
            metrics["normal_test.far"],
            metrics["normal_test.max_score_over_threshold"],
            float("nan"),
            float("nan"),
        )
    ]
    for cls in ("inner_race", "ball", "outer_race"):
        rows.append(
            (
                cls,
                CLASSES[cls][0].rsplit("/", 1)[-1],
                int(metrics[f"{cls}_007.windows"]),
                metrics[f"{cls}_007.detected"],
                metrics[f"{cls}_007.min_score_over_threshold"],
                metrics[f"{cls}_007.roc_auc"],
                metrics[f"{cls}_007.diagnosed_correctly"],
            )
        )
    return ReportData(
        model=NAME,
        title="CWRU drive-end bearing: normal-only Mahalanobis detector (0.2 s windows, 12 kHz)",
        summary=(
            "Nine gateway vibration features per 0.2 s window (hop 0.1 s) of the drive-end "
            "accelerometer at 0 HP; Ledoit-Wolf Mahalanobis distance fitted on the first 50 % "
            "of the normal record, threshold = 2 × the highest score of the 20 % hold-out. "
            "Evaluated on the last 30 % of the normal record and every window of the three "
            "0.007 in fault records (inner race, ball, outer race), never fitted. Alarm rate "
            "on normal test windows: "
            f"{metrics['normal_test.far']:.0%}; fault windows above the threshold: "
            f"{np.mean(fault_scores > thr):.0%}. Fault kind by envelope orders (no training)."
        ),
        metrics=metrics,
        traces=[
            ScoreTrace(
                name="records concatenated: normal hold-out, normal test, IR007, B007, OR007@6",
                t=np.arange(score.size, dtype=np.float64),
                score=score,
                threshold=thr,
                windows=spans,
                detections=detections,
                t_label="window (hop 0.1 s); shaded = fault record",
                log_score=True,
            )
        ],
        classifications=[
            Classification(
                name=f"normal test ({n_test} windows) vs all 0.007 in fault windows",
                y_true=np.r_[np.zeros(n_test), np.ones(fault_scores.size)].astype(np.int8),
                score=np.r_[scores[1], fault_scores],
                threshold=thr,
            )
        ],
        tables=[
            Table(
                title="Per class (0 HP, ~1797 rpm)",
                columns=(
                    "class",
                    "file",
                    "windows",
                    "share above threshold",
                    "weakest fault (min) / strongest normal (max) score ÷ threshold",
                    "ROC AUC vs normal test",
                    "envelope diagnosis correct",
                ),
                rows=rows,
            )
        ],
        notes=[
            "One record per class, all at 0 HP and the same speed, one fault size (0.007 in): "
            "a perfect separation here says the features separate these records, not that "
            "every bearing fault will be caught. Only "
            f"{n_test} normal test windows: with no alarm among them the true false-alarm "
            f"rate is only bounded by {1 - 0.05 ** (1 / n_test):.0%} (95 % upper bound).",
            "The normal record is 48 kHz decimated to 12 kHz (another anti-alias path than "
            "the 12 kHz fault records), which is why no feature uses 4.5-6 kHz; part of the "
            "margin may still come from the recording chain.",
            "B007 is known not to show ball-spin orders at the drive end (Smith & Randall "
            "2015), hence the low diagnosis share for the ball fault; detection does not "
            "depend on it. Published CWRU accuracies (≈99-100 %, e.g. WDCNN) are for "
            "supervised classifiers; this detector is trained on normal data only.",
        ],
    )
