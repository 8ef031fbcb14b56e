"""Bulk import/export of the registry as JSON (one document) and CSV (one file per table;
import from CSV and XLSX: :mod:`.tabular`).

Import validates every row with the ``XCreate`` schemas before writing anything, and
reports every bad row as ``{table}[{index}].{field}: {problem}`` (CSV: ``{file}:{line}``).
Rows are upserted by id, so importing the same document twice changes nothing. Ids are
global (one ``machine`` table for every firm): an import for a firm never touches a row
another firm holds (:class:`RegistryOwnershipError` names the ids instead).
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

import orjson
from pydantic import BaseModel, TypeAdapter, ValidationError
from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from renkei.cloud._exceptions import CloudError
from renkei.cloud.registry.models import Base, Firm, Line, Machine, Mold, Site
from renkei.cloud.registry.schemas import (
    FirmCreate,
    LineCreate,
    MachineCreate,
    MoldCreate,
    RegistryDocument,
    SiteCreate,
)

__all__ = [
    "CHANGED_FIRMS_OPTION",
    "CHUNK_ROWS",
    "RegistryImportError",
    "RegistryOwnershipError",
    "export_csv",
    "export_document",
    "import_document",
    "parse_document_json",
]

#: Ids per ``IN (...)`` query and rows per ``executemany`` of an import.
CHUNK_ROWS: Final = 500
#: Execution option naming the firms a bulk statement changes (read by the API's capacity
#: index, :data:`renkei.cloud.capacity.index.CHANGED_FIRMS`, so one firm's import patches that
#: firm instead of rebuilding every firm).
CHANGED_FIRMS_OPTION: Final = "renkei_changed_firms"

#: Table name -> (ORM class, create schema), in foreign-key order.
TABLES: Final[dict[str, tuple[type[Base], type[BaseModel]]]] = {
    "firms": (Firm, FirmCreate),
    "sites": (Site, SiteCreate),
    "lines": (Line, LineCreate),
    "machines": (Machine, MachineCreate),
    "molds": (Mold, MoldCreate),
}
_LIST_FIELDS: Final = {"resins", "certifications"}
_ADAPTERS: Final[dict[str, TypeAdapter[list[Any]]]] = {
    table: TypeAdapter(list[schema])  # type: ignore[valid-type]
    for table, (_orm, schema) in TABLES.items()
}


class RegistryOwnershipError(CloudError, ValueError):
    """Ids of an import that rows of other firms hold; ``conflicts`` = table -> ids."""

    def __init__(self, conflicts: dict[str, list[str]]) -> None:
        self.conflicts = conflicts
        listing = "; ".join(
            f"{t}: {', '.join(ids[:20])}" + (f" and {len(ids) - 20} more" if len(ids) > 20 else "")
            for t, ids in conflicts.items()
        )
        super().__init__(
            f"ids held by another firm (never overwritten; choose other ids): {listing}"
        )


class RegistryImportError(CloudError, ValueError):
    """Rows that do not validate; ``problems`` lists ``(where, message)`` pairs."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        shown = "\n  ".join(f"{w}: {m}" for w, m in problems[:50])
        more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__(f"registry import rejected ({len(problems)} problems)\n  {shown}{more}")


def _rows(session: Session, orm: type[Base], firm_ids: set[str] | None) -> list[Any]:
    stmt = select(orm)
    if firm_ids is not None:
        if orm is Firm:
            stmt = stmt.where(Firm.id.in_(firm_ids))
        elif orm is Line:
            stmt = stmt.join(Site).where(Site.firm_id.in_(firm_ids))
        else:
            stmt = stmt.where(orm.firm_id.in_(firm_ids))  # type: ignore[attr-defined]
    return list(session.scalars(stmt.order_by(orm.id)))  # type: ignore[attr-defined]


def export_document(session: Session, *, firm_ids: set[str] | None = None) -> RegistryDocument:
    """The registry (or the given firms' part of it) as a :class:`RegistryDocument`."""
    data: dict[str, list[Any]] = {}
    for table, (orm, schema) in TABLES.items():
        data[table] = [
            schema.model_validate(row, from_attributes=True)
            for row in _rows(session, orm, firm_ids)
        ]
    return RegistryDocument.model_validate(data)


def _parse(doc: RegistryDocument | Mapping[str, Any]) -> RegistryDocument:
    if isinstance(doc, RegistryDocument):
        return doc
    try:
        return RegistryDocument.model_validate(doc)
    except ValidationError as exc:
        raise RegistryImportError(
            [(".".join(str(p) for p in e["loc"]), e["msg"]) for e in exc.errors()]
        ) from None


