"""Registry tables (SQLAlchemy 2.0 ORM): firms, sites, lines, machines, molds, credentials.

The attributes are the ones that decide whether a partner can take over a job
(``../shared/DOMAIN.md``, "Can mold M run on machine X?"): clamp force, tie-bar spacing,
mold height (daylight) range, shot capacity and locating ring for injection-molding
machines; tonnage and bed size for presses; axes and work envelope for machining centres;
dimensions, weight, required clamp force, shot weight, resin and cavities for molds.
Resins and certifications belong to the *site* (the dryer and the quality system are
there). ISA-95: a firm is the enterprise; site and line are its levels below.

SQLite is the embedded default and PostgreSQL the production database; the schema uses
only portable types (JSON lists are stored with SQLAlchemy's generic ``JSON``).
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = [
    "ApiCredential",
    "Base",
    "Firm",
    "Line",
    "Machine",
    "Mold",
    "Process",
    "Role",
    "Site",
]

ID = String(64)


def _values(enum_cls: type[enum.Enum]) -> list[str]:
    return [str(m.value) for m in enum_cls]


def _now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base of every registry table."""

    type_annotation_map = {dict[str, Any]: JSON, list[str]: JSON}  # noqa: RUF012 (SQLAlchemy API)


class Process(enum.StrEnum):
    """Manufacturing process class of a machine: ``injection_molding`` (injection molding
    machine, sized by clamp force in kN), ``press`` (stamping press, sized by tonnage in kN)
    or ``machining`` (CNC machining, sized by axes and work envelope in mm)."""

    INJECTION_MOLDING = "injection_molding"
    PRESS = "press"
    MACHINING = "machining"


class Role(enum.StrEnum):
    """What an API credential may do (see the access matrix in :mod:`renkei.cloud.api.access`):
    ``operator`` manages its own firm, ``partner`` reads shared data and answers assignments,
    ``supporter`` sees regional aggregates only, ``engineer`` deploys models to its firm's
    gateways, ``admin`` administers the platform."""

    OPERATOR = "operator"
    """Manages its own firm's registry, plans and policies; sees its own data."""
    PARTNER = "partner"
    """Reads other firms' data only as far as their sharing policies grant."""
    SUPPORTER = "supporter"
    """Regional supporter (city, chamber of commerce): aggregates over ≥ k firms only."""
    ENGINEER = "engineer"
    """Deploys models to its own firm's gateways."""
    ADMIN = "admin"
    """Platform administrator."""


class Firm(Base):
    """An enterprise (ISA-95) taking part in Renkei."""

    __tablename__ = "firm"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    region: Mapped[str] = mapped_column(String(64), index=True)
    """Region (e.g. ``kansai``) used by regional supporters' aggregates."""
    bpnl: Mapped[str | None] = mapped_column(String(16), default=None)
    """Catena-X Business Partner Number (legal entity, ``BPNL`` + 12 characters), used as
    supplier/customer in DCM exports; ``None`` when the firm has none."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)

    sites: Mapped[list[Site]] = relationship(back_populates="firm", cascade="all, delete-orphan")
    molds: Mapped[list[Mold]] = relationship(back_populates="firm", cascade="all, delete-orphan")


class Site(Base):
    """A plant of a firm, with its location and what it can process."""

    __tablename__ = "site"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    firm_id: Mapped[str] = mapped_column(ForeignKey("firm.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(400), default="")
    latitude_deg: Mapped[float] = mapped_column(Float)
    longitude_deg: Mapped[float] = mapped_column(Float)
    prefecture: Mapped[str] = mapped_column(String(64), default="")
    region: Mapped[str] = mapped_column(String(64), index=True)
    resins: Mapped[list[str]] = mapped_column(default=list)
    """Resin codes the site can dry and process (PP, ABS, PA66-GF30, PC, ...)."""
    certifications: Mapped[list[str]] = mapped_column(default=list)
    """Quality certifications of the site (ISO9001, IATF16949, ...)."""
    calendar: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    """The site's shift calendar (:class:`renkei.cloud.capacity.ShiftCalendar` as JSON); ``None``
    means the API's default calendar (``ApiSettings.default_weekly_hours``)."""

    firm: Mapped[Firm] = relationship(back_populates="sites")
    lines: Mapped[list[Line]] = relationship(back_populates="site", cascade="all, delete-orphan")


