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

from fastapi import APIRouter, Body
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from renkei.cloud.api.deps import ClockDep, DbId, PrincipalDep, SessionDep, SettingsDep, authorize
from renkei.cloud.api.errors import Conflict, Invalid, NotFound
from renkei.cloud.disruption import as_utc
from renkei.cloud.registry import Disruption, DisruptionSource, DisruptionStatus, Principal, Site

router = APIRouter(tags=["disruptions"])

_OPEN = (DisruptionStatus.SUSPECTED, DisruptionStatus.CONFIRMED)
Radius = Annotated[float, Field(ge=0, le=1000)]
Note = Annotated[str, Field(max_length=1000)]


class DisruptionPublic(BaseModel):
    """A disruption (times are UTC).

    Attributes:
        status: ``suspected`` | ``confirmed`` | ``dismissed`` | ``ended``.
        source: ``declared`` (by the firm) or ``last_will`` (gateways went offline).
        start, end: the stop; ``end`` is ``null`` while it lasts (or unknown).
        radius_km: disrupted zone around the site (0 = only the site).
        detail: evidence of a suspicion: ``{"gateways_total", "window_s",
            "offline_fraction", "offline": [{"gateway_id", "offline_at"}]}``.
        decided_at, decided_by: last decision (declare / confirm / dismiss / end) and the
            key id that made it.
    """

    model_config = ConfigDict(from_attributes=True)
    id: int
    firm_id: str
    site_id: str
    status: DisruptionStatus
    source: DisruptionSource
    start: datetime
    end: datetime | None
    radius_km: float
    note: str
    detail: dict[str, Any]
    created_at: datetime
    decided_at: datetime | None
    decided_by: str | None

    @field_validator("start", "end", "created_at", "decided_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else as_utc(value)


class DisruptionDeclare(BaseModel):
    """A disruption the firm declares (naive times are UTC).

    Attributes:
        site_id: a site of the firm.
        start: when the site stopped.
        end: when it is expected to run again (optional; ``end > start``).
        radius_km: disrupted zone; default ``ApiSettings.zone_radius_km`` (30 km).
        note: free text (cause, contact).
    """

    model_config = ConfigDict(extra="forbid")
    site_id: str
    start: datetime
    end: datetime | None = None
    radius_km: Radius | None = None
    note: Note = ""


class DisruptionConfirm(BaseModel):
    """Optional changes when confirming a suspicion."""

    model_config = ConfigDict(extra="forbid")
    radius_km: Radius | None = None
    note: Note | None = None


class DisruptionDismiss(BaseModel):
    """Optional reason for dismissing a suspicion (e.g. "network outage")."""

    model_config = ConfigDict(extra="forbid")
    note: Note | None = None


class DisruptionEnd(BaseModel):
    """When the site runs again; default now (must not be before ``start``)."""

    model_config = ConfigDict(extra="forbid")
    end: datetime | None = None
    note: Note | None = None


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
    firm_id: str,
    session: SessionDep,
    status: DisruptionStatus | None = None,
    site_id: str | None = None,
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
    firm_id: str,
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
    firm_id: str,
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
    firm_id: str,
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
    firm_id: str,
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
