"""``GET /regions`` and ``GET /regions/{region}``: k-anonymous regional aggregates for
supporters (municipality, chamber of commerce).

Who is counted, what is shown and the k-anonymity rule (k = ``settings.supporter_min_firms``,
default 3) are in :mod:`renkei.cloud.capacity.regions`. Every contributing firm of a region
shown gets one audit event (``regional.aggregate``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from sqlalchemy.orm import Session

from renkei.cloud.api import audit
from renkei.cloud.api.deps import (
    AppState,
    ClockDep,
    PrincipalDep,
    ServicesDep,
    SessionDep,
    authorize,
)
from renkei.cloud.capacity.regions import RegionShown, RegionView, regional_views
from renkei.cloud.registry import Firm, Principal, Role

router = APIRouter(tags=["regions"])


def _viewer_region(session: Session, principal: Principal) -> str | None:
    if principal.role is Role.ADMIN:
        return None
    firm = session.get(Firm, principal.firm_id)
    return firm.region if firm is not None else ""


def _aggregate(
    session: Session,
    state: AppState,
    principal: Principal,
    now: datetime,
    *,
    only: str | None,
    with_weeks: bool,
) -> list[RegionShown]:
    return regional_views(
        state.capacity,
        session,
        viewer_region=_viewer_region(session, principal),
        k=state.settings.supporter_min_firms,
        now=now,
        only=only,
        with_weeks=with_weeks,
    )


def _audit(
    session: Session,
    principal: Principal,
    request: Request,
    now: datetime,
    shown: list[RegionShown],
) -> None:
    for item in shown:
        for firm, processes in item.contributors.items():
            detail: dict[str, Any] = {
                "region": item.view.region,
                "processes": processes,
                "k": item.view.k,
            }
            audit.record(
                session,
                principal=principal,
                owner_firm_id=firm,
                action="regional.aggregate",
                resource=request.url.path,
                detail=detail,
                at=now,
            )


@router.get(
    "/regions",
    name="regions.list",
    dependencies=[authorize("regions.list")],
    response_model_exclude_none=True,
)
def list_regions(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    state: ServicesDep,
    now: ClockDep,
) -> list[RegionView]:
    """Every region with at least one contributing firm: counts and spare hours per process
    over the horizon (no weekly series; see ``GET /regions/{region}``), k-anonymous."""
    shown = _aggregate(session, state, principal, now, only=None, with_weeks=False)
    _audit(session, principal, request, now, shown)
    return [s.view for s in shown]


@router.get(
    "/regions/{region}",
    name="regions.get",
    dependencies=[authorize("regions.get")],
    response_model_exclude_none=True,
)
def get_region(
    region: Annotated[
        str,
        Path(
            description="Region name as in `FirmPublic.region`; a region without firms that "
            "grant the caller's region is answered as suppressed, not as unknown.",
            examples=["kansai"],
        ),
    ],
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    state: ServicesDep,
    now: ClockDep,
) -> RegionView:
    """One region with weekly spare hours per process, k-anonymous (a region without
    contributing firms is reported as suppressed, not as unknown)."""
    shown = _aggregate(session, state, principal, now, only=region, with_weeks=True)
    _audit(session, principal, request, now, shown)
    return shown[0].view