class Line(Base):
    """A production line (ISA-95 line) of a site."""

    __tablename__ = "line"
    __table_args__ = (UniqueConstraint("site_id", "name"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("site.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    area: Mapped[str] = mapped_column(String(64), default="")

    site: Mapped[Site] = relationship(back_populates="lines")
    machines: Mapped[list[Machine]] = relationship(
        back_populates="line", cascade="all, delete-orphan"
    )


class Machine(Base):
    """A machine (ISA-95 cell) with the attributes that decide job compatibility.

    Injection molding uses ``clamp_force_kN``, ``tie_bar_h_mm`` × ``tie_bar_v_mm`` (clear
    distance between tie bars), ``min_mold_height_mm``..``max_mold_height_mm`` (daylight),
    ``shot_capacity_g`` and ``locating_ring_mm``. Presses use ``tonnage_kN`` and
    ``bed_width_mm`` × ``bed_depth_mm``; machining centres ``axes`` and the work envelope.
    """

    __tablename__ = "machine"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    firm_id: Mapped[str] = mapped_column(ForeignKey("firm.id", ondelete="CASCADE"), index=True)
    line_id: Mapped[str] = mapped_column(ForeignKey("line.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    process: Mapped[Process] = mapped_column(
        Enum(Process, native_enum=False, values_callable=_values, length=32), index=True
    )
    clamp_force_kN: Mapped[float | None] = mapped_column(Float, index=True)
    tie_bar_h_mm: Mapped[float | None] = mapped_column(Float)
    tie_bar_v_mm: Mapped[float | None] = mapped_column(Float)
    min_mold_height_mm: Mapped[float | None] = mapped_column(Float)
    max_mold_height_mm: Mapped[float | None] = mapped_column(Float)
    shot_capacity_g: Mapped[float | None] = mapped_column(Float)
    locating_ring_mm: Mapped[float | None] = mapped_column(Float)
    tonnage_kN: Mapped[float | None] = mapped_column(Float)
    bed_width_mm: Mapped[float | None] = mapped_column(Float)
    bed_depth_mm: Mapped[float | None] = mapped_column(Float)
    axes: Mapped[int | None] = mapped_column(Integer)
    envelope_x_mm: Mapped[float | None] = mapped_column(Float)
    envelope_y_mm: Mapped[float | None] = mapped_column(Float)
    envelope_z_mm: Mapped[float | None] = mapped_column(Float)
    mounted_mold_id: Mapped[str | None] = mapped_column(
        ForeignKey("mold.id", ondelete="SET NULL"), unique=True, default=None
    )
    """The firm's own mold mounted on the machine now (its ``cycle_time_s`` is the ideal
    cycle time of OEE performance); unique: a mold is on at most one machine."""

    line: Mapped[Line] = relationship(back_populates="machines")


class Mold(Base):
    """A mold owned by a firm (it travels to the partner in a takeover)."""

    __tablename__ = "mold"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    firm_id: Mapped[str] = mapped_column(ForeignKey("firm.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    width_mm: Mapped[float] = mapped_column(Float)
    height_mm: Mapped[float] = mapped_column(Float)
    thickness_mm: Mapped[float] = mapped_column(Float)
    weight_kg: Mapped[float] = mapped_column(Float)
    required_clamp_force_kN: Mapped[float] = mapped_column(Float)
    """≈ projected area × cavity pressure (DOMAIN.md)."""
    shot_weight_g: Mapped[float] = mapped_column(Float)
    resin: Mapped[str] = mapped_column(String(32))
    cavities: Mapped[int] = mapped_column(Integer)
    locating_ring_mm: Mapped[float] = mapped_column(Float)
    cycle_time_s: Mapped[float] = mapped_column(Float)
    shot_count: Mapped[int] = mapped_column(Integer, default=0)
    maintenance_interval_shots: Mapped[int] = mapped_column(Integer, default=100_000)

    firm: Mapped[Firm] = relationship(back_populates="molds")


class ApiCredential(Base):
    """An API key of a firm with one role. Only a SHA-256 of the secret is stored.

    Keys have the form ``rk_{key_id}_{secret}`` with a 256-bit random secret, so a fast
    hash is sufficient (no password-grade stretching needed for random secrets).
    """

    __tablename__ = "api_credential"

    key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    firm_id: Mapped[str] = mapped_column(ForeignKey("firm.id", ondelete="CASCADE"), index=True)
    role: Mapped[Role] = mapped_column(
        Enum(Role, native_enum=False, values_callable=_values, length=32)
    )
    secret_sha256: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
