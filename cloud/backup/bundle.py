"""Write and read a backup folder (layout: :mod:`renkei.cloud.backup`).

:func:`backup` dumps the registry, writes every firm's archive and last the manifest (a
folder without ``manifest.json`` is an unfinished backup and is refused by
:func:`restore`). :func:`restore` checks the manifest and every file's SHA-256 before it
touches the target, refuses a target registry holding any row, restores, migrates to this
software's newest schema and compares the rows per table with the manifest.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import Engine, inspect, select, text

from renkei.cloud.backup.errors import BackupError
from renkei.cloud.backup.registry_dump import (
    PG_FILE,
    SQLITE_FILE,
    dump_registry,
    is_empty,
    restore_registry,
    row_counts,
)
from renkei.cloud.registry.db import make_engine
from renkei.cloud.registry.migrate import upgrade
from renkei.cloud.registry.models import Firm

if TYPE_CHECKING:
    from renkei.cloud.store import InfluxSettings

__all__ = ["BACKUP_FORMAT", "BackupReport", "RestoreReport", "backup", "restore"]

#: ``format`` of ``manifest.json``; :func:`restore` refuses any other.
BACKUP_FORMAT: Final = "renkei-backup/1"
MANIFEST: Final = "manifest.json"
_CHUNK: Final = 1 << 20


@dataclass(slots=True)
class BackupReport:
    """What :func:`backup` wrote: rows per table, points per firm archive, files, bytes."""

    folder: Path
    rows: dict[str, int] = field(default_factory=dict)
    firms: dict[str, int] = field(default_factory=dict)
    """firm id -> time-series points in its archive (0 without an InfluxDB)."""
    files: dict[str, int] = field(default_factory=dict)
    """relative path -> bytes."""
    seconds: float = 0.0


@dataclass(slots=True)
class RestoreReport:
    """What :func:`restore` restored: rows per table (equal to the manifest's)."""

    rows: dict[str, int] = field(default_factory=dict)
    schema_from: str | None = None
    schema_to: str | None = None
    seconds: float = 0.0


def backup(
    *,
    database_url: str,
    out: Path,
    influx: InfluxSettings | None = None,
    firm_archives: bool = True,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> BackupReport:
    """Back up the registry at ``database_url`` (and each firm's archive) into ``out``.

    Args:
        out: a folder that does not exist or is empty; created.
        influx: the InfluxDB whose points go into the firm archives (``None``: none).
        firm_archives: also write ``firms/{firm_id}.renkei`` per firm.
        now: the clock of the manifest's ``created_at``.

    Raises:
        BackupError: ``out`` not empty, the registry not at this software's schema, a dump
            tool failing; PortabilityError from a firm's export.
    """
    from renkei.cloud.portability.export import export_firm, software_version

    started = time.perf_counter()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BackupError(f"--out {out} exists and is not an empty folder")
    out.mkdir(parents=True, exist_ok=True)
    engine = make_engine(database_url)
    try:
        revision = _revision(engine)
        report = BackupReport(folder=out, rows=row_counts(engine))
        with engine.connect() as conn:
            firm_ids = [str(f) for f in conn.scalars(select(Firm.id).order_by(Firm.id))]
    finally:
        engine.dispose()
    dump = dump_registry(database_url, out)
    if firm_archives:
        (out / "firms").mkdir()
        for firm_id in firm_ids:
            done = export_firm(
                firm_id,
                database_url=database_url,
                out=out / "firms" / f"{firm_id}.renkei",
                influx=influx,
            )
            report.firms[firm_id] = done.total_points
    files = sorted(p for p in out.rglob("*") if p.is_file())
    report.files = {p.relative_to(out).as_posix(): p.stat().st_size for p in files}
    manifest = {
        "format": BACKUP_FORMAT,
        "software_version": software_version(),
        "created_at": now().isoformat(),
        "schema_revision": revision,
        "registry": {"file": dump.name, "rows": report.rows},
        "firms": report.firms,
        "time_series_in_firm_archives": influx is not None and firm_archives,
        "files": {
            p.relative_to(out).as_posix(): {"sha256": _sha256(p), "bytes": p.stat().st_size}
            for p in files
        },
    }
    # written last: a folder without a manifest is an unfinished backup
    tmp = out / f"{MANIFEST}.part"
    tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(out / MANIFEST)
    report.seconds = time.perf_counter() - started
    return report


def restore(*, folder: Path, database_url: str) -> RestoreReport:
    """Restore the registry of the backup ``folder`` into the empty registry at ``database_url``.

    Firm archives are not imported (the registry copy holds every firm already); they are
    for moving one firm (``renkei cloud import``). Time series: restore InfluxDB with its
    own tool (``influxd restore -portable``).

    Raises:
        BackupError: no or an unknown manifest, a missing or altered file (named), a
            target registry holding rows (the table is named), a restore tool failing, or
            rows per table differing from the manifest after the restore.
    """
    started = time.perf_counter()
    manifest = _read_manifest(folder)
    for name, meta in manifest["files"].items():
        path = folder / name
        if not path.is_file():
            raise BackupError(f"{path}: listed in {MANIFEST} but missing")
        if path.stat().st_size != meta["bytes"] or _sha256(path) != meta["sha256"]:
            raise BackupError(f"{path}: SHA-256 differs from {MANIFEST} (altered or truncated)")
    dump_name = manifest["registry"]["file"]
    if dump_name not in (SQLITE_FILE, PG_FILE) or dump_name not in manifest["files"]:
        raise BackupError(f"{MANIFEST}: registry.file {dump_name!r} is not a registry copy")
    engine = make_engine(database_url)
    try:
        empty, why = is_empty(engine)
        if not empty:
            raise BackupError(
                f"the target registry is not empty ({why}): restore only into an empty one"
            )
    finally:
        engine.dispose()
    restore_registry(database_url, folder / dump_name)
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        report = RestoreReport(schema_from=manifest["schema_revision"], schema_to=_revision(engine))
        report.rows = row_counts(engine)
    finally:
        engine.dispose()
    expected: dict[str, int] = manifest["registry"]["rows"]
    differ = {
        t: (n, report.rows.get(t, 0))
        for t, n in expected.items()
        if t != "alembic_version" and report.rows.get(t, 0) != n
    }
    if differ:
        raise BackupError(
            f"rows after the restore differ from {MANIFEST} (table: expected, got): {differ}"
        )
    report.seconds = time.perf_counter() - started
    return report


def _read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    if not path.is_file():
        raise BackupError(f"{path} not found: not a Renkei backup, or an unfinished one")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BackupError(f"{path}: unreadable ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != BACKUP_FORMAT:
        got = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise BackupError(f"{path}: format {got!r}, expected {BACKUP_FORMAT!r}")
    try:
        files = manifest["files"]
        registry = manifest["registry"]
        ok = (
            isinstance(files, dict)
            and all(
                isinstance(m, dict)
                and isinstance(m.get("sha256"), str)
                and isinstance(m.get("bytes"), int)
                for m in files.values()
            )
            and isinstance(registry, dict)
            and isinstance(registry.get("rows"), dict)
        )
    except KeyError as exc:
        raise BackupError(f"{path}: key {exc} missing") from None
    if not ok:
        raise BackupError(f"{path}: files/registry entries are not of the expected shape")
    for name in files:
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise BackupError(f"{path}: file name {name!r} points outside the backup folder")
    return manifest


def _revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return next(iter(conn.scalars(text("SELECT version_num FROM alembic_version"))), None)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
