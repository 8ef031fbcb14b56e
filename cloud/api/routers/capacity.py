"""Spare capacity: a firm's own (per machine and class), its Catena-X DCM export, and the
search over partners' shared capacity (rules in :mod:`renkei.cloud.capacity.search`).

All hours are hours (h); dates are site-local (``settings.timezone``, default Asia/Tokyo).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import numpy as np
import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select

from renkei.cloud.api import audit
from renkei.cloud.api.deps import (
    AppState,
    ClockDep,
    PrincipalDep,
    ServicesDep,
    SessionDep,
    authorize,
)
from renkei.cloud.api.errors import Invalid, NotFound
from renkei.cloud.api.params import FirmIdPath
from renkei.cloud.api.schemas.capacity import (
    ClassCapacity,
    ClassPoint,
    MachineCapacity,
    OwnCapacity,
    PeriodHours,
    SearchResponse,
)
from renkei.cloud.capacity import WeekBasedCapacityGroup, rollup, to_catenax_json
from renkei.cloud.capacity.policy import machine_class_id
from renkei.cloud.capacity.search import SearchQuery, search
from renkei.cloud.capacity.service import spare_for
from renkei.cloud.registry import Firm, Line, Machine

router = APIRouter(tags=["capacity"])

#: ``start`` of the own-capacity view may be at most this many days from today.
MAX_OFFSET_DAYS = 731


# ------------------------------------------------------------------ helpers


def _today(state: AppState, now: Any) -> date:
    result: date = now.astimezone(ZoneInfo(state.settings.timezone)).date()
    return result


def _periods(start: date, days: int, granularity: str) -> tuple[list[int], int]:
    """Period start columns and how many to report (the rule of renkei.cloud.capacity.rollup)."""
    if granularity == "day":
        return list(range(days)), days
    offsets = [0] + [j for j in range(1, days) if (start + timedelta(j)).weekday() == 0]
    last = start + timedelta(days - 1)
    return offsets, len(offsets) if last.weekday() == 6 else len(offsets) - 1


# ------------------------------------------------------------------ own capacity


@router.get(
    "/firms/{firm_id}/capacity", name="capacity.own", dependencies=[authorize("capacity.own")]
)
def own_capacity(
    firm_id: FirmIdPath,
    session: SessionDep,
    state: ServicesDep,
    now: ClockDep,
    granularity: Annotated[
        Literal["day", "week"],
        Query(description="`day`: one point per date; `week`: one point per ISO week."),
    ] = "week",
    start: Annotated[
        date | None,
        Query(
            description="First day of the range (inclusive), site-local YYYY-MM-DD, within "
            "731 days of today; default today."
        ),
    ] = None,
    days: Annotated[
        int | None,
        Query(
            ge=1,
            le=366,
            description="Length of the range in days ([start, start + days), end exclusive); "
            "default the capacity horizon (`RENKEI_API_HORIZON_DAYS`).",
        ),
    ] = None,
) -> OwnCapacity:
    """Available, booked, expected-downtime and spare hours of every machine of the firm
    per day or ISO week, and the per-capability-class roll-up
    (:func:`renkei.cloud.capacity.rollup`).

    Weeks follow the roll-up rule: a first partial week counts from ``start``; a trailing
    week the horizon does not cover to its Sunday is left out.
    """
    if session.get(Firm, firm_id) is None:
        raise NotFound(f"no firm {firm_id!r}")
    today = _today(state, now)
    start = start or today
    days = days or state.settings.horizon_days
    if abs((start - today).days) > MAX_OFFSET_DAYS:
        raise Invalid(
            f"query.start: must be within {MAX_OFFSET_DAYS} days of today ({today})",
            detail=[{"loc": "query.start", "msg": f"within {MAX_OFFSET_DAYS} days of {today}"}],
        )
    machines = session.execute(
        select(Machine, Line.site_id)
        .join(Line, Machine.line_id == Line.id)
        .where(Machine.firm_id == firm_id)
        .order_by(Machine.id)
    ).all()
    classes = {m.id: machine_class_id(m) for m, _ in machines}
    sp = spare_for(state.capacity, session, machine_ids=list(classes), start=start, days=days)
    series = rollup(sp, classes, granularity=granularity)
    offsets, keep = _periods(start, days, granularity)
    bounds = offsets[:keep] + [offsets[keep] if keep < len(offsets) else days]
    period_starts = [start + timedelta(o) for o in offsets[:keep]]
    if granularity == "week":
        period_starts = [p - timedelta(p.weekday()) for p in period_starts]

    def per_period(values: Any) -> Any:
        if not keep:
            return np.zeros((values.shape[0], 0))
        return np.add.reduceat(values[:, : bounds[-1]], offsets[:keep], axis=1)

    sums = {
        name: np.round(per_period(getattr(sp, name)), 3)
        for name in ("available_h", "booked_h", "downtime_h", "spare_h")
    }
    out_machines = []
    for machine, site_id in machines:
        r = sp.machine_index[machine.id]
        points = [
            PeriodHours(
                period_start=period_starts[p],
                days=bounds[p + 1] - bounds[p],
                available_h=float(sums["available_h"][r, p]),
                booked_h=float(sums["booked_h"][r, p]),
                downtime_h=float(sums["downtime_h"][r, p]),
                spare_h=float(sums["spare_h"][r, p]),
            )
            for p in range(keep)
        ]
        out_machines.append(
            MachineCapacity(
                machine_id=machine.id,
                name=machine.name,
                capability_class=classes[machine.id],
                site_id=site_id,
                availability_ratio=float(sp.availability_ratio[r]),
                ratio_measured=bool(sp.ratio_measured[r]),
                spare_h_total=round(float(sp.spare_h[r, : bounds[-1]].sum()), 3),
                points=points,
            )
        )
    return OwnCapacity(
        firm_id=firm_id,
        start=start,
        days=days,
        granularity=granularity,
        machines=out_machines,
        classes=[
            ClassCapacity(
                capability_class=s.capability_class,
                machines=list(s.machines),
                points=[
                    ClassPoint(
                        period_start=p.period_start,
                        days=p.days,
                        maximum_h=round(p.maximum_h, 3),
                        actual_h=round(p.actual_h, 3),
                    )
                    for p in s.points
                ],
            )
            for s in series.values()
        ],
    )


@router.get(
    "/firms/{firm_id}/capacity/dcm",
    name="capacity.dcm",
    dependencies=[authorize("capacity.dcm")],
    response_model=list[WeekBasedCapacityGroup],
    response_model_by_alias=True,
    response_model_exclude_none=True,
)
def capacity_dcm(
    firm_id: FirmIdPath,
    session: SessionDep,
    state: ServicesDep,
    now: ClockDep,
    customer_bpnl: Annotated[
        str,
        Query(
            pattern=r"^BPNL[a-zA-Z0-9]{12}$",
            description="Catena-X Business Partner Number (legal entity) of the customer the "
            "capacity is offered to (`BPNL` + 12 characters).",
            examples=["BPNL000000000001"],
        ),
    ],
) -> JSONResponse:
    """Catena-X CX-0128 ``WeekBasedCapacityGroup`` documents, one per capability class,
    for the horizon from today (ISO weeks; hours; supplier = the firm's BPNL).

    Raises:
        Invalid (422): the firm has no BPNL (set it with ``PATCH /firms/{firm_id}``).
    """
    firm = session.get(Firm, firm_id)
    if firm is None:
        raise NotFound(f"no firm {firm_id!r}")
    if not firm.bpnl:
        raise Invalid(
            f"firm {firm_id!r} has no BPNL (Catena-X business partner number); set it with "
            f'PATCH /firms/{firm_id} {{"bpnl": "BPNL..."}} before exporting DCM capacity',
            detail=[{"loc": "firm.bpnl", "msg": "required for a DCM export"}],
        )
    machines = session.scalars(select(Machine).where(Machine.firm_id == firm_id)).all()
    classes = {m.id: machine_class_id(m) for m in machines}
    start = _today(state, now)
    sp = spare_for(
        state.capacity,
        session,
        machine_ids=list(classes),
        start=start,
        days=state.settings.horizon_days,
    )
    docs = [
        to_catenax_json(s, supplier=firm.bpnl, customer=customer_bpnl, changed_at=now)
        for s in rollup(sp, classes, granularity="week").values()
    ]
    return JSONResponse(docs)


# ------------------------------------------------------------------ partner search


@router.get(
    "/capacity/search",
    name="capacity.search",
    dependencies=[authorize("capacity.search")],
    response_model=SearchResponse,
)
def search_capacity(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    state: ServicesDep,
    now: ClockDep,
    process: Annotated[
        str | None,
        Query(
            max_length=64,
            description="Only machines of this process: `injection_molding`, `press` or "
            "`machining`.",
        ),
    ] = None,
    min_clamp_force_kN: Annotated[
        float | None, Query(ge=0, description="Clamp force at least this (kN, inclusive).")
    ] = None,
    max_clamp_force_kN: Annotated[
        float | None, Query(ge=0, description="Clamp force at most this (kN, inclusive).")
    ] = None,
    min_tie_bar_h_mm: Annotated[
        float | None,
        Query(ge=0, description="Horizontal tie-bar clearance at least this (mm, inclusive)."),
    ] = None,
    min_tie_bar_v_mm: Annotated[
        float | None,
        Query(ge=0, description="Vertical tie-bar clearance at least this (mm, inclusive)."),
    ] = None,
    min_mold_height_mm: Annotated[
        float | None,
        Query(
            ge=0,
            description="Mold height to fit (mm): the machine's maximum mold height is at "
            "least this (inclusive).",
        ),
    ] = None,
    max_mold_height_mm: Annotated[
        float | None,
        Query(
            ge=0,
            description="Mold height to fit (mm): the machine's minimum mold height is at "
            "most this (inclusive).",
        ),
    ] = None,
    min_shot_capacity_g: Annotated[
        float | None, Query(ge=0, description="Shot capacity at least this (g, inclusive).")
    ] = None,
    resin: Annotated[
        str | None,
        Query(
            max_length=32,
            description="The machine's site processes this resin (case, spaces, `-` and `_` "
            "ignored).",
            examples=["PA66-GF30"],
        ),
    ] = None,
    certification: Annotated[
        str | None,
        Query(
            max_length=64,
            description="The machine's site holds this certification (case, spaces, `-` "
            "and `_` ignored).",
            examples=["IATF16949"],
        ),
    ] = None,
    region: Annotated[
        str | None,
        Query(
            max_length=64,
            description="The machine's site is in this region (exact).",
            examples=["kansai"],
        ),
    ] = None,
    start: Annotated[
        date | None,
        Query(
            description="First day of the window (inclusive), site-local YYYY-MM-DD; not "
            "before today; default today."
        ),
    ] = None,
    end: Annotated[
        date | None,
        Query(
            description="End of the window (exclusive), after `start` and not after today + "
            "horizon; default start + 28 days (capped at the horizon end)."
        ),
    ] = None,
    min_spare_h: Annotated[
        float,
        Query(
            ge=0,
            description="Only class groups (or, with machine detail, machines) with at least "
            "this many spare hours over the window (h, inclusive); 0 = no minimum.",
        ),
    ] = 0.0,
    limit: Annotated[
        int,
        Query(ge=1, le=500, description="Most firms returned (those with most spare hours)."),
    ] = 50,
) -> Response:
    """Spare hours of partner firms whose sharing policy opens them to the caller.

    Results are per firm (most spare hours first), with per-class points at the firm's
    shared granularity and, only if shared, per-machine detail. Privacy rules (whole class
    groups without machine detail, whole ISO weeks at week granularity) are documented in
    :mod:`renkei.cloud.capacity.search`. Each firm in the response gets one audit event.

    Raises:
        Invalid (422): ``start`` before today, ``end`` not after ``start`` or beyond the
            horizon (today + ``horizon_days``).
    """
    today = _today(state, now)
    horizon_end = today + timedelta(days=state.settings.horizon_days)
    start = start or today
    problems = []
    if start < today:
        problems.append({"loc": "query.start", "msg": f"must not be before today ({today})"})
    if start >= horizon_end:
        problems.append(
            {"loc": "query.start", "msg": f"must be before the horizon end ({horizon_end})"}
        )
        start = today
    end = end or min(start + timedelta(days=28), horizon_end)
    if end <= start:
        problems.append({"loc": "query.end", "msg": f"must be after start ({start})"})
    if end > horizon_end:
        problems.append(
            {"loc": "query.end", "msg": f"must not be after the horizon end ({horizon_end})"}
        )
    if problems:
        raise Invalid(f"{problems[0]['loc']}: {problems[0]['msg']}", detail=problems)
    query = SearchQuery(
        process=process,
        min_clamp_force_kN=min_clamp_force_kN,
        max_clamp_force_kN=max_clamp_force_kN,
        min_tie_bar_h_mm=min_tie_bar_h_mm,
        min_tie_bar_v_mm=min_tie_bar_v_mm,
        min_mold_height_mm=min_mold_height_mm,
        max_mold_height_mm=max_mold_height_mm,
        min_shot_capacity_g=min_shot_capacity_g,
        resin=resin,
        certification=certification,
        region=region,
        start=start,
        end=end,
        min_spare_h=min_spare_h,
        limit=limit,
    )
    service = state.capacity.index
    index = service.current(now=now)
    views = state.capacity.views.views(
        session,
        viewer_firm_id=principal.firm_id,
        now=now,
        grants_version=service.log.grants_version,
    )
    result = search(
        index,
        views,
        query,
        viewer_firm_id=principal.firm_id,
        today=today,
        horizon_days=state.settings.horizon_days,
    )
    for hit in result.hits:
        audit.record(
            session,
            principal=principal,
            owner_firm_id=hit.firm_id,
            action="capacity.search",
            resource=request.url.path,
            detail=hit.audit_detail(query),
            at=now,
        )
    return Response(orjson.dumps(result.payload), media_type="application/json")