def parse_document_json(raw: bytes, *, max_rows: int) -> RegistryDocument:
    """Parse and validate a JSON registry document, at most ``max_rows`` rows in all.

    The rows are counted before any is validated, and validated in chunks of
    :data:`CHUNK_ROWS` (each a short call), so a large document neither builds a second
    full copy before its size is known nor holds the interpreter for one long call while
    other requests of the process wait.

    Raises:
        RegistryImportError: not JSON, not an object, unknown keys, more than ``max_rows``
            rows (the message names the limit), or invalid rows
            (``machines[12].clamp_force_kN: ...``).
    """
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise RegistryImportError([("body", f"not valid JSON: {exc}")]) from None
    if not isinstance(data, dict):
        raise RegistryImportError([("body", "expected a JSON object with the tables as keys")])
    unknown = sorted(set(data) - {"version", *TABLES})
    if unknown:
        raise RegistryImportError(
            [(k, f"unknown key; expected version or {list(TABLES)}") for k in unknown]
        )
    problems: list[tuple[str, str]] = []
    for table in TABLES:
        if not isinstance(data.get(table, []), list):
            problems.append((table, "expected a list of rows"))
    if problems:
        raise RegistryImportError(problems)
    total = sum(len(data.get(t, [])) for t in TABLES)
    if total > max_rows:
        raise RegistryImportError(
            [("body", f"{total} rows; the limit is {max_rows} rows per import (max_import_rows)")]
        )
    tables: dict[str, list[Any]] = {}
    for table, adapter in _ADAPTERS.items():
        rows: list[Any] = data.get(table, [])
        out: list[Any] = []
        for start in range(0, len(rows), CHUNK_ROWS):
            time.sleep(0)  # let the process's other threads (requests) take the GIL
            try:
                out += adapter.validate_python(rows[start : start + CHUNK_ROWS])
            except ValidationError as exc:
                for e in exc.errors():
                    index, *field = e["loc"]
                    where = f"{table}[{start + int(index)}]" + "".join(f".{f}" for f in field)
                    problems.append((where, e["msg"]))
        tables[table] = out
    version = data.get("version", 1)
    if not isinstance(version, int) or isinstance(version, bool):
        problems.append(("version", "expected an integer"))
    if problems:
        raise RegistryImportError(problems)
    return RegistryDocument.model_construct(
        version=version,
        firms=tables["firms"],
        sites=tables["sites"],
        lines=tables["lines"],
        machines=tables["machines"],
        molds=tables["molds"],
    )


def _chunks(values: Sequence[Any], size: int = CHUNK_ROWS) -> Iterator[Sequence[Any]]:
    for i in range(0, len(values), size):
        yield values[i : i + size]


def _owners(session: Session, table: str, ids: Sequence[str]) -> dict[str, str]:
    """Stored id -> owning firm of the rows of ``table`` among ``ids`` (chunked queries)."""
    orm = TABLES[table][0]
    out: dict[str, str] = {}
    for chunk in _chunks(sorted(set(ids))):
        if orm is Firm:
            stmt = select(Firm.id, Firm.id).where(Firm.id.in_(chunk))
        elif orm is Line:
            stmt = select(Line.id, Site.firm_id).join(Site).where(Line.id.in_(chunk))
        else:
            column = orm.id  # type: ignore[attr-defined]
            stmt = select(column, orm.firm_id).where(column.in_(chunk))  # type: ignore[attr-defined]
        out.update((str(i), str(f)) for i, f in session.execute(stmt))
    return out


def _firm_problems(
    session: Session, doc: RegistryDocument, firm_id: str
) -> tuple[list[tuple[str, str]], dict[str, list[str]]]:
    """Rows declaring another firm or referring to another firm's parents (422), and the
    ids of rows stored for *other* firms (409): an import only ever writes ``firm_id``'s rows.
    """
    problems: list[tuple[str, str]] = []
    for table in ("firms", "sites", "machines", "molds"):
        for i, row in enumerate(getattr(doc, table)):
            owner = row.id if table == "firms" else row.firm_id
            if owner != firm_id:
                where = f"{table}[{i}].{'id' if table == 'firms' else 'firm_id'}"
                problems.append((where, f"{owner!r} is not the importing firm {firm_id!r}"))
    stored = {t: _owners(session, t, [r.id for r in getattr(doc, t)]) for t in TABLES}
    foreign = {
        table: sorted(
            {r.id for r in getattr(doc, table) if stored[table].get(r.id, firm_id) != firm_id}
        )
        for table in TABLES
    }
    foreign = {t: ids for t, ids in foreign.items() if ids}
    sites = {s.id for s in doc.sites} | set(
        session.scalars(select(Site.id).where(Site.firm_id == firm_id))
    )
    for i, line in enumerate(doc.lines):
        if line.site_id not in sites:
            problems.append(
                (f"lines[{i}].site_id", f"{line.site_id!r} is not a site of firm {firm_id!r}")
            )
    lines = {ln.id for ln in doc.lines} | set(
        session.scalars(select(Line.id).join(Site).where(Site.firm_id == firm_id))
    )
    for i, machine in enumerate(doc.machines):
        if machine.line_id not in lines:
            problems.append(
                (f"machines[{i}].line_id", f"{machine.line_id!r} is not a line of firm {firm_id!r}")
            )
    return problems, foreign


