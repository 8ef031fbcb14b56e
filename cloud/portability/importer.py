"""``import_archive``: load a firm archive into an install (registry + InfluxDB).

Why this module is long: it is one ordered procedure. Verify the archive, plan, migrate,
then in one registry transaction check conflicts and field types, delete (with
``replace``), insert the rows and advance the sequences, then write the time series and
verify the counts; the order is what guarantees that nothing is written unless the archive
and the target allow it, and each step is a short function of this module. The container,
manifest, tables and time series it uses live in their own modules.

Order of work, so that nothing is written unless the archive and the target allow it:

1. Every member's size and SHA-256 is verified (:meth:`ArchiveReader.verify`); the
   manifest's format version and every table and column must be known to this software.
2. The small tables are read once: their ids, the firm's ownership of every row (an
   archive can only ever hold rows of its own firm) and the other firms rows refer to.
3. The registry is migrated (``upgrade(url)``, creating a fresh one if needed), then in
   one transaction: conflicts are checked (the firm's rows or time series already in the
   target -> :class:`ImportConflict` unless ``replace``; an archive id held by *another*
   firm of the target -> :class:`ImportConflict` always), the InfluxDB database is
   created if missing and its field types checked, with ``replace`` the firm's rows are
   deleted, and every row is inserted (ownership re-checked row by row). Commit.
4. With ``replace`` the firm's series are dropped from InfluxDB; every measurement's
   points are written in batches, and the per-field value counts are compared with the
   manifest.

References to other firms (partner group members, grants to a firm, takeover assignments'
partner firms) are the choice point: **rows whose other firm does not exist in the target
are skipped and reported** (:attr:`ImportReport.skipped`), because loading a foreign key
to a missing firm is impossible and a grant naming an absent firm id would silently open
the firm's data to whoever registers that id later. Re-importing with ``replace`` once the
partners exist restores them (the archive keeps every row). ``strict=True`` refuses such
an archive instead (:class:`MissingPartners`, nothing written). The audit log's reader
firm ids are history, not foreign keys: they are always kept. Credentials with the
``admin`` role (platform administrators, not the firm's) are never loaded (reported as
skipped): an archive cannot make anyone administrator of the target install.

Integer ids (grants, bookings, disruptions, jobs, assignments, audit events) are kept,
except where another firm of the target already uses one: that row gets a new id (the
reference from takeover requests to disruptions follows) and
:attr:`ImportReport.remapped` lists it. ``--replace`` deletes exactly the firm's rows
(the selection of the export) and updates its firm row in place, so other firms'
references to it (their groups, their plans) survive.

The registry and InfluxDB are two databases: the registry is committed before the time
series are written. When writing the time series fails, the error says so; re-running
the import with ``replace`` completes it (writes are idempotent).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Connection, Table, delete, func, insert, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from renkei.cloud.portability.archive import ArchiveReader, Manifest, TableMember
from renkei.cloud.portability.errors import (
    ArchiveError,
    ImportConflict,
    MissingPartners,
    PortabilityError,
)
from renkei.cloud.portability.tables import (
    SPECS,
    TableSpec,
    decoder,
    firm_filter,
    int_pk,
    spec,
    str_pk,
    table_of,
)
from renkei.cloud.portability.timeseries import InfluxReader, write_member
from renkei.cloud.registry import make_engine
from renkei.cloud.registry.migrate import upgrade
from renkei.cloud.store import InfluxSettings, open_store
from renkei.core.errors import RenkeiError
from renkei.core.progress import NO_PROGRESS, Reporter

__all__ = ["ImportReport", "SkippedRow", "import_archive"]

log = logging.getLogger(__name__)

_BATCH_ROWS: Final = 1000
_SHOWN: Final = 10


@dataclass(frozen=True, slots=True)
class SkippedRow:
    """A row not loaded: the firm it refers to does not exist in the target, or it is an
    ``admin`` credential (a platform role, never carried from one install to another)."""

    table: str
    row: str
    """The row's key columns, e.g. ``group_id=g1 firm_id=beta``."""
    missing_firm: str | None
    """The other firm that is missing (``None`` for an admin credential)."""

    @property
    def reason(self) -> str:
        if self.missing_firm is None:
            return "admin credential: a platform role, not portable"
        return f"firm {self.missing_firm} does not exist in the target"


