"""Takeover assignments on a partner firm's machines, and the partner's answers.

- ``GET /firms/{firm_id}/assignments?status=``: every assignment planned on this firm's
  machines, with what the partner needs to prepare: the requester, the part, the mold's
  dimensions and process-relevant attributes (never the requester's process settings),
  machine, hours, parts, window and due date. Each requester firm whose data is listed
  gets one audit row (action ``takeover.assignment``). A drill's assignments (status
  ``drill``) were never offered: they are not listed, and answering one is 404.
- ``POST /firms/{firm_id}/assignments/{id}/accept`` and ``.../decline`` (body
  ``{"note"?: str}``): answer a ``proposed`` assignment. 404 if it is not on this firm's
  machines, 409 if it is not ``proposed`` any more or its request is closed. A decline
  re-plans the request at once (:func:`renkei.cloud.takeover.replan`): the declined volume goes
  elsewhere (never to the declined machine for that job) in a new revision; the
  requester sees the statuses in ``GET /firms/{requester}/takeovers/{id}``.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Body, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from renkei.cloud.api import audit
from renkei.cloud.api.deps import (
    AppState,
    ClockDep,
    DbId,
    PrincipalDep,
    ServicesDep,
    SessionDep,
    authorize,
)
from renkei.cloud.api.errors import Conflict, NotFound
from renkei.cloud.api.params import FirmIdPath
from renkei.cloud.api.routers.takeovers import require_open
from renkei.cloud.api.schemas.common import WindowEnd, WindowStart
from renkei.cloud.notify import answered as notify_answered
from renkei.cloud.registry import (
    AssignmentStatus,
    CapacityBooking,
    Firm,
    Mold,
    Principal,
    TakeoverAssignment,
    TakeoverJob,
    TakeoverRequest,
)
from renkei.cloud.takeover import refresh_summary, replan

router = APIRouter(tags=["assignments"])


class MoldForPartner(BaseModel):
    """What a partner needs to know of the mold it receives (sizes in mm, kg, kN, g, s);
    ``resin`` is the job's resin (the mold's unless the job overrides it)."""

    id: str = Field(description="The requester's mold id.")
    width_mm: float = Field(description="Mold width (mm); must pass between the tie bars.")
    height_mm: float = Field(description="Mold height (mm); must pass between the tie bars.")
    thickness_mm: float = Field(
        description="Mold thickness (mm): within the machine's min..max mold height."
    )
    weight_kg: float = Field(description="Mold weight (kg), for crane and transport.")
    required_clamp_force_kN: float = Field(description="Clamp force the mold needs (kN).")
    shot_weight_g: float = Field(description="Weight of one shot incl. runners (g).")
    resin: str = Field(
        description="Resin to mold: the job's resin, else the mold's (e.g. `PA66-GF30`)."
    )
    cavities: int = Field(description="Parts per shot.")
    locating_ring_mm: float = Field(description="Locating ring diameter (mm).")
    cycle_time_s: float = Field(description="Cycle time of one shot (s).")


class AssignmentForPartner(BaseModel):
    """One assignment on the partner's machine: ``hours`` machine hours for ``parts``
    parts within ``[window_start, window_end)`` (end exclusive), by ``due_date`` if set;
    ``transport_km``: great-circle km the mold travels to the partner's site."""

    id: int = Field(description="The assignment's id (for `.../assignments/{id}/accept`).")
    request_id: str = Field(description="The takeover request it belongs to.")
    requester_firm_id: str = Field(description="The disrupted firm asking for the work.")
    requester_firm_name: str = Field(description="That firm's name.")
    job_id: str = Field(description="The requester's job id within the request.")
    part_id: str = Field(description="The part to make (the requester's part number).")
    mold: MoldForPartner = Field(description="The mold the partner receives.")
    machine_id: str = Field(description="The partner's machine the work is planned on.")
    site_id: str = Field(description="The partner's site of that machine.")
    hours: float = Field(description="Machine hours planned within the window (h).")
    parts: int = Field(description="Parts to produce in the window.")
    transport_km: float = Field(
        description="Great-circle distance the mold travels from the requester's site to the "
        "partner's site (km)."
    )
    window_start: WindowStart
    window_end: WindowEnd
    due_date: date | None = Field(
        description="Last day the parts are needed (inclusive); null = the whole window."
    )
    status: AssignmentStatus = Field(
        description="`proposed` (awaiting this partner's answer), `accepted`, `declined`, or "
        "`withdrawn` (replaced by a later plan revision or the request was closed before an "
        "answer)."
    )
    revision: int = Field(description="The plan revision that proposed it (1 = first plan).")


