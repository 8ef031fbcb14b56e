"""``export_firm``: one firm's registry, policies, plans, logs and time series to an archive."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Final

from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, select, text

from renkei.cloud.portability.archive import ArchiveBuilder
from renkei.cloud.portability.errors import PortabilityError
from renkei.cloud.portability.manifest import (
    FORMAT_VERSION,
    Manifest,
    TableMember,
    TimeseriesInfo,
    TimeseriesMember,
    measurement_member_name,
    table_member_name,
)
from renkei.cloud.portability.tables import SPECS, TableSpec, encoder, firm_filter, table_of
from renkei.cloud.portability.timeseries import InfluxReader, export_measurement
from renkei.cloud.registry import make_engine
from renkei.cloud.registry.migrate import alembic_config
from renkei.cloud.store import InfluxSettings
from renkei.core.progress import NO_PROGRESS, Reporter

__all__ = ["NOTES", "ExportReport", "export_firm", "software_version"]

log = logging.getLogger(__name__)

#: What the archive holds and leaves out; copied into every manifest (``notes``).
NOTES: Final[dict[str, str]] = {
    "registry": "the firm row, its sites (with calendars), lines, machines and molds; "
    "every column, including created_at",
    "credentials": "the firm's API credentials as stored: key id, role, label, revoked and "
    "the SHA-256 of the secret; secrets never exist in clear, so the same keys keep "
    "working after the import; admin credentials (a platform role) are exported but never "
    "imported",
    "policies": "partner groups the firm owns (with their members, which may be other "
    "firms) and sharing grants the firm gave; grants other firms gave to it and its "
    "memberships in other firms' groups belong to those firms and are not included",
    "bookings": "the firm's capacity bookings",
    "disruptions": "the firm's disruptions (declared and suspected)",
    "takeovers": "the firm's own takeover requests with all their jobs and assignments "
    "(assignments name partner firms); assignments in which the firm is the partner are "
    "part of other firms' plans and are not included",
    "gateways": "the last known status of the firm's gateways",
    "rollout": "the firm's model deployments with their per-gateway targets, and its "
    "fleet state (models running, desired and pinned per gateway)",
    "not included": "the platform's model catalog and signing keys (platform-wide, not "
    "the firm's); grants, group memberships and takeover assignments owned by other firms",
    "oee": "good/reject part counts the firm's operators recorded per machine and interval "
    "(their effect on OEE is in the timeseries: masked oee rows and src=operator points)",
    "audit": "the audit log of reads of the firm's data (owner_firm_id = the firm); its "
    "own reads of other firms' data are in their logs",
    "timeseries": "every point of every measurement with tag firm=<id>, as line protocol "
    "with nanosecond timestamps (one member per measurement)",
}

_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=True)


def software_version() -> str:
    """Version of the installed ``renkei`` distribution (``unknown`` if not installed)."""
    try:
        return metadata.version("renkei")
    except metadata.PackageNotFoundError:
        return "unknown"


@dataclass(slots=True)
class ExportReport:
    """What :func:`export_firm` wrote.

    Attributes:
        rows: table -> rows exported. points: measurement -> points exported.
        seconds: whole export; timeseries_seconds: the time-series part of it.
    """

    firm_id: str
    path: Path
    archive_bytes: int
    rows: dict[str, int] = field(default_factory=dict)
    points: dict[str, int] = field(default_factory=dict)
    timeseries_included: bool = False
    seconds: float = 0.0
    timeseries_seconds: float = 0.0
    slices: int = 0
    """Time-sliced InfluxDB queries run."""
    chunks: int = 0
    """Streamed chunks (of at most ``chunk_points`` rows) received."""

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())

    @property
    def total_points(self) -> int:
        return sum(self.points.values())

    @property
    def points_per_s(self) -> float:
        return self.total_points / self.timeseries_seconds if self.timeseries_seconds else 0.0


def export_firm(
    firm_id: str,
    *,
    database_url: str,
    out: Path,
    influx: InfluxSettings | None = None,
    overwrite: bool = False,
    chunk_points: int = 10_000,
    slice_points: int = 200_000,
    progress: Reporter = NO_PROGRESS,
) -> ExportReport:
    """Write firm ``firm_id``'s data to the archive ``out`` (format:
    :mod:`renkei.cloud.portability`).

    The registry tables are read in one read transaction (a consistent snapshot); the time
    series are read afterwards, slice by slice (points written meanwhile may or may not
    be included: stop the firm's gateways, or accept it).

    Args:
        database_url: SQLAlchemy URL of the source registry (must be at the newest schema).
        out: archive path; refused if it exists unless ``overwrite``.
        influx: the source InfluxDB; ``None`` exports no time series (the manifest says so).
        chunk_points: rows per streamed InfluxDB chunk (the export's memory bound).
        slice_points: points each time-sliced query aims at.
        progress: told of the work done: ``tables`` (total: the registry tables),
            ``measurements`` (total: the firm's measurements) and ``points`` (total
            unknown until the end; advanced per streamed chunk).

    Raises:
        PortabilityError: firm not found, registry schema not current, a series line
            protocol cannot carry.
        ArchiveError: ``out`` exists or its directory does not.
        StoreUnavailable, StoreRejected: InfluxDB errors.
    """
    started = time.perf_counter()
    created_at = datetime.now(UTC)
    report = ExportReport(firm_id=firm_id, path=out, archive_bytes=0)
    engine = make_engine(database_url)
    try:
        with ArchiveBuilder(out, overwrite=overwrite) as builder:
            members: list[TableMember | TimeseriesMember] = []
            with engine.connect() as conn:
                _begin_snapshot(conn)
                revision = _schema_revision(conn, database_url)
                firm = table_of(SPECS[0])
                if conn.execute(select(firm.c.id).where(firm.c.id == firm_id)).first() is None:
                    raise PortabilityError(f"firm {firm_id!r} not found in the registry")
                progress.task("tables", "registry tables", len(SPECS))
                for s in SPECS:
                    member = _export_table(conn, s, firm_id, builder)
                    members.append(member)
                    report.rows[s.name] = member.rows
                    progress.advance("tables")
                conn.rollback()
            log.info("registry of %s: %d rows", firm_id, report.total_rows)
            ts_started = time.perf_counter()
            info = TimeseriesInfo(included=False)
            if influx is not None:
                series = _export_timeseries(
                    influx,
                    firm_id,
                    builder,
                    report,
                    chunk_points=chunk_points,
                    slice_points=slice_points,
                    progress=progress,
                )
                members.extend(series)
                report.points = {m.measurement: m.points for m in series}
                report.timeseries_included = True
                info = TimeseriesInfo(
                    included=True,
                    database=influx.database,
                    retention_policy=influx.retention_policy,
                    points=report.total_points,
                )
            report.timeseries_seconds = time.perf_counter() - ts_started
            manifest = Manifest(
                format="renkei-firm-archive",
                format_version=FORMAT_VERSION,
                firm_id=firm_id,
                created_at=created_at,
                software_version=software_version(),
                schema_revision=revision,
                timeseries=info,
                members=members,
                notes=NOTES,
            )
            report.archive_bytes = builder.finish(manifest)
    finally:
        engine.dispose()
    report.seconds = time.perf_counter() - started
    return report


def _begin_snapshot(conn: Connection) -> None:
    """Make every following SELECT of ``conn`` read one snapshot."""
    if conn.dialect.name == "sqlite":
        # pysqlite only opens a transaction before DML; an explicit BEGIN pins the
        # snapshot (WAL) until the rollback at the end.
        conn.exec_driver_sql("BEGIN")
    elif conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")


def _schema_revision(conn: Connection, url: str) -> str | None:
    """The registry's Alembic revision; it must be this software's newest one."""
    if not inspect(conn).has_table("alembic_version"):
        return None
    current = [str(v) for v in conn.scalars(text("SELECT version_num FROM alembic_version"))]
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    if current != [head]:
        raise PortabilityError(
            f"the registry's schema revision is {current or 'none'}, this software's is {head}: "
            "migrate the registry first (renkei cloud api migrates on start)"
        )
    return head


def _export_table(
    conn: Connection, s: TableSpec, firm_id: str, builder: ArchiveBuilder
) -> TableMember:
    t = table_of(s)
    name = table_member_name(s.name)
    writer = builder.member(name)
    encode = encoder(t)
    stmt = select(t).where(firm_filter(s, firm_id)).order_by(*t.primary_key.columns)
    rows = 0
    try:
        for row in conn.execute(stmt.execution_options(yield_per=1000)).mappings():
            writer.write(_JSON.encode(encode(row)).encode() + b"\n")
            rows += 1
    except BaseException:
        writer.abort()
        raise
    sha, size = writer.close()
    return TableMember(
        name=name,
        group=s.group,
        table=s.name,
        columns=[c.name for c in t.columns],
        rows=rows,
        sha256=sha,
        bytes=size,
    )


def _export_timeseries(
    settings: InfluxSettings,
    firm_id: str,
    builder: ArchiveBuilder,
    report: ExportReport,
    *,
    chunk_points: int,
    slice_points: int,
    progress: Reporter,
) -> list[TimeseriesMember]:
    reader = InfluxReader(settings)
    out: list[TimeseriesMember] = []

    def on_points(n: int) -> None:
        progress.advance("points", n)

    try:
        measurements = list(reader.measurements(firm_id))
        progress.task("measurements", "measurements", len(measurements))
        progress.task("points", "time-series points", None)
        for index, measurement in enumerate(measurements):
            name = measurement_member_name(index, measurement)
            writer = builder.member(name, level=1)
            try:
                stats = export_measurement(
                    reader,
                    firm_id,
                    measurement,
                    writer.write,
                    chunk_points=chunk_points,
                    slice_points=slice_points,
                    on_points=on_points,
                )
            except BaseException:
                writer.abort()
                raise
            sha, size = writer.close()
            progress.advance("measurements")
            report.slices += stats.slices
            report.chunks += stats.chunks
            out.append(
                TimeseriesMember(
                    name=name,
                    measurement=measurement,
                    points=stats.points,
                    fields=stats.fields,
                    values=stats.values,
                    first_ns=stats.first_ns,
                    last_ns=stats.last_ns,
                    sha256=sha,
                    bytes=size,
                )
            )
    finally:
        reader.close()
    return out
