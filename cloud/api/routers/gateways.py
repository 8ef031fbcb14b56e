"""``GET /firms/{firm_id}/gateways``: the last known state of the firm's gateways.

States come from the gateways' retained birth / Last Will messages, written by the
disruption watcher (``renkei cloud watch``, :mod:`renkei.cloud.disruption.watch`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select

from renkei.cloud.api.deps import SessionDep, authorize
from renkei.cloud.api.params import FirmIdPath
from renkei.cloud.disruption import as_utc
from renkei.cloud.registry import GatewayStatus

router = APIRouter(tags=["gateways"])


class GatewayPublic(BaseModel):
    """One gateway's last known connection state."""

    model_config = ConfigDict(from_attributes=True)
    firm_id: str = Field(description="The firm the gateway belongs to.")
    site_id: str = Field(description="The site the gateway reports for.")
    gateway_id: str = Field(description="The gateway's id from its config.")
    online: bool = Field(
        description="True: connected to the broker (birth seen last); false: Last Will or "
        "clean stop seen last."
    )
    changed_at: datetime = Field(
        description="When `online` last changed (UTC, ISO-8601): the birth's `sent_ms`, or "
        "when the watcher received the offline state."
    )
    birth: dict[str, Any] = Field(
        description="The last birth payload (`config_version`, `agent_version`, `models`, "
        "`sent_ms` (ms since the Unix epoch) ...); `{}` if none was seen."
    )

    @field_validator("changed_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return as_utc(value)


@router.get(
    "/firms/{firm_id}/gateways", name="gateways.list", dependencies=[authorize("gateways.list")]
)
def list_gateways(
    firm_id: FirmIdPath,
    session: SessionDep,
    site_id: Annotated[str | None, Query(description="Only gateways of this site.")] = None,
    online: Annotated[
        bool | None,
        Query(description="true: only online gateways; false: only offline ones; default all."),
    ] = None,
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
