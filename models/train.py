"""Fit a T²+Q anomaly model on normal feature rows, set its threshold, export ONNX + manifest.

Two calls, independent of where the features came from (see :mod:`renkei.models.profiles`)::

    model = fit_t2(X_normal, names, units=units)          # fit + threshold on hold-out normal
    manifest = export(model, out_dir, name="skab-pump-t2", version="1.0.0",
                      data_source="SKAB v0.9 ...", fitted_on="normal only: ...",
                      metrics=evaluate(...))

The threshold is the ``quantile`` of the scores that the exported ONNX graph (run by
onnxruntime, as on the gateway) gives the NORMAL hold-out rows, which are never used for
fitting. No labelled anomaly is ever used by this module.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Literal

import numpy as np
import onnx
import onnxruntime as ort
import skl2onnx
import sklearn
from numpy.typing import NDArray

from renkei.core.manifest import (
    MODEL_FILE,
    InputSpec,
    ModelManifest,
    OutputSpec,
    TrainingInfo,
    write_manifest,
)
from renkei.models.card import write_model_card
from renkei.models.t2 import ONNX_OPSET, T2Fit, constant_columns, fit_pca_t2, to_onnx_bytes

__all__ = ["ALGORITHM", "TrainedModel", "export", "fit_t2"]

ALGORITHM: Final = "pca_t2_spe"
_MIN_HOLDOUT_ROWS: Final = 20


@dataclass(frozen=True)
class TrainedModel:
    """A fitted model with its ONNX bytes and threshold, not yet written to disk.

    Attributes:
        fit: the scikit-learn fit (for reference scores).
        inputs: feature specs in column order.
        onnx_bytes: serialised ONNX graph (input ``x``, outputs ``score``/``t2``/``spe``).
        threshold: alarm when ``score > threshold``.
        quantile: quantile of the hold-out normal scores used as threshold.
        fit_rows: rows used to fit.
        holdout_scores: (H,) ONNX scores of the normal hold-out rows (float64).
    """

    fit: T2Fit
    inputs: tuple[InputSpec, ...]
    onnx_bytes: bytes
    threshold: float
    quantile: float
    fit_rows: int
    holdout_scores: NDArray[np.float64]
    session: ort.InferenceSession = field(repr=False, compare=False)
    """onnxruntime session over :attr:`onnx_bytes` (1 thread, CPU)."""

    @property
    def names(self) -> tuple[str, ...]:
        """Feature names in column order."""
        return tuple(spec.name for spec in self.inputs)

    @property
    def sha256(self) -> str:
        """SHA-256 (hex) of :attr:`onnx_bytes`."""
        return hashlib.sha256(self.onnx_bytes).hexdigest()

    def score(self, x: NDArray[np.floating]) -> NDArray[np.float64]:
        """ONNX ``score`` for rows ``x`` (N, F) via onnxruntime, as float64 (N,).

        Raises:
            ValueError: ``x`` is not 2-D with F columns.
        """
        arr = np.asarray(x, dtype=np.float32)
        if arr.ndim != 2 or arr.shape[1] != len(self.inputs):
            raise ValueError(f"x must have shape (N, {len(self.inputs)}), got {arr.shape}")
        return _run_score(self.session, arr)


def _make_session(onnx_bytes: bytes) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(onnx_bytes, opts, providers=["CPUExecutionProvider"])


def _run_score(session: ort.InferenceSession, x: NDArray[np.float32]) -> NDArray[np.float64]:
    (out,) = session.run(["score"], {"x": x})
    return np.asarray(out, dtype=np.float64)


def _input_specs(
    names: Sequence[str], units: Mapping[str, str] | None, descriptions: Mapping[str, str] | None
) -> tuple[InputSpec, ...]:
    units = units or {}
    descriptions = descriptions or {}
    unknown = sorted((set(units) | set(descriptions)) - set(names))
    if unknown:
        raise ValueError(f"units/descriptions given for features not in names: {unknown}")
    return tuple(
        InputSpec(name=n, unit=units.get(n, "1"), description=descriptions.get(n, ""))
        for n in names
    )


def fit_t2(
    x: NDArray[np.floating],
    names: Sequence[str],
    *,
    units: Mapping[str, str] | None = None,
    descriptions: Mapping[str, str] | None = None,
    holdout: NDArray[np.floating] | None = None,
    holdout_fraction: float = 0.2,
    quantile: float = 0.995,
    variance_to_keep: float = 0.95,
) -> TrainedModel:
    """Fit a T²+Q model (:mod:`renkei.models.t2`) on NORMAL rows and set its threshold.

    Args:
        x: normal-operation feature rows (N, F), in time order if ``holdout`` is None.
        names: F feature names, exactly as the gateway's feature extraction names them.
        units: feature name → unit (default ``"1"``).
        descriptions: feature name → description.
        holdout: explicit normal rows (H, F) for the threshold. If None, the LAST
            ``holdout_fraction`` of ``x`` is held out (a time-ordered split, so that
            overlapping windows do not leak into the hold-out).
        holdout_fraction: fraction of ``x`` held out when ``holdout`` is None, in (0, 1).
        quantile: threshold = this quantile of the hold-out scores, in (0.5, 1).
        variance_to_keep: see :func:`renkei.models.t2.fit_pca_t2`.

    Raises:
        ValueError: name count ≠ F, duplicate or invalid names, constant features (named),
            non-finite values, hold-out with fewer than 20 rows, parameters out of range.
    """
    arr = np.asarray(x, dtype=np.float64)
    names = list(names)
    if arr.ndim != 2 or arr.shape[1] != len(names):
        raise ValueError(f"x must have shape (N, {len(names)}) to match names, got {arr.shape}")
    if len(set(names)) != len(names):
        raise ValueError("feature names must be unique")
    if not 0.5 < quantile < 1.0:
        raise ValueError(f"quantile must be in (0.5, 1), got {quantile}")
    inputs = _input_specs(names, units, descriptions)
    if holdout is None:
        if not 0.0 < holdout_fraction < 1.0:
            raise ValueError(f"holdout_fraction must be in (0, 1), got {holdout_fraction}")
        n_hold = round(arr.shape[0] * holdout_fraction)
        fit_x, hold_x = arr[: arr.shape[0] - n_hold], arr[arr.shape[0] - n_hold :]
    else:
        fit_x, hold_x = arr, np.asarray(holdout, dtype=np.float64)
        if hold_x.ndim != 2 or hold_x.shape[1] != len(names):
            raise ValueError(f"holdout must have shape (H, {len(names)}), got {hold_x.shape}")
    if hold_x.shape[0] < _MIN_HOLDOUT_ROWS:
        raise ValueError(
            f"threshold hold-out has {hold_x.shape[0]} rows, need ≥ {_MIN_HOLDOUT_ROWS}"
        )
    if not np.all(np.isfinite(hold_x)):
        raise ValueError("holdout has NaN/inf values")
    constant = constant_columns(fit_x) if fit_x.size else []
    if constant:
        raise ValueError(
            f"features constant on the normal fit data (drop them): {[names[i] for i in constant]}"
        )

    fit = fit_pca_t2(fit_x, variance_to_keep=variance_to_keep)
    onnx_bytes = to_onnx_bytes(fit, doc="Renkei PCA T2+SPE anomaly score; see manifest.json")
    session = _make_session(onnx_bytes)
    hold_scores = _run_score(session, hold_x.astype(np.float32))
    threshold = float(np.quantile(hold_scores, quantile))
    return TrainedModel(
        fit=fit,
        inputs=inputs,
        onnx_bytes=onnx_bytes,
        threshold=threshold,
        quantile=quantile,
        fit_rows=fit_x.shape[0],
        holdout_scores=hold_scores,
        session=session,
    )


def export(
    model: TrainedModel,
    out_dir: Path,
    *,
    name: str,
    version: str,
    data_source: str,
    fitted_on: str,
    feature_kind: Literal["window", "shot"] = "window",
    window_s: float | None = None,
    metrics: Mapping[str, float] | None = None,
    notes: Sequence[str] = (),
    created: datetime | None = None,
) -> ModelManifest:
    """Write ``model.onnx``, ``manifest.json`` and ``MODEL_CARD.md`` into ``out_dir``.

    Args:
        model: from :func:`fit_t2`.
        out_dir: target directory (created; existing files are replaced).
        name: model name (``[a-z0-9][a-z0-9_.-]*``), e.g. ``"skab-pump-t2"``.
        version: semantic version.
        data_source: dataset, path(s) and licence of the training data.
        fitted_on: ``"normal only: ..."`` statement of the fit rows.
        feature_kind: ``"window"`` (window features) or ``"shot"`` (per-shot features).
        window_s: window length of window features, s (None for shot features).
        metrics: evaluation numbers (see :mod:`renkei.models.metrics`); NaN values are dropped.
        notes: extra paragraphs for the model card.
        created: creation time (default: now, UTC).

    Returns:
        The manifest that was written.

    Raises:
        pydantic.ValidationError: invalid name, version, ``fitted_on``, or ``window_s``
            missing for a window model.
        OSError: the files cannot be written.
    """
    clean_metrics = {k: float(v) for k, v in (metrics or {}).items() if np.isfinite(v)}
    # Fraction of hold-out normal rows above the threshold (≈ 1 - quantile by construction).
    clean_metrics.setdefault(
        "holdout_normal.far", float(np.mean(model.holdout_scores > model.threshold))
    )
    fit = model.fit
    manifest = ModelManifest(
        name=name,
        version=version,
        created=created or datetime.now(UTC).replace(microsecond=0),
        algorithm=ALGORITHM,
        algorithm_params={
            "n_components": fit.n_components,
            "variance_kept": round(fit.variance_kept, 6),
            "q_scale": fit.q_scale,
            "score": "t2 / n_components + spe / q_scale",
        },
        sha256=model.sha256,
        onnx_file=MODEL_FILE,
        input_name="x",
        inputs=model.inputs,
        outputs=(
            OutputSpec(
                name="score",
                unit="1 (T2/k + SPE/q_scale, dimensionless; ≈2 on normal data)",
                description="anomaly score, alarm when score > threshold",
            ),
            OutputSpec(
                name="t2",
                unit="1 (Hotelling T2, dimensionless)",
                description="T2 in the PCA subspace",
            ),
            OutputSpec(
                name="spe", unit="1 (squared standardised residual)", description="SPE / Q residual"
            ),
        ),
        feature_kind=feature_kind,
        window_s=window_s,
        threshold=model.threshold,
        threshold_rule=(
            f"{model.quantile * 100:g} % quantile of ONNX scores on held-out normal rows"
        ),
        training=TrainingInfo(
            data_source=data_source,
            rows=model.fit_rows,
            holdout_rows=int(model.holdout_scores.size),
            fitted_on=fitted_on,
        ),
        metrics=clean_metrics,
        producer={
            "scikit-learn": sklearn.__version__,
            "skl2onnx": skl2onnx.__version__,
            "onnx": onnx.__version__,
            "onnx_opset": str(ONNX_OPSET),
        },
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / MODEL_FILE).write_bytes(model.onnx_bytes)
    write_manifest(manifest, out_dir)
    write_model_card(manifest, out_dir, notes=notes)
    return manifest
