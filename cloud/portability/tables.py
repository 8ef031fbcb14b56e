"""Which registry rows belong to a firm, and how a row is written to and read from JSON.

Every table of :data:`renkei.cloud.registry.Base.metadata` has exactly one :class:`TableSpec` or
is listed in :data:`PLATFORM_TABLES` (a unit test enforces it, so a new table cannot be
forgotten by the export). A spec says
how the firm's rows are found: by an *owner column* equal to the firm id, or through a
*parent* row of the firm (lines through their site, group members through their group,
takeover jobs and assignments through their request). The same rule selects rows for the
export, deletes them for ``--replace`` and checks every imported row (an archive can only
ever add rows of its own firm).

Rows are dumped column by column from SQLAlchemy Core (all columns, including those the
bulk registry document leaves out: ``created_at``, calendars, ...). JSON values:

=================  =================================================================
column type        JSON
=================  =================================================================
DateTime           ISO 8601 text as the database returns it (naive or with offset)
Date               ``YYYY-MM-DD``
Enum               the stored value (``injection_molding``)
JSON               the JSON value itself
Float              number (Python ``json``: shortest round-trip repr; NaN/Infinity
                   kept as the ``NaN``/``Infinity`` tokens Python reads back)
Integer, String,   number, text, ``true``/``false``, ``null``
Boolean, NULL
=================  =================================================================
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Final

from sqlalchemy import JSON, Column, ColumnElement, Date, DateTime, Enum, Integer, String, Table
from sqlalchemy import select as sa_select

from renkei.cloud.registry import Base

__all__ = [
    "PLATFORM_TABLES",
    "SPECS",
    "TableSpec",
    "decoder",
    "encoder",
    "firm_filter",
    "int_pk",
    "spec",
    "str_pk",
    "table_of",
]


def _member_firm(row: Mapping[str, Any]) -> tuple[str, ...]:
    return (str(row["firm_id"]),)


def _grantee_firm(row: Mapping[str, Any]) -> tuple[str, ...]:
    return (str(row["grantee_id"]),) if row.get("grantee_kind") == "firm" else ()


def _partner_firm(row: Mapping[str, Any]) -> tuple[str, ...]:
    return (str(row["partner_firm_id"]),)


@dataclass(frozen=True, slots=True)
class TableSpec:
    """How one table's rows of a firm are found and checked.

    Attributes:
        name: SQL table name.
        group: archive group (``registry``, ``credentials``, ``policies``, ...).
        owner_column: column that equals the firm id in the firm's rows.
        parent: ``(column, parent table)`` when rows belong to the firm through a parent
            row of the firm (exclusive with ``owner_column``).
        firm_refs: the *other* firms a row refers to and needs in the target (a foreign
            key, or a grant naming a firm); such rows are skipped (and reported) when the
            firm is missing there, or the import fails with ``strict``.
        soft_refs: ``(column, table)`` pairs of integer ids of ``table`` held without a
            foreign key; they follow an id the import had to renumber, as foreign keys do.
    """

    name: str
    group: str
    owner_column: str | None = None
    parent: tuple[str, str] | None = None
    firm_refs: Callable[[Mapping[str, Any]], tuple[str, ...]] | None = field(
        default=None, compare=False
    )
    soft_refs: tuple[tuple[str, str], ...] = ()


#: Every table, in foreign-key (load) order; deletion runs in reverse.
SPECS: Final[tuple[TableSpec, ...]] = (
    TableSpec("firm", "registry", owner_column="id"),
    TableSpec("site", "registry", owner_column="firm_id"),
    TableSpec("line", "registry", parent=("site_id", "site")),
    TableSpec("machine", "registry", owner_column="firm_id"),
    TableSpec("mold", "registry", owner_column="firm_id"),
    TableSpec("api_credential", "credentials", owner_column="firm_id"),
    TableSpec("partner_group", "policies", owner_column="owner_firm_id"),
    TableSpec(
        "partner_group_member",
        "policies",
        parent=("group_id", "partner_group"),
        firm_refs=_member_firm,
    ),
    TableSpec("sharing_grant", "policies", owner_column="owner_firm_id", firm_refs=_grantee_firm),
    TableSpec("capacity_booking", "bookings", owner_column="firm_id"),
    TableSpec("disruption", "disruptions", owner_column="firm_id"),
    TableSpec("takeover_request", "takeovers", owner_column="firm_id"),
    TableSpec("takeover_job", "takeovers", parent=("request_id", "takeover_request")),
    TableSpec(
        "takeover_assignment",
        "takeovers",
        parent=("request_id", "takeover_request"),
        firm_refs=_partner_firm,
    ),
    TableSpec("gateway_status", "gateways", owner_column="firm_id"),
    TableSpec("site_bridge_status", "gateways", owner_column="firm_id"),
    # the firm's gateway identities (token hashes only, as its credential hashes)
    TableSpec("gateway_enrolment", "gateways", owner_column="firm_id"),
    TableSpec("deployment", "rollout", owner_column="firm_id"),
    TableSpec("deployment_target", "rollout", owner_column="firm_id"),
    TableSpec("fleet_gateway", "rollout", owner_column="firm_id"),
    TableSpec(
        "fleet_model",
        "rollout",
        owner_column="firm_id",
        soft_refs=(("desired_deployment_id", "deployment"), ("last_deployment_id", "deployment")),
    ),
    TableSpec("audit_event", "audit", owner_column="owner_firm_id"),
    # the firm's own channels (its Slack webhook URL and LINE channel token included: the
    # archive is the firm's, like its credential hashes) and the record of deliveries
    TableSpec("notification_settings", "notifications", owner_column="firm_id"),
    TableSpec("notification_delivery", "notifications", owner_column="firm_id"),
    # good/reject part counts the firm's operators recorded (OEE quality basis operator)
    TableSpec("operator_count", "oee", owner_column="firm_id"),
)
_BY_NAME: Final = {s.name: s for s in SPECS}

#: Tables that belong to the platform, not to a firm: never exported (reason given).
PLATFORM_TABLES: Final[dict[str, str]] = {
    "model_signing_key": "the public keys the platform accepts model signatures from",
    "model_release": "the platform-wide catalog of signed model releases (deployments name "
    "releases by model name and version; the target needs the same releases for new "
    "rollouts)",
}


def spec(name: str) -> TableSpec:
    """The spec of table ``name`` (``KeyError`` for an unknown table)."""
    return _BY_NAME[name]


def table_of(s: TableSpec) -> Table:
    """The Core table of a spec (from the ORM metadata: the current schema)."""
    return Base.metadata.tables[s.name]


def firm_filter(s: TableSpec, firm_id: str) -> ColumnElement[bool]:
    """WHERE clause selecting the firm's rows of the spec's table."""
    t = table_of(s)
    if s.owner_column is not None:
        return t.c[s.owner_column] == firm_id
    assert s.parent is not None
    column, parent_name = s.parent
    parent = _BY_NAME[parent_name]
    pt = table_of(parent)
    pk = next(iter(pt.primary_key.columns))
    return t.c[column].in_(sa_select(pk).where(firm_filter(parent, firm_id)))


def str_pk(t: Table) -> str | None:
    """Name of a single-column string primary key (ids that are global across firms)."""
    cols = list(t.primary_key.columns)
    if len(cols) == 1 and isinstance(cols[0].type, String):
        return cols[0].name
    return None


def int_pk(t: Table) -> str | None:
    """Name of a single-column integer (autoincrement) primary key."""
    cols = list(t.primary_key.columns)
    if len(cols) == 1 and isinstance(cols[0].type, Integer):
        return cols[0].name
    return None


# --------------------------------------------------------------------------- values


def _identity(value: Any) -> Any:
    return value


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, (date, datetime)) else value


def _enum_value(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


def _encode_one(column: Column[Any]) -> Callable[[Any], Any]:
    typ = column.type
    if isinstance(typ, (DateTime, Date)):
        return _iso
    if isinstance(typ, Enum):
        return _enum_value
    return _identity


def encoder(t: Table) -> Callable[[Mapping[Any, Any]], dict[str, Any]]:
    """Function turning a Core row mapping into a JSON-ready dict of every column."""
    plan = [(c.name, _encode_one(c)) for c in t.columns]

    def encode(row: Mapping[Any, Any]) -> dict[str, Any]:
        return {name: None if row[name] is None else fn(row[name]) for name, fn in plan}

    return encode


def _decode_one(column: Column[Any]) -> Callable[[Any], Any]:
    typ = column.type
    if isinstance(typ, DateTime):
        return datetime.fromisoformat
    if isinstance(typ, Date):
        return date.fromisoformat
    if isinstance(typ, Enum) and typ.enum_class is not None:
        return typ.enum_class
    if isinstance(typ, JSON):
        return _identity
    return _identity


def decoder(t: Table, columns: list[str]) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """Function turning an archived row (JSON dict) into values for a Core insert.

    Raises:
        ValueError: (from the returned function) a column missing from the row, or a
            value the column type cannot take; the message names the column.
    """
    plan = [(name, _decode_one(t.c[name])) for name in columns]

    def decode(row: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, fn in plan:
            if name not in row:
                raise ValueError(f"column {name} missing")
            value = row[name]
            try:
                out[name] = None if value is None else fn(value)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"column {name}: {value!r}: {exc}") from None
        return out

    return decode
