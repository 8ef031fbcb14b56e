"""The planner's world for one takeover request: machines, sharing, zones, spare hours.

A plan is computed from (:func:`load_fleet`):

- **machines**: every registry machine, converted by :mod:`renkei.cloud.takeover.convert`. The
  requester's own machines and those of firms whose sharing policy opens the machine's
  capability class to the requester (:func:`renkei.cloud.capacity.policy.views_for`) can be planned
  on; every other machine is passed masked, so it only counts for the ``not_shared``
  reason. Rows the planner cannot use (e.g. a press without a die-height range) are
  skipped and counted (``summary.plan.skipped_machines``).
- **zones**: the request's zone (origin site + ``zone_radius_km``) and the zone of every
  *confirmed* disruption (of any firm) overlapping the request window; those sites are
  stopped too.
- **spare hours** per machine over the window (:func:`renkei.cloud.capacity.service.spare_for`)
  minus the hours of live (proposed or accepted) assignments of every *open* takeover
  request on the same machine, pro-rated to the days its window shares with this one
  (this request's own live assignments count in full).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from datetime import time as dtime
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from renkei.cloud.capacity.policy import machine_class_id, views_for
from renkei.cloud.capacity.service import spare_for
from renkei.cloud.planner import DisruptionZone, MachineSpec, PlannerInputError, SolverSettings
from renkei.cloud.registry import (
    AssignmentStatus,
    Disruption,
    DisruptionStatus,
    Line,
    Machine,
    Site,
    TakeoverAssignment,
    TakeoverRequest,
    TakeoverStatus,
)
from renkei.cloud.takeover.convert import machine_spec, masked_id, prorated_hours, zone

if TYPE_CHECKING:
    from renkei.cloud.capacity.context import CapacityContext

__all__ = ["Fleet", "load_fleet"]


@dataclass(slots=True, kw_only=True)
class Fleet:
    """The planner's world for one request (see the module docstring).

    Attributes:
        specs: every usable machine (masked ones included).
        spare_h: spare hours left in the window per plannable machine; updated as runs
            place volume.
        shared_machines: plannable machines (own + shared); skipped_machines: registry
            rows the planner cannot use.
        detail_firm_ids: sharing firms whose view for the requester has machine detail
            (the requester sees their machine ids and figures in explanations).
        machine_class: capability class id of every plannable machine.
    """

    requester_firm_id: str
    origin: Site
    window: tuple[date, date]
    specs: list[MachineSpec]
    spare_h: dict[str, float]
    sharing_firm_ids: frozenset[str]
    zones: tuple[DisruptionZone, ...]
    disrupted_site_ids: frozenset[str]
    shared_machines: int = 0
    skipped_machines: int = 0
    solver: SolverSettings = field(default_factory=SolverSettings)
    detail_firm_ids: frozenset[str] = frozenset()
    machine_class: dict[str, str] = field(default_factory=dict)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, dtime(0), tzinfo=UTC)


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def load_fleet(
    capacity: CapacityContext, session: Session, request: TakeoverRequest, *, now: datetime
) -> Fleet:
    """Machines, spare hours, sharing and zones for planning ``request`` (module docs).

    ``capacity`` gives the spare hours (:func:`renkei.cloud.capacity.service.spare_for`).
    """

    origin = session.get(Site, request.origin_site_id)
    if origin is None:  # pragma: no cover - FK
        raise PlannerInputError(f"origin site {request.origin_site_id!r} does not exist")
    requester = request.firm_id
    window = (request.window_start, request.window_end)
    views = views_for(session, viewer_firm_id=requester, now=now)
    specs: list[MachineSpec] = []
    plannable: list[str] = []
    classes: dict[str, str] = {}
    skipped = 0
    rows = session.execute(
        select(Machine, Site)
        .join(Line, Machine.line_id == Line.id)
        .join(Site, Line.site_id == Site.id)
        .order_by(Machine.id)
    ).all()
    for machine, site in rows:
        try:
            class_id = machine_class_id(machine)
        except ValueError:
            skipped += 1
            continue
        view = views.get(machine.firm_id)
        shared = machine.firm_id == requester or (view is not None and view.allows(class_id))
        try:
            specs.append(machine_spec(machine, site, masked=not shared))
        except PlannerInputError:
            skipped += 1
            continue
        if shared:
            plannable.append(machine.id)
            classes[machine.id] = class_id
    spare_h: dict[str, float] = {}
    days = (request.window_end - request.window_start).days
    if plannable and days > 0:
        spare = spare_for(
            capacity, session, machine_ids=plannable, start=request.window_start, days=days
        )
        totals = spare.spare_h.sum(axis=1)
        spare_h = {mid: float(totals[i]) for mid, i in spare.machine_index.items()}
        held = session.execute(
            select(TakeoverAssignment, TakeoverRequest)
            .join(TakeoverRequest, TakeoverAssignment.request_id == TakeoverRequest.id)
            .where(TakeoverRequest.status == TakeoverStatus.OPEN)
            # accepted assignments are capacity bookings of the partner by now (the
            # assignments endpoint makes them), which spare_for has already subtracted
            .where(TakeoverAssignment.status == AssignmentStatus.PROPOSED)
            .where(TakeoverAssignment.machine_id.in_(plannable))
        ).all()
        for a, r in held:
            if a.machine_id in spare_h:
                used = prorated_hours(a.hours, of=(r.window_start, r.window_end), within=window)
                spare_h[a.machine_id] = max(0.0, spare_h[a.machine_id] - used)
    zones = [zone(origin, request.zone_radius_km)]
    stopped = {origin.id}
    confirmed = session.execute(
        select(Disruption, Site)
        .join(Site, Disruption.site_id == Site.id)
        .where(Disruption.status == DisruptionStatus.CONFIRMED)
    ).all()
    for d, site in confirmed:
        starts_before_end = _aware(d.start) < _midnight(request.window_end)
        ends_after_start = d.end is None or _aware(d.end) > _midnight(request.window_start)
        if starts_before_end and ends_after_start:
            zones.append(zone(site, d.radius_km))
            stopped.add(site.id)
    return Fleet(
        requester_firm_id=requester,
        origin=origin,
        window=window,
        specs=specs,
        spare_h=spare_h,
        sharing_firm_ids=frozenset(views),
        zones=tuple(zones),
        disrupted_site_ids=frozenset(stopped | {masked_id(s) for s in stopped}),
        shared_machines=len(plannable),
        skipped_machines=skipped,
        detail_firm_ids=frozenset(f for f, v in views.items() if v.machine_detail),
        machine_class=classes,
    )
