"""The model manifest: what a gateway needs to know about an exported anomaly model.

A trained model is a directory ``models/artifacts/<name>/`` holding::

    model.onnx      the ONNX graph (input ``x`` float32 (N, n_features), output ``score`` (N,))
    manifest.json   this schema, written by :func:`renkei.models.train.export`
    MODEL_CARD.md   human-readable summary (not read by the gateway)

The gateway (:mod:`renkei.edge.model.inference`) reads ``manifest.json`` with
:class:`ModelManifest`, checks ``sha256`` against the bytes of ``onnx_file`` and refuses the model
on a mismatch.

This module only depends on pydantic so that gateways can import it without the training
extras (scikit-learn, skl2onnx).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Final, Literal

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

__all__ = [
    "MANIFEST_FILE",
    "MANIFEST_SCHEMA_VERSION",
    "MODEL_FILE",
    "DriftSpec",
    "InputSpec",
    "ModelManifest",
    "OutputSpec",
    "TrainingInfo",
    "read_manifest",
    "write_manifest",
]

MANIFEST_SCHEMA_VERSION: Final = 1
MANIFEST_FILE: Final = "manifest.json"
MODEL_FILE: Final = "model.onnx"

_FITTED_ON_PREFIXES: Final = ("normal only: ", "supervised: ")
_SEMVER_RE: Final = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$"
)

#: Feature / tensor names: the same rule as wire field names (``renkei.core.wire``).
FeatureName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
ModelName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]


class InputSpec(BaseModel):
    """One input feature (one column of the ``x`` tensor)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: FeatureName
    """Feature name exactly as the gateway's feature extraction emits it."""
    unit: str
    """Physical unit of the feature (``"g"``, ``"degC"``, ``"bar/s"``, ``"1"`` if none)."""
    description: str = ""


class OutputSpec(BaseModel):
    """One output tensor of the graph."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: FeatureName
    unit: str
    description: str = ""


class DriftSpec(BaseModel):
    """Process-drift watch on the anomaly score (gateway: :mod:`renkei.edge.model.drift`).

    Over the last ``window`` scored rows, the share whose score exceeds ``reference_score``
    (the ``reference_quantile`` quantile of the normal calibration scores, so the share is
    about ``1 - reference_quantile`` on the commissioned regime) is compared with
    ``fire_share`` (drift onset at ``share >= fire_share``) and ``clear_share`` (cleared at
    ``share <= clear_share``). A drift says the process moved away from the regime the
    model was commissioned on, distinct from per-row anomalies.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    reference_score: float
    reference_quantile: float = Field(gt=0.0, lt=1.0)
    window: int = Field(ge=2, le=100_000)
    fire_share: float = Field(gt=0.0, le=1.0)
    clear_share: float = Field(ge=0.0, lt=1.0)
    rule: str = ""

    @model_validator(mode="after")
    def _ordered(self) -> DriftSpec:
        if not self.clear_share < self.fire_share:
            raise ValueError(
                f"drift clear_share {self.clear_share} must be below fire_share {self.fire_share}"
            )
        if not math.isfinite(self.reference_score):
            raise ValueError("drift reference_score must be finite")
        return self


