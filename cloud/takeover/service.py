"""Planning and re-planning takeover requests against the registry.

A plan is computed from the request's :class:`~renkei.cloud.takeover.fleet.Fleet`
(:func:`~renkei.cloud.takeover.fleet.load_fleet`: plannable and masked machines, zones,
spare hours).

Each plan run (:func:`plan_demands`) plans *exact* part volumes (see
:mod:`renkei.cloud.takeover.convert`): the whole need at creation (:func:`plan_initial`), the
remaining need of every job at a re-plan (:func:`replan`). A re-plan keeps accepted and
proposed assignments; a job that still has any is *pinned* to their site (its mold goes
there, and a mold is in one place), and machines that declined a job are excluded for
that job (planned with 0 spare hours, so the reason reads ``no_capacity``). Jobs are
planned together by one :func:`renkei.cloud.planner.plan_takeover` call per distinct (pin,
exclusions) group, sharing the spare hours in that order.

Unmet reasons are the planner's (``no_compatible_machine``, ``no_capacity``,
``not_shared``, ``only_inside_zone``), except that a pinned job's
``no_compatible_machine`` reads ``no_capacity``: its mold already runs at that site, so
what is missing is capacity there. Each unmet entry also stores the planner's
explanation (failed rules and numbers of the nearest candidates), narrowed by
:mod:`renkei.cloud.takeover.disclose` to what the requester may see.

A drill (``TakeoverRequest.drill``) is planned the same way, but its new assignments get
status ``drill`` instead of ``proposed`` (:func:`live_statuses`): never offered, holding
no hours (:func:`~renkei.cloud.takeover.fleet.load_fleet` holds only ``proposed`` ones).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from renkei.cloud import notify
from renkei.cloud.planner import (
    PlanContext,
    plan_takeover,
)
from renkei.cloud.planner.explain import Explanation
from renkei.cloud.registry import (
    AssignmentStatus,
    Mold,
    TakeoverAssignment,
    TakeoverJob,
    TakeoverRequest,
)
from renkei.cloud.takeover.convert import (
    MASK_SUFFIX,
    exact_horizon,
    mold_spec,
    planner_job,
)
from renkei.cloud.takeover.disclose import disclose, with_classes
from renkei.cloud.takeover.fleet import Fleet, load_fleet

if TYPE_CHECKING:
    from renkei.cloud.capacity.context import CapacityContext

__all__ = [
    "LIVE",
    "Demand",
    "Fleet",
    "Outcome",
    "Placement",
    "PlanRun",
    "live_statuses",
    "load_fleet",
    "plan_demands",
    "plan_initial",
    "refresh_summary",
    "replan",
]

LIVE = (AssignmentStatus.PROPOSED, AssignmentStatus.ACCEPTED)
"""Assignment statuses that hold a partner's hours and cover volume."""


def live_statuses(request: TakeoverRequest) -> tuple[AssignmentStatus, ...]:
    """The statuses that cover volume in ``request``: :data:`LIVE`, or ``drill`` in a
    drill (whose assignments are never offered and hold no hours)."""
    return (AssignmentStatus.DRILL,) if request.drill else LIVE


@dataclass(frozen=True, slots=True, kw_only=True)
class Demand:
    """Parts of one job to plan in one run.

    Attributes:
        pin_site_id: only machines of this site may take it (its mold goes there).
        excluded_machine_ids: machines that declined this job.
    """

    job_id: str
    part_id: str
    mold_id: str
    resin: str | None
    certifications: tuple[str, ...]
    parts: int
    pin_site_id: str | None = None
    excluded_machine_ids: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True, kw_only=True)
class Placement:
    """Hours and parts of one job on one machine (a new assignment)."""

    job_id: str
    machine_id: str
    firm_id: str
    site_id: str
    hours: float
    parts: int
    distance_km: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """What a run did for one demand: parts newly covered, the rest and why (with the
    failed rules and numbers of the nearest candidates the requester may see)."""

    job_id: str
    covered_parts: int
    unmet_parts: int
    reason: str | None
    explanation: Explanation | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanRun:
    """Result of :func:`plan_demands`."""

    placements: tuple[Placement, ...]
    outcomes: Mapping[str, Outcome]
    time_s: float
    exact: bool
    planner_calls: int


