"""Operational tables: capacity bookings, gateway status, disruptions, takeover plans.

- :class:`CapacityBooking`: hours of a machine already planned (a firm uploads its
  production plan by API or CSV); spare capacity subtracts them.
- :class:`GatewayStatus`: the last online/offline state of each gateway, from its retained
  birth message and Last Will (``renkei/v1/{firm}/{site}/_gw/{gateway}/state``).
- :class:`Disruption`: a site stopped for a time window, declared by the firm (or an admin)
  or *suspected* by the platform when most of a site's gateways go offline within minutes;
  a suspected disruption is confirmed or dismissed by the firm.
- :class:`TakeoverRequest` → :class:`TakeoverJob` → :class:`TakeoverAssignment`: the jobs a
  disrupted firm asks partners to take over, and the planner's allocation of each job to
  partner machines, which partners accept or decline.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from renkei.cloud.registry.models import ID, Base, _now, _values

__all__ = [
    "AssignmentStatus",
    "CapacityBooking",
    "Disruption",
    "DisruptionSource",
    "DisruptionStatus",
    "GatewayStatus",
    "TakeoverAssignment",
    "TakeoverJob",
    "TakeoverRequest",
    "TakeoverStatus",
    "VolumeUnit",
]


class CapacityBooking(Base):
    """Hours booked on a machine on each site-local date of ``[start, end]`` (0–24 h/day)."""

    __tablename__ = "capacity_booking"
    __table_args__ = (Index("ix_booking_machine_start", "machine_id", "start"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    firm_id: Mapped[str] = mapped_column(ForeignKey("firm.id", ondelete="CASCADE"), index=True)
    machine_id: Mapped[str] = mapped_column(ForeignKey("machine.id", ondelete="CASCADE"))
    start: Mapped[date] = mapped_column(Date)
    end: Mapped[date] = mapped_column(Date)
    hours_per_day: Mapped[float] = mapped_column(Float)
    reference: Mapped[str] = mapped_column(String(200), default="")
    """The firm's own plan or order reference (never shown to other firms)."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class GatewayStatus(Base):
    """Last known state of one gateway (from its retained birth / Last Will messages)."""

    __tablename__ = "gateway_status"
    __table_args__ = (Index("ix_gateway_site", "firm_id", "site_id"),)

    firm_id: Mapped[str] = mapped_column(ID, primary_key=True)
    site_id: Mapped[str] = mapped_column(ID, primary_key=True)
    gateway_id: Mapped[str] = mapped_column(ID, primary_key=True)
    online: Mapped[bool] = mapped_column()
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    """When ``online`` last changed (the gateway's ``sent_ms``, or receipt time)."""
    birth: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """The last birth payload (config and model versions)."""


class SiteBridgeStatus(Base):
    """Last known state of one site broker's bridge to the cloud (``1``/``0`` on
    ``renkei/bridge/v1/{firm}/{site}/state``, :mod:`renkei.cloud.disruption.bridge`).

    Written only for a site registered under ``firm_id``.
    """

    __tablename__ = "site_bridge_status"

    firm_id: Mapped[str] = mapped_column(ID, primary_key=True)
    site_id: Mapped[str] = mapped_column(ID, primary_key=True)
    online: Mapped[bool] = mapped_column()
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    """When ``online`` last changed (the watcher's receipt time, UTC)."""


class DisruptionStatus(enum.StrEnum):
    """Life cycle of a disruption: ``suspected`` -> ``confirmed`` | ``dismissed``;
    ``confirmed`` -> ``ended`` (a declared disruption starts ``confirmed``)."""

    SUSPECTED = "suspected"
    """Raised by the platform from gateways going offline; awaits the firm's decision."""
    CONFIRMED = "confirmed"
    """Declared, or a suspicion the firm confirmed: the site counts as stopped."""
    DISMISSED = "dismissed"
    """A suspicion the firm dismissed (e.g. a network outage)."""
    ENDED = "ended"
    """The site runs again."""


class DisruptionSource(enum.StrEnum):
    """Where a disruption came from: ``declared`` by the firm, or ``last_will`` (suspected
    by the platform because the site's gateways went offline)."""

    DECLARED = "declared"
    LAST_WILL = "last_will"


