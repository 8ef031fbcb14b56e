"""Takeover requests of a disrupted firm: ask partners to produce its jobs with its molds.

- ``POST /firms/{firm_id}/takeovers``: create a request with its jobs; it is planned at
  once (revision 1) and answered with the plan (201, :class:`TakeoverPublic`).
- ``GET /firms/{firm_id}/takeovers``: the firm's requests (newest first, no partner
  identities: :class:`TakeoverListItem`).
- ``GET /firms/{firm_id}/takeovers/{id}``: one request with jobs and assignments.
- ``POST .../{id}/replan``: re-plan every job's remaining volume (declined or never
  covered); accepted and proposed assignments stay (new revision).
- ``POST .../{id}/close``: close the request; unanswered proposals are withdrawn.
- ``POST .../{id}/promote``: turn a drill into a real request (201; planned anew;
  :mod:`renkei.cloud.api.routers.drills`).

Drills (``"drill": true`` on create): planned and shown with every reason, but their
assignments have status ``drill`` — not listed to partners, not answerable, holding and
booking no hours, and the notification hook skips them (``TakeoverRequest.drill``). A
re-plan of a drill replaces its plan; promote creates a real request from its jobs through
the same path as create (planned on current data) and closes the drill (``promoted_to``).

Explanations: every unmet volume carries the failed rules and numbers of the nearest
candidates (:mod:`renkei.cloud.planner.explain`), narrowed at read time to what the
partners' current sharing views disclose (:mod:`renkei.cloud.takeover.disclose`), rendered
in English and Japanese (:mod:`renkei.cloud.planner.wording`).

Planning: :mod:`renkei.cloud.takeover.service` (sharing policies, disrupted zones, spare hours,
the planner). Partners answer with ``/firms/{partner}/assignments/{id}/accept|decline``
(:mod:`renkei.cloud.api.routers.assignments`); a decline re-plans the declined volume.

Disclosure: an assignment names the partner firm, its site, hours, parts and transport
distance; the machine id only when the partner's sharing view for the requester has
``machine_detail`` (or the partner is the requester itself). Every response carrying
assignments or explanation candidates writes one audit row (action ``takeover.plan``) per
partner firm shown.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from renkei.cloud.api import audit
from renkei.cloud.api.deps import ClockDep, PrincipalDep, ServicesDep, SessionDep, authorize
from renkei.cloud.api.errors import Conflict, Invalid, NotFound
from renkei.cloud.api.explanations import explanation_public, stored_explanation
from renkei.cloud.api.params import FirmIdPath, TakeoverIdPath
from renkei.cloud.api.schemas.takeovers import (
    TakeoverAssignmentPublic,
    TakeoverCreate,
    TakeoverJobPublic,
    TakeoverListItem,
    TakeoverPublic,
    UnmetPublic,
)
from renkei.cloud.capacity.policy import views_for
from renkei.cloud.planner.explain import Explanation
from renkei.cloud.registry import (
    AssignmentStatus,
    Disruption,
    DisruptionStatus,
    Firm,
    Mold,
    Principal,
    Site,
    TakeoverJob,
    TakeoverRequest,
    TakeoverStatus,
)
from renkei.cloud.takeover import plan_initial, refresh_summary, replan
from renkei.cloud.takeover.convert import new_job

router = APIRouter(tags=["takeovers"])
log = logging.getLogger(__name__)

MAX_WINDOW_DAYS = 366
"""Longest request window (days)."""


# ------------------------------------------------------------------------ helpers


def _invalid(loc: str, msg: str) -> Invalid:
    return Invalid(f"{loc}: {msg}", detail=[{"loc": loc, "msg": msg}])


def get_request(
    session: Session, firm_id: str, request_id: str, *, lock: bool = False
) -> TakeoverRequest:
    """The firm's request ``request_id`` (row-locked with ``lock`` on PostgreSQL).

    Raises:
        NotFound: no such request in this firm.
    """
    req = session.get(TakeoverRequest, request_id, with_for_update=lock)
    if req is None or req.firm_id != firm_id:
        raise NotFound(f"no takeover request {request_id!r} in firm {firm_id!r}")
    return req


def require_open(req: TakeoverRequest) -> None:
    """Raises :class:`Conflict` when the request is closed."""
    if req.status is not TakeoverStatus.OPEN:
        raise Conflict(
            f"takeover request {req.id!r} is {req.status.value}",
            detail={"id": req.id, "status": req.status.value},
        )


def takeover_public(
    session: Session,
    req: TakeoverRequest,
    *,
    principal: Principal,
    now: datetime,
    resource: str,
) -> TakeoverPublic:
    """The request as the requester sees it; writes the ``takeover.plan`` audit rows
    (one per partner firm shown, and one for the requester if the caller is another
    firm's admin)."""
    views = views_for(session, viewer_firm_id=req.firm_id, now=now)
    explained: dict[tuple[str, int], Explanation] = {}
    named: dict[str, list[str]] = defaultdict(list)  # firm -> jobs whose candidates name it
    for j in req.jobs:
        for i, u in enumerate(j.unmet):
            e = stored_explanation(req, u, views)
            if e is not None:
                explained[j.job_id, i] = e
                for c in e.candidates:
                    named[c.firm_id].append(j.job_id)
    partner_ids = sorted({a.partner_firm_id for a in req.assignments} | set(named))
    names = {f.id: f.name for f in session.scalars(select(Firm).where(Firm.id.in_(partner_ids)))}

    def detail_ok(partner: str) -> bool:
        view = views.get(partner)
        return partner == req.firm_id or (view is not None and view.machine_detail)

    accepted: dict[str, int] = defaultdict(int)
    shown: dict[str, list[int]] = defaultdict(list)
    assignments = []
    for a in sorted(req.assignments, key=lambda a: a.id):
        if a.status is AssignmentStatus.ACCEPTED:
            accepted[a.job_id] += a.parts
        shown[a.partner_firm_id].append(a.id)
        assignments.append(
            TakeoverAssignmentPublic(
                id=a.id,
                job_id=a.job_id,
                partner_firm_id=a.partner_firm_id,
                partner_firm_name=names.get(a.partner_firm_id, a.partner_firm_id),
                site_id=a.site_id,
                machine_id=a.machine_id if detail_ok(a.partner_firm_id) else None,
                hours=round(a.hours, 3),
                parts=a.parts,
                transport_km=round(a.transport_km, 3),
                status=a.status,
                revision=a.revision,
            )
        )
    jobs = [
        TakeoverJobPublic(
            job_id=j.job_id,
            part_id=j.part_id,
            mold_id=j.mold_id,
            needed_parts=j.needed_parts,
            covered_parts=j.covered_parts,
            accepted_parts=accepted[j.job_id],
            unmet=[
                UnmetPublic(
                    parts=int(u["parts"]),
                    reason=str(u["reason"]),
                    explanation=explanation_public(explained[j.job_id, i], names)
                    if (j.job_id, i) in explained
                    else None,
                )
                for i, u in enumerate(j.unmet)
            ],
        )
        for j in req.jobs
    ]
    for partner in sorted(set(shown) | set(named)):
        detail: dict[str, Any] = {
            "request_id": req.id,
            "assignment_ids": shown.get(partner, []),
            "machine_detail": detail_ok(partner),
            "drill": req.drill,
        }
        if partner in named:
            detail["explained_job_ids"] = sorted(set(named[partner]))
        audit.record(
            session,
            principal=principal,
            owner_firm_id=partner,
            action="takeover.plan",
            resource=resource,
            detail=detail,
            at=now,
        )
    if req.firm_id not in shown:
        audit.record(
            session,
            principal=principal,
            owner_firm_id=req.firm_id,
            action="takeover.plan",
            resource=resource,
            detail={"request_id": req.id, "drill": req.drill},
            at=now,
        )
    return TakeoverPublic(
        id=req.id,
        firm_id=req.firm_id,
        status=req.status,
        revision=req.revision,
        window_start=req.window_start,
        window_end=req.window_end,
        origin_site_id=req.origin_site_id,
        disruption_id=req.disruption_id,
        summary=req.summary or {},
        jobs=jobs,
        assignments=assignments,
        drill=req.drill,
        promoted_to=req.promoted_to,
    )


# ------------------------------------------------------------------------ endpoints


@router.get(
    "/firms/{firm_id}/takeovers", name="takeovers.list", dependencies=[authorize("takeovers.list")]
)
def list_takeovers(
    firm_id: FirmIdPath,
    session: SessionDep,
    status: Annotated[
        TakeoverStatus | None, Query(description="Only `open` or only `closed` requests.")
    ] = None,
    drill: Annotated[
        bool | None,
        Query(description="Only drills (`true`) or only real requests (`false`)."),
    ] = None,
) -> list[TakeoverListItem]:
    """The firm's takeover requests, newest first; optionally only ``open``/``closed``,
    and only drills (``drill=true``) or only real requests (``drill=false``)."""
    stmt = select(TakeoverRequest).where(TakeoverRequest.firm_id == firm_id)
    if status is not None:
        stmt = stmt.where(TakeoverRequest.status == status)
    if drill is not None:
        stmt = stmt.where(TakeoverRequest.drill.is_(drill))
    stmt = stmt.order_by(TakeoverRequest.created_at.desc(), TakeoverRequest.id)
    return [TakeoverListItem.model_validate(r) for r in session.scalars(stmt)]


@router.post(
    "/firms/{firm_id}/takeovers",
    name="takeovers.create",
    status_code=201,
    dependencies=[authorize("takeovers.create")],
)
def create_takeover(
    firm_id: FirmIdPath,
    body: TakeoverCreate,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    services: ServicesDep,
    now: ClockDep,
) -> TakeoverPublic:
    """Create a takeover request (or, with ``drill``, a disaster drill) and plan it
    (revision 1).

    Errors:
        409: ``id`` exists; the disruption is not ``confirmed``.
        422: unknown ``disruption_id`` / ``origin_site_id`` / ``jobs[i].mold_id`` of this
            firm; no origin; ``window_end <= window_start`` or a window over 366 days;
            duplicate ``job_id``; a mold used by two jobs; ``due_date`` before the
            window; each with its ``loc`` (``body.jobs[2].mold_id``).
    """
    if body.id is not None and session.get(TakeoverRequest, body.id) is not None:
        raise Conflict(f"takeover request {body.id!r} exists")
    disruption: Disruption | None = None
    if body.disruption_id is not None:
        disruption = session.get(Disruption, body.disruption_id)
        if disruption is None or disruption.firm_id != firm_id:
            raise _invalid(
                "body.disruption_id", f"no disruption {body.disruption_id} in {firm_id!r}"
            )
        if disruption.status is not DisruptionStatus.CONFIRMED:
            raise Conflict(
                f"disruption {disruption.id} is {disruption.status.value}, not confirmed",
                detail={"id": disruption.id, "status": disruption.status.value},
            )
    origin_id = body.origin_site_id or (disruption.site_id if disruption is not None else None)
    if origin_id is None:
        raise _invalid("body.origin_site_id", "required when no disruption_id is given")
    origin = session.get(Site, origin_id)
    if origin is None or origin.firm_id != firm_id:
        raise _invalid("body.origin_site_id", f"{origin_id!r} is not a site of {firm_id!r}")
    days = (body.window_end - body.window_start).days
    if days <= 0:
        raise _invalid("body.window_end", "must be after window_start")
    if days > MAX_WINDOW_DAYS:
        raise _invalid("body.window_end", f"the window may span at most {MAX_WINDOW_DAYS} days")
    radius = body.zone_radius_km
    if radius is None:
        radius = (
            disruption.radius_km if disruption is not None else services.settings.zone_radius_km
        )
    jobs: list[TakeoverJob] = []
    job_of_mold: dict[str, str] = {}
    for i, j in enumerate(body.jobs):
        loc = f"body.jobs[{i}]"
        if any(x.job_id == j.job_id for x in jobs):
            raise _invalid(f"{loc}.job_id", f"duplicate job_id {j.job_id!r}")
        mold = session.get(Mold, j.mold_id)
        if mold is None or mold.firm_id != firm_id:
            raise _invalid(f"{loc}.mold_id", f"{j.mold_id!r} is not a mold of {firm_id!r}")
        if j.mold_id in job_of_mold:
            raise _invalid(
                f"{loc}.mold_id",
                f"mold {j.mold_id!r} is already used by job {job_of_mold[j.mold_id]!r}; "
                "a mold is in one place, merge the jobs",
            )
        job_of_mold[j.mold_id] = j.job_id
        if j.due_date is not None and j.due_date < body.window_start:
            raise _invalid(f"{loc}.due_date", "is before window_start")
        jobs.append(
            new_job(j, mold=mold, window_start=body.window_start, window_end=body.window_end)
        )
    req = TakeoverRequest(
        id=body.id or f"tko-{now:%Y%m%d}-{uuid.uuid4().hex[:8]}",
        firm_id=firm_id,
        disruption_id=disruption.id if disruption is not None else None,
        origin_site_id=origin.id,
        window_start=body.window_start,
        window_end=body.window_end,
        zone_radius_km=radius,
        status=TakeoverStatus.OPEN,
        revision=1,
        summary={},
        created_at=now,
        created_by=principal.key_id,
        jobs=jobs,
        drill=body.drill,
    )
    session.add(req)
    session.flush()
    plan_initial(services.capacity, session, req, now=now)
    session.flush()
    if req.drill:
        log.info(
            "takeover drill %s of firm %s planned by key %s", req.id, firm_id, principal.key_id
        )
    return takeover_public(session, req, principal=principal, now=now, resource=request.url.path)


@router.get(
    "/firms/{firm_id}/takeovers/{request_id}",
    name="takeovers.get",
    dependencies=[authorize("takeovers.get")],
)
def get_takeover(
    firm_id: FirmIdPath,
    request_id: TakeoverIdPath,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    now: ClockDep,
) -> TakeoverPublic:
    """One request with its jobs, coverage and every assignment's status. 404 if not this
    firm's."""
    req = get_request(session, firm_id, request_id)
    return takeover_public(session, req, principal=principal, now=now, resource=request.url.path)


@router.post(
    "/firms/{firm_id}/takeovers/{request_id}/replan",
    name="takeovers.replan",
    dependencies=[authorize("takeovers.replan")],
)
def replan_takeover(
    firm_id: FirmIdPath,
    request_id: TakeoverIdPath,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    services: ServicesDep,
    now: ClockDep,
) -> TakeoverPublic:
    """Re-plan the remaining volume of every job (new revision), e.g. after sharing
    grants or capacity changed; a drill is re-planned in full (its previous drill plan is
    replaced). Errors: 404, 409 (closed)."""
    req = get_request(session, firm_id, request_id, lock=True)
    require_open(req)
    if req.drill:
        for a in [a for a in req.assignments if a.status is AssignmentStatus.DRILL]:
            req.assignments.remove(a)
    replan(services.capacity, session, req, now=now)
    session.flush()
    return takeover_public(session, req, principal=principal, now=now, resource=request.url.path)


@router.post(
    "/firms/{firm_id}/takeovers/{request_id}/close",
    name="takeovers.close",
    dependencies=[authorize("takeovers.close")],
)
def close_takeover(
    firm_id: FirmIdPath,
    request_id: TakeoverIdPath,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    now: ClockDep,
) -> TakeoverPublic:
    """Close the request: proposals not yet answered become ``withdrawn``; accepted
    assignments stay. Jobs keep the last plan's ``covered_parts`` and ``unmet``;
    ``accepted_parts`` is what partners committed. Errors: 404, 409 (already closed)."""
    req = get_request(session, firm_id, request_id, lock=True)
    require_open(req)
    req.status = TakeoverStatus.CLOSED
    for a in req.assignments:
        if a.status is AssignmentStatus.PROPOSED:
            a.status = AssignmentStatus.WITHDRAWN
            a.responded_at = now
    refresh_summary(req)
    session.flush()
    return takeover_public(session, req, principal=principal, now=now, resource=request.url.path)