def plan_demands(fleet: Fleet, demands: Sequence[Demand], molds: Mapping[str, Mold]) -> PlanRun:
    """Plan ``demands`` on ``fleet`` (one planner call per (pin, exclusions) group).

    ``fleet.spare_h`` is reduced by every placement, so later groups (and the caller)
    see what is left.

    Args:
        molds: the registry molds the demands name, by id.

    Raises:
        renkei.cloud.planner.PlannerInputError: inconsistent inputs (e.g. two demands of one
            group naming one mold).
    """
    t0 = time.perf_counter()
    groups: dict[tuple[str | None, frozenset[str]], list[Demand]] = defaultdict(list)
    for d in demands:
        if d.parts > 0:
            groups[d.pin_site_id, d.excluded_machine_ids].append(d)
    placements: list[Placement] = []
    outcomes: dict[str, Outcome] = {}
    exact, calls = True, 0
    horizon = exact_horizon(fleet.window[0])
    for (pin, excluded), group in groups.items():
        specs = fleet.specs if pin is None else [s for s in fleet.specs if s.site_id == pin]
        if not specs:
            for d in group:
                reason = "no_capacity" if pin is not None else "no_compatible_machine"
                outcomes[d.job_id] = Outcome(
                    job_id=d.job_id, covered_parts=0, unmet_parts=d.parts, reason=reason
                )
            continue
        spare = {
            s.machine_id: 0.0 if s.machine_id in excluded else fleet.spare_h.get(s.machine_id, 0.0)
            for s in specs
        }
        jobs = [
            planner_job(
                job_id=d.job_id,
                part_id=d.part_id,
                mold_id=d.mold_id,
                parts=d.parts,
                required_certifications=d.certifications,
                horizon_start=horizon[0],
            )
            for d in group
        ]
        mold_specs = [
            mold_spec(molds[d.mold_id], origin=fleet.origin, resin=d.resin) for d in group
        ]
        context = PlanContext(
            requester_firm_id=fleet.requester_firm_id,
            origin_site_id=fleet.origin.id,
            origin_lat_deg=fleet.origin.latitude_deg,
            origin_lon_deg=fleet.origin.longitude_deg,
            horizon_start=horizon[0],
            horizon_end=horizon[1],
            sharing_firm_ids=fleet.sharing_firm_ids,
            zones=fleet.zones,
            disrupted_site_ids=fleet.disrupted_site_ids,
            solver=fleet.solver,
        )
        plan = plan_takeover(
            jobs=jobs, molds=mold_specs, machines=specs, spare_hours=spare, context=context
        )
        calls += 1
        exact = exact and plan.stats.exact
        for a in plan.allocations:
            if a.firm_id.endswith(MASK_SUFFIX):  # pragma: no cover - never eligible
                continue
            placements.append(
                Placement(
                    job_id=a.job_id,
                    machine_id=a.machine_id,
                    firm_id=a.firm_id,
                    site_id=a.site_id,
                    hours=a.hours,
                    parts=a.parts,
                    distance_km=a.distance_km,
                )
            )
            fleet.spare_h[a.machine_id] = max(0.0, fleet.spare_h.get(a.machine_id, 0.0) - a.hours)
        for o in plan.jobs:
            why = None if o.unmet is None else str(o.unmet.reason)
            if pin is not None and why == "no_compatible_machine":
                why = "no_capacity"
            unmet = o.needed_parts - o.covered_parts
            why_unmet = (why or "no_capacity") if unmet > 0 else None
            outcomes[o.job_id] = Outcome(
                job_id=o.job_id,
                covered_parts=o.covered_parts,
                unmet_parts=unmet,
                reason=why_unmet,
                explanation=_explained(fleet, o.unmet.explanation, why_unmet)
                if o.unmet is not None and why_unmet is not None
                else None,
            )
    return PlanRun(
        placements=tuple(placements),
        outcomes=outcomes,
        time_s=time.perf_counter() - t0,
        exact=exact,
        planner_calls=calls,
    )


def _explained(fleet: Fleet, e: Explanation | None, reason: str) -> Explanation | None:
    """The planner's explanation as the requester may see it (:mod:`.disclose`)."""
    if e is None:
        return None
    return disclose(
        with_classes(replace(e, reason=reason), fleet.machine_class),
        requester_firm_id=fleet.requester_firm_id,
        sharing_firm_ids=fleet.sharing_firm_ids,
        detail_firm_ids=fleet.detail_firm_ids,
    )


def _molds(session: Session, jobs: Sequence[TakeoverJob]) -> dict[str, Mold]:
    ids = {j.mold_id for j in jobs}
    return {m.id: m for m in session.scalars(select(Mold).where(Mold.id.in_(ids)))}


def _apply(request: TakeoverRequest, fleet: Fleet, run: PlanRun, *, now: datetime) -> None:
    """Store a run: new proposed assignments (current revision), coverage, summary."""
    for p in run.placements:
        if p.parts <= 0:
            continue  # a sliver of hours that makes no whole part
        request.assignments.append(
            TakeoverAssignment(
                job_id=p.job_id,
                partner_firm_id=p.firm_id,
                site_id=p.site_id,
                machine_id=p.machine_id,
                hours=p.hours,
                parts=p.parts,
                transport_km=p.distance_km,
                revision=request.revision,
                status=AssignmentStatus.DRILL if request.drill else AssignmentStatus.PROPOSED,
            )
        )
    covered: dict[str, int] = defaultdict(int)
    for a in request.assignments:
        if a.status in live_statuses(request):
            covered[a.job_id] += a.parts
    for job in request.jobs:
        job.covered_parts = covered[job.job_id]
        out = run.outcomes.get(job.job_id)
        rest = max(0, job.needed_parts - job.covered_parts)
        if rest == 0:
            job.unmet = []
        elif out is not None and out.reason is not None:
            job.unmet = [{"parts": rest, "reason": out.reason}]
            if out.explanation is not None:
                job.unmet[0]["explanation"] = out.explanation.to_json()
        # else: not re-planned in this run (keeps its previous reason)
    refresh_summary(
        request,
        plan={
            "revision": request.revision,
            "planned_at": now.isoformat().replace("+00:00", "Z"),
            "time_s": round(run.time_s, 3),
            "exact": run.exact,
            "planner_calls": run.planner_calls,
            "shared_machines": fleet.shared_machines,
            "skipped_machines": fleet.skipped_machines,
        },
    )


