"""``renkei cloud export`` and ``renkei cloud import`` (registered by :mod:`renkei.cloud.cli`).

Progress bars (tables, measurements, time-series points) are drawn on stderr when stdout
is a terminal (:func:`renkei.core.progress.bars`; ``RENKEI_PROGRESS=0``/``1`` forces them
off/on); otherwise the output is the report alone.

Exit codes: 0 done; 1 the export or import failed (corrupt archive, conflict, firm not
found, InfluxDB unavailable, ...: the message says which); 2 bad options (typer's own usage
errors included). Heavy modules are imported inside the commands, so ``renkei --help``
stays fast.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from renkei.cloud.store import InfluxSettings

__all__ = [
    "DatabaseUrl",
    "InfluxDatabase",
    "InfluxPassword",
    "InfluxToken",
    "InfluxUrl",
    "InfluxUsername",
    "check_database_url",
    "export_command",
    "import_command",
    "influx_settings",
]

_DB_HELP = "SQLAlchemy URL of the registry (sqlite:///path or postgresql+psycopg://...)"

DatabaseUrl = Annotated[
    str, typer.Option("--database-url", envvar="RENKEI_API_DATABASE_URL", help=_DB_HELP)
]
InfluxUrl = Annotated[
    str | None,
    typer.Option(
        "--influx",
        envvar="RENKEI_INFLUX_URL",
        help="InfluxDB base URL (v1 HTTP API); without it no time series are exported",
    ),
]
InfluxDatabase = Annotated[str, typer.Option("--influx-database", envvar="RENKEI_INFLUX_DATABASE")]
InfluxToken = Annotated[
    str | None, typer.Option("--influx-token", envvar="RENKEI_INFLUX_TOKEN", help="API token")
]
InfluxUsername = Annotated[
    str | None, typer.Option("--influx-username", envvar="RENKEI_INFLUX_USERNAME")
]
InfluxPassword = Annotated[
    str | None, typer.Option("--influx-password", envvar="RENKEI_INFLUX_PASSWORD")
]
LogLevel = Annotated[str, typer.Option("--log-level", envvar="RENKEI_LOG_LEVEL")]


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


def _setup_logging(level: str) -> None:
    try:
        logging.basicConfig(
            level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
    except ValueError:
        raise _fail(f"invalid --log-level {level!r}", 2) from None
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)


def check_database_url(url: str, *, must_exist: bool) -> None:
    """Exit 2 with one line if ``url`` is no usable SQLAlchemy URL (or, SQLite, if its file
    is missing while ``must_exist``, or its folder is missing)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        parsed = make_url(url)
        parsed.get_dialect()
    except (ArgumentError, NoSuchModuleError) as exc:
        raise _fail(f"invalid --database-url: {exc}", 2) from None
    except ImportError as exc:  # a known dialect whose driver is not installed
        raise _fail(f"--database-url: database driver missing: {exc}", 2) from None
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        path = Path(parsed.database)
        if must_exist and not path.is_file():
            raise _fail(f"--database-url: registry file {path} does not exist", 2)
        if not path.parent.is_dir():
            raise _fail(f"--database-url: directory {path.parent} does not exist", 2)


def influx_settings(
    url: str | None,
    database: str,
    token: str | None,
    username: str | None,
    password: str | None,
) -> InfluxSettings | None:
    """The InfluxDB options as settings (``None`` without ``url``); exit 2 with one line on
    a bad value or credentials without ``url``."""
    from pydantic import SecretStr, ValidationError

    from renkei.cloud.store import InfluxSettings

    if url is None:
        if token or username or password:
            raise _fail("--influx-token/--influx-username/--influx-password need --influx", 2)
        return None
    try:
        return InfluxSettings(
            url=url,
            database=database,
            token=SecretStr(token) if token is not None else None,
            username=username,
            password=SecretStr(password) if password is not None else None,
            timeout_s=60.0,
        )
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'influx'}: {e['msg']}" for e in exc.errors()
        )
        raise _fail(f"invalid InfluxDB options: {problems}", 2) from None


