"""Copy a registry database to a file and back: SQLite's backup API, PostgreSQL's pg_dump.

SQLite: :meth:`sqlite3.Connection.backup` copies the database page by page while other
connections keep writing (the copy is one consistent state); restore copies it back into
the target file the same way. PostgreSQL: ``pg_dump --format=custom`` (one consistent
snapshot, https://www.postgresql.org/docs/15/app-pgdump.html) and ``pg_restore --clean
--if-exists --no-owner --no-privileges --exit-on-error``. The password is passed to the
tools in ``PGPASSWORD``, never on their command line (where ``ps`` would show it).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Final

from sqlalchemy import Engine, MetaData, func, inspect, select
from sqlalchemy.engine import URL, make_url

from renkei.cloud.backup.errors import BackupError

__all__ = [
    "PG_FILE",
    "SQLITE_FILE",
    "dump_registry",
    "is_empty",
    "restore_registry",
    "row_counts",
]

SQLITE_FILE: Final = "registry.sqlite3"
PG_FILE: Final = "registry.pgdump"
_TOOL_TIMEOUT_S: Final = 3600.0


def row_counts(engine: Engine) -> dict[str, int]:
    """Rows per table of the database behind ``engine`` (every table, ``alembic_version``
    included), sorted by table name."""
    meta = MetaData()
    meta.reflect(bind=engine)
    with engine.connect() as conn:
        return {
            name: int(conn.scalar(select(func.count()).select_from(meta.tables[name])) or 0)
            for name in sorted(meta.tables)
        }


def dump_registry(url: str, folder: Path) -> Path:
    """Write the registry at ``url`` into ``folder``; the file written.

    Raises:
        BackupError: an unsupported database, a missing SQLite file, ``pg_dump`` missing or
            failing (its message is included; the password never is).
    """
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        source = _sqlite_path(parsed)
        if not source.is_file():
            raise BackupError(f"registry file {source} does not exist")
        dest = folder / SQLITE_FILE
        with (
            sqlite3.connect(f"file:{source}?mode=ro", uri=True) as src,
            sqlite3.connect(dest) as dst,
        ):
            src.backup(dst)
        return dest
    if backend == "postgresql":
        dest = folder / PG_FILE
        _run_pg("pg_dump", parsed, ["--format=custom", f"--file={dest}"])
        return dest
    raise BackupError(f"cannot back up a {backend!r} registry (SQLite or PostgreSQL)")


def restore_registry(url: str, dump: Path) -> None:
    """Restore ``dump`` (from :func:`dump_registry`) into the registry at ``url``.

    The caller has checked that the target holds no row. SQLite: the target file is
    created if missing. PostgreSQL: the database must exist (``createdb``).

    Raises:
        BackupError: the dump does not fit the target's kind (a SQLite copy into
            PostgreSQL, say), ``pg_restore`` missing or failing.
    """
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    kind = {SQLITE_FILE: "sqlite", PG_FILE: "postgresql"}.get(dump.name)
    if kind != backend:
        raise BackupError(
            f"{dump.name} is a {kind or 'unknown'} registry copy; the target "
            f"--database-url is {backend} (restore into the same kind of database)"
        )
    if backend == "sqlite":
        target = _sqlite_path(parsed)
        if not target.parent.is_dir():
            raise BackupError(f"directory {target.parent} does not exist")
        with (
            sqlite3.connect(f"file:{dump}?mode=ro", uri=True) as src,
            sqlite3.connect(target) as dst,
        ):
            src.backup(dst)
        return
    _run_pg(
        "pg_restore",
        parsed,
        ["--clean", "--if-exists", "--no-owner", "--no-privileges", "--exit-on-error", str(dump)],
    )


def is_empty(engine: Engine) -> tuple[bool, str]:
    """Whether the registry behind ``engine`` holds no row; else the first table with rows."""
    names = inspect(engine).get_table_names()
    if not names:
        return True, ""
    for table, n in row_counts(engine).items():
        if n and table != "alembic_version":
            return False, f"table {table} has {n} row(s)"
    return True, ""


def _sqlite_path(parsed: URL) -> Path:
    if parsed.database in (None, "", ":memory:"):
        raise BackupError("an in-memory SQLite registry cannot be backed up or restored")
    return Path(str(parsed.database))


def _run_pg(tool: str, parsed: URL, args: list[str]) -> None:
    exe = shutil.which(tool) or next(
        (str(p) for p in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{tool}"))[-1:]), None
    )
    if exe is None:
        raise BackupError(
            f"{tool} not found: install PostgreSQL's client tools (postgresql-client)"
        )
    env = dict(os.environ)
    if parsed.password is not None:
        env["PGPASSWORD"] = str(parsed.password)
    target = parsed.set(drivername="postgresql", password=None).render_as_string(
        hide_password=False
    )
    try:
        done = subprocess.run(
            [exe, f"--dbname={target}", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=_TOOL_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BackupError(f"{tool} could not run: {exc}") from None
    if done.returncode != 0:
        tail = " ".join(done.stderr.strip().splitlines()[-3:])
        raise BackupError(f"{tool} failed (exit {done.returncode}): {tail}")
