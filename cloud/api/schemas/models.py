"""Request and response bodies of the model registry and rollout endpoints
(:mod:`renkei.cloud.api.routers.models`).

The class names are the OpenAPI component names and the field names the JSON keys: renaming
either changes the published API.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from renkei.cloud.registry import DeploymentKind, DeploymentStatus, TargetStatus
from renkei.core.signing import ModelSignature

__all__ = [
    "MAX_MODEL_BYTES",
    "DeploymentCreate",
    "DeploymentPublic",
    "FleetGatewayPublic",
    "FleetModelPublic",
    "FleetView",
    "LastResult",
    "ModelName",
    "ModelPublish",
    "ModelReleaseDetail",
    "ModelReleasePublic",
    "PinBody",
    "SigningKeyCreate",
    "SigningKeyPublic",
    "TargetPublic",
    "Version",
]

#: Largest ONNX file the registry takes, bytes.
MAX_MODEL_BYTES = 64 * 1024 * 1024

ModelName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]
Version = Annotated[str, StringConstraints(min_length=5, max_length=64)]


class ModelPublish(BaseModel):
    """A release to publish: exact file bytes (base64) and the detached signature."""

    model_config = ConfigDict(extra="forbid")
    manifest_b64: Annotated[str, Field(min_length=1, max_length=4 * 1024 * 1024)]
    onnx_b64: Annotated[str, Field(min_length=1, max_length=(MAX_MODEL_BYTES // 3 + 1) * 4)]
    signature: ModelSignature | None = None


class ModelReleasePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    name: str
    version: str
    sha256: str
    manifest_sha256: str
    key_id: str
    signature: str
    size_bytes: int
    algorithm: str
    feature_kind: str
    threshold: float
    published_at: datetime
    published_by: str
    publisher_firm_id: str


class ModelReleaseDetail(ModelReleasePublic):
    manifest_b64: str
    """The exact ``manifest.json`` bytes, base64."""


class SigningKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    public_key: Annotated[str, Field(min_length=1, max_length=100)]
    """``ed25519:<base64 of 32 bytes>`` (``renkei models keygen`` prints it)."""
    label: Annotated[str, Field(max_length=200)] = ""


class SigningKeyPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    key_id: str
    public_key: str
    label: str
    revoked: bool
    created_at: datetime


class DeploymentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: ModelName
    version: Version | None = None
    """Required for ``deploy``; for ``rollback`` omit it to return every gateway to its
    previous version."""
    kind: DeploymentKind = DeploymentKind.DEPLOY
    target: Annotated[str, Field(min_length=1, max_length=1000)]
    """``gateway:ID``, ``site:ID``, ``group:NAME`` or ``all``, comma-separated."""
    canary: Annotated[int, Field(ge=0, le=10_000)] = 0
    timeout_s: Annotated[float, Field(gt=0, le=30 * 86400)] | None = None


class TargetPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    gateway_id: str
    site_id: str
    version: str | None
    wave: int
    status: TargetStatus
    stage: str
    reason: str
    checks: dict[str, Any]
    sent_at: datetime | None
    finished_at: datetime | None


class DeploymentPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    firm_id: str
    model_name: str
    version: str | None
    kind: DeploymentKind
    target: str
    canary: int
    timeout_s: float | None
    status: DeploymentStatus
    reason: str
    created_at: datetime
    created_by: str
    finished_at: datetime | None
    targets: list[TargetPublic]


class LastResult(BaseModel):
    deployment_id: int
    version: str | None
    status: str
    """``succeeded``, ``rejected`` or ``rolled_back`` (as the gateway reported it)."""
    stage: str
    reason: str
    at: datetime | None


class FleetModelPublic(BaseModel):
    name: str
    version: str | None
    """Running now (``None``: the gateway does not run this model)."""
    sha256: str | None
    previous_version: str | None
    source: str
    machines: list[str]
    desired_version: str | None
    desired_deployment_id: int | None
    pinned_version: str | None
    last_result: LastResult | None


class FleetGatewayPublic(BaseModel):
    gateway_id: str
    site_id: str
    groups: list[str]
    online: bool | None
    """From the gateway's birth / Last Will, when the platform has seen one."""
    reported_at: datetime | None
    models: list[FleetModelPublic]


class FleetView(BaseModel):
    firm_id: str
    gateways: list[FleetGatewayPublic]


class PinBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: Version
