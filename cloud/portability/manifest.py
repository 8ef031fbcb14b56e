"""The archive's ``manifest.json``: its schema (format, tables and time-series members
with their size and SHA-256), the member names, and the check of a read manifest's format
and version (:mod:`renkei.cloud.portability.archive` writes and reads the container).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Final, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from renkei.cloud.portability.errors import ArchiveError

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "Manifest",
    "TableMember",
    "TimeseriesInfo",
    "TimeseriesMember",
    "measurement_member_name",
    "parse_manifest",
    "table_member_name",
]

FORMAT: Final = "renkei-firm-archive"
FORMAT_VERSION: Final = 1
MANIFEST_NAME: Final = "manifest.json"
_SHA_RE: Final = r"^[0-9a-f]{64}$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class TableMember(_Model):
    """A registry table's rows for the firm: gzip'd JSON Lines, one object per row.

    Attributes:
        name: member path in the tar (``tables/{table}.jsonl.gz``).
        group: what the table is part of (``registry``, ``credentials``, ``policies``,
            ``bookings``, ``disruptions``, ``takeovers``, ``gateways``, ``audit``).
        table: SQL table name.
        columns: the columns every row object carries (the source schema).
        rows: number of rows (lines).
        sha256, bytes: digest and size of the member as stored (compressed).
    """

    kind: Literal["table"] = "table"
    name: str
    group: str
    table: str
    columns: list[str]
    rows: Annotated[int, Field(ge=0)]
    sha256: Annotated[str, Field(pattern=_SHA_RE)]
    bytes: Annotated[int, Field(ge=0)]


class TimeseriesMember(_Model):
    """One measurement's points with ``firm=<id>``: gzip'd line protocol, ns timestamps.

    Attributes:
        name: member path (``timeseries/{index:03d}-{measurement slug}.lp.gz``).
        measurement: the measurement name (exact; the member name is only a slug).
        points: number of points (records).
        fields: field key -> InfluxDB field type(s) (``float``, ``integer``, ``string``,
            ``boolean``, ``unsigned``; two types only after a cross-shard type conflict).
        values: field key -> number of non-null values exported (checked after import).
        first_ns, last_ns: time range of the points (``None`` when there are none).
        sha256, bytes: digest and size of the member as stored (compressed).
    """

    kind: Literal["timeseries"] = "timeseries"
    name: str
    measurement: str
    points: Annotated[int, Field(ge=0)]
    fields: dict[str, list[str]]
    values: dict[str, int]
    first_ns: int | None
    last_ns: int | None
    sha256: Annotated[str, Field(pattern=_SHA_RE)]
    bytes: Annotated[int, Field(ge=0)]


Member = Annotated[TableMember | TimeseriesMember, Field(discriminator="kind")]


class TimeseriesInfo(_Model):
    """Where the time series came from, and whether they were exported at all."""

    included: bool
    database: str | None = None
    retention_policy: str | None = None
    points: Annotated[int, Field(ge=0)] = 0


class Manifest(_Model):
    """``manifest.json``: what the archive holds and how to check it.

    Attributes:
        format, format_version: ``renkei-firm-archive`` / ``1``.
        firm_id: the exported firm; every row and point in the archive belongs to it.
        created_at: export time (UTC).
        software_version: version of the ``renkei`` package that wrote the archive.
        schema_revision: Alembic revision of the source registry (``None`` if unknown).
        timeseries: time-series provenance (database, retention policy, total points).
        members: every other entry of the tar, in order, with counts and SHA-256.
        notes: human-readable statements of what is and is not included.
    """

    format: Literal["renkei-firm-archive"]
    format_version: int
    firm_id: str
    created_at: datetime
    software_version: str
    schema_revision: str | None
    timeseries: TimeseriesInfo
    members: list[Member]
    notes: dict[str, str] = {}

    def tables(self) -> list[TableMember]:
        """The table members, in load (foreign-key) order."""
        return [m for m in self.members if isinstance(m, TableMember)]

    def series(self) -> list[TimeseriesMember]:
        """The time-series members."""
        return [m for m in self.members if isinstance(m, TimeseriesMember)]

    def table(self, name: str) -> TableMember | None:
        """The member of table ``name``, if the archive has one."""
        return next((m for m in self.tables() if m.table == name), None)

    @property
    def rows(self) -> int:
        return sum(m.rows for m in self.tables())

    @property
    def points(self) -> int:
        return sum(m.points for m in self.series())

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"), option=orjson.OPT_INDENT_2) + b"\n"


def measurement_member_name(index: int, measurement: str) -> str:
    """Tar path of the ``index``-th measurement (a safe slug; the manifest has the name)."""
    slug = re.sub(r"[^A-Za-z0-9_.-]", "_", measurement)[:64] or "_"
    return f"timeseries/{index:03d}-{slug}.lp.gz"


def table_member_name(table: str) -> str:
    return f"tables/{table}.jsonl.gz"


def parse_manifest(data: bytes) -> Manifest:
    """The manifest in ``data``.

    Raises:
        ArchiveError: not JSON, not this format, another format version, or invalid.
    """
    try:
        raw = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ArchiveError(f"{MANIFEST_NAME} is not JSON: {exc}", member=MANIFEST_NAME) from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise ArchiveError(f"not a {FORMAT} (manifest format field)", member=MANIFEST_NAME)
    version = raw.get("format_version")
    if version != FORMAT_VERSION:
        raise ArchiveError(
            f"archive format version {version!r} is not supported (this software reads "
            f"version {FORMAT_VERSION}); use a matching renkei version",
            member=MANIFEST_NAME,
        )
    try:
        return Manifest.model_validate(raw)
    except ValidationError as exc:
        raise ArchiveError(f"{MANIFEST_NAME} is invalid: {exc}", member=MANIFEST_NAME) from None