def plan_initial(
    capacity: CapacityContext, session: Session, request: TakeoverRequest, *, now: datetime
) -> None:
    """Plan a new request's jobs in full (revision 1): proposed assignments, coverage,
    unmet reasons and summary. ``request.jobs`` must carry ``needed_parts``."""
    fleet = load_fleet(capacity, session, request, now=now)
    demands = [
        Demand(
            job_id=j.job_id,
            part_id=j.part_id,
            mold_id=j.mold_id,
            resin=j.resin,
            certifications=tuple(j.required_certifications),
            parts=j.needed_parts,
        )
        for j in request.jobs
    ]
    run = plan_demands(fleet, demands, _molds(session, request.jobs))
    _apply(request, fleet, run, now=now)
    _notify_offers(session, request)


def replan(
    capacity: CapacityContext, session: Session, request: TakeoverRequest, *, now: datetime
) -> None:
    """Re-plan every job's remaining volume (needed − live assignments) as a new revision.

    Accepted and proposed assignments stay; declined machines are excluded per job; jobs
    with live assignments are pinned to their site (module docstring). Increments
    ``request.revision``; the new assignments carry it.
    """
    request.revision += 1
    by_job: dict[str, list[TakeoverAssignment]] = defaultdict(list)
    for a in request.assignments:
        by_job[a.job_id].append(a)
    demands = []
    for j in request.jobs:
        mine = by_job[j.job_id]
        live = [a for a in mine if a.status in live_statuses(request)]
        accepted = [a for a in live if a.status is AssignmentStatus.ACCEPTED]
        pin = (accepted or live)[0].site_id if live else None
        demands.append(
            Demand(
                job_id=j.job_id,
                part_id=j.part_id,
                mold_id=j.mold_id,
                resin=j.resin,
                certifications=tuple(j.required_certifications),
                parts=max(0, j.needed_parts - sum(a.parts for a in live)),
                pin_site_id=pin,
                excluded_machine_ids=frozenset(
                    a.machine_id for a in mine if a.status is AssignmentStatus.DECLINED
                ),
            )
        )
    fleet = load_fleet(capacity, session, request, now=now)
    run = plan_demands(fleet, demands, _molds(session, request.jobs))
    _apply(request, fleet, run, now=now)
    _notify_offers(session, request)


def _notify_offers(session: Session, request: TakeoverRequest) -> None:
    """Tell partners of this revision's new proposed assignments (after commit)."""
    new = [a for a in request.assignments if a.revision == request.revision]
    notify.offered(session, request, new)


def refresh_summary(request: TakeoverRequest, *, plan: dict[str, Any] | None = None) -> None:
    """Recompute ``request.summary`` from its jobs and assignments.

    Shape::

        {"needed_parts", "covered_parts", "accepted_parts", "unmet_parts": int,
         "coverage": covered / needed (1.0 if nothing is needed),
         "unmet_parts_by_reason": {reason: parts},
         "transport_km": km the molds travel to the sites of live assignments,
         "partner_firms": number of other firms with live assignments,
         "assignments": {status: count},
         "plan": {"revision", "planned_at", "time_s", "exact", "planner_calls",
                  "shared_machines", "skipped_machines"}}   # the latest plan run

    Args:
        plan: statistics of a plan run that just happened; ``None`` keeps the previous.
    """
    needed = sum(j.needed_parts for j in request.jobs)
    covered = sum(j.covered_parts for j in request.jobs)
    accepted = sum(a.parts for a in request.assignments if a.status is AssignmentStatus.ACCEPTED)
    by_reason: dict[str, int] = defaultdict(int)
    for j in request.jobs:
        for u in j.unmet:
            by_reason[str(u["reason"])] += int(u["parts"])
    counts: dict[str, int] = {s.value: 0 for s in AssignmentStatus}
    moves: dict[tuple[str, str], float] = {}
    partners: set[str] = set()
    for a in request.assignments:
        counts[a.status.value] += 1
        if a.status in live_statuses(request):
            moves[a.job_id, a.site_id] = a.transport_km
            if a.partner_firm_id != request.firm_id:
                partners.add(a.partner_firm_id)
    previous = (request.summary or {}).get("plan", {})
    request.summary = {
        "needed_parts": needed,
        "covered_parts": covered,
        "accepted_parts": accepted,
        "unmet_parts": max(0, needed - covered),
        "coverage": 1.0 if needed == 0 else round(covered / needed, 6),
        "unmet_parts_by_reason": dict(sorted(by_reason.items())),
        "transport_km": round(sum(moves.values()), 3),
        "partner_firms": len(partners),
        "assignments": counts,
        "plan": plan if plan is not None else previous,
    }