@dataclass(slots=True)
class ImportReport:
    """What :func:`import_archive` did.

    Attributes:
        rows: table -> rows inserted. points: measurement -> points written.
        skipped: rows left out because their partner firm is missing in the target.
        remapped: table -> {archived id: new id} for integer ids taken by other firms.
        verification_problems: per-field value counts in InfluxDB that differ from the
            manifest after the import (empty = verified).
    """

    firm_id: str
    replaced: bool
    rows: dict[str, int] = field(default_factory=dict)
    skipped: list[SkippedRow] = field(default_factory=list)
    remapped: dict[str, dict[int, int]] = field(default_factory=dict)
    points: dict[str, int] = field(default_factory=dict)
    timeseries_included: bool = False
    verification_problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    timeseries_seconds: float = 0.0

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())

    @property
    def total_points(self) -> int:
        return sum(self.points.values())

    @property
    def points_per_s(self) -> float:
        return self.total_points / self.timeseries_seconds if self.timeseries_seconds else 0.0


@dataclass(slots=True)
class _Plan:
    """What the first read of the archive's small tables found."""

    ids: dict[str, set[Any]] = field(default_factory=dict)
    """Table with a string id -> the archive's ids."""
    refs: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    """Other firm id -> (table, row description) of the rows that need it."""


def import_archive(
    path: Path,
    *,
    database_url: str,
    influx: InfluxSettings | None = None,
    replace: bool = False,
    strict: bool = False,
    batch_points: int = 10_000,
    progress: Reporter = NO_PROGRESS,
) -> ImportReport:
    """Load the firm archive at ``path`` into the registry at ``database_url`` and InfluxDB.

    Args:
        influx: target InfluxDB (the database is created if missing); required when the
            archive holds points.
        replace: replace the firm if it already exists (its rows and series are deleted
            first); without it an existing firm is a conflict. An archive exported without
            time series leaves the target's series of the firm alone.
        strict: refuse the archive when rows refer to firms missing in the target (default:
            skip those rows and report them).
        batch_points: points per InfluxDB write.
        progress: told of the work done: ``tables`` (total: the archive's tables) and
            ``points`` (total: the archive's points; advanced per written batch).

    Raises:
        ArchiveError: the archive is corrupt, modified, of an unknown format, or holds rows
            of another firm (names the member).
        ImportConflict: the firm or some of its ids already exist (names them).
        MissingPartners: with ``strict``, rows refer to firms missing in the target.
        PortabilityError: other refusals (no InfluxDB given for an archive with points,
            field type conflicts, a failed time-series write).
        StoreUnavailable: InfluxDB unreachable.
    """
    started = time.perf_counter()
    with ArchiveReader(path) as reader:
        reader.verify()
        manifest = reader.manifest
        firm_id = manifest.firm_id
        _check_schema(manifest)
        if manifest.points and influx is None:
            raise PortabilityError(
                f"the archive holds {manifest.points} points in {len(manifest.series())} "
                "measurements: give the target InfluxDB"
            )
        plan = _plan(reader, manifest)
        report = ImportReport(firm_id=firm_id, replaced=replace)
        report.timeseries_included = manifest.timeseries.included

        upgrade(database_url)
        engine = make_engine(database_url)
        ts_reader = InfluxReader(influx) if influx is not None else None
        store = open_store(influx) if influx is not None else None
        try:
            existing_series: list[str] = []
            with engine.begin() as conn:
                own, counts, foreign = _conflicts(conn, plan, firm_id)
                with_series = manifest.timeseries.included
                if ts_reader is not None and store is not None and with_series:
                    store.ensure_database()
                    existing_series = ts_reader.measurements(firm_id)
                    if existing_series:
                        own["InfluxDB measurements"] = existing_series
                        counts["InfluxDB measurements"] = len(existing_series)
                    _check_field_types(ts_reader, manifest)
                _raise_conflicts(firm_id, own, counts, foreign, replace)
                missing = _missing_firms(conn, plan, firm_id)
                if missing and strict:
                    raise MissingPartners(
                        "rows refer to firms that do not exist in the target: "
                        + "; ".join(
                            f"{f} ({', '.join(f'{t}[{r}]' for t, r in plan.refs[f][:_SHOWN])})"
                            for f in sorted(missing)
                        ),
                        missing={f: [f"{t}[{r}]" for t, r in plan.refs[f]] for f in missing},
                    )
                if replace:
                    _delete_firm(conn, firm_id)
                _load(conn, reader, manifest, plan, missing, replace, report, progress)
            log.info("registry of %s: %d rows imported", firm_id, report.total_rows)

            ts_started = time.perf_counter()
            if ts_reader is not None and store is not None and with_series:
                try:
                    if replace:
                        for measurement in existing_series:
                            ts_reader.drop_firm(measurement, firm_id)
                    progress.task("points", "time-series points", manifest.points)
                    for member in manifest.series():
                        report.points[member.measurement] = write_member(
                            store,
                            reader.records(member),
                            measurement=member.measurement,
                            firm_id=firm_id,
                            batch_points=batch_points,
                            on_points=lambda n: progress.advance("points", n),
                        )
                        log.info("%s: %d points written", member.measurement, member.points)
                    report.timeseries_seconds = time.perf_counter() - ts_started
                    report.verification_problems = _verify_counts(ts_reader, manifest)
                except RenkeiError as exc:
                    raise PortabilityError(
                        f"the registry of {firm_id} was imported, but writing its time series "
                        f"failed after {report.total_points} points: {exc}; fix the cause and "
                        "import again with replace (--replace)"
                    ) from exc
        finally:
            engine.dispose()
            if ts_reader is not None:
                ts_reader.close()
            if store is not None:
                store.close()
    report.seconds = time.perf_counter() - started
    return report


