"""Good and reject part counts an operator records for a machine (quality basis ``operator``).

- ``GET /firms/{firm_id}/machines/{machine_id}/operator-counts``: the machine's entries,
  newest first (optionally those overlapping ``[start, end)``).
- ``POST .../operator-counts``: record one; 409 when it overlaps another entry of the
  machine (the message names it).
- ``PUT .../operator-counts/{count_id}``: correct (replace) one; the same overlap rule,
  ignoring the entry itself.
- ``DELETE .../operator-counts/{count_id}``: remove one.

The firm's own operators and admins write; its engineers read; partners never see them.
Rule and the way into OEE: :mod:`renkei.cloud.oee.entries`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, status
from sqlalchemy import select
from sqlalchemy.orm import Session

from renkei.cloud.api.deps import ClockDep, DbId, PrincipalDep, SessionDep, SettingsDep, authorize
from renkei.cloud.api.errors import Conflict, Invalid, NotFound
from renkei.cloud.api.params import FirmIdPath, MachineIdPath
from renkei.cloud.api.schemas.oee_counts import (
    OperatorCountCreate,
    OperatorCountPublic,
    OperatorCountSaved,
    utc_in_range,
)
from renkei.cloud.disruption import as_utc
from renkei.cloud.oee.entries import OverlapError, audit_change, check_overlap, interval_of, sync
from renkei.cloud.registry import Machine, OperatorCount

router = APIRouter(tags=["oee"])

_BASE = "/firms/{firm_id}/machines/{machine_id}/operator-counts"


def _machine(session: Session, firm_id: str, machine_id: str) -> Machine:
    machine = session.get(Machine, machine_id)
    if machine is None or machine.firm_id != firm_id:
        raise NotFound(f"no machine {machine_id!r} in firm {firm_id!r}")
    return machine


def _entry(session: Session, firm_id: str, machine_id: str, count_id: int) -> OperatorCount:
    _machine(session, firm_id, machine_id)
    row = session.get(OperatorCount, count_id)
    if row is None or row.firm_id != firm_id or row.machine_id != machine_id:
        raise NotFound(f"no operator count {count_id} of machine {machine_id!r}")
    return row


def _no_overlap(
    session: Session, machine_id: str, body: OperatorCountCreate, exclude: int | None
) -> None:
    try:
        check_overlap(
            session, machine_id=machine_id, start=body.start, end=body.end, exclude_id=exclude
        )
    except OverlapError as exc:
        raise Conflict(
            str(exc),
            detail={
                "overlaps": exc.other.id,
                "start": as_utc(exc.other.start).isoformat(),
                "end": as_utc(exc.other.end).isoformat(),
            },
        ) from None


def _query_time(name: str, value: datetime) -> datetime:
    try:
        return utc_in_range(value)
    except ValueError as exc:
        raise Invalid(f"{name}: {exc}") from None


@router.get(_BASE, name="operator_counts.list", dependencies=[authorize("operator_counts.list")])
def list_counts(
    firm_id: FirmIdPath,
    machine_id: MachineIdPath,
    session: SessionDep,
    start: Annotated[
        datetime | None,
        Query(description="Only entries ending after this instant (ISO-8601, UTC if no offset)."),
    ] = None,
    end: Annotated[
        datetime | None,
        Query(description="Only entries starting before this instant (exclusive)."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Most entries (newest first).")] = 200,
) -> list[OperatorCountPublic]:
    """The machine's operator counts, newest first."""
    _machine(session, firm_id, machine_id)
    stmt = select(OperatorCount).where(
        OperatorCount.firm_id == firm_id, OperatorCount.machine_id == machine_id
    )
    if start is not None:
        stmt = stmt.where(OperatorCount.end > _query_time("start", start))
    if end is not None:
        stmt = stmt.where(OperatorCount.start < _query_time("end", end))
    rows = session.scalars(stmt.order_by(OperatorCount.start.desc()).limit(limit))
    return [OperatorCountPublic.model_validate(r) for r in rows]


@router.post(
    _BASE,
    name="operator_counts.create",
    status_code=status.HTTP_201_CREATED,
    dependencies=[authorize("operator_counts.create")],
)
def create_count(
    firm_id: FirmIdPath,
    machine_id: MachineIdPath,
    body: OperatorCountCreate,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    now: ClockDep,
) -> OperatorCountSaved:
    """Record good/reject parts of ``[start, end)``; OEE quality of it then uses them.

    Errors: 404 unknown machine; 409 overlapping entry (named in the message and in
    ``detail.overlaps``); 422 naming the bad field and value.
    """
    _machine(session, firm_id, machine_id)
    _no_overlap(session, machine_id, body, None)
    row = OperatorCount(
        firm_id=firm_id,
        machine_id=machine_id,
        **body.model_dump(),
        recorded_by=principal.key_id,
        recorded_at=now,
    )
    session.add(row)
    session.flush()
    audit_change(session, principal=principal, action="operator_counts.create", row=row, at=now)
    status_, detail = sync(settings.capacity().influx, apply=interval_of(session, row))
    entry = OperatorCountPublic.model_validate(row)
    return OperatorCountSaved(entry=entry, oee=status_, oee_detail=detail)


@router.put(
    _BASE + "/{count_id}",
    name="operator_counts.replace",
    dependencies=[authorize("operator_counts.replace")],
)
def replace_count(
    firm_id: FirmIdPath,
    machine_id: MachineIdPath,
    count_id: DbId,
    body: OperatorCountCreate,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    now: ClockDep,
) -> OperatorCountSaved:
    """Correct an entry (all fields replaced); the same overlap rule, ignoring itself."""
    row = _entry(session, firm_id, machine_id, count_id)
    _no_overlap(session, machine_id, body, row.id)
    old = interval_of(session, row)
    for key, value in body.model_dump().items():
        setattr(row, key, value)
    row.recorded_by = principal.key_id
    row.recorded_at = now
    session.flush()
    audit_change(session, principal=principal, action="operator_counts.replace", row=row, at=now)
    status_, detail = sync(settings.capacity().influx, revert=old, apply=interval_of(session, row))
    entry = OperatorCountPublic.model_validate(row)
    return OperatorCountSaved(entry=entry, oee=status_, oee_detail=detail)


@router.delete(
    _BASE + "/{count_id}",
    name="operator_counts.delete",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[authorize("operator_counts.delete")],
)
def delete_count(
    firm_id: FirmIdPath,
    machine_id: MachineIdPath,
    count_id: DbId,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    now: ClockDep,
) -> None:
    """Remove an entry; OEE quality of its interval falls back to the machine's own basis."""
    row = _entry(session, firm_id, machine_id, count_id)
    audit_change(session, principal=principal, action="operator_counts.delete", row=row, at=now)
    old = interval_of(session, row)
    session.delete(row)
    session.flush()
    sync(settings.capacity().influx, revert=old)
