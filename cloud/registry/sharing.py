"""Sharing-policy and audit tables: partner groups, grants, and the read audit log.

The owner decides (``../shared/DOMAIN.md``, data sharing): by default nothing of a firm is
visible to any other firm. A :class:`SharingGrant` opens one well-defined view to one
grantee; :mod:`renkei.cloud.capacity.policy` is the only code that interprets grants. What a grant
can open is deliberately limited: capability classes, spare capacity at day or week
granularity, optionally machine-level detail (machine id, name and the compatibility
attributes). Raw telemetry, process settings (cycle parameters, recipes) and customers are
never reachable through a grant: there is no column or option for them.

Every read of another firm's data is one :class:`AuditEvent` row, owned by the firm whose
data was read, so that firm can list who read what and when.
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
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from renkei.cloud.registry.models import ID, Base, _now, _values

__all__ = [
    "AuditEvent",
    "GranteeKind",
    "PartnerGroup",
    "PartnerGroupMember",
    "ShareGranularity",
    "SharingGrant",
]


class GranteeKind(enum.StrEnum):
    """Who a grant is for: one ``firm``, every member of a partner ``group``, or regional
    ``supporters`` (aggregates over at least k firms only)."""

    FIRM = "firm"
    """One named partner firm (``grantee_id`` = firm id)."""
    GROUP = "group"
    """Every member of one of the owner's partner groups (``grantee_id`` = group id)."""
    SUPPORTERS = "supporters"
    """Regional supporters of a region (``grantee_id`` = region, or ``*`` for all regions).
    Supporters only ever see aggregates over at least k firms."""


class ShareGranularity(enum.StrEnum):
    """Finest time resolution of the spare capacity a grant shows: ``day`` (hours per
    date) or ``week`` (hours summed over whole ISO weeks)."""

    DAY = "day"
    WEEK = "week"


class PartnerGroup(Base):
    """A named set of partner firms defined by one owner firm (e.g. its supplier circle)."""

    __tablename__ = "partner_group"
    __table_args__ = (UniqueConstraint("owner_firm_id", "name"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    owner_firm_id: Mapped[str] = mapped_column(
        ForeignKey("firm.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)

    members: Mapped[list[PartnerGroupMember]] = relationship(
        back_populates="group", cascade="all, delete-orphan"
    )


class PartnerGroupMember(Base):
    """Membership of a firm in a partner group."""

    __tablename__ = "partner_group_member"

    group_id: Mapped[str] = mapped_column(
        ForeignKey("partner_group.id", ondelete="CASCADE"), primary_key=True
    )
    firm_id: Mapped[str] = mapped_column(
        ForeignKey("firm.id", ondelete="CASCADE"), primary_key=True, index=True
    )

    group: Mapped[PartnerGroup] = relationship(back_populates="members")


class SharingGrant(Base):
    """One view of the owner's data opened to one grantee.

    Attributes:
        capability_classes: class ids (``injection_molding:1000-2000kN``) or process
            prefixes (``injection_molding``) shared; empty = every class of the owner.
        granularity: ``day`` or ``week``: the finest spare-capacity resolution shown.
        machine_detail: also show machine ids, names and compatibility attributes (and
            per-machine spare hours); without it the grantee sees per-class sums only.
        expires_at: optional end of the grant (UTC); ``None`` = until revoked.
    """

    __tablename__ = "sharing_grant"
    __table_args__ = (Index("ix_sharing_grant_grantee", "grantee_kind", "grantee_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    owner_firm_id: Mapped[str] = mapped_column(
        ForeignKey("firm.id", ondelete="CASCADE"), index=True
    )
    grantee_kind: Mapped[GranteeKind] = mapped_column(
        Enum(GranteeKind, native_enum=False, values_callable=_values, length=16)
    )
    grantee_id: Mapped[str] = mapped_column(ID)
    capability_classes: Mapped[list[str]] = mapped_column(default=list)
    granularity: Mapped[ShareGranularity] = mapped_column(
        Enum(ShareGranularity, native_enum=False, values_callable=_values, length=8),
        default=ShareGranularity.WEEK,
    )
    machine_detail: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class AuditEvent(Base):
    """One read of a firm's data by a principal of another firm (or by an admin).

    Attributes:
        owner_firm_id: whose data was read (the firm that can list this event).
        reader_firm_id, reader_key_id, reader_role: who read it.
        action: what was read, e.g. ``capacity.search``, ``firm.profile``,
            ``takeover.plan``, ``regional.aggregate``.
        resource: the path or object read (``/api/v1/capacity/search``).
        detail: what exactly was disclosed (classes, machine ids, granularity, counts).
    """

    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_owner_at", "owner_firm_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    owner_firm_id: Mapped[str] = mapped_column(ID)
    reader_firm_id: Mapped[str] = mapped_column(ID)
    reader_key_id: Mapped[str] = mapped_column(String(32))
    reader_role: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(64))
    resource: Mapped[str] = mapped_column(String(400))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
