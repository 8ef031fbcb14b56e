"""Types shared by the training profiles: what a profile hands to :func:`renkei.models.train.fit_t2`
and how its labelled evaluation data are scored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal, Protocol

import numpy as np
from numpy.typing import NDArray

from renkei.models.metrics import binary_metrics, event_metrics, roc_auc

__all__ = ["EvalSet", "ProfileData", "Scorer", "evaluate", "require_file", "window_descriptions"]


class Scorer(Protocol):
    """What :func:`evaluate` needs: :class:`renkei.models.train.TrainedModel` (ONNX session of a
    fresh fit) or :class:`renkei.edge.model.inference.AnomalyModel` (a loaded artifact)."""

    @property
    def threshold(self) -> float:
        """Alarm when ``score > threshold``."""
        ...

    def score(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """Anomaly scores (N,) of rows (N, F)."""
        ...


def require_file(data_dir: Path, relative: str) -> Path:
    """``data_dir / relative`` if it is a file.

    Raises:
        FileNotFoundError: naming the full path that is missing and the data directory.
    """
    path = data_dir / relative
    if not path.is_file():
        raise FileNotFoundError(
            f"training data file not found: {path} (data directory {data_dir}; set "
            f"RENKEI_DATA_DIR or pass --data-dir)"
        )
    return path


_SLOW_STAT_TEXT: Final = {
    "mean": "mean",
    "min": "minimum",
    "max": "maximum",
    "slope_per_s": "least-squares slope per second",
}
_VIB_TEXT: Final = {
    "rms_g": "RMS acceleration",
    "peak_g": "peak |acceleration|",
    "crest": "crest factor (peak / RMS)",
    "kurtosis": "excess kurtosis",
    "velocity_rms_mm_s": "RMS velocity 10-1000 Hz (ISO 10816 band)",
}


def window_descriptions(
    names: Sequence[str], window_s: float, fields: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Descriptions of window feature names (``renkei.edge.features`` naming rules).

    Args:
        names: feature names (``{field}_{stat}`` slow features, ``vib_*`` vibration).
        window_s: window length, s.
        fields: optional field name → what the signal is.
    """
    fields = fields or {}
    out: dict[str, str] = {}
    for name in names:
        if name.startswith("vib_"):
            stem = name[len("vib_") :]
            what = _VIB_TEXT.get(stem)
            if what is None and stem.startswith("band_"):
                what = "Welch acceleration power in the band " + stem[5:].replace("_g2", "")
            if what is None and stem.startswith("env_"):
                what = "envelope-spectrum power in " + stem[4:].replace("_g2", "")
            out[name] = f"{what or stem} of the vibration waveform per {window_s:g} s window"
            continue
        for stat, text in _SLOW_STAT_TEXT.items():
            if name.endswith("_" + stat):
                field = name[: -len(stat) - 1]
                signal = f"{field} ({fields[field]})" if field in fields else field
                out[name] = f"{text} of {signal} over each {window_s:g} s window"
                break
    return out


@dataclass(frozen=True)
class EvalSet:
    """Labelled rows for evaluation only (never for fitting or the threshold).

    Attributes:
        name: metric-name prefix, e.g. ``"valve1_test.point"``.
        x: (N, F) feature rows in the model's column order.
        labels: (N,) 1 = anomalous, 0 = normal.
        weights: optional (N,) row weights (e.g. original sample points per window row).
        what: ``"binary+auc"`` (F1/FAR/MAR at the threshold and ROC-AUC) or ``"auc"``.
        events: rows are one time-ordered series: add :func:`renkei.models.metrics.event_metrics`.
    """

    name: str
    x: NDArray[np.float64]
    labels: NDArray[np.int8]
    weights: NDArray[np.float64] | None = None
    what: Literal["binary+auc", "auc"] = "binary+auc"
    events: bool = False

    def __post_init__(self) -> None:
        if self.x.ndim != 2 or self.labels.shape != (self.x.shape[0],):
            raise ValueError(
                f"eval set {self.name}: x {self.x.shape} / labels {self.labels.shape} mismatch"
            )
        if self.weights is not None and self.weights.shape != self.labels.shape:
            raise ValueError(f"eval set {self.name}: weights must have one entry per row")


@dataclass(frozen=True)
class ProfileData:
    """Everything needed to fit, export and evaluate one profile's model.

    Attributes:
        names: feature names in column order (exactly as the gateway computes them).
        units: feature name → unit.
        x_fit: (N, F) NORMAL rows, time-ordered.
        x_holdout: (H, F) NORMAL rows for the threshold, or None for the tail of ``x_fit``.
        feature_kind: ``"window"`` or ``"shot"``.
        window_s: window length for ``"window"`` features, s.
        data_source: dataset, file paths (relative to the data dir) and licence.
        fitted_on: ``"normal only: ..."``.
        eval_sets: labelled evaluation data.
        notes: model-card paragraphs (protocol, caveats).
        descriptions: feature name → description.
    """

    names: list[str]
    units: Mapping[str, str]
    x_fit: NDArray[np.float64]
    x_holdout: NDArray[np.float64] | None
    feature_kind: Literal["window", "shot"]
    window_s: float | None
    data_source: str
    fitted_on: str
    eval_sets: Sequence[EvalSet] = ()
    notes: Sequence[str] = ()
    descriptions: Mapping[str, str] = field(default_factory=dict)


def evaluate(model: Scorer, eval_sets: Sequence[EvalSet]) -> dict[str, float]:
    """Score every eval set with the exported ONNX graph and compute its metrics.

    Metric names: ``{set}.f1``, ``.far``, ``.mar``, ``.precision``, ``.recall``,
    ``.n_pos``, ``.n_neg`` (``"binary+auc"`` sets, alarm = ``score > threshold``) and
    ``{set}.roc_auc`` (all sets), and ``{set}.episodes``, ``.episodes_detected``,
    ``.alarm_onsets_outside`` for sets with ``events``.
    """
    out: dict[str, float] = {}
    for ev in eval_sets:
        scores = model.score(ev.x)
        if ev.what == "binary+auc":
            for key, value in binary_metrics(
                scores, ev.labels, model.threshold, weights=ev.weights
            ).items():
                out[f"{ev.name}.{key}"] = value
        else:
            out[f"{ev.name}.n_pos"] = float(
                ev.labels.sum() if ev.weights is None else ev.weights[ev.labels == 1].sum()
            )
            out[f"{ev.name}.n_neg"] = float(
                (ev.labels == 0).sum() if ev.weights is None else ev.weights[ev.labels == 0].sum()
            )
        out[f"{ev.name}.roc_auc"] = roc_auc(scores, ev.labels, weights=ev.weights)
        if ev.events:
            for key, value in event_metrics(scores, ev.labels, model.threshold).items():
                out[f"{ev.name}.{key}"] = value
    return out