def _size(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 100_000 else f"{n / 1e3:.1f} kB"


def export_command(
    firm: Annotated[str, typer.Option("--firm", help="id of the firm to export")],
    out: Annotated[Path, typer.Option("--out", help="archive file to write")],
    database_url: DatabaseUrl,
    influx: InfluxUrl = None,
    influx_database: InfluxDatabase = "renkei",
    influx_token: InfluxToken = None,
    influx_username: InfluxUsername = None,
    influx_password: InfluxPassword = None,
    force: Annotated[bool, typer.Option("--force", help="overwrite an existing --out")] = False,
    chunk_points: Annotated[
        int,
        typer.Option(min=100, max=1_000_000, help="rows per streamed InfluxDB chunk (memory)"),
    ] = 10_000,
    log_level: LogLevel = "INFO",
) -> None:
    """Export one firm (registry, policies, plans, audit log, time series) to an archive."""
    _setup_logging(log_level)
    check_database_url(database_url, must_exist=True)
    settings = influx_settings(
        influx, influx_database, influx_token, influx_username, influx_password
    )
    if out.exists() and not force:
        raise _fail(f"--out {out} exists (add --force to overwrite it)", 2)
    if out.is_dir():
        raise _fail(f"--out {out} is a directory", 2)
    if not out.parent.is_dir():
        raise _fail(f"--out: directory {out.parent} does not exist", 2)

    from renkei.cloud.portability.export import export_firm
    from renkei.core.errors import RenkeiError
    from renkei.core.progress import bars

    try:
        with bars() as progress:
            report = export_firm(
                firm,
                database_url=database_url,
                out=out,
                influx=settings,
                overwrite=force,
                chunk_points=chunk_points,
                progress=progress,
            )
    except RenkeiError as exc:
        raise _fail(f"export failed: {exc}", 1) from None
    except Exception as exc:  # database drivers: unreachable, no such table, ...
        raise _fail(f"export failed: {type(exc).__name__}: {exc}", 1) from None
    typer.echo(f"exported firm {firm} to {out} ({_size(report.archive_bytes)})")
    typer.echo(f"  registry: {report.total_rows} rows")
    for table, n in report.rows.items():
        if n:
            typer.echo(f"    {table}: {n}")
    if report.timeseries_included:
        typer.echo(
            f"  time series: {report.total_points} points in {len(report.points)} measurements, "
            f"{report.timeseries_seconds:.1f} s ({report.points_per_s:,.0f} points/s)"
        )
        for measurement, n in report.points.items():
            typer.echo(f"    {measurement}: {n}")
    else:
        typer.echo("  time series: NOT exported (no --influx / RENKEI_INFLUX_URL given)", err=True)


def import_command(
    archive: Annotated[
        Path,
        typer.Argument(exists=True, dir_okay=False, readable=True, help="archive to import"),
    ],
    database_url: DatabaseUrl,
    influx: InfluxUrl = None,
    influx_database: InfluxDatabase = "renkei",
    influx_token: InfluxToken = None,
    influx_username: InfluxUsername = None,
    influx_password: InfluxPassword = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="replace the firm if it already exists")
    ] = False,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict",
            help="refuse the archive when rows refer to firms missing in the target "
            "(default: skip those rows and report them)",
        ),
    ] = False,
    batch_points: Annotated[
        int, typer.Option(min=100, max=1_000_000, help="points per InfluxDB write")
    ] = 10_000,
    log_level: LogLevel = "INFO",
) -> None:
    """Import a firm archive into this install (the registry is migrated first)."""
    _setup_logging(log_level)
    check_database_url(database_url, must_exist=False)
    settings = influx_settings(
        influx, influx_database, influx_token, influx_username, influx_password
    )

    from renkei.cloud.portability.archive import ArchiveReader
    from renkei.cloud.portability.importer import import_archive
    from renkei.core.errors import RenkeiError
    from renkei.core.progress import bars

    try:
        with ArchiveReader(archive) as reader:
            manifest = reader.manifest
    except RenkeiError as exc:
        raise _fail(f"import failed: {exc}", 1) from None
    if manifest.points and settings is None:
        raise _fail(
            f"the archive holds {manifest.points} points of {len(manifest.series())} "
            "measurements: give the target InfluxDB (--influx or RENKEI_INFLUX_URL)",
            2,
        )
    try:
        with bars() as progress:
            report = import_archive(
                archive,
                database_url=database_url,
                influx=settings,
                replace=replace,
                strict=strict,
                batch_points=batch_points,
                progress=progress,
            )
    except RenkeiError as exc:
        raise _fail(f"import failed: {exc}", 1) from None
    except Exception as exc:  # database drivers: unreachable, locked, ...
        raise _fail(f"import failed: {type(exc).__name__}: {exc}", 1) from None
    verb = "replaced" if replace else "imported"
    typer.echo(f"{verb} firm {report.firm_id} from {archive}")
    typer.echo(f"  registry: {report.total_rows} rows")
    for table, n in report.rows.items():
        if n:
            typer.echo(f"    {table}: {n}")
    for table, moved in report.remapped.items():
        typer.echo(f"  {table}: {len(moved)} ids renumbered (taken by other firms): {moved}")
    if report.skipped:
        typer.echo(
            f"  skipped {len(report.skipped)} rows (those naming firms missing here come back "
            "when the archive is imported again with --replace once the firms exist):"
        )
        for row in report.skipped:
            typer.echo(f"    {row.table}[{row.row}]: {row.reason}")
    if report.timeseries_included:
        typer.echo(
            f"  time series: {report.total_points} points in {len(report.points)} measurements, "
            f"{report.timeseries_seconds:.1f} s ({report.points_per_s:,.0f} points/s)"
        )
    if report.verification_problems:
        for problem in report.verification_problems:
            typer.echo(f"  verification: {problem}", err=True)
        raise typer.Exit(1)
