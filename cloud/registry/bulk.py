"""Bulk import/export of the registry as JSON (one document) and CSV (one file per table).

Import validates every row with the ``XCreate`` schemas before writing anything, and
reports every bad row as ``{table}[{index}].{field}: {problem}`` (CSV: ``{file}:{line}``).
Rows are upserted by id, so importing the same document twice changes nothing.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.registry.models import Base, Firm, Line, Machine, Mold, Site
from cloud.registry.schemas import (
    FirmCreate,
    LineCreate,
    MachineCreate,
    MoldCreate,
    RegistryDocument,
    SiteCreate,
)

__all__ = ["RegistryImportError", "export_csv", "export_document", "import_csv", "import_document"]

#: Table name -> (ORM class, create schema), in foreign-key order.
TABLES: Final[dict[str, tuple[type[Base], type[BaseModel]]]] = {
    "firms": (Firm, FirmCreate),
    "sites": (Site, SiteCreate),
    "lines": (Line, LineCreate),
    "machines": (Machine, MachineCreate),
    "molds": (Mold, MoldCreate),
}
_LIST_FIELDS: Final = {"resins", "certifications"}


class RegistryImportError(ValueError):
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


def import_document(session: Session, doc: RegistryDocument | Mapping[str, Any]) -> dict[str, int]:
    """Validate then upsert a document; returns rows written per table.

    Raises:
        RegistryImportError: any row invalid (nothing is written).
    """
    if not isinstance(doc, RegistryDocument):
        try:
            doc = RegistryDocument.model_validate(doc)
        except ValidationError as exc:
            raise RegistryImportError(
                [(".".join(str(p) for p in e["loc"]), e["msg"]) for e in exc.errors()]
            ) from None
    counts = {}
    for table, (orm, _schema) in TABLES.items():
        rows: Sequence[BaseModel] = getattr(doc, table)
        for row in rows:
            session.merge(orm(**row.model_dump()))
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


def import_csv(session: Session, files: Mapping[str, str]) -> dict[str, int]:
    """Import CSV texts named ``{table}.csv`` (any subset). Raises :class:`RegistryImportError`."""
    data: dict[str, list[dict[str, Any]]] = {}
    problems: list[tuple[str, str]] = []
    for name, text in files.items():
        table = name.removesuffix(".csv")
        if table not in TABLES:
            problems.append((name, f"unknown table; expected one of {sorted(TABLES)}"))
            continue
        schema = TABLES[table][1]
        rows = []
        for line_no, raw in enumerate(csv.DictReader(io.StringIO(text)), start=2):
            row: dict[str, Any] = {
                k: ([x for x in v.split(";") if x] if k in _LIST_FIELDS else v)
                for k, v in raw.items()
                if v not in ("", None) or k in _LIST_FIELDS
            }
            try:
                rows.append(schema.model_validate(row).model_dump())
            except ValidationError as exc:
                for e in exc.errors():
                    field = ".".join(str(p) for p in e["loc"]) or "<row>"
                    problems.append((f"{name}:{line_no}.{field}", e["msg"]))
        data[table] = rows
    if problems:
        raise RegistryImportError(problems)
    return import_document(session, data)


def dumps(doc: RegistryDocument) -> str:
    """Stable JSON text of a document."""
    return json.dumps(doc.model_dump(mode="json"), indent=2, sort_keys=True, ensure_ascii=False)
