"""``renkei cloud backup`` and ``renkei cloud restore`` (registered by :mod:`renkei.cloud.cli`).

Exit codes: 0 done; 1 the backup or restore failed (the message names the file, table or
tool); 2 bad options. The InfluxDB options are those of ``renkei cloud export``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from renkei.cloud.portability.cli import (
    DatabaseUrl,
    InfluxDatabase,
    InfluxPassword,
    InfluxToken,
    InfluxUrl,
    InfluxUsername,
    check_database_url,
    influx_settings,
)

__all__ = ["backup_command", "restore_command"]


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


def _size(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 100_000 else f"{n / 1e3:.1f} kB"


def backup_command(
    out: Annotated[Path, typer.Option("--out", help="folder to write (new or empty)")],
    database_url: DatabaseUrl,
    influx: InfluxUrl = None,
    influx_database: InfluxDatabase = "renkei",
    influx_token: InfluxToken = None,
    influx_username: InfluxUsername = None,
    influx_password: InfluxPassword = None,
    firm_archives: Annotated[
        bool,
        typer.Option(
            "--firm-archives/--no-firm-archives",
            help="also write each firm's portable archive (firms/<id>.renkei)",
        ),
    ] = True,
) -> None:
    """Back up the registry (every row) and each firm's archive into a folder with a manifest
    of checksums. InfluxDB: use `influxd backup -portable` beside it (deploy/README.md)."""
    check_database_url(database_url, must_exist=True)
    settings = influx_settings(
        influx, influx_database, influx_token, influx_username, influx_password
    )
    from renkei.cloud.backup import backup
    from renkei.core.errors import RenkeiError

    try:
        report = backup(
            database_url=database_url, out=out, influx=settings, firm_archives=firm_archives
        )
    except RenkeiError as exc:
        raise _fail(f"backup failed: {exc}", 1) from None
    except Exception as exc:  # database drivers: unreachable, locked, no such table, ...
        raise _fail(f"backup failed: {type(exc).__name__}: {exc}", 1) from None
    typer.echo(f"backup written to {out} in {report.seconds:.1f} s")
    typer.echo(f"  registry: {sum(report.rows.values())} rows in {len(report.rows)} tables")
    for name, size in report.files.items():
        typer.echo(f"    {name}: {_size(size)}")
    if firm_archives and settings is None:
        typer.echo("  time series: NOT in the firm archives (no --influx)", err=True)
    typer.echo("  InfluxDB itself: back it up with `influxd backup -portable` (deploy/README.md)")


def restore_command(
    folder: Annotated[
        Path,
        typer.Argument(exists=True, file_okay=False, readable=True, help="backup folder"),
    ],
    database_url: DatabaseUrl,
) -> None:
    """Restore a backup's registry into an empty registry (checksums checked first), then
    migrate it to this software's schema and compare the rows with the manifest."""
    check_database_url(database_url, must_exist=False)
    from renkei.cloud.backup import restore
    from renkei.core.errors import RenkeiError

    try:
        report = restore(folder=folder, database_url=database_url)
    except RenkeiError as exc:
        raise _fail(f"restore failed: {exc}", 1) from None
    except Exception as exc:  # database drivers: unreachable, locked, ...
        raise _fail(f"restore failed: {type(exc).__name__}: {exc}", 1) from None
    rows = sum(n for t, n in report.rows.items() if t != "alembic_version")
    typer.echo(f"restored {rows} rows from {folder} in {report.seconds:.1f} s")
    if report.schema_from != report.schema_to:
        typer.echo(f"  schema migrated {report.schema_from} -> {report.schema_to}")
