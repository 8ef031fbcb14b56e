"""``GET /firms/{firm_id}/gateways``: the last known state of the firm's gateways.

States come from the gateways' retained birth / Last Will messages, written by the
disruption watcher (``renkei cloud watch``, :mod:`renkei.cloud.disruption.watch`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, field_validator
from sqlalchemy import select

from renkei.cloud.api.deps import SessionDep, authorize
from renkei.cloud.disruption import as_utc
from renkei.cloud.registry import GatewayStatus

router = APIRouter(tags=["gateways"])


class GatewayPublic(BaseModel):
    """One gateway's state.

    Attributes:
        online: connected to the broker (birth seen last) or not (Last Will / clean stop).
        changed_at: when ``online`` last changed (UTC): the birth's ``sent_ms``, or when
            the watcher received the offline state.
        birth: the last birth payload (``config_version``, ``agent_version``, ``models``,
            ``sent_ms`` ...); ``{}`` if none was seen.
    """

    model_config = ConfigDict(from_attributes=True)
    firm_id: str
    site_id: str
    gateway_id: str
    online: bool
    changed_at: datetime
    birth: dict[str, Any]

    @field_validator("changed_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return as_utc(value)


@router.get(
    "/firms/{firm_id}/gateways", name="gateways.list", dependencies=[authorize("gateways.list")]
)
def list_gateways(
    firm_id: str, session: SessionDep, site_id: str | None = None, online: bool | None = None
) -> list[GatewayPublic]:
    """The firm's gateways, by site then gateway id; optionally one site, or only
    online / offline ones."""
    stmt = select(GatewayStatus).where(GatewayStatus.firm_id == firm_id)
    if site_id is not None:
        stmt = stmt.where(GatewayStatus.site_id == site_id)
    if online is not None:
        stmt = stmt.where(GatewayStatus.online == online)
    stmt = stmt.order_by(GatewayStatus.site_id, GatewayStatus.gateway_id)
    return [GatewayPublic.model_validate(g) for g in session.scalars(stmt)]
