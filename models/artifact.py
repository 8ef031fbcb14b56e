"""Shared plumbing of the model recipes: onnxruntime sessions as on the gateway, small ONNX
graph helpers, and writing an artifact directory (``model.onnx``, ``manifest.json``,
``MODEL_CARD.md``).

The T²+Q recipes of :mod:`renkei.models.train` keep their own writer (``export``); the newer
recipes (:mod:`models.skab_z`, :mod:`renkei.models.rul`, the ``*_stream``/``cwru``/``mold``
profiles) go through :func:`write_artifact`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import onnx
import onnxruntime as ort
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

__all__ = [
    "input_specs",
    "make_session",
    "producer",
    "run_outputs",
    "sha256_hex",
    "write_artifact",
]


def make_session(onnx_bytes: bytes) -> ort.InferenceSession:
    """onnxruntime session with the gateway's options (CPU, 1 intra- and 1 inter-op thread,
    sequential execution; see :meth:`renkei.edge.model.inference.AnomalyModel.load`)."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(onnx_bytes, opts, providers=["CPUExecutionProvider"])


def run_outputs(
    session: ort.InferenceSession, x: NDArray[np.floating], input_name: str = "x"
) -> dict[str, NDArray[np.float64]]:
    """All outputs of ``session`` for rows ``x`` (N, F) (cast to float32), as float64.

    Raises:
        ValueError: ``x`` is not 2-D.
    """
    arr = np.asarray(x, dtype=np.float32)
    if arr.ndim != 2:
        raise ValueError(f"x must be 2-D (rows, features), got shape {arr.shape}")
    names = [o.name for o in session.get_outputs()]
    values = session.run(names, {input_name: arr})
    out: dict[str, NDArray[np.float64]] = {}
    for name, value in zip(names, values, strict=True):
        v = np.asarray(value, dtype=np.float64)
        out[name] = v[:, 0] if v.ndim == 2 and v.shape[1] == 1 else v
    return out


def sha256_hex(data: bytes) -> str:
    """SHA-256 of ``data``, lowercase hex."""
    return hashlib.sha256(data).hexdigest()


def producer(opset: int) -> dict[str, str]:
    """Library versions that produced a graph (manifest ``producer``)."""
    from importlib.metadata import version  # not sklearn itself: `renkei` starts in ~1 s

    return {
        "scikit-learn": version("scikit-learn"),
        "skl2onnx": version("skl2onnx"),
        "onnx": onnx.__version__,
        "onnxruntime": ort.__version__,
        "onnx_opset": str(opset),
    }


def input_specs(
    names: Sequence[str], units: Mapping[str, str], descriptions: Mapping[str, str]
) -> tuple[InputSpec, ...]:
    """Input specs in column order.

    Raises:
        KeyError: a name has no unit.
    """
    return tuple(
        InputSpec(name=n, unit=units[n], description=descriptions.get(n, "")) for n in names
    )


def write_artifact(
    out_dir: Path,
    *,
    onnx_bytes: bytes,
    name: str,
    version: str,
    algorithm: str,
    algorithm_params: Mapping[str, float | int | str],
    inputs: Sequence[InputSpec],
    outputs: Sequence[OutputSpec],
    feature_kind: Literal["window", "shot"],
    window_s: float | None,
    threshold: float,
    threshold_rule: str,
    data_source: str,
    rows: int,
    holdout_rows: int,
    fitted_on: str,
    metrics: Mapping[str, float],
    opset: int,
    notes: Sequence[str] = (),
    created: datetime | None = None,
    **extra: Any,
) -> ModelManifest:
    """Validate the manifest, then write ``model.onnx``, ``manifest.json``, ``MODEL_CARD.md``.

    ``extra`` are further (optional) manifest fields (``task``, ``rul_cap``,
    ``alarm_rule``). Non-finite metrics are dropped.

    Raises:
        pydantic.ValidationError: the manifest is invalid (nothing is written then).
        OSError: the files cannot be written.
    """
    manifest = ModelManifest(
        name=name,
        version=version,
        created=created or datetime.now(UTC).replace(microsecond=0),
        algorithm=algorithm,
        algorithm_params=dict(algorithm_params),
        sha256=sha256_hex(onnx_bytes),
        onnx_file=MODEL_FILE,
        input_name="x",
        inputs=tuple(inputs),
        outputs=tuple(outputs),
        feature_kind=feature_kind,
        window_s=window_s,
        threshold=threshold,
        threshold_rule=threshold_rule,
        training=TrainingInfo(
            data_source=data_source, rows=rows, holdout_rows=holdout_rows, fitted_on=fitted_on
        ),
        metrics={k: float(v) for k, v in metrics.items() if np.isfinite(v)},
        producer=producer(opset),
        **extra,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / MODEL_FILE).write_bytes(onnx_bytes)
    write_manifest(manifest, out_dir)
    write_model_card(manifest, out_dir, notes=notes)
    return manifest
