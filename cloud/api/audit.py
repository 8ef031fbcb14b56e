"""The read audit log: every disclosure of a firm's data to another firm is recorded.

Endpoints that return another firm's data call :func:`record` once per owner firm whose
data is in the response, inside the request's transaction (so a response that fails is not
logged as read, and a logged read cannot be lost when the response succeeds).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from renkei.cloud.registry import AuditEvent, Principal

__all__ = ["record"]


def record(
    session: Session,
    *,
    principal: Principal,
    owner_firm_id: str,
    action: str,
    resource: str,
    detail: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> bool:
    """Log that ``principal`` read data of ``owner_firm_id``.

    Reads of the caller's own firm are not logged (returns ``False``); any other read is
    (returns ``True``), including an admin's.

    Args:
        action: what was read (``capacity.search``, ``firm.profile``, ``takeover.plan``,
            ``regional.aggregate`` ...).
        resource: request path or object id.
        detail: what exactly was disclosed (JSON-serialisable).
        at: time of the read (UTC); default now.
    """
    if owner_firm_id == principal.firm_id:
        return False
    event = AuditEvent(
        owner_firm_id=owner_firm_id,
        reader_firm_id=principal.firm_id,
        reader_key_id=principal.key_id,
        reader_role=principal.role.value,
        action=action,
        resource=resource,
        detail=detail or {},
    )
    if at is not None:
        event.at = at
    session.add(event)
    return True
