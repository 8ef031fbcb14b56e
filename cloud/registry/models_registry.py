"""Model registry and rollout tables: signed model releases, deployments, fleet state.

- :class:`ModelSigningKey`: public Ed25519 keys the registry accepts signatures from
  (registered by an admin; gateways have their own list in their config).
- :class:`ModelRelease`: one published model version (manifest and ONNX bytes, their
  digests and the signature over them, see :mod:`renkei.core.signing`).
- :class:`Deployment` → :class:`DeploymentTarget`: a request to run a release on some of a
  firm's gateways, in a canary wave and the rest, and each gateway's outcome.
- :class:`FleetGateway` / :class:`FleetModel`: the last model report of each gateway
  (``renkei/rollout/v1/.../report``), what the controller wants it to run (its desired
  state) and version pins.

Deployment state machine (driven by :mod:`renkei.cloud.rollout`)::

    pending ─► canary ─(every canary succeeded)─► rolling ─(all final)─► succeeded | failed
                  └──(a canary failed / timed out)─► stopped   (the rest are cancelled)
    pending ─(no canary wave)─► rolling

Target states: ``waiting`` (its wave has not started), ``sent`` (in the gateway's desired
state), then ``succeeded``, ``failed`` (rejected, rolled back or timed out), ``cancelled``
(the rollout stopped first), ``superseded`` (a newer deployment of the same model for the
same gateway came first) or ``skipped`` (pinned, or nothing to roll back to).
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from renkei.cloud.registry.models import ID, Base, _now, _values

__all__ = [
    "Deployment",
    "DeploymentKind",
    "DeploymentStatus",
    "DeploymentTarget",
    "FleetGateway",
    "FleetModel",
    "ModelRelease",
    "ModelSigningKey",
    "TargetStatus",
]

_NAME = String(64)
_VERSION = String(64)
_SHA = String(64)


class DeploymentKind(enum.StrEnum):
    """``deploy`` a version, or ``rollback`` each gateway to its previous version."""

    DEPLOY = "deploy"
    ROLLBACK = "rollback"
    """Each gateway goes back to its ``previous_version`` (or to an explicit version)."""


class DeploymentStatus(enum.StrEnum):
    """``pending`` (stored), ``canary`` (canary wave running), ``rolling`` (the rest
    running), then one of ``succeeded``, ``failed`` or ``stopped``."""

    PENDING = "pending"
    CANARY = "canary"
    ROLLING = "rolling"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    """Finished; at least one gateway outside the canary wave failed."""
    STOPPED = "stopped"
    """A canary failed or timed out; the other gateways were never asked."""

    @property
    def final(self) -> bool:
        return self in (
            DeploymentStatus.SUCCEEDED,
            DeploymentStatus.FAILED,
            DeploymentStatus.STOPPED,
        )


class TargetStatus(enum.StrEnum):
    """One gateway of a deployment: ``waiting``, ``sent``, then ``succeeded``, ``failed``,
    ``cancelled`` (a canary failed), ``superseded`` (a newer deployment took over) or
    ``skipped`` (pinned, nothing to roll back to, or not in the registry)."""

    WAITING = "waiting"
    SENT = "sent"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SUPERSEDED = "superseded"
    SKIPPED = "skipped"

    @property
    def final(self) -> bool:
        return self not in (TargetStatus.WAITING, TargetStatus.SENT)


class ModelSigningKey(Base):
    """A public key whose model signatures the registry accepts."""

    __tablename__ = "model_signing_key"

    key_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    public_key: Mapped[str] = mapped_column(String(100), unique=True)
    """``ed25519:<base64>``."""
    label: Mapped[str] = mapped_column(String(200), default="")
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class ModelRelease(Base):
    """One published, signed model version (immutable once published)."""

    __tablename__ = "model_release"

    name: Mapped[str] = mapped_column(_NAME, primary_key=True)
    version: Mapped[str] = mapped_column(_VERSION, primary_key=True)
    sha256: Mapped[str] = mapped_column(_SHA)
    """SHA-256 of the ONNX bytes."""
    manifest_sha256: Mapped[str] = mapped_column(_SHA)
    """SHA-256 of the exact manifest.json bytes."""
    key_id: Mapped[str] = mapped_column(ForeignKey("model_signing_key.key_id"))
    signature: Mapped[str] = mapped_column(String(128))
    manifest: Mapped[bytes] = mapped_column(LargeBinary)
    onnx: Mapped[bytes] = mapped_column(LargeBinary)
    size_bytes: Mapped[int] = mapped_column(Integer)
    algorithm: Mapped[str] = mapped_column(String(64), default="")
    feature_kind: Mapped[str] = mapped_column(String(16), default="")
    threshold: Mapped[float] = mapped_column(Float)
    published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    published_by: Mapped[str] = mapped_column(String(32), default="")
    """Key id of the API credential that published it."""
    publisher_firm_id: Mapped[str] = mapped_column(ID, default="")


class Deployment(Base):
    """A request to run model ``model_name`` on some of a firm's gateways."""

    __tablename__ = "deployment"
    __table_args__ = (Index("ix_deployment_firm_status", "firm_id", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    firm_id: Mapped[str] = mapped_column(ForeignKey("firm.id", ondelete="CASCADE"))
    model_name: Mapped[str] = mapped_column(_NAME)
    version: Mapped[str | None] = mapped_column(_VERSION, default=None)
    """The version deployed; ``None`` for a rollback to each gateway's previous version."""
    kind: Mapped[DeploymentKind] = mapped_column(
        Enum(DeploymentKind, native_enum=False, values_callable=_values, length=16)
    )
    target: Mapped[str] = mapped_column(String(1000))
    """What was asked for: ``gateway:ID``, ``site:ID``, ``group:NAME`` or ``all``
    (comma-separated)."""
    canary: Mapped[int] = mapped_column(Integer, default=0)
    """Gateways in the canary wave (0 = no canary: every gateway at once)."""
    timeout_s: Mapped[float | None] = mapped_column(Float, default=None)
    """A wave not finished this long after it started fails its unanswered gateways."""
    status: Mapped[DeploymentStatus] = mapped_column(
        Enum(DeploymentStatus, native_enum=False, values_callable=_values, length=16),
        default=DeploymentStatus.PENDING,
    )
    reason: Mapped[str] = mapped_column(String(2000), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    created_by: Mapped[str] = mapped_column(String(32), default="")
    wave_started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)

    targets: Mapped[list[DeploymentTarget]] = relationship(
        back_populates="deployment",
        cascade="all, delete-orphan",
        order_by="DeploymentTarget.id",
    )


class DeploymentTarget(Base):
    """One gateway of a deployment, its wave and its outcome."""

    __tablename__ = "deployment_target"
    __table_args__ = (Index("ix_target_gateway", "firm_id", "gateway_id", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    deployment_id: Mapped[int] = mapped_column(
        ForeignKey("deployment.id", ondelete="CASCADE"), index=True
    )
    firm_id: Mapped[str] = mapped_column(ID)
    site_id: Mapped[str] = mapped_column(ID)
    gateway_id: Mapped[str] = mapped_column(ID)
    version: Mapped[str | None] = mapped_column(_VERSION, default=None)
    """Version for this gateway (``None`` only for a skipped rollback target)."""
    wave: Mapped[int] = mapped_column(Integer, default=1)
    """0 = canary wave, 1 = the rest."""
    status: Mapped[TargetStatus] = mapped_column(
        Enum(TargetStatus, native_enum=False, values_callable=_values, length=16),
        default=TargetStatus.WAITING,
    )
    stage: Mapped[str] = mapped_column(String(16), default="")
    reason: Mapped[str] = mapped_column(String(2000), default="")
    checks: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)

    deployment: Mapped[Deployment] = relationship(back_populates="targets")


class FleetGateway(Base):
    """A rollout-enabled gateway as its last model report describes it."""

    __tablename__ = "fleet_gateway"

    firm_id: Mapped[str] = mapped_column(ID, primary_key=True)
    gateway_id: Mapped[str] = mapped_column(ID, primary_key=True)
    site_id: Mapped[str] = mapped_column(ID)
    groups: Mapped[list[str]] = mapped_column(JSON, default=list)
    reported_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    report: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """The last report payload, as received."""
    desired_dirty: Mapped[bool] = mapped_column(Boolean, default=False)
    """The desired state changed and is not yet acknowledged by the broker."""


class FleetModel(Base):
    """One model name on one gateway: what runs, what should run, pin, last result."""

    __tablename__ = "fleet_model"

    firm_id: Mapped[str] = mapped_column(ID, primary_key=True)
    gateway_id: Mapped[str] = mapped_column(ID, primary_key=True)
    model_name: Mapped[str] = mapped_column(_NAME, primary_key=True)
    version: Mapped[str | None] = mapped_column(_VERSION, default=None)
    """Version running, from the last report (``None``: not running on this gateway)."""
    sha256: Mapped[str | None] = mapped_column(_SHA, default=None)
    previous_version: Mapped[str | None] = mapped_column(_VERSION, default=None)
    machines: Mapped[list[str]] = mapped_column(JSON, default=list)
    source: Mapped[str] = mapped_column(String(16), default="")
    desired_version: Mapped[str | None] = mapped_column(_VERSION, default=None)
    desired_deployment_id: Mapped[int | None] = mapped_column(Integer, default=None)
    pinned_version: Mapped[str | None] = mapped_column(_VERSION, default=None)
    """Deployments aimed at a site, group or ``all`` skip this gateway while it is set;
    only a deployment naming the gateway (``gateway:ID``) reaches it."""
    last_deployment_id: Mapped[int | None] = mapped_column(Integer, default=None)
    last_version: Mapped[str | None] = mapped_column(_VERSION, default=None)
    last_status: Mapped[str | None] = mapped_column(String(16), default=None)
    last_stage: Mapped[str] = mapped_column(String(16), default="")
    last_reason: Mapped[str] = mapped_column(String(2000), default="")
    last_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