# --------------------------------------------------------------------------- checks


def _check_schema(manifest: Manifest) -> None:
    for member in manifest.tables():
        try:
            s = spec(member.table)
        except KeyError:
            raise ArchiveError(
                f"member {member.name}: table {member.table!r} is unknown to this software "
                "(archive from a newer version?)",
                member=member.name,
            ) from None
        unknown = sorted(set(member.columns) - set(table_of(s).c.keys()))
        if unknown:
            raise ArchiveError(
                f"member {member.name}: columns {unknown} are unknown to this software "
                "(archive from a newer version?)",
                member=member.name,
            )
    if manifest.table("firm") is None:
        raise ArchiveError("the archive has no firm table member")


def _describe(t: Table, row: Mapping[Any, Any]) -> str:
    cols = list(t.primary_key.columns)
    if len(cols) == 1:
        return str(row[cols[0].name])
    return " ".join(f"{c.name}={row[c.name]}" for c in cols)


def _describe_ref(s: TableSpec, row: Mapping[str, Any]) -> str:
    t = table_of(s)
    pk = _describe(t, row)
    if s.name == "takeover_assignment":
        return f"id={pk} request_id={row.get('request_id')} job_id={row.get('job_id')}"
    if s.name == "sharing_grant":
        return f"id={pk} grantee_kind=firm grantee_id={row.get('grantee_id')}"
    return pk


def _owner_check(
    s: TableSpec, member: TableMember, firm_id: str, ids: Mapping[str, set[Any]]
) -> Callable[[int, Mapping[str, Any]], None]:
    """A function raising :class:`ArchiveError` for a row not of ``firm_id``."""
    if s.owner_column is not None:
        column = s.owner_column

        def check(index: int, row: Mapping[str, Any]) -> None:
            if row.get(column) != firm_id:
                raise ArchiveError(
                    f"member {member.name} row {index + 1}: {column}={row.get(column)!r} "
                    f"is not the archive's firm {firm_id!r}",
                    member=member.name,
                )

        return check
    assert s.parent is not None
    pcol, ptable = s.parent
    allowed = ids.get(ptable, set())

    def check_parent(index: int, row: Mapping[str, Any]) -> None:
        if row.get(pcol) not in allowed:
            raise ArchiveError(
                f"member {member.name} row {index + 1}: {pcol}={row.get(pcol)!r} is not a "
                f"{ptable} of the archive's firm {firm_id!r}",
                member=member.name,
            )

    return check_parent