class AssignmentAnswer(BaseModel):
    """The partner's answer; ``note`` e.g. the reason for a decline."""

    model_config = ConfigDict(extra="forbid")
    note: Annotated[str, Field(max_length=1000)] = Field(
        default="",
        description="Free text for the requester (at most 1000 characters), e.g. why the "
        "work is declined.",
        examples=["mold too heavy for our crane"],
    )


def _view(
    a: TakeoverAssignment, req: TakeoverRequest, job: TakeoverJob, mold: Mold, firm: Firm
) -> AssignmentForPartner:
    return AssignmentForPartner(
        id=a.id,
        request_id=req.id,
        requester_firm_id=req.firm_id,
        requester_firm_name=firm.name,
        job_id=a.job_id,
        part_id=job.part_id,
        mold=MoldForPartner(
            id=mold.id,
            width_mm=mold.width_mm,
            height_mm=mold.height_mm,
            thickness_mm=mold.thickness_mm,
            weight_kg=mold.weight_kg,
            required_clamp_force_kN=mold.required_clamp_force_kN,
            shot_weight_g=mold.shot_weight_g,
            resin=job.resin or mold.resin,
            cavities=mold.cavities,
            locating_ring_mm=mold.locating_ring_mm,
            cycle_time_s=mold.cycle_time_s,
        ),
        machine_id=a.machine_id,
        site_id=a.site_id,
        hours=round(a.hours, 3),
        parts=a.parts,
        transport_km=round(a.transport_km, 3),
        window_start=req.window_start,
        window_end=req.window_end,
        due_date=job.due_date,
        status=a.status,
        revision=a.revision,
    )


def _query() -> Select[TakeoverAssignment, TakeoverRequest, TakeoverJob, Mold, Firm]:
    """Assignments with their request, job, mold and requester firm."""
    return (
        select(TakeoverAssignment, TakeoverRequest, TakeoverJob, Mold, Firm)
        .join(TakeoverRequest, TakeoverAssignment.request_id == TakeoverRequest.id)
        .join(
            TakeoverJob,
            (TakeoverJob.request_id == TakeoverAssignment.request_id)
            & (TakeoverJob.job_id == TakeoverAssignment.job_id),
        )
        .join(Mold, Mold.id == TakeoverJob.mold_id)
        .join(Firm, Firm.id == TakeoverRequest.firm_id)
    )


def _audit(
    session: Session,
    views: list[AssignmentForPartner],
    *,
    principal: Principal,
    resource: str,
    now: datetime,
) -> None:
    by_requester: dict[str, list[AssignmentForPartner]] = {}
    for v in views:
        by_requester.setdefault(v.requester_firm_id, []).append(v)
    for requester, items in by_requester.items():
        audit.record(
            session,
            principal=principal,
            owner_firm_id=requester,
            action="takeover.assignment",
            resource=resource,
            detail={
                "assignment_ids": [v.id for v in items],
                "request_ids": sorted({v.request_id for v in items}),
            },
            at=now,
        )


@router.get(
    "/firms/{firm_id}/assignments",
    name="assignments.list",
    dependencies=[authorize("assignments.list")],
)
def list_assignments(
    firm_id: FirmIdPath,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    now: ClockDep,
    status: Annotated[
        AssignmentStatus | None,
        Query(description="Only assignments of this status; default all."),
    ] = None,
) -> list[AssignmentForPartner]:
    """Assignments on the firm's machines (optionally of one status), newest first."""
    stmt = _query().where(TakeoverAssignment.partner_firm_id == firm_id)
    stmt = stmt.where(TakeoverAssignment.status != AssignmentStatus.DRILL)  # never offered
    if status is not None:
        stmt = stmt.where(TakeoverAssignment.status == status)
    stmt = stmt.order_by(TakeoverAssignment.id.desc())
    out = [_view(*row) for row in session.execute(stmt).all()]
    _audit(session, out, principal=principal, resource=request.url.path, now=now)
    return out


