"""A firm's own production plan: bookings of its machines (JSON, CSV and XLSX upload).

A booking reserves ``hours_per_day`` hours (0–24 h) on a machine on every site-local date
of ``[start, end]`` (inclusive; ``end`` defaults to ``start``). Spare capacity subtracts
them. Bookings and their references (orders, customers) are never shown to other firms.

CSV upload (``POST /firms/{firm_id}/bookings.csv``, body ``text/csv``): header
``machine_id,start,end,hours_per_day,reference`` (``end`` and ``reference`` optional
columns and values), dates ``YYYY-MM-DD`` (``YYYY/MM/DD`` as Excel writes it in Japan is
accepted), UTF-8 (with or without BOM) or Shift_JIS (cp932). Every bad row is reported as
``bookings.csv:{line}.{field}: problem`` (``loc`` + ``msg`` in the 422 detail list) and
nothing is written. XLSX upload (``POST /firms/{firm_id}/bookings.xlsx``): the sheet
``bookings`` (or the only sheet) with the same columns; date cells or date text; every bad
cell reported as ``bookings!D3.hours_per_day`` (sheet, cell, column), the workbook's XML
read through ``defusedxml``. ``?replace=true`` (JSON, CSV, XLSX) first deletes all of the firm's
bookings, so a full plan can be re-uploaded daily. Bodies are limited to
``RENKEI_API_MAX_BODY_BYTES`` (413, :mod:`renkei.cloud.api.limits`).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator, Sequence
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request, status
from openpyxl.utils import get_column_letter
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from renkei.cloud.api.bodies import XLSX_BODY
from renkei.cloud.api.deps import SessionDep, authorize
from renkei.cloud.api.errors import Invalid, NotFound
from renkei.cloud.api.params import FirmIdPath
from renkei.cloud.capacity.index import CHANGED_FIRMS
from renkei.cloud.registry import CapacityBooking, Machine
from renkei.cloud.registry.bulk import RegistryImportError
from renkei.cloud.registry.tabular import read_workbook

router = APIRouter(tags=["bookings"])

#: Most bookings in one request (JSON list or CSV rows).
MAX_BOOKINGS = 50_000
CSV_COLUMNS = ("machine_id", "start", "end", "hours_per_day", "reference")
_REQUIRED_COLUMNS = ("machine_id", "start", "hours_per_day")
_WHERE_LINE = re.compile(r"(?:\.csv:|!)[A-Z]*(\d+)")
_SLASH_DATE = re.compile(r"^(\d{4})/(\d{1,2})/(\d{1,2})$")

ReplaceQuery = Annotated[
    bool,
    Query(
        description="true: first delete all of the firm's bookings, so the body is the whole "
        "plan; false (default): add to the stored bookings."
    ),
]


class BookingCreate(BaseModel):
    """One booking: ``hours_per_day`` hours on each date of ``[start, end]``.

    Raises (as 422): ``end`` before ``start``, hours outside 0–24 or not finite.
    """

    model_config = ConfigDict(extra="forbid")
    # the registry's id alphabet: another character cannot name a machine (and a NUL
    # would not even reach PostgreSQL's query)
    machine_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.\-]{1,64}$")] = Field(
        description="Id of one of the firm's machines (`MachinePublic.id`): 1-64 characters "
        "of A-Z a-z 0-9 `_` `.` `-`.",
        examples=["acme-m1"],
    )
    start: date = Field(
        description="First date booked (inclusive), site-local YYYY-MM-DD.",
        examples=["2026-11-24"],
    )
    end: date | None = Field(
        default=None,
        description="Last date booked (inclusive), site-local YYYY-MM-DD, not before `start`; "
        "default `start` (a one-day booking).",
        examples=["2026-11-27"],
    )
    hours_per_day: Annotated[float, Field(ge=0, le=24, allow_inf_nan=False)] = Field(
        description="Hours reserved on each date of [start, end] (h, 0-24).", examples=[8]
    )
    reference: Annotated[str, Field(max_length=200)] = Field(
        default="",
        description="The firm's own order or plan reference (at most 200 characters; never "
        "shown to other firms).",
        examples=["PO-4711"],
    )

    @field_validator("end")
    @classmethod
    def _range(cls, end: date | None, info: ValidationInfo) -> date | None:
        start = info.data.get("start")
        if end is not None and start is not None and end < start:
            raise ValueError(f"end {end} is before start {start}")
        return end


class BookingPublic(BaseModel):
    """A stored booking (the firm's own view)."""

    model_config = ConfigDict(from_attributes=True)
    id: int = Field(description="The booking's id (for `DELETE .../bookings/{booking_id}`).")
    machine_id: str = Field(description="The booked machine of the firm.")
    start: date = Field(description="First date booked (inclusive), site-local.")
    end: date = Field(description="Last date booked (inclusive), site-local.")
    hours_per_day: float = Field(description="Hours reserved on each date (h, 0-24).")
    reference: str = Field(description="The firm's own reference (never shown to other firms).")
    created_at: datetime = Field(description="When the booking was stored (UTC, ISO-8601).")


def _foreign_machines(session: Session, firm_id: str, machine_ids: Sequence[str]) -> set[str]:
    """The ids among ``machine_ids`` that are not machines of ``firm_id``."""
    wanted = set(machine_ids)
    own: set[str] = set()
    ids = sorted(wanted)
    for i in range(0, len(ids), 5000):
        own.update(
            session.scalars(
                select(Machine.id).where(
                    Machine.firm_id == firm_id, Machine.id.in_(ids[i : i + 5000])
                )
            )
        )
    return wanted - own


def _store(
    session: Session, firm_id: str, rows: Sequence[BookingCreate], *, replace: bool
) -> list[BookingPublic]:
    if replace:
        session.execute(
            delete(CapacityBooking).where(CapacityBooking.firm_id == firm_id),
            execution_options={CHANGED_FIRMS: (firm_id,)},
        )
    objs = [
        CapacityBooking(
            firm_id=firm_id,
            machine_id=b.machine_id,
            start=b.start,
            end=b.end or b.start,
            hours_per_day=b.hours_per_day,
            reference=b.reference,
        )
        for b in rows
    ]
    session.add_all(objs)
    session.flush()
    return [BookingPublic.model_validate(o) for o in objs]


@router.get(
    "/firms/{firm_id}/bookings", name="bookings.list", dependencies=[authorize("bookings.list")]
)
def list_bookings(
    firm_id: FirmIdPath,
    session: SessionDep,
    machine_id: Annotated[
        str | None, Query(description="Only bookings of this machine of the firm.")
    ] = None,
    since: Annotated[
        date | None,
        Query(description="Only bookings whose `end` is on or after this date (inclusive)."),
    ] = None,
    until: Annotated[
        date | None,
        Query(description="Only bookings whose `start` is before this date (exclusive)."),
    ] = None,
) -> list[BookingPublic]:
    """The firm's bookings, by start date."""
    stmt = select(CapacityBooking).where(CapacityBooking.firm_id == firm_id)
    if machine_id is not None:
        stmt = stmt.where(CapacityBooking.machine_id == machine_id)
    if since is not None:
        stmt = stmt.where(CapacityBooking.end >= since)
    if until is not None:
        stmt = stmt.where(CapacityBooking.start < until)
    stmt = stmt.order_by(CapacityBooking.start, CapacityBooking.machine_id, CapacityBooking.id)
    return [BookingPublic.model_validate(b) for b in session.scalars(stmt)]


@router.post(
    "/firms/{firm_id}/bookings",
    name="bookings.create",
    status_code=status.HTTP_201_CREATED,
    dependencies=[authorize("bookings.create")],
)
def create_bookings(
    firm_id: FirmIdPath,
    body: Annotated[list[BookingCreate], Body(max_length=MAX_BOOKINGS)],
    session: SessionDep,
    replace: ReplaceQuery = False,
) -> list[BookingPublic]:
    """Add bookings (a JSON list); every machine must be one of the firm's (422 otherwise).

    ``replace=true`` deletes all of the firm's bookings first.
    """
    foreign = _foreign_machines(session, firm_id, [b.machine_id for b in body])
    if foreign:
        detail = [
            {
                "loc": f"body[{i}].machine_id",
                "msg": f"{b.machine_id!r} is not a machine of {firm_id!r}",
            }
            for i, b in enumerate(body)
            if b.machine_id in foreign
        ]
        raise Invalid(
            f"{len(detail)} booking(s) name machines not of firm {firm_id!r}", detail=detail
        )
    return _store(session, firm_id, body, replace=replace)


async def _csv_body(request: Request) -> bytes:
    # bounded by the app's body limit (413 beyond ApiSettings.max_body_bytes)
    return await request.body()


def _decode(raw: bytes) -> str:
    for encoding in ("utf-8-sig", "cp932"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise Invalid("bookings.csv is neither UTF-8 nor Shift_JIS (cp932) text")


def _iso(value: str) -> str:
    m = _SLASH_DATE.match(value)
    return f"{m[1]}-{int(m[2]):02d}-{int(m[3]):02d}" if m else value


#: Where a problem is: ``(line or row, column index or None, field or None) -> text``.
Where = Callable[[int, int | None, str | None], str]


def _csv_where(line: int, col: int | None, field: str | None) -> str:
    return f"bookings.csv:{line}" + (f".{field}" if field else "")


def parse_bookings_csv(text: str) -> tuple[list[tuple[str, BookingCreate]], list[tuple[str, str]]]:
    """Parse a bookings CSV.

    Returns:
        ``(rows, problems)``: ``(where of its machine_id, booking)`` per valid row and
        ``(where, message)`` per problem, ``where`` = ``bookings.csv:{line}.{field}`` (line
        1 = header).
    """
    reader = csv.reader(io.StringIO(text, newline=None))  # universal newlines: \r, \r\n

    def records() -> Iterator[tuple[int, list[str]]]:
        line = 0
        for record in reader:
            # a quoted value may span lines: a record is named by its first line
            yield line + 1, record
            line = reader.line_num

    try:
        return _parse_rows(records(), _csv_where)
    except csv.Error as exc:  # e.g. an unterminated quote
        return [], [(f"bookings.csv:{reader.line_num or 1}", f"not valid CSV: {exc}")]


def parse_bookings_xlsx(
    raw: bytes,
) -> tuple[list[tuple[str, BookingCreate]], list[tuple[str, str]]]:
    """Parse a bookings workbook: the sheet ``bookings`` (or the only sheet), laid out as
    the CSV (header row, then one booking per row; date cells or ``YYYY-MM-DD`` text).

    Returns:
        as :func:`parse_bookings_csv`, ``where`` = ``{sheet}!{cell}.{field}`` (e.g.
        ``bookings!D3.hours_per_day``) or ``{sheet}!{row}`` for a whole row.
    """
    try:
        sheets = read_workbook(raw, max_rows=MAX_BOOKINGS + 1)
    except RegistryImportError as exc:
        return [], list(exc.problems)
    named = [rows for title, rows in sheets if title.strip().lower() == "bookings"]
    if named:
        title, rows = "bookings", named[0]
    elif len(sheets) == 1:
        title, rows = sheets[0]
    else:
        titles = [t for t, _ in sheets]
        return [], [("workbook", f"no sheet named 'bookings' among {titles}")]

    # a sheet's rows are as wide as its widest row: cut the empty cells past the header's
    width = len(rows[0]) if rows else 0
    while width and not rows[0][width - 1]:
        width -= 1
    rows = [r[:width] if not any(r[width:]) else r for r in rows]

    def where(row: int, col: int | None, field: str | None) -> str:
        cell = f"{get_column_letter(col + 1)}{row}" if col is not None else str(row)
        return f"{title}!{cell}" + (f".{field}" if field else "")

    return _parse_rows(enumerate(rows, start=1), where)


def _parse_rows(
    records: Iterator[tuple[int, list[str]]], where: Where
) -> tuple[list[tuple[str, BookingCreate]], list[tuple[str, str]]]:
    problems: list[tuple[str, str]] = []
    try:
        _, first = next(records)
    except StopIteration:
        return [], [
            (where(1, None, None), "empty file; expected a header " + ",".join(CSV_COLUMNS))
        ]
    header = [h.strip() for h in first]
    for i, col in enumerate(header):
        if col not in CSV_COLUMNS:
            problems.append((where(1, i, col), f"unknown column; expected {CSV_COLUMNS}"))
    for col in _REQUIRED_COLUMNS:
        if col not in header:
            problems.append((where(1, None, col), "missing column"))
    if problems:
        return [], problems
    rows: list[tuple[str, BookingCreate]] = []
    for line_no, record in records:
        if not any(v.strip() for v in record):
            continue
        if len(record) != len(header):
            problems.append(
                (where(line_no, None, None), f"{len(record)} values for {len(header)} columns")
            )
            continue
        values: dict[str, Any] = {}
        for col, raw in zip(header, record, strict=True):
            value = raw.strip()
            if col in ("start", "end"):
                value = _iso(value)
            if value or col == "reference":
                values[col] = value
        try:
            booking = BookingCreate.model_validate(values)
            rows.append((where(line_no, header.index("machine_id"), "machine_id"), booking))
        except ValidationError as exc:
            for e in exc.errors():
                field = ".".join(str(p) for p in e["loc"]) or "row"
                col_index = header.index(field) if field in header else None
                problems.append((where(line_no, col_index, field), e["msg"]))
        if len(rows) > MAX_BOOKINGS:
            problems.append((where(line_no, None, None), f"more than {MAX_BOOKINGS} rows"))
            break
    return rows, problems


@router.post(
    "/firms/{firm_id}/bookings.csv",
    name="bookings.upload_csv",
    status_code=status.HTTP_201_CREATED,
    dependencies=[authorize("bookings.upload_csv")],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {
                    "schema": {"type": "string"},
                    "example": "machine_id,start,end,hours_per_day,reference\n"
                    "m1,2026-11-24,2026-11-27,8,PO-4711\n",
                }
            },
        }
    },
)
def upload_bookings_csv(
    firm_id: FirmIdPath,
    raw: Annotated[bytes, Depends(_csv_body)],
    session: SessionDep,
    replace: ReplaceQuery = False,
) -> list[BookingPublic]:
    """Add bookings from CSV (see the module docstring); all rows or none."""
    rows, problems = parse_bookings_csv(_decode(raw))
    return _accept(session, firm_id, rows, problems, replace=replace, name="bookings.csv")


