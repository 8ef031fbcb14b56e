"""Registry import from spreadsheets: CSV (one file per table) and XLSX (one sheet per table).

Both formats take the same path: the file is read into *sheets* (``name -> rows of cell
texts``, the first row the header), every sheet is validated row by row with the table's
``XCreate`` schema, and the rows are then written by :func:`.bulk.import_document` (all
or nothing, upserted by id). Only the reading differs:

- CSV: UTF-8 (with or without BOM) or Shift_JIS (cp932, as Excel saves it in Japan).
- XLSX: every sheet of the workbook, named after its table (``sites``, ``lines``,
  ``machines``, ``molds``; ``firms`` too for platform imports). Numbers, booleans and
  dates become their text (``1800``, ``true``, ``2026-11-30``).

Columns are the schema's fields (see :func:`.bulk.export_csv`); list fields (``resins``,
``certifications``) hold ``;``-separated values; an empty cell leaves the field at its
default. With an importing firm, a missing or empty ``firm_id`` means that firm.

Every bad cell is reported, none written (:class:`.bulk.RegistryImportError`), as the
bookings CSV upload reports them: ``machines.csv:3.clamp_force_kN`` (file, line, column)
for CSV, ``machines!D3.clamp_force_kN`` (sheet, cell, column) for XLSX; a problem of the
whole row (e.g. a press machine without ``tonnage_kN``) names the row only
(``machines.csv:3``, ``machines!3``).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from defusedxml import DefusedXmlException
from openpyxl import load_workbook
from openpyxl.utils import get_column_letter
from openpyxl.utils.exceptions import InvalidFileException
from pydantic import ValidationError
from sqlalchemy.orm import Session

from renkei.cloud.registry.bulk import (
    _LIST_FIELDS,
    TABLES,
    RegistryImportError,
    import_document,
)

__all__ = [
    "Sheet",
    "decode_csv",
    "import_csv",
    "import_sheets",
    "import_xlsx",
    "read_csv",
    "read_workbook",
    "read_xlsx",
]

_FIRM_TABLES = frozenset({"sites", "machines", "molds"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Sheet:
    """One table read from a file: ``rows[0]`` is the header, every cell a string.

    ``source`` names it in problems (``machines.csv`` or ``machines``); ``cells`` says
    whether problems name the cell (``machines!D3``, XLSX) or the line
    (``machines.csv:3``, CSV).
    """

    table: str
    source: str
    rows: Sequence[Sequence[str]]
    cells: bool = False


def decode_csv(raw: bytes, *, name: str) -> str:
    """The text of a CSV file: UTF-8 (BOM or not) or Shift_JIS (cp932).

    Raises:
        RegistryImportError: neither encoding fits (``name`` is named).
    """
    for encoding in ("utf-8-sig", "cp932"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise RegistryImportError([(name, "neither UTF-8 nor Shift_JIS (cp932) text")])


def read_csv(text: str, *, name: str, max_rows: int) -> Sheet:
    """``text`` of the CSV file ``name`` (``{table}.csv``) as a :class:`Sheet`.

    Raises:
        RegistryImportError: an unknown table name, invalid CSV (e.g. an unterminated
            quote) or more than ``max_rows`` data rows.
    """
    table = _table_of(name.removesuffix(".csv"), name)
    reader = csv.reader(io.StringIO(text, newline=None))
    rows: list[list[str]] = []
    try:
        for record in reader:
            rows.append(record)
            if len(rows) > max_rows + 1:
                raise RegistryImportError(
                    [(name, f"more than {max_rows} rows (the limit per import)")]
                )
    except csv.Error as exc:
        raise RegistryImportError(
            [(f"{name}:{reader.line_num}", f"not valid CSV: {exc}")]
        ) from None
    return Sheet(table=table, source=name, rows=rows)


def read_xlsx(raw: bytes, *, max_rows: int) -> list[Sheet]:
    """The sheets of an XLSX workbook, each named after its table.

    Raises:
        RegistryImportError: as :func:`read_workbook`, or a sheet named after no table.
    """
    return [
        Sheet(table=_table_of(title, f"sheet {title!r}"), source=title, rows=rows, cells=True)
        for title, rows in read_workbook(raw, max_rows=max_rows)
    ]


def read_workbook(raw: bytes, *, max_rows: int) -> list[tuple[str, list[list[str]]]]:
    """Every sheet of an XLSX workbook as ``(title, rows of cell texts)``, in sheet order.

    Cells become text as in CSV: numbers (``1800``, ``7.5``), booleans (``true``), dates
    (``2026-11-30``). The workbook's XML is parsed through ``defusedxml`` (openpyxl uses it
    when installed): entity declarations (billion laughs, external entities) are refused,
    not expanded.

    Raises:
        RegistryImportError: not an XLSX file, unsafe XML, or more than ``max_rows`` data
            rows (rows after each sheet's first) in all.
    """
    try:
        book = load_workbook(io.BytesIO(raw), read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        unsafe = _defused(exc)  # openpyxl wraps the parser's refusal in a ValueError
        if unsafe is not None:
            raise RegistryImportError([("workbook", f"unsafe XML refused: {unsafe!r}")]) from None
        raise RegistryImportError([("workbook", f"not an XLSX workbook: {exc}")]) from None
    try:
        return _read_sheets(book, max_rows=max_rows)
    except DefusedXmlException as exc:
        raise RegistryImportError([("workbook", f"unsafe XML refused: {exc!r}")]) from None
    finally:
        book.close()


def _defused(exc: BaseException) -> DefusedXmlException | None:
    """The ``defusedxml`` refusal behind ``exc`` (itself, its cause or context), if any."""
    seen: BaseException | None = exc
    for _ in range(8):  # bounded walk of the exception chain
        if seen is None:
            return None
        if isinstance(seen, DefusedXmlException):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _read_sheets(book: Any, *, max_rows: int) -> list[tuple[str, list[list[str]]]]:
    """Every sheet of ``book`` (see :func:`read_workbook`)."""
    sheets: list[tuple[str, list[list[str]]]] = []
    total = 0
    for ws in book.worksheets:
        rows: list[list[str]] = []
        for values in ws.iter_rows(values_only=True):
            total += 1 if rows else 0  # data rows, not headers
            rows.append([_cell_text(v) for v in values])
            if total > max_rows:
                raise RegistryImportError(
                    [(ws.title, f"more than {max_rows} rows (the limit per import)")]
                )
        sheets.append((ws.title, rows))
    return sheets


def _table_of(table: str, where: str) -> str:
    if table not in TABLES:
        raise RegistryImportError(
            [(where, f"unknown table {table!r}; expected one of {sorted(TABLES)}")]
        )
    return table


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value).strip()


def _where(sheet: Sheet, row: int, col: int | None, field: str | None) -> str:
    if sheet.cells:
        cell = f"{get_column_letter(col + 1)}{row}" if col is not None else str(row)
        return f"{sheet.source}!{cell}" + (f".{field}" if field else "")
    return f"{sheet.source}:{row}" + (f".{field}" if field else "")


def _validate(
    sheet: Sheet, firm_id: str | None
) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """Valid rows of ``sheet`` (as dicts for :func:`import_document`) and its problems."""
    schema = TABLES[sheet.table][1]
    if not sheet.rows:
        return [], []
    header = [h.strip() for h in sheet.rows[0]]
    while header and not header[-1]:
        header.pop()  # trailing empty columns of a spreadsheet
    problems: list[tuple[str, str]] = []
    for i, col in enumerate(header):
        if col not in schema.model_fields:
            problems.append(
                (
                    _where(sheet, 1, i, col or None),
                    f"unknown column; expected {list(schema.model_fields)}",
                )
            )
    if problems:
        return [], problems
    column_of = {col: i for i, col in enumerate(header)}
    out: list[dict[str, Any]] = []
    for line_no, record in enumerate(sheet.rows[1:], start=2):
        cells = [c.strip() for c in record]
        if not any(cells):
            continue
        if any(cells[len(header) :]):
            problems.append(
                (
                    _where(sheet, line_no, None, None),
                    f"{len(cells)} values for {len(header)} columns",
                )
            )
            continue
        row: dict[str, Any] = {}
        for col, value in zip(header, cells, strict=False):
            if col in _LIST_FIELDS:
                row[col] = [x.strip() for x in value.split(";") if x.strip()]
            elif value:
                row[col] = value
        if firm_id is not None and sheet.table in _FIRM_TABLES and not row.get("firm_id"):
            row["firm_id"] = firm_id
        try:
            out.append(schema.model_validate(row).model_dump())
        except ValidationError as exc:
            for e in exc.errors():
                field = ".".join(str(p) for p in e["loc"]) or None
                col_no = column_of.get(str(e["loc"][0])) if e["loc"] else None
                problems.append((_where(sheet, line_no, col_no, field), e["msg"]))
    return out, problems


def import_sheets(
    session: Session, sheets: Iterable[Sheet], *, firm_id: str | None = None
) -> dict[str, int]:
    """Validate every sheet, then import them as one document; rows written per table
    (the tables of ``sheets`` only).

    Raises:
        RegistryImportError: bad cells (every one named), a table given twice, or what
            :func:`.bulk.import_document` raises; nothing is written.
        RegistryOwnershipError: as :func:`.bulk.import_document`.
    """
    data: dict[str, list[dict[str, Any]]] = {}
    problems: list[tuple[str, str]] = []
    for sheet in sheets:
        if sheet.table in data:
            problems.append((sheet.source, f"table {sheet.table!r} given twice"))
            continue
        rows, more = _validate(sheet, firm_id)
        data[sheet.table] = rows
        problems += more
    if problems:
        raise RegistryImportError(problems)
    written = import_document(session, data, firm_id=firm_id)
    return {table: n for table, n in written.items() if table in data}


def import_csv(
    session: Session,
    files: Mapping[str, str],
    *,
    firm_id: str | None = None,
    max_rows: int = 1_000_000,
) -> dict[str, int]:
    """Import CSV texts named ``{table}.csv`` (any subset), as :func:`import_sheets`.

    Raises:
        RegistryImportError, RegistryOwnershipError: as :func:`import_sheets`, and an
            unknown file name or invalid CSV.
    """
    problems: list[tuple[str, str]] = []
    sheets: list[Sheet] = []
    for name, text in files.items():
        try:
            sheets.append(read_csv(text, name=name, max_rows=max_rows))
        except RegistryImportError as exc:
            problems += exc.problems
    if problems:
        raise RegistryImportError(problems)
    return import_sheets(session, sheets, firm_id=firm_id)


def import_xlsx(
    session: Session, raw: bytes, *, firm_id: str | None = None, max_rows: int = 1_000_000
) -> dict[str, int]:
    """Import an XLSX workbook (one sheet per table), as :func:`import_sheets`.

    Raises:
        RegistryImportError, RegistryOwnershipError: as :func:`import_sheets`, and what
            :func:`read_xlsx` raises.
    """
    return import_sheets(session, read_xlsx(raw, max_rows=max_rows), firm_id=firm_id)