def _duplicates(doc: RegistryDocument) -> list[tuple[str, str]]:
    problems = []
    for table in TABLES:
        seen: set[str] = set()
        for i, row in enumerate(getattr(doc, table)):
            if row.id in seen:
                problems.append((f"{table}[{i}].id", f"{row.id!r} appears twice in {table}"))
            seen.add(row.id)
    return problems


def _touched_firms(session: Session, doc: RegistryDocument) -> tuple[str, ...]:
    """Every firm whose rows an import without ``firm_id`` changes: the declared owners
    and the stored owners of the rows it overwrites (a platform import may move rows)."""
    firms: set[str] = {f.id for f in doc.firms}
    for table in ("sites", "machines", "molds"):
        firms |= {r.firm_id for r in getattr(doc, table)}
    for table in TABLES:
        firms |= set(_owners(session, table, [r.id for r in getattr(doc, table)]).values())
    site_firms = {s.id: s.firm_id for s in doc.sites}
    unknown = [ln.site_id for ln in doc.lines if ln.site_id not in site_firms]
    firms |= {site_firms[ln.site_id] for ln in doc.lines if ln.site_id in site_firms}
    firms |= set(_owners(session, "sites", unknown).values())
    return tuple(sorted(firms))


def import_document(
    session: Session, doc: RegistryDocument | Mapping[str, Any], *, firm_id: str | None = None
) -> dict[str, int]:
    """Validate then upsert a document; returns rows written per table.

    Rows are written with chunked bulk statements (one ``SELECT`` per
    :data:`CHUNK_ROWS` ids to split inserts from updates, then one ``executemany`` of
    each), so 50,000 rows take seconds, not one query per row.

    Args:
        firm_id: the importing firm (the API's path firm). Every row must be that firm's:
            declared by ``firm_id`` (firm rows by ``id``), lines on the firm's sites,
            machines on the firm's lines. ``None`` (platform tools, tests) imports rows of
            any firms.

    Raises:
        RegistryImportError: any row invalid, duplicated, or (with ``firm_id``) declaring
            or referring to another firm (nothing is written).
        RegistryOwnershipError: (with ``firm_id``) ids that rows of *other* firms already
            hold; they are never overwritten (nothing is written).
    """
    doc = _parse(doc)
    problems = _duplicates(doc)
    foreign: dict[str, list[str]] = {}
    if firm_id is not None:
        more, foreign = _firm_problems(session, doc, firm_id)
        problems += more
    if problems:
        raise RegistryImportError(problems)
    if foreign:
        raise RegistryOwnershipError(foreign)
    options = {CHANGED_FIRMS_OPTION: (firm_id,) if firm_id else _touched_firms(session, doc)}
    counts = {}
    for table, (orm, _schema) in TABLES.items():
        rows = [r.model_dump() for r in getattr(doc, table)]
        stored = _owners(session, table, [r["id"] for r in rows])
        new = [r for r in rows if r["id"] not in stored]
        old = [r for r in rows if r["id"] in stored]
        for chunk in _chunks(new):
            time.sleep(0)
            session.execute(insert(orm), list(chunk), execution_options=options)
        for chunk in _chunks(old):
            time.sleep(0)
            session.execute(update(orm), list(chunk), execution_options=options)
        counts[table] = len(rows)
    session.flush()
    return counts


def export_csv(session: Session, *, firm_ids: set[str] | None = None) -> dict[str, str]:
    """One CSV text per table (``firms.csv`` ...); list fields are ``;``-joined."""
    doc = export_document(session, firm_ids=firm_ids)
    out: dict[str, str] = {}
    for table, (_orm, schema) in TABLES.items():
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(schema.model_fields), lineterminator="\n")
        writer.writeheader()
        for row in getattr(doc, table):
            values = row.model_dump(mode="json")
            writer.writerow(
                {
                    k: ";".join(v) if k in _LIST_FIELDS else ("" if v is None else v)
                    for k, v in values.items()
                }
            )
        out[f"{table}.csv"] = buf.getvalue()
    return out


def dumps(doc: RegistryDocument) -> str:
    """Stable JSON text of a document."""
    return json.dumps(doc.model_dump(mode="json"), indent=2, sort_keys=True, ensure_ascii=False)
