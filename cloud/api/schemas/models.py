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

ModelName = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$"),
    Field(
        description="Model name as in its manifest: 1-64 characters, lowercase letters, "
        "digits, `_`, `.`, `-`, starting with a letter or digit.",
        examples=["skab-pump-mahal"],
    ),
]
Version = Annotated[
    str,
    StringConstraints(min_length=5, max_length=64),
    Field(description="Release version (SemVer, 5-64 characters).", examples=["1.2.0"]),
]


class ModelPublish(BaseModel):
    """A release to publish: exact file bytes (base64) and the detached signature."""

    model_config = ConfigDict(extra="forbid")
    manifest_b64: Annotated[str, Field(min_length=1, max_length=4 * 1024 * 1024)] = Field(
        description="The exact `manifest.json` bytes, base64 (at most 4 MiB of base64); its "
        "`name`, `version` and `sha256` identify the release."
    )
    onnx_b64: Annotated[str, Field(min_length=1, max_length=(MAX_MODEL_BYTES // 3 + 1) * 4)] = (
        Field(
            description="The ONNX model bytes, base64 (at most 64 MiB decoded); their SHA-256 "
            "must equal the manifest's `sha256`."
        )
    )
    signature: ModelSignature | None = Field(
        default=None,
        description="Detached Ed25519 signature (`signature.json` of `renkei models sign`) "
        "by a registered key; without it the release is refused (`unsigned`).",
    )


class ModelReleasePublic(BaseModel):
    """A published, signed model release (immutable)."""

    model_config = ConfigDict(from_attributes=True)
    name: str = Field(description="Model name (from the manifest).")
    version: str = Field(description="Release version (from the manifest, SemVer).")
    sha256: str = Field(description="SHA-256 of the ONNX bytes, 64 lowercase hex digits.")
    manifest_sha256: str = Field(
        description="SHA-256 of the exact manifest.json bytes, 64 lowercase hex digits."
    )
    key_id: str = Field(description="Id of the signing key (16 hex digits).")
    signature: str = Field(
        description="Base64 of the 64-byte Ed25519 signature over (name, version, sha256, "
        "manifest_sha256)."
    )
    size_bytes: int = Field(description="Size of the ONNX file (bytes).")
    algorithm: str = Field(description="Algorithm identifier from the manifest, e.g. `pca_t2_spe`.")
    feature_kind: str = Field(
        description="`window` (inputs are tumbling-window features) or `shot` (per-shot features)."
    )
    threshold: float = Field(
        description="Anomaly threshold from the manifest: an alarm when score > threshold "
        "(score units of the model)."
    )
    published_at: datetime = Field(description="When it was published (UTC, ISO-8601).")
    published_by: str = Field(description="Key id of the API key that published it.")
    publisher_firm_id: str = Field(description="Firm of that key.")


class ModelReleaseDetail(ModelReleasePublic):
    """A release with its manifest bytes."""

    manifest_b64: str = Field(description="The exact `manifest.json` bytes, base64.")


class SigningKeyCreate(BaseModel):
    """A public key to trust for model signatures."""

    model_config = ConfigDict(extra="forbid")
    public_key: Annotated[str, Field(min_length=1, max_length=100)] = Field(
        description="`ed25519:<base64 of 32 bytes>` (`renkei models keygen` prints it).",
        examples=["ed25519:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="],
    )
    label: Annotated[str, Field(max_length=200)] = Field(
        default="",
        description="Free text to recognise the key (at most 200 characters).",
        examples=["release laptop of the ML team"],
    )


class SigningKeyPublic(BaseModel):
    """A registered signing key."""

    model_config = ConfigDict(from_attributes=True)
    key_id: str = Field(description="Key id (16 hex digits derived from the public key).")
    public_key: str = Field(description="`ed25519:<base64 of 32 bytes>`.")
    label: str = Field(description="Free text given when it was registered.")
    revoked: bool = Field(
        description="True once revoked: new releases signed with it are refused (published "
        "ones stay)."
    )
    created_at: datetime = Field(description="When it was registered (UTC, ISO-8601).")


class DeploymentCreate(BaseModel):
    """A deployment (or rollback) of one model to some of the firm's gateways."""

    model_config = ConfigDict(extra="forbid")
    model: ModelName = Field(description="Name of the model to deploy (a published release).")
    version: Version | None = Field(
        default=None,
        description="Version to deploy; required for `deploy`. For `rollback` omit it to "
        "return every gateway to its previous version.",
    )
    kind: DeploymentKind = Field(
        default=DeploymentKind.DEPLOY,
        description="`deploy` (run `version`) or `rollback` (each gateway goes back to its "
        "previous version, or to `version` if given).",
    )
    target: Annotated[str, Field(min_length=1, max_length=1000)] = Field(
        description="Gateways to reach: `gateway:ID`, `site:ID`, `group:NAME` or `all`, "
        "comma-separated. Pinned gateways are reached only by `gateway:ID`.",
        examples=["site:acme-s1"],
    )
    canary: Annotated[int, Field(ge=0, le=10_000)] = Field(
        default=0,
        description="Gateways in the canary wave (0-10,000); the rest follow once every "
        "canary has finished and none failed. 0 = no canary: every gateway at once.",
    )
    timeout_s: Annotated[float, Field(gt=0, le=30 * 86400)] | None = Field(
        default=None,
        description="A wave not finished this long after it started fails its unanswered "
        "gateways (s, > 0, at most 30 days); null = wait indefinitely.",
        examples=[3600],
    )


class TargetPublic(BaseModel):
    """One gateway of a deployment, its wave and its outcome."""

    model_config = ConfigDict(from_attributes=True)
    gateway_id: str = Field(description="The gateway.")
    site_id: str = Field(description="The gateway's site.")
    version: str | None = Field(
        description="Version for this gateway; null only for a skipped rollback target."
    )
    wave: int = Field(description="0 = canary wave, 1 = the rest.")
    status: TargetStatus = Field(
        description="`waiting` (not yet sent), `sent` (awaiting the gateway's report), "
        "`succeeded`, `failed` (rejected, rolled back or timed out), `cancelled` (a canary "
        "failed first), `superseded` (a newer deployment of the model took over) or "
        "`skipped` (pinned, nothing to roll back to, or version not in the registry)."
    )
    stage: str = Field(
        description="Where the gateway's attempt ended: `verify`, `download`, `load`, "
        "`shadow`, `switch`, `probation`, `done`, or `timeout`; empty until reported."
    )
    reason: str = Field(description="Why it failed or was skipped (free text); may be empty.")
    checks: dict[str, Any] = Field(
        description="Shadow/probation numbers the gateway reported (`windows`, "
        "`latency_p95_ms` (ms), `alarm_fraction` (0..1), ...) and its `status`."
    )
    sent_at: datetime | None = Field(
        description="When the desired state was sent to the gateway (UTC, ISO-8601)."
    )
    finished_at: datetime | None = Field(
        description="When the target reached a final status (UTC, ISO-8601)."
    )


class DeploymentPublic(BaseModel):
    """A deployment with every target gateway's outcome."""

    model_config = ConfigDict(from_attributes=True)
    id: int = Field(description="The deployment's id.")
    firm_id: str = Field(description="The firm whose gateways it targets.")
    model_name: str = Field(description="The model deployed.")
    version: str | None = Field(
        description="The version deployed; null for a rollback to each gateway's previous version."
    )
    kind: DeploymentKind = Field(description="`deploy` or `rollback`.")
    target: str = Field(
        description="What was asked for: `gateway:ID`, `site:ID`, `group:NAME` or `all`, "
        "comma-separated."
    )
    canary: int = Field(description="Gateways in the canary wave (0 = no canary).")
    timeout_s: float | None = Field(description="Per-wave timeout (s); null = none.")
    status: DeploymentStatus = Field(
        description="`pending` (stored, not started), `canary` (canary wave running), "
        "`rolling` (the rest running), `succeeded`, `failed` (finished; at least one "
        "gateway failed) or `stopped` (a canary failed or timed out; the rest were never "
        "asked)."
    )
    reason: str = Field(description="Summary of the outcome (free text); empty while running.")
    created_at: datetime = Field(description="When it was created (UTC, ISO-8601).")
    created_by: str = Field(description="Key id of the API key that created it.")
    finished_at: datetime | None = Field(
        description="When it reached a final status (UTC, ISO-8601); null while running."
    )
    targets: list[TargetPublic] = Field(description="Every gateway it resolved to.")


class LastResult(BaseModel):
    """The last deployment attempt a gateway reported for one model."""

    deployment_id: int = Field(description="The deployment the attempt belonged to.")
    version: str | None = Field(description="The version attempted.")
    status: str = Field(
        description="`succeeded` (the new version runs), `rejected` (it never ran; the "
        "previous model was kept) or `rolled_back` (it failed its probation and the previous "
        "model was restored), as the gateway reported it."
    )
    stage: str = Field(
        description="Where the attempt ended: `verify`, `download`, `load`, `shadow`, "
        "`switch`, `probation` or `done`."
    )
    reason: str = Field(description="Why it did not succeed (free text); may be empty.")
    at: datetime | None = Field(description="When the result was recorded (UTC, ISO-8601).")


class FleetModelPublic(BaseModel):
    """One model name on one gateway: what runs, what should run, pin, last result."""

    name: str = Field(description="Model name.")
    version: str | None = Field(
        description="Version running now; null: the gateway does not run this model."
    )
    sha256: str | None = Field(description="SHA-256 of the running ONNX bytes (hex).")
    previous_version: str | None = Field(
        description="Version that ran before the last successful switch (the rollback target)."
    )
    source: str = Field(
        description="`config` (from the gateway config's model directory) or `deployed` (by a "
        "rollout); empty if not reported."
    )
    machines: list[str] = Field(description="Machines scoring with this model.")
    desired_version: str | None = Field(
        description="Version the platform currently asks the gateway to run."
    )
    desired_deployment_id: int | None = Field(
        description="The deployment that set `desired_version`."
    )
    pinned_version: str | None = Field(
        description="Pin: while set, deployments aimed at a site, group or `all` skip this "
        "gateway; only `gateway:ID` reaches it."
    )
    last_result: LastResult | None = Field(
        description="The last deployment attempt the gateway reported; null if none."
    )


class FleetGatewayPublic(BaseModel):
    """A rollout-enabled gateway as its last model report describes it."""

    gateway_id: str = Field(description="The gateway's id.")
    site_id: str = Field(description="The gateway's site.")
    groups: list[str] = Field(
        description="Rollout groups of the gateway (from its config), for `group:NAME` targets."
    )
    online: bool | None = Field(
        description="From the gateway's birth / Last Will when the platform has seen one; "
        "null otherwise."
    )
    reported_at: datetime | None = Field(
        description="When its last model report was received (UTC, ISO-8601)."
    )
    models: list[FleetModelPublic] = Field(description="Its models, by name.")


class FleetView(BaseModel):
    """Every rollout-enabled gateway of a firm."""

    firm_id: str = Field(description="The firm.")
    gateways: list[FleetGatewayPublic] = Field(description="By site, then gateway id.")


class PinBody(BaseModel):
    """The version to pin a gateway's model to."""

    model_config = ConfigDict(extra="forbid")
    version: Version = Field(description="Version to pin to (SemVer).")