def _plan(reader: ArchiveReader, manifest: Manifest) -> _Plan:
    """Read the tables with global ids or references to other firms (small tables)."""
    plan = _Plan()
    firm_id = manifest.firm_id
    for s in SPECS:
        member = manifest.table(s.name)
        t = table_of(s)
        pk = str_pk(t)
        if member is None or (pk is None and s.firm_refs is None):
            continue
        check = _owner_check(s, member, firm_id, plan.ids)
        ids: set[Any] = set()
        for index, row in enumerate(reader.rows(member)):
            check(index, row)
            if pk is not None:
                ids.add(row.get(pk))
            if s.firm_refs is not None:
                for other in s.firm_refs(row):
                    if other != firm_id:
                        plan.refs.setdefault(other, []).append((s.name, _describe_ref(s, row)))
        if pk is not None:
            plan.ids[s.name] = ids
    if plan.ids.get("firm") != {firm_id}:
        raise ArchiveError(f"the firm member must hold exactly the firm {firm_id!r}")
    return plan


def _chunks(values: Iterable[Any], size: int = 500) -> Iterable[list[Any]]:
    batch: list[Any] = []
    for v in values:
        batch.append(v)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _conflicts(
    conn: Connection, plan: _Plan, firm_id: str
) -> tuple[dict[str, list[str]], dict[str, int], dict[str, list[str]]]:
    """The firm's rows already in the target (first ids and count per table), and the
    archive's string ids that rows of *other* firms hold there."""
    own: dict[str, list[str]] = {}
    counts: dict[str, int] = {}
    foreign: dict[str, list[str]] = {}
    for s in SPECS:
        t = table_of(s)
        pk_cols = list(t.primary_key.columns)
        mine = firm_filter(s, firm_id)
        count = int(conn.scalar(select(func.count()).select_from(t).where(mine)) or 0)
        if count:
            first = select(*pk_cols).where(mine).order_by(*pk_cols).limit(_SHOWN)
            own[s.name] = [_describe(t, r) for r in conn.execute(first).mappings()]
            counts[s.name] = count
        pk = str_pk(t)
        ids = plan.ids.get(s.name)
        if pk is None or not ids:
            continue
        for chunk in _chunks(sorted(ids)):
            taken = select(t.c[pk]).where(t.c[pk].in_(chunk), ~mine).order_by(t.c[pk])
            foreign.setdefault(s.name, []).extend(str(v) for v in conn.scalars(taken))
        if not foreign[s.name]:
            del foreign[s.name]
    return own, counts, foreign


def _raise_conflicts(
    firm_id: str,
    own: dict[str, list[str]],
    counts: Mapping[str, int],
    foreign: dict[str, list[str]],
    replace: bool,
) -> None:
    def listing(found: Mapping[str, list[str]]) -> str:
        parts = []
        for table, ids in found.items():
            total = counts.get(table, len(ids)) if found is own else len(ids)
            more = f" and {total - _SHOWN} more" if total > _SHOWN else ""
            parts.append(f"{table}: {', '.join(ids[:_SHOWN])}{more}")
        return "; ".join(parts)

    if foreign:
        raise ImportConflict(
            f"ids of firm {firm_id}'s archive belong to other firms in the target (they are "
            f"never overwritten; rename or remove them there first): {listing(foreign)}",
            conflicts=foreign,
            replaceable=False,
        )
    if own and not replace:
        raise ImportConflict(
            f"firm {firm_id} already exists in the target ({listing(own)}); import with "
            "replace (--replace) to replace it",
            conflicts=own,
            replaceable=True,
        )


def _missing_firms(conn: Connection, plan: _Plan, firm_id: str) -> set[str]:
    firm = table_of(spec("firm"))
    wanted = sorted(set(plan.refs) - {firm_id})
    present: set[str] = set()
    for chunk in _chunks(wanted):
        rows = conn.execute(select(firm.c.id).where(firm.c.id.in_(chunk)))
        present.update(str(v) for (v,) in rows)
    return set(wanted) - present


def _check_field_types(reader: InfluxReader, manifest: Manifest) -> None:
    problems = []
    for member in manifest.series():
        target = reader.field_types(member.measurement)
        for key, types in member.fields.items():
            have = target.get(key)
            if have is not None and not set(types) <= set(have):
                problems.append(f"{member.measurement}.{key}: archive {types}, target {have}")
    if problems:
        raise PortabilityError(
            "field type conflicts with the target InfluxDB database (it would refuse the "
            "points): " + "; ".join(problems)
        )


# --------------------------------------------------------------------------- loading


def _delete_firm(conn: Connection, firm_id: str) -> None:
    """Delete the firm's rows (the export's selection), children first; keep the firm row."""
    for s in reversed(SPECS):
        if s.name != "firm":
            conn.execute(delete(table_of(s)).where(firm_filter(s, firm_id)))


