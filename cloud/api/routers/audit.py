"""``GET /firms/{firm_id}/audit``: who read what of the firm's data, and when."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select

from renkei.cloud.api.deps import SessionDep, authorize
from renkei.cloud.registry import AuditEvent

router = APIRouter(tags=["audit"])


class AuditEventPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    at: datetime
    reader_firm_id: str
    reader_key_id: str
    reader_role: str
    action: str
    resource: str
    detail: dict[str, Any]


@router.get("/firms/{firm_id}/audit", name="audit.list", dependencies=[authorize("audit.list")])
def list_audit(
    firm_id: str,
    session: SessionDep,
    since: datetime | None = None,
    reader_firm_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[AuditEventPublic]:
    """Reads of this firm's data by other firms, newest first."""
    stmt = select(AuditEvent).where(AuditEvent.owner_firm_id == firm_id)
    if since is not None:
        stmt = stmt.where(AuditEvent.at >= since)
    if reader_firm_id is not None:
        stmt = stmt.where(AuditEvent.reader_firm_id == reader_firm_id)
    stmt = stmt.order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(limit)
    return [AuditEventPublic.model_validate(e) for e in session.scalars(stmt)]
