"""Disaster drills: turning a drill takeover request into a real one.

- ``POST /firms/{firm_id}/takeovers/{id}/promote`` (body ``{"id"?: str}``): a new real
  request with the drill's jobs, origin, window, zone radius and disruption, planned on
  current data by the same path as ``POST /firms/{firm_id}/takeovers`` (its proposals are
  offered to the partners); the drill is closed and records ``promoted_to``. 201 with the
  new request.

A drill itself is created with ``"drill": true`` on create and re-planned with the
ordinary re-plan (:mod:`renkei.cloud.api.routers.takeovers`, which describes drills).
"""

from __future__ import annotations

import logging
import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Request

from renkei.cloud.api.deps import ClockDep, PrincipalDep, ServicesDep, SessionDep, authorize
from renkei.cloud.api.errors import Conflict
from renkei.cloud.api.params import FirmIdPath, TakeoverIdPath
from renkei.cloud.api.routers.takeovers import get_request, require_open, takeover_public
from renkei.cloud.api.schemas.takeovers import TakeoverPromote, TakeoverPublic
from renkei.cloud.registry import (
    Disruption,
    DisruptionStatus,
    Mold,
    TakeoverRequest,
    TakeoverStatus,
)
from renkei.cloud.takeover import plan_initial
from renkei.cloud.takeover.convert import new_job

router = APIRouter(tags=["takeovers"])
log = logging.getLogger(__name__)


@router.post(
    "/firms/{firm_id}/takeovers/{request_id}/promote",
    name="takeovers.promote",
    status_code=201,
    dependencies=[authorize("takeovers.promote")],
)
def promote_takeover(
    firm_id: FirmIdPath,
    request_id: TakeoverIdPath,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    services: ServicesDep,
    now: ClockDep,
    body: Annotated[TakeoverPromote | None, Body()] = None,
) -> TakeoverPublic:
    """Turn a drill into a real request: a new request with the drill's jobs, origin,
    window, zone and disruption, planned on current data exactly as a new request (its
    proposals are offered to the partners); the drill is closed with ``promoted_to``.
    Answers the new request (201).

    Errors: 404; 409 if the request is not a drill, is closed or already promoted, the
    new ``id`` exists, or the drill's disruption is no longer ``confirmed``.
    """
    drill = get_request(session, firm_id, request_id, lock=True)
    if not drill.drill:
        raise Conflict(f"takeover request {drill.id!r} is not a drill", detail={"id": drill.id})
    if drill.promoted_to is not None:
        raise Conflict(
            f"drill {drill.id!r} was already promoted to {drill.promoted_to!r}",
            detail={"id": drill.id, "promoted_to": drill.promoted_to},
        )
    require_open(drill)
    new_id = body.id if body is not None and body.id is not None else None
    if new_id is not None and session.get(TakeoverRequest, new_id) is not None:
        raise Conflict(f"takeover request {new_id!r} exists")
    if drill.disruption_id is not None:
        disruption = session.get(Disruption, drill.disruption_id)
        if disruption is not None and disruption.status is not DisruptionStatus.CONFIRMED:
            raise Conflict(
                f"disruption {disruption.id} is {disruption.status.value}, not confirmed",
                detail={"id": disruption.id, "status": disruption.status.value},
            )
    jobs = []
    for j in drill.jobs:
        mold = session.get(Mold, j.mold_id)
        assert mold is not None  # FK (cascade)
        jobs.append(
            new_job(j, mold=mold, window_start=drill.window_start, window_end=drill.window_end)
        )
    req = TakeoverRequest(
        id=new_id or f"tko-{now:%Y%m%d}-{uuid.uuid4().hex[:8]}",
        firm_id=firm_id,
        disruption_id=drill.disruption_id,
        origin_site_id=drill.origin_site_id,
        window_start=drill.window_start,
        window_end=drill.window_end,
        zone_radius_km=drill.zone_radius_km,
        status=TakeoverStatus.OPEN,
        revision=1,
        summary={},
        created_at=now,
        created_by=principal.key_id,
        jobs=jobs,
        drill=False,
    )
    session.add(req)
    session.flush()
    plan_initial(services.capacity, session, req, now=now)
    drill.status = TakeoverStatus.CLOSED
    drill.promoted_to = req.id
    session.flush()
    log.info(
        "takeover drill %s of firm %s promoted to %s by key %s",
        drill.id,
        firm_id,
        req.id,
        principal.key_id,
    )
    return takeover_public(session, req, principal=principal, now=now, resource=request.url.path)
