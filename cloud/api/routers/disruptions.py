"""Disruptions of a firm's sites: declared by the firm, or suspected by the platform.

Life cycle (:class:`renkei.cloud.registry.DisruptionStatus`)::

    declare ──────────────► confirmed ──end──► ended
    watcher ─► suspected ──confirm──┘
                         └─dismiss─► dismissed

- ``POST /firms/{firm_id}/disruptions`` declares a disruption (status ``confirmed``,
  source ``declared``). 409 if a suspected or confirmed disruption of the site is open
  (confirm the suspicion, or end the open one, instead).
- ``.../{id}/confirm`` and ``.../{id}/dismiss`` decide a suspicion (only from
  ``suspected``, 409 otherwise); ``.../{id}/end`` ends a confirmed disruption (409
  otherwise) and sets its ``end``.

A confirmed disruption stops its site for the takeover planner, and its zone (site
position + ``radius_km``) excludes every partner site inside it while it overlaps a
takeover's window. Every decision records ``decided_at`` (API clock) and ``decided_by``
(the caller's key id). Objects of other firms answer 404.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from renkei.cloud.api.deps import ClockDep, DbId, PrincipalDep, SessionDep, SettingsDep, authorize
from renkei.cloud.api.errors import Conflict, Invalid, NotFound
from renkei.cloud.api.params import FirmIdPath
from renkei.cloud.disruption import as_utc
from renkei.cloud.registry import Disruption, DisruptionSource, DisruptionStatus, Principal, Site

router = APIRouter(tags=["disruptions"])

_OPEN = (DisruptionStatus.SUSPECTED, DisruptionStatus.CONFIRMED)
Radius = Annotated[
    float,
    Field(
        ge=0,
        le=1000,
        description="Radius of the disrupted zone around the site (km, 0-1000; 0 = only the "
        "site). Partner sites inside it are not planned for takeovers.",
        examples=[30],
    ),
]
Note = Annotated[
    str,
    Field(
        max_length=1000,
        description="Free text (at most 1000 characters): cause, contact, reason.",
        examples=["earthquake; contact Sato 090-0000-0000"],
    ),
]


class DisruptionPublic(BaseModel):
    """A disruption of one of the firm's sites (times are UTC)."""

    model_config = ConfigDict(from_attributes=True)
    id: int = Field(description="The disruption's id.")
    firm_id: str = Field(description="The firm whose site is disrupted.")
    site_id: str = Field(description="The disrupted site.")
    status: DisruptionStatus = Field(
        description="`suspected` (raised by the platform, awaits the firm's decision), "
        "`confirmed` (the site counts as stopped), `dismissed` (a suspicion rejected) or "
        "`ended` (the site runs again)."
    )
    source: DisruptionSource = Field(
        description="`declared` (by the firm) or `last_will` (suspected because the site's "
        "gateways went offline)."
    )
    start: datetime = Field(description="When the site stopped (inclusive; UTC, ISO-8601).")
    end: datetime | None = Field(
        description="When the site runs (or is expected to run) again (exclusive; UTC, "
        "ISO-8601); null while it lasts or is unknown."
    )
    radius_km: float = Field(
        description="Radius of the disrupted zone around the site (km; 0 = only the site)."
    )
    note: str = Field(description="Free text of the firm (cause, contact, reason).")
    detail: dict[str, Any] = Field(
        description="Evidence of a suspicion: `gateways_total`, `window_s` (s), "
        "`offline_fraction` (0..1), `offline` (list of `gateway_id`, `offline_at`); `{}` "
        "for a declared disruption."
    )
    created_at: datetime = Field(description="When it was recorded (UTC, ISO-8601).")
    decided_at: datetime | None = Field(
        description="When the last decision (declare, confirm, dismiss, end) was made (UTC, "
        "ISO-8601); null for an undecided suspicion."
    )
    decided_by: str | None = Field(
        description="Key id (`CredentialPublic.key_id`) that made the last decision."
    )

    @field_validator("start", "end", "created_at", "decided_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else as_utc(value)


class DisruptionDeclare(BaseModel):
    """A disruption the firm declares (times without an offset are UTC)."""

    model_config = ConfigDict(extra="forbid")
    site_id: str = Field(description="A site of the firm.", examples=["acme-s1"])
    start: datetime = Field(
        description="When the site stopped (inclusive), ISO-8601; without an offset it is UTC.",
        examples=["2026-11-23T00:30:00Z"],
    )
    end: datetime | None = Field(
        default=None,
        description="When the site is expected to run again (exclusive), ISO-8601, after "
        "`start`; without an offset it is UTC; default unknown (null).",
    )
    radius_km: Radius | None = Field(
        default=None,
        description="Radius of the disrupted zone (km, 0-1000; 0 = only the site); default "
        "the API's `zone_radius_km` setting (30 km).",
    )
    note: Note = ""


class DisruptionConfirm(BaseModel):
    """Optional changes when confirming a suspicion."""

    model_config = ConfigDict(extra="forbid")
    radius_km: Radius | None = Field(
        default=None, description="New zone radius (km, 0-1000); default keep the current one."
    )
    note: Note | None = Field(
        default=None, description="New free text (at most 1000 characters); default keep it."
    )


class DisruptionDismiss(BaseModel):
    """Optional reason for dismissing a suspicion (e.g. "network outage")."""

    model_config = ConfigDict(extra="forbid")
    note: Note | None = Field(
        default=None,
        description="Why it is dismissed (at most 1000 characters); default keep the note.",
    )


class DisruptionEnd(BaseModel):
    """When the site runs again; default now (must not be before ``start``)."""

    model_config = ConfigDict(extra="forbid")
    end: datetime | None = Field(
        default=None,
        description="When the site runs again (exclusive end of the stop), ISO-8601, not "
        "before `start`; without an offset it is UTC; default now (API clock).",
    )
    note: Note | None = Field(
        default=None, description="New free text (at most 1000 characters); default keep it."
    )


def _get(session: Session, firm_id: str, disruption_id: int) -> Disruption:
    d = session.get(Disruption, disruption_id)
    if d is None or d.firm_id != firm_id:
        raise NotFound(f"no disruption {disruption_id} in firm {firm_id!r}")
    return d


def _require(d: Disruption, *allowed: DisruptionStatus, action: str) -> None:
    if d.status not in allowed:
        raise Conflict(
            f"cannot {action} disruption {d.id}: it is {d.status.value}, "
            f"not {' or '.join(s.value for s in allowed)}",
            detail={"id": d.id, "status": d.status.value},
        )


def _decide(d: Disruption, principal: Principal, now: datetime) -> None:
    d.decided_at = now
    d.decided_by = principal.key_id


@router.get(
    "/firms/{firm_id}/disruptions",
    name="disruptions.list",
    dependencies=[authorize("disruptions.list")],
)
def list_disruptions(
    firm_id: FirmIdPath,
    session: SessionDep,
    status: Annotated[
        DisruptionStatus | None, Query(description="Only disruptions of this status.")
    ] = None,
    site_id: Annotated[str | None, Query(description="Only disruptions of this site.")] = None,
) -> list[DisruptionPublic]:
    """The firm's disruptions, newest start first; optionally of one status or site."""
    stmt = select(Disruption).where(Disruption.firm_id == firm_id)
    if status is not None:
        stmt = stmt.where(Disruption.status == status)
    if site_id is not None:
        stmt = stmt.where(Disruption.site_id == site_id)
    stmt = stmt.order_by(Disruption.start.desc(), Disruption.id.desc())
    return [DisruptionPublic.model_validate(d) for d in session.scalars(stmt)]


@router.post(
    "/firms/{firm_id}/disruptions",
    name="disruptions.declare",
    status_code=201,
    dependencies=[authorize("disruptions.declare")],
)
def declare_disruption(
    firm_id: FirmIdPath,
    body: DisruptionDeclare,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    now: ClockDep,
) -> DisruptionPublic:
    """Declare that a site of the firm stopped (status ``confirmed``, source ``declared``).

    Errors: 422 (``body.site_id`` not a site of the firm, ``end <= start``), 409 (a
    suspected or confirmed disruption of the site is open; its id is in ``detail``).
    """
    site = session.get(Site, body.site_id)
    if site is None or site.firm_id != firm_id:
        raise Invalid(
            f"body.site_id {body.site_id!r} is not a site of firm {firm_id!r}",
            detail=[{"loc": "body.site_id", "msg": "unknown site"}],
        )
    start = as_utc(body.start)
    end = None if body.end is None else as_utc(body.end)
    if end is not None and end <= start:
        raise Invalid(
            "body.end must be after body.start",
            detail=[{"loc": "body.end", "msg": f"must be after {start.isoformat()}"}],
        )
    open_one = session.scalars(
        select(Disruption).where(Disruption.site_id == site.id, Disruption.status.in_(_OPEN))
    ).first()
    if open_one is not None:
        hint = "confirm it" if open_one.status is DisruptionStatus.SUSPECTED else "end it first"
        raise Conflict(
            f"site {site.id!r} has an open {open_one.status.value} disruption "
            f"{open_one.id}; {hint}",
            detail={"id": open_one.id, "status": open_one.status.value},
        )
    d = Disruption(
        firm_id=firm_id,
        site_id=site.id,
        status=DisruptionStatus.CONFIRMED,
        source=DisruptionSource.DECLARED,
        start=start,
        end=end,
        radius_km=settings.zone_radius_km if body.radius_km is None else body.radius_km,
        note=body.note,
        detail={},
        created_at=now,
    )
    _decide(d, principal, now)
    session.add(d)
    session.flush()
    return DisruptionPublic.model_validate(d)


@router.post(
    "/firms/{firm_id}/disruptions/{disruption_id}/confirm",
    name="disruptions.confirm",
    dependencies=[authorize("disruptions.confirm")],
)
def confirm_disruption(
    firm_id: FirmIdPath,
    disruption_id: DbId,
    session: SessionDep,
    principal: PrincipalDep,
    now: ClockDep,
    body: Annotated[DisruptionConfirm | None, Body()] = None,
) -> DisruptionPublic:
    """Confirm a suspicion: the site counts as stopped. Optionally set ``radius_km`` and
    ``note``. Errors: 404 (not this firm's), 409 (not ``suspected``)."""
    d = _get(session, firm_id, disruption_id)
    _require(d, DisruptionStatus.SUSPECTED, action="confirm")
    d.status = DisruptionStatus.CONFIRMED
    if body is not None and body.radius_km is not None:
        d.radius_km = body.radius_km
    if body is not None and body.note is not None:
        d.note = body.note
    _decide(d, principal, now)
    session.flush()
    return DisruptionPublic.model_validate(d)


@router.post(
    "/firms/{firm_id}/disruptions/{disruption_id}/dismiss",
    name="disruptions.dismiss",
    dependencies=[authorize("disruptions.dismiss")],
)
def dismiss_disruption(
    firm_id: FirmIdPath,
    disruption_id: DbId,
    session: SessionDep,
    principal: PrincipalDep,
    now: ClockDep,
    body: Annotated[DisruptionDismiss | None, Body()] = None,
) -> DisruptionPublic:
    """Dismiss a suspicion (e.g. a network outage). The same outage is not suspected
    again. Errors: 404 (not this firm's), 409 (not ``suspected``)."""
    d = _get(session, firm_id, disruption_id)
    _require(d, DisruptionStatus.SUSPECTED, action="dismiss")
    d.status = DisruptionStatus.DISMISSED
    if body is not None and body.note is not None:
        d.note = body.note
    _decide(d, principal, now)
    session.flush()
    return DisruptionPublic.model_validate(d)


@router.post(
    "/firms/{firm_id}/disruptions/{disruption_id}/end",
    name="disruptions.end",
    dependencies=[authorize("disruptions.end")],
)
def end_disruption(
    firm_id: FirmIdPath,
    disruption_id: DbId,
    session: SessionDep,
    principal: PrincipalDep,
    now: ClockDep,
    body: Annotated[DisruptionEnd | None, Body()] = None,
) -> DisruptionPublic:
    """End a confirmed disruption: the site runs again from ``end`` (default now).

    Errors: 404 (not this firm's), 409 (not ``confirmed``), 422 (``end`` before
    ``start``).
    """
    d = _get(session, firm_id, disruption_id)
    _require(d, DisruptionStatus.CONFIRMED, action="end")
    end = now if body is None or body.end is None else as_utc(body.end)
    if end < as_utc(d.start):
        raise Invalid(
            "body.end is before the disruption's start",
            detail=[
                {"loc": "body.end", "msg": f"must not be before {as_utc(d.start).isoformat()}"}
            ],
        )
    d.status = DisruptionStatus.ENDED
    d.end = end
    if body is not None and body.note is not None:
        d.note = body.note
    _decide(d, principal, now)
    session.flush()
    return DisruptionPublic.model_validate(d)
