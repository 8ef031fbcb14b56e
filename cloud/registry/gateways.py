"""Gateway identities: one row per enrolled gateway (:mod:`renkei.cloud.gateway_identity`).

A row says which gateway of which firm owns which MQTT users and topics (its
:class:`~renkei.cloud.broker_acl.GatewayGrant`: site, user, machines) and holds its
one-time enrolment token, stored as SHA-256 only (the token is 256 random bits, so a fast
hash suffices, as for API keys), with its expiry and the instant it was used, and the
instant the gateway was revoked. The gateway's MQTT passwords are never stored here: the
broker's dynamic-security plugin keeps their salted hashes.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, String, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from renkei.cloud.registry.models import ID, Base, _now

__all__ = ["GatewayEnrolment"]


class GatewayEnrolment(Base):
    """An enrolled (or enrolling, or revoked) gateway of a firm and its enrolment token."""

    __tablename__ = "gateway_enrolment"
    __table_args__ = (UniqueConstraint("firm_id", "site", "gateway_id"),)

    username: Mapped[str] = mapped_column(ID, primary_key=True)
    """MQTT user of the gateway's data connection (its rollout user adds ``-rollout``);
    unique in the broker, hence the key."""
    firm_id: Mapped[str] = mapped_column(ForeignKey("firm.id", ondelete="CASCADE"), index=True)
    site: Mapped[str] = mapped_column(ID)
    """The site level of the gateway's topics (``renkei/v1/{firm}/{site}/...``)."""
    gateway_id: Mapped[str] = mapped_column(ID, index=True)
    machines: Mapped[list[list[str]]] = mapped_column(JSON)
    """``[area, line, machine]`` of each machine whose topics the gateway may write."""
    token_sha256: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    """SHA-256 (hex) of the gateway's latest enrolment token."""
    token_expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    token_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    """When the token was exchanged for credentials (single use)."""
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    credential_expires_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), default=None
    )
    """When the current credentials expire (``renkei cloud gateways expire`` then disables
    them in the broker); ``None``: never."""
    credential_slot: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """Which user pair is current: 0 = ``{username}``, 1 = ``{username}.r1`` (each with
    its ``-rollout`` user); a rotation creates the other slot."""
    retiring_slot: Mapped[int | None] = mapped_column(Integer, default=None)
    """The previous slot, still valid while a rotation overlaps; ``None`` when finished."""
    token_rotates: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """The outstanding token rotates (creates the other slot, keeps the current one)
    instead of enrolling afresh."""