class Disruption(Base):
    """A site stopped (or suspected stopped) from ``start`` to ``end`` (UTC).

    ``radius_km`` describes the disrupted zone around the site (earthquake, flood): the
    planner excludes partner sites inside it. 0 means only this site is affected.
    """

    __tablename__ = "disruption"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    firm_id: Mapped[str] = mapped_column(ForeignKey("firm.id", ondelete="CASCADE"), index=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("site.id", ondelete="CASCADE"), index=True)
    status: Mapped[DisruptionStatus] = mapped_column(
        Enum(DisruptionStatus, native_enum=False, values_callable=_values, length=16),
        index=True,
    )
    source: Mapped[DisruptionSource] = mapped_column(
        Enum(DisruptionSource, native_enum=False, values_callable=_values, length=16)
    )
    start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    radius_km: Mapped[float] = mapped_column(Float, default=0.0)
    note: Mapped[str] = mapped_column(String(1000), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """Evidence: for a suspicion, the gateways that went offline and when."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    decided_by: Mapped[str | None] = mapped_column(String(32), default=None)
    """Key id of the credential that declared, confirmed, dismissed or ended it."""


class TakeoverStatus(enum.StrEnum):
    """A takeover request is ``open`` (partners may answer, it can be re-planned) or
    ``closed`` (unanswered proposals were withdrawn)."""

    OPEN = "open"
    CLOSED = "closed"


class VolumeUnit(enum.StrEnum):
    """Unit of a job's weekly volume: ``parts``, or ``shots`` (x the mold's cavities)."""

    PARTS = "parts"
    SHOTS = "shots"


class AssignmentStatus(enum.StrEnum):
    """State of a takeover assignment: ``proposed`` (awaits the partner's answer),
    ``accepted``, ``declined``, or ``withdrawn`` (replaced by a later plan revision, or the
    request was closed, before the partner answered)."""

    PROPOSED = "proposed"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    WITHDRAWN = "withdrawn"
    """Replaced by a later plan revision before the partner answered."""
    DRILL = "drill"
    """Planned in a disaster drill: shown to the requester only, never offered to the
    partner, holds no hours and cannot be answered."""


class TakeoverRequest(Base):
    """A disrupted firm's request that partners take over some of its jobs.

    ``revision`` counts plan computations (1 = first plan; every decline that frees
    volume re-plans it). ``summary`` holds the latest plan's statistics and coverage.

    ``drill``: a disaster drill (rehearsal): planned like a real request, but its
    assignments have status ``drill`` — partners are not offered or told anything and no
    hours are held or booked. ``promoted_to`` is the real request a drill was turned into
    (the drill is then closed).
    """

    __tablename__ = "takeover_request"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    firm_id: Mapped[str] = mapped_column(ForeignKey("firm.id", ondelete="CASCADE"), index=True)
    disruption_id: Mapped[int | None] = mapped_column(
        ForeignKey("disruption.id", ondelete="SET NULL"), default=None
    )
    origin_site_id: Mapped[str] = mapped_column(ForeignKey("site.id", ondelete="CASCADE"))
    window_start: Mapped[date] = mapped_column(Date)
    window_end: Mapped[date] = mapped_column(Date)
    """Exclusive end of the planning window."""
    zone_radius_km: Mapped[float] = mapped_column(Float, default=0.0)
    status: Mapped[TakeoverStatus] = mapped_column(
        Enum(TakeoverStatus, native_enum=False, values_callable=_values, length=16),
        default=TakeoverStatus.OPEN,
    )
    revision: Mapped[int] = mapped_column(Integer, default=1)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    created_by: Mapped[str] = mapped_column(String(32), default="")
    drill: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    promoted_to: Mapped[str | None] = mapped_column(String(64), default=None)

    jobs: Mapped[list[TakeoverJob]] = relationship(
        back_populates="request", cascade="all, delete-orphan", order_by="TakeoverJob.job_id"
    )
    assignments: Mapped[list[TakeoverAssignment]] = relationship(
        back_populates="request", cascade="all, delete-orphan", order_by="TakeoverAssignment.id"
    )


class TakeoverJob(Base):
    """One affected job: a part made with one mold, with its weekly volume and due date.

    ``unmet`` is the latest plan's uncovered volume of this job with reasons:
    ``[{"parts": int, "reason": "no_capacity" | ...}]``.
    """

    __tablename__ = "takeover_job"
    __table_args__ = (UniqueConstraint("request_id", "job_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(
        ForeignKey("takeover_request.id", ondelete="CASCADE"), index=True
    )
    job_id: Mapped[str] = mapped_column(ID)
    part_id: Mapped[str] = mapped_column(String(200))
    mold_id: Mapped[str] = mapped_column(ForeignKey("mold.id", ondelete="CASCADE"))
    resin: Mapped[str | None] = mapped_column(String(32), default=None)
    """Resin override; ``None`` = the mold's resin."""
    weekly_volume: Mapped[int] = mapped_column(Integer)
    volume_unit: Mapped[VolumeUnit] = mapped_column(
        Enum(VolumeUnit, native_enum=False, values_callable=_values, length=8),
        default=VolumeUnit.PARTS,
    )
    due_date: Mapped[date | None] = mapped_column(Date, default=None)
    required_certifications: Mapped[list[str]] = mapped_column(JSON, default=list)
    needed_parts: Mapped[int] = mapped_column(Integer, default=0)
    """Parts needed over the window (weekly volume pro-rated, in parts)."""
    covered_parts: Mapped[int] = mapped_column(Integer, default=0)
    unmet: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)

    request: Mapped[TakeoverRequest] = relationship(back_populates="jobs")


class TakeoverAssignment(Base):
    """Part of a job allocated to one partner machine, and the partner's answer."""

    __tablename__ = "takeover_assignment"
    __table_args__ = (Index("ix_assignment_partner", "partner_firm_id", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(
        ForeignKey("takeover_request.id", ondelete="CASCADE"), index=True
    )
    job_id: Mapped[str] = mapped_column(ID)
    partner_firm_id: Mapped[str] = mapped_column(ForeignKey("firm.id", ondelete="CASCADE"))
    site_id: Mapped[str] = mapped_column(ID)
    machine_id: Mapped[str] = mapped_column(ID)
    hours: Mapped[float] = mapped_column(Float)
    parts: Mapped[int] = mapped_column(Integer)
    transport_km: Mapped[float] = mapped_column(Float)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[AssignmentStatus] = mapped_column(
        Enum(AssignmentStatus, native_enum=False, values_callable=_values, length=16),
        default=AssignmentStatus.PROPOSED,
    )
    responded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    responded_by: Mapped[str | None] = mapped_column(String(32), default=None)
    note: Mapped[str] = mapped_column(String(1000), default="")

    request: Mapped[TakeoverRequest] = relationship(back_populates="assignments")