class TrainingInfo(BaseModel):
    """Where the training data came from and what part of it the model saw."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    data_source: str
    """Dataset name, path(s) relative to the data directory, and licence."""
    rows: int = Field(ge=1)
    """Feature rows used to fit the model (excludes the threshold hold-out)."""
    holdout_rows: int = Field(ge=1)
    """Normal feature rows held out to set the threshold (never used to fit)."""
    fitted_on: str
    """Plain statement of what was fitted on, starting with ``"normal only: "`` (anomaly
    models, fitted on normal data) or ``"supervised: "`` (``task`` ``"rul"``: regression on
    labelled run-to-failure data; anomaly models may not use it, see
    :class:`ModelManifest`)."""

    @field_validator("fitted_on")
    @classmethod
    def _normal_only(cls, value: str) -> str:
        if not value.startswith(_FITTED_ON_PREFIXES):
            raise ValueError(
                "fitted_on must start with 'normal only: ' (models are fitted on normal data)"
                " or, for RUL regressors only, 'supervised: '"
            )
        return value


class ModelManifest(BaseModel):
    """Everything a gateway needs to load, check and interpret one exported model.

    Raises:
        pydantic.ValidationError: on construction from invalid data (bad semver, sha256 that
            is not 64 lowercase hex digits, duplicate input names, naive ``created`` time,
            ``onnx_file`` that is not a plain file name, ``input_name`` differing from
            the graph's input).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: int = MANIFEST_SCHEMA_VERSION
    name: ModelName
    version: str
    """Semantic version of the model (``MAJOR.MINOR.PATCH``)."""
    created: datetime
    """Creation time, timezone-aware, serialised as ISO 8601 UTC."""
    algorithm: str
    """Algorithm identifier, e.g. ``"pca_t2_spe"``."""
    algorithm_params: dict[str, float | int | str] = Field(default_factory=dict)
    sha256: Sha256Hex
    """SHA-256 (lowercase hex) of the bytes of ``onnx_file``."""
    onnx_file: str = MODEL_FILE
    """File name of the ONNX graph, relative to the manifest's directory."""
    input_name: FeatureName = "x"
    """Name of the graph's single input tensor, float32 of shape (N, len(inputs))."""
    inputs: tuple[InputSpec, ...] = Field(min_length=1)
    """Feature columns of the input tensor, in column order."""
    outputs: tuple[OutputSpec, ...] = Field(min_length=1)
    """Graph outputs; the first one named ``score`` is the anomaly score, shape (N,)."""
    feature_kind: Literal["window", "shot"]
    """``"window"``: inputs are tumbling-window features (``renkei.edge.features.slow_windower`` /
    ``vibration_windower``, slow and vibration windows of the same end merged);
    ``"shot"``: inputs are per-shot features (``renkei.edge.features.ShotFeatures``)."""
    window_s: float | None = None
    """Window length the features were computed with, s (``"window"`` models only); the
    gateway's machine ``window_s`` must equal it."""
    threshold: float
    """Alarm when ``score > threshold``; set from held-out NORMAL data only."""
    threshold_rule: str
    """How the threshold was obtained (e.g. ``"99.5 % quantile of hold-out normal scores"``)."""
    training: TrainingInfo
    metrics: dict[str, float] = Field(default_factory=dict)
    """Evaluation numbers; names say the data part and unit (see MODEL_CARD.md)."""
    producer: dict[str, str] = Field(default_factory=dict)
    """Library versions used to produce the graph (informational)."""
    task: Literal["anomaly", "rul"] = "anomaly"
    """Optional (default ``"anomaly"``). ``"anomaly"``: ``score`` is an anomaly score fitted
    on normal data only. ``"rul"``: a remaining-useful-life regressor; its outputs include
    ``rul`` (and its uncertainty band, see ``outputs``) and ``score`` is the life consumed
    beyond the healthy plateau (``rul_cap - rul``), so ``score > threshold`` still means
    "alarm" (predicted RUL below ``rul_cap - threshold``)."""
    rul_cap: float | None = None
    """Optional, ``task`` ``"rul"`` only: the cap of the piecewise-linear RUL target (units
    of the ``rul`` output)."""
    drift: DriftSpec | None = None
    """Optional: the process-drift watch on ``score`` (:class:`DriftSpec`); ``None``: none."""
    alarm_rule: str = ""
    """Optional: how alarms are derived from ``score > threshold`` when that is not the
    plain per-row rule (e.g. "onsets only" or a consecutive-row rule applied inside the
    graph); informational."""

    @field_validator("version")
    @classmethod
    def _semver(cls, value: str) -> str:
        if not _SEMVER_RE.match(value):
            raise ValueError(f"version {value!r} is not semantic versioning MAJOR.MINOR.PATCH")
        return value

    @field_validator("created")
    @classmethod
    def _aware_utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("created must be timezone-aware (UTC)")
        return value.astimezone(UTC)

    @field_validator("onnx_file")
    @classmethod
    def _plain_file_name(cls, value: str) -> str:
        if (
            not value
            or "/" in value
            or "\\" in value
            or value in (".", "..")
            or not value.endswith(".onnx")
        ):
            raise ValueError(
                f"onnx_file {value!r} must be a plain '*.onnx' file name in the model directory"
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ModelManifest:
        names = [spec.name for spec in self.inputs]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate input feature names: {duplicates}")
        if not any(out.name == "score" for out in self.outputs):
            raise ValueError("outputs must contain one named 'score'")
        if (self.feature_kind == "window") != (self.window_s is not None and self.window_s > 0):
            raise ValueError(
                "window_s (> 0) is required for window models and must be None for shot models"
            )
        if not self.threshold == self.threshold or self.threshold in (float("inf"), float("-inf")):
            raise ValueError("threshold must be finite")
        if self.task == "anomaly" and not self.training.fitted_on.startswith("normal only: "):
            raise ValueError(
                "fitted_on must start with 'normal only: ' for anomaly models "
                "(fitted on normal data)"
            )
        if (self.task == "rul") != (self.rul_cap is not None):
            raise ValueError("rul_cap is required for task 'rul' and must be None otherwise")
        return self

    @property
    def input_names(self) -> tuple[str, ...]:
        """Feature names in column order."""
        return tuple(spec.name for spec in self.inputs)

    def to_json(self) -> bytes:
        """Serialise as indented JSON (UTF-8), ``created`` as ``YYYY-MM-DDTHH:MM:SSZ``."""
        data = self.model_dump(mode="json")
        data["created"] = self.created.strftime("%Y-%m-%dT%H:%M:%SZ")
        # Optional fields added after schema 1 are written only when set, so a manifest
        # that does not use them reads on gateways that predate them (extra="forbid").
        for key, default in _OPTIONAL_DEFAULTS.items():
            if data.get(key) == default:
                del data[key]
        return orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n"


_OPTIONAL_DEFAULTS: Final[dict[str, object]] = {
    "task": "anomaly",
    "rul_cap": None,
    "alarm_rule": "",
    "drift": None,
}


def write_manifest(manifest: ModelManifest, model_dir: Path) -> Path:
    """Write ``manifest.json`` into ``model_dir`` (created if needed); return its path."""
    model_dir.mkdir(parents=True, exist_ok=True)
    path = model_dir / MANIFEST_FILE
    path.write_bytes(manifest.to_json())
    return path


def read_manifest(model_dir: Path) -> ModelManifest:
    """Read and validate ``model_dir/manifest.json``.

    Raises:
        FileNotFoundError: no manifest in ``model_dir``.
        pydantic.ValidationError: the manifest does not match the schema.
    """
    path = model_dir / MANIFEST_FILE
    return ModelManifest.model_validate_json(path.read_bytes())
