"""Operator count entries in the registry: overlap rule, audit, and their way into OEE.

The rule for one machine: entries never overlap. A new entry whose ``[start, end)``
overlaps an existing one is refused (:class:`OverlapError`, the API's 409, naming the
entry); a correction replaces an entry by id (``PUT``), and a deletion removes it. Each
change is logged in the firm's audit log (action ``operator_counts.create`` /
``.replace`` / ``.delete``, the key that made it, the interval and counts) and pushed into
InfluxDB (:mod:`renkei.cloud.oee.operator`) when the API has one and may write there;
the writer's periodic reconciliation (:mod:`renkei.cloud.oee.reconcile`) makes sure of
it either way.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from renkei.cloud._exceptions import CloudError, StoreRejected, StoreUnavailable
from renkei.cloud.disruption import as_utc
from renkei.cloud.oee.operator import OperatorInterval, apply_interval, revert_interval
from renkei.cloud.registry import AuditEvent, Line, Machine, OperatorCount, Principal
from renkei.cloud.store.influx import InfluxSettings

__all__ = ["OverlapError", "SyncStatus", "audit_change", "check_overlap", "interval_of", "sync"]

SyncStatus = Literal["written", "pending", "not_configured", "failed"]

#: HTTP statuses by which InfluxDB says the API's user may not write (a read-only user).
_NOT_ALLOWED = (401, 403)


class OverlapError(CloudError):
    """A new or corrected entry overlaps another entry of the same machine."""

    def __init__(self, message: str, *, other: OperatorCount) -> None:
        super().__init__(message)
        self.other = other


def check_overlap(
    session: Session,
    *,
    machine_id: str,
    start: datetime,
    end: datetime,
    exclude_id: int | None = None,
) -> None:
    """Raise :class:`OverlapError` naming the first entry of ``machine_id`` overlapping
    ``[start, end)`` (``exclude_id``: the entry being corrected)."""
    stmt = (
        select(OperatorCount)
        .where(
            OperatorCount.machine_id == machine_id,
            OperatorCount.start < end,
            OperatorCount.end > start,
        )
        .order_by(OperatorCount.start)
        .limit(1)
    )
    if exclude_id is not None:
        stmt = stmt.where(OperatorCount.id != exclude_id)
    other = session.scalars(stmt).first()
    if other is not None:
        raise OverlapError(
            f"[{start.isoformat()}, {end.isoformat()}) overlaps entry {other.id} "
            f"[{as_utc(other.start).isoformat()}, {as_utc(other.end).isoformat()}) of machine "
            f"{machine_id!r}; correct that entry (PUT) or delete it first",
            other=other,
        )


def audit_change(
    session: Session, *, principal: Principal, action: str, row: OperatorCount, at: datetime
) -> None:
    """Log a change of ``row`` by ``principal`` in the owner firm's audit log."""
    detail: dict[str, Any] = {
        "machine_id": row.machine_id,
        "start": as_utc(row.start).isoformat(),
        "end": as_utc(row.end).isoformat(),
        "good": row.good,
        "reject": row.reject,
    }
    session.add(
        AuditEvent(
            at=at,
            owner_firm_id=row.firm_id,
            reader_firm_id=principal.firm_id,
            reader_key_id=principal.key_id,
            reader_role=principal.role.value,
            action=action,
            resource=f"operator_count/{row.id}",
            detail=detail,
        )
    )


def interval_of(session: Session, row: OperatorCount) -> OperatorInterval:
    """``row`` as :class:`OperatorInterval` (fallback tags: the machine's site and line)."""
    machine = session.get(Machine, row.machine_id)
    line = None if machine is None else session.get(Line, machine.line_id)
    fallback = {} if line is None else {"site": line.site_id, "line": line.id}
    return OperatorInterval(
        firm=row.firm_id,
        machine=row.machine_id,
        start_ms=int(as_utc(row.start).timestamp() * 1000),
        end_ms=int(as_utc(row.end).timestamp() * 1000),
        good=row.good,
        reject=row.reject,
        fallback_tags=fallback,
    )


def sync(
    influx: InfluxSettings | None,
    *,
    revert: OperatorInterval | None = None,
    apply: OperatorInterval | None = None,
) -> tuple[SyncStatus, str]:
    """Revert then apply entries in InfluxDB; ``("not_configured", "")`` without one.

    InfluxDB errors do not raise: the registry stays the record. When InfluxDB refuses
    the API's user (401/403 or "not authorized": a read-only user, as in the compose
    stack), the status is ``pending``: the writer's reconciliation
    (:mod:`renkei.cloud.oee.reconcile`, ``renkei cloud oee-sync``) applies it within one
    cycle. Any other error says ``failed`` with the reason (the reconciliation retries it
    too, where it runs; saving the entry again writes it).
    """
    if influx is None:
        return "not_configured", ""
    try:
        if revert is not None:
            revert_interval(influx, revert)
        if apply is not None:
            apply_interval(influx, apply)
    except (StoreUnavailable, StoreRejected) as exc:
        if exc.status in _NOT_ALLOWED or "not authorized" in str(exc).lower():
            return "pending", ""
        return "failed", str(exc)
    return "written", ""