@router.post(
    "/firms/{firm_id}/bookings.xlsx",
    name="bookings.upload_xlsx",
    status_code=status.HTTP_201_CREATED,
    dependencies=[authorize("bookings.upload_xlsx")],
    openapi_extra=XLSX_BODY,
)
def upload_bookings_xlsx(
    firm_id: FirmIdPath,
    raw: Annotated[bytes, Depends(_csv_body)],
    session: SessionDep,
    replace: ReplaceQuery = False,
) -> list[BookingPublic]:
    """Add bookings from an XLSX workbook: the sheet `bookings` (or the only sheet), the
    CSV's columns; every bad cell named (`bookings!D3.hours_per_day`); all rows or none."""
    rows, problems = parse_bookings_xlsx(raw)
    return _accept(session, firm_id, rows, problems, replace=replace, name="bookings.xlsx")


def _accept(
    session: Session,
    firm_id: str,
    rows: list[tuple[str, BookingCreate]],
    problems: list[tuple[str, str]],
    *,
    replace: bool,
    name: str,
) -> list[BookingPublic]:
    """Store the parsed ``rows`` of the file ``name``, or 422 with every problem (and every
    row naming a machine that is not the firm's)."""
    if rows:
        foreign = _foreign_machines(session, firm_id, [b.machine_id for _, b in rows])
        problems += [
            (where, f"{b.machine_id!r} is not a machine of {firm_id!r}")
            for where, b in rows
            if b.machine_id in foreign
        ]
    if problems:
        problems.sort(key=lambda p: _line_of(p[0]))
        shown = "; ".join(f"{w}: {m}" for w, m in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise Invalid(
            f"{name} rejected, {len(problems)} problem(s): {shown}{more}",
            detail=[{"loc": w, "msg": m} for w, m in problems],
        )
    return _store(session, firm_id, [b for _, b in rows], replace=replace)


def _line_of(where: str) -> int:
    """The line (CSV) or row (XLSX) a problem's ``where`` names; 0 for the whole file."""
    m = _WHERE_LINE.search(where)
    return int(m[1]) if m else 0


@router.delete(
    "/firms/{firm_id}/bookings/{booking_id}",
    name="bookings.delete",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[authorize("bookings.delete")],
)
def delete_booking(
    firm_id: FirmIdPath,
    booking_id: Annotated[
        int, Path(ge=1, le=2**63 - 1, description="The booking's id (`BookingPublic.id`).")
    ],
    session: SessionDep,
) -> None:
    """Delete one booking of the firm (404 if it is not the firm's)."""
    booking = session.get(CapacityBooking, booking_id)
    if booking is None or booking.firm_id != firm_id:
        raise NotFound(f"no booking {booking_id} in firm {firm_id!r}")
    session.delete(booking)
