"""``GET /firms/{firm_id}/audit``: who read what of the firm's data, and when."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from renkei.cloud.api.deps import SessionDep, authorize
from renkei.cloud.api.params import FirmIdPath
from renkei.cloud.registry import AuditEvent

router = APIRouter(tags=["audit"])


class AuditEventPublic(BaseModel):
    """One read of the firm's data by a caller (another firm, a supporter or an admin)."""

    model_config = ConfigDict(from_attributes=True)
    id: int = Field(description="The event's id (increasing).")
    at: datetime = Field(description="When the read happened (UTC, ISO-8601).")
    reader_firm_id: str = Field(description="Firm of the key that read the data.")
    reader_key_id: str = Field(description="Id of the API key that read the data.")
    reader_role: str = Field(
        description="Role of that key: `operator`, `partner`, `supporter`, `engineer` or `admin`."
    )
    action: str = Field(
        description="What was read: `capacity.search` (shared spare capacity), "
        "`firm.profile` (the firm's profile), `takeover.plan` (the firm shown as partner in "
        "a takeover plan), `takeover.assignment` (the firm's request data shown to a "
        "partner) or `regional.aggregate` (counted in a regional aggregate)."
    )
    resource: str = Field(description="The API path that was called.")
    detail: dict[str, Any] = Field(
        description="What exactly was disclosed (depends on `action`: classes, machine ids, "
        "granularity, query, assignment or request ids)."
    )


@router.get("/firms/{firm_id}/audit", name="audit.list", dependencies=[authorize("audit.list")])
def list_audit(
    firm_id: FirmIdPath,
    session: SessionDep,
    since: Annotated[
        datetime | None,
        Query(description="Only events at or after this instant (inclusive), ISO-8601."),
    ] = None,
    reader_firm_id: Annotated[str | None, Query(description="Only reads by this firm.")] = None,
    limit: Annotated[
        int, Query(ge=1, le=10_000, description="Most events returned (the newest).")
    ] = 1000,
) -> list[AuditEventPublic]:
    """Reads of this firm's data by other firms, newest first."""
    stmt = select(AuditEvent).where(AuditEvent.owner_firm_id == firm_id)
    if since is not None:
        stmt = stmt.where(AuditEvent.at >= since)
    if reader_firm_id is not None:
        stmt = stmt.where(AuditEvent.reader_firm_id == reader_firm_id)
    stmt = stmt.order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(limit)
    return [AuditEventPublic.model_validate(e) for e in session.scalars(stmt)]