def _book(session: Session, a: TakeoverAssignment, req: TakeoverRequest) -> None:
    """Book the accepted hours on the partner's machine, spread evenly over the window.

    From then on the partner's own capacity, its shared spare capacity and every later
    takeover plan see those hours as taken (the planner subtracts only *proposed*
    assignments itself, see :func:`renkei.cloud.takeover.service.load_fleet`).
    """
    days = max(1, (req.window_end - req.window_start).days)
    session.add(
        CapacityBooking(
            firm_id=a.partner_firm_id,
            machine_id=a.machine_id,
            start=req.window_start,
            end=req.window_end - timedelta(days=1),
            hours_per_day=min(24.0, a.hours / days),
            reference=f"takeover {req.id} assignment {a.id} (job {a.job_id})",
        )
    )


def _answer(
    firm_id: str,
    assignment_id: DbId,
    *,
    decision: AssignmentStatus,
    note: str,
    request: Request,
    session: Session,
    principal: Principal,
    services: AppState,
    now: datetime,
) -> AssignmentForPartner:
    a = session.get(TakeoverAssignment, assignment_id)
    if a is None or a.partner_firm_id != firm_id or a.status is AssignmentStatus.DRILL:
        raise NotFound(f"no assignment {assignment_id} on machines of firm {firm_id!r}")
    req = session.get(TakeoverRequest, a.request_id, with_for_update=True)
    assert req is not None  # FK
    require_open(req)
    if a.status is not AssignmentStatus.PROPOSED:
        raise Conflict(
            f"assignment {a.id} is {a.status.value}; only a proposed assignment can be answered",
            detail={"id": a.id, "status": a.status.value},
        )
    a.status = decision
    a.responded_at = now
    a.responded_by = principal.key_id
    a.note = note
    if decision is AssignmentStatus.DECLINED:
        replan(services.capacity, session, req, now=now)
    else:
        _book(session, a, req)
        refresh_summary(req)
    session.flush()
    notify_answered(session, req, a)  # delivered after commit, never blocks the answer
    row = session.execute(_query().where(TakeoverAssignment.id == a.id)).one()
    view = _view(*row)
    _audit(session, [view], principal=principal, resource=request.url.path, now=now)
    return view


@router.post(
    "/firms/{firm_id}/assignments/{assignment_id}/accept",
    name="assignments.accept",
    dependencies=[authorize("assignments.accept")],
)
def accept_assignment(
    firm_id: FirmIdPath,
    assignment_id: DbId,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    services: ServicesDep,
    now: ClockDep,
    body: Annotated[AssignmentAnswer | None, Body()] = None,
) -> AssignmentForPartner:
    """Accept a proposed assignment: the partner commits the hours. Errors: 404 (not on
    this firm's machines), 409 (not proposed, or the request is closed)."""
    return _answer(
        firm_id,
        assignment_id,
        decision=AssignmentStatus.ACCEPTED,
        note=body.note if body is not None else "",
        request=request,
        session=session,
        principal=principal,
        services=services,
        now=now,
    )


@router.post(
    "/firms/{firm_id}/assignments/{assignment_id}/decline",
    name="assignments.decline",
    dependencies=[authorize("assignments.decline")],
)
def decline_assignment(
    firm_id: FirmIdPath,
    assignment_id: DbId,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    services: ServicesDep,
    now: ClockDep,
    body: Annotated[AssignmentAnswer | None, Body()] = None,
) -> AssignmentForPartner:
    """Decline a proposed assignment; the request is re-planned at once without this
    machine for this job (new revision). Errors: 404, 409 as for accept."""
    return _answer(
        firm_id,
        assignment_id,
        decision=AssignmentStatus.DECLINED,
        note=body.note if body is not None else "",
        request=request,
        session=session,
        principal=principal,
        services=services,
        now=now,
    )
