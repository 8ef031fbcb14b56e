"""``renkei cloud oee-sync``: operator counts into InfluxDB, as the writer
(:mod:`renkei.cloud.oee.reconcile`).

Run it with the InfluxDB user that may write (in the compose stack, the ingest's v1 user,
``x-influx-writer-env``) beside the API, whose own user is read-only there; the API then
answers ``oee: "pending"`` and this command applies the entry within one cycle.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated

import typer

from renkei.cloud._exceptions import ConfigError
from renkei.cloud.cli_options import (
    InfluxDatabase,
    InfluxPassword,
    InfluxToken,
    InfluxUrl,
    InfluxUsername,
    RegistryUrl,
)
from renkei.cloud.oee.reconcile import DEFAULT_LOOKBACK_S, OeeReconciler
from renkei.cloud.store import influx_settings_from_options

__all__ = ["oee_sync_command"]

log = logging.getLogger(__name__)


def oee_sync_command(
    database_url: RegistryUrl = None,
    influx: InfluxUrl = "http://127.0.0.1:8086",
    database: InfluxDatabase = "renkei",
    token: InfluxToken = None,
    username: InfluxUsername = None,
    password: InfluxPassword = None,
    lookback_h: Annotated[
        float,
        typer.Option(
            envvar="RENKEI_OEE_SYNC_LOOKBACK_H",
            min=0.1,
            max=24 * 366,
            help="entries whose interval ends within the last N hours are re-applied and "
            "the masked rows of that window checked, every run",
        ),
    ] = DEFAULT_LOOKBACK_S / 3600,
    every: Annotated[
        float | None,
        typer.Option(
            envvar="RENKEI_OEE_SYNC_EVERY_S",
            min=1.0,
            help="run every N seconds until SIGINT/SIGTERM (default: once, then exit)",
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(envvar="RENKEI_LOG_LEVEL")] = "INFO",
) -> None:
    """Apply the registry's operator counts to InfluxDB's ``oee`` and undo stale ones.

    Each run, per firm: re-applies every entry ending within the lookback window or changed
    since the last run (masks late gateway rows), restores masked rows no entry covers
    (deleted or corrected entries) and deletes stray operator points. Idempotent. Exit
    status (one-shot): 0 done, 1 InfluxDB failed for a firm or the registry failed, 2 bad
    configuration.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from renkei.cloud.api.settings import load_api_settings
    from renkei.cloud.registry import make_engine

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        influx_settings = influx_settings_from_options(
            url=influx, database=database, token=token, username=username, password=password
        )
        overrides = {} if database_url is None else {"database_url": database_url}
        registry_url = load_api_settings(**overrides).database_url
    except ConfigError as exc:
        typer.echo(f"invalid configuration: {exc}", err=True)
        raise typer.Exit(2) from None
    engine = make_engine(registry_url)
    reconciler = OeeReconciler(
        engine=engine, influx=influx_settings, lookback_s=lookback_h * 3600, clock=_utcnow
    )
    try:
        if every is None:
            try:
                report = reconciler.run()
            except SQLAlchemyError as exc:
                typer.echo(f"oee-sync: registry database: {exc}", err=True)
                raise typer.Exit(1) from None
            if not report.ok:
                typer.echo(f"oee-sync: InfluxDB failed for firms {report.failed_firms}", err=True)
                raise typer.Exit(1)
            return
        from renkei.cloud.periodic import run_until_signal

        run_until_signal(reconciler.run, every_s=every, name="oee-sync")
    finally:
        engine.dispose()


def _utcnow() -> datetime:
    return datetime.now(UTC)