def _load(
    conn: Connection,
    reader: ArchiveReader,
    manifest: Manifest,
    plan: _Plan,
    missing: set[str],
    replace: bool,
    report: ImportReport,
    progress: Reporter,
) -> None:
    firm_id = manifest.firm_id
    progress.task(
        "tables", "registry tables", sum(manifest.table(s.name) is not None for s in SPECS)
    )
    for s in SPECS:
        member = manifest.table(s.name)
        if member is None:
            continue
        t = table_of(s)
        decode = decoder(t, member.columns)
        check = _owner_check(s, member, firm_id, plan.ids)
        follow = [
            (c.name, fk.column.table.name)
            for c in t.columns
            for fk in c.foreign_keys
            if int_pk(fk.column.table) is not None
        ] + list(s.soft_refs)
        batch: list[dict[str, Any]] = []
        written = 0
        for index, row in enumerate(reader.rows(member)):
            check(index, row)
            if s.name == "api_credential" and row.get("role") == "admin":
                report.skipped.append(SkippedRow(s.name, str(row.get("key_id")), None))
                continue
            refs = s.firm_refs(row) if s.firm_refs is not None else ()
            gone = [f for f in refs if f in missing]
            if gone:
                report.skipped.append(SkippedRow(s.name, _describe_ref(s, row), gone[0]))
                continue
            try:
                values = decode(row)
            except ValueError as exc:
                raise ArchiveError(
                    f"member {member.name} row {index + 1}: {exc}", member=member.name
                ) from None
            for column, target in follow:
                moved = report.remapped.get(target)
                if moved and values.get(column) in moved:
                    values[column] = moved[values[column]]
            batch.append(values)
            if len(batch) >= _BATCH_ROWS:
                written += _insert(conn, s, t, batch, replace, report)
                batch = []
        if batch:
            written += _insert(conn, s, t, batch, replace, report)
        report.rows[s.name] = written
        progress.advance("tables")
    if conn.dialect.name == "postgresql":
        _advance_sequences(conn)


def _insert(
    conn: Connection,
    s: TableSpec,
    t: Table,
    batch: list[dict[str, Any]],
    replace: bool,
    report: ImportReport,
) -> int:
    try:
        if s.name == "firm" and replace:
            (values,) = batch
            if conn.execute(update(t).where(t.c.id == values["id"]).values(**values)).rowcount:
                return 1
            conn.execute(insert(t), batch)
            return 1
        pk = int_pk(t)
        if pk is None:
            conn.execute(insert(t), batch)
            return len(batch)
        ids = [v[pk] for v in batch if v.get(pk) is not None]
        taken = set(conn.scalars(select(t.c[pk]).where(t.c[pk].in_(ids))))
        keep = [v for v in batch if v.get(pk) not in taken]
        move = [v for v in batch if v.get(pk) in taken]
        if keep:
            conn.execute(insert(t), keep)
        if move:
            next_id = int(conn.scalar(select(func.max(t.c[pk]))) or 0) + 1
            moved = report.remapped.setdefault(t.name, {})
            for values in move:
                moved[values[pk]] = next_id
                values[pk] = next_id
                next_id += 1
            conn.execute(insert(t), move)
        return len(batch)
    except IntegrityError as exc:
        raise PortabilityError(f"the target refused rows of table {t.name}: {exc.orig}") from None
    except DBAPIError as exc:
        raise PortabilityError(f"writing table {t.name} failed: {exc.orig}") from None


def _advance_sequences(conn: Connection) -> None:
    """PostgreSQL: move each id sequence past the ids inserted explicitly."""
    for s in SPECS:
        t = table_of(s)
        pk = int_pk(t)
        if pk is not None:
            conn.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{t.name}', '{pk}'), "
                    f'COALESCE((SELECT MAX("{pk}") FROM "{t.name}"), 0) + 1, false)'
                )
            )


def _verify_counts(reader: InfluxReader, manifest: Manifest) -> list[str]:
    problems = []
    for member in manifest.series():
        got = reader.value_counts(member.measurement, manifest.firm_id)
        for key, expected in member.values.items():
            if got.get(key, 0) != expected:
                problems.append(
                    f"{member.measurement}.{key}: {got.get(key, 0)} values in InfluxDB, "
                    f"{expected} in the archive"
                )
    return problems
