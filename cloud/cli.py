"""``renkei cloud ...`` commands (typer). Mounted by ``renkei.cli`` as ``renkei cloud``.

- ``init``: the first firm, site and admin key of an empty registry;
- ``ingest``: MQTT -> InfluxDB ingest worker; ``api``: the registry/sharing/takeover API and
  the partner web page; ``watch``: gateway states and suspected disruptions (Last Will);
  ``rollout``: advances model deployments (and writes their outcomes, ``model_deploy``);
  ``capacity-publish``: spare capacity of every machine to InfluxDB (``capacity``);
  ``oee-sync``: operator good/reject counts into InfluxDB's ``oee``, as the writer;
  ``export`` / ``import``: a firm's archive.

``renkei cloud ingest`` (or ``python -m renkei.cloud.ingest``) runs the MQTT -> InfluxDB ingest
worker until SIGINT/SIGTERM, then stops cleanly: flushes what it holds, acknowledges it,
disconnects. Every option can also be given as an environment variable (shown in
``--help``), which is how containers configure it.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from datetime import UTC, datetime
from types import FrameType
from typing import Annotated

import typer
from pydantic import ValidationError

from renkei.cloud._exceptions import ConfigError, StoreUnavailable
from renkei.cloud.broker import broker_settings_from_options
from renkei.cloud.cli_options import (
    Broker,
    InfluxDatabase,
    InfluxPassword,
    InfluxToken,
    InfluxUrl,
    InfluxUsername,
    MqttPassword,
    MqttUsername,
    RegistryUrl,
    TlsCaFile,
    TlsCert,
    TlsKey,
)
from renkei.cloud.ingest import IngestSettings, IngestWorker
from renkei.cloud.store import influx_settings_from_options, open_store

__all__ = ["api", "app", "capacity_publish", "ingest"]

app = typer.Typer(no_args_is_help=True, pretty_exceptions_show_locals=False)

log = logging.getLogger("renkei.cloud.ingest")


@app.command("ingest")
def ingest(
    broker: Broker = "mqtt://127.0.0.1:1883",
    influx: InfluxUrl = "http://127.0.0.1:8086",
    database: InfluxDatabase = "renkei",
    token: InfluxToken = None,
    username: InfluxUsername = None,
    password: InfluxPassword = None,
    mqtt_username: MqttUsername = None,
    mqtt_password: MqttPassword = None,
    tls_ca_file: TlsCaFile = None,
    tls_cert: TlsCert = None,
    tls_key: TlsKey = None,
    share_group: Annotated[
        str,
        typer.Option(
            envvar="RENKEI_SHARE_GROUP",
            help="shared-subscription group; '' for a plain subscription (MQTT 3.1.1 brokers)",
        ),
    ] = "renkei-ingest",
    client_id: Annotated[
        str | None,
        typer.Option(
            envvar="RENKEI_CLIENT_ID",
            help="stable, unique MQTT client id (default renkei-ingest-<hostname>)",
        ),
    ] = None,
    protocol: Annotated[str, typer.Option(envvar="RENKEI_MQTT_PROTOCOL", help="5 or 3.1.1")] = "5",
    batch_max_lines: Annotated[int, typer.Option(envvar="RENKEI_BATCH_MAX_LINES")] = 5000,
    batch_max_delay_s: Annotated[float, typer.Option(envvar="RENKEI_BATCH_MAX_DELAY_S")] = 0.2,
    retry_max_s: Annotated[float, typer.Option(envvar="RENKEI_RETRY_MAX_S")] = 30.0,
    max_buffered_messages: Annotated[
        int, typer.Option(envvar="RENKEI_MAX_BUFFERED_MESSAGES")
    ] = 1000,
    gzip: Annotated[bool, typer.Option(envvar="RENKEI_INFLUX_GZIP")] = False,
    max_past_s: Annotated[
        float,
        typer.Option(
            envvar="RENKEI_MAX_PAST_S",
            help="dead-letter (out_of_range_time) points older than this many seconds; "
            "0 = no bound (backfill)",
        ),
    ] = 14 * 86_400.0,
    max_future_s: Annotated[
        float,
        typer.Option(
            envvar="RENKEI_MAX_FUTURE_S",
            help="dead-letter points more than this many seconds ahead of the ingest clock",
        ),
    ] = 300.0,
    retire: Annotated[
        bool,
        typer.Option(
            envvar="RENKEI_RETIRE",
            help="on SIGINT/SIGTERM, unsubscribe, drain and end the MQTT session (scale-in: "
            "this client id will not come back)",
        ),
    ] = False,
    stats_interval_s: Annotated[
        float, typer.Option(help="log the counters every N seconds (0 = never)")
    ] = 60.0,
    log_level: Annotated[str, typer.Option(envvar="RENKEI_LOG_LEVEL")] = "INFO",
) -> None:
    """Run the MQTT -> InfluxDB ingest worker until SIGINT/SIGTERM."""
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per request
    try:
        settings = IngestSettings(
            broker=broker_settings_from_options(
                url=broker,
                username=mqtt_username,
                password=mqtt_password,
                tls_ca_file=tls_ca_file,
                tls_cert_file=tls_cert,
                tls_key_file=tls_key,
                client_id=client_id or None,
                protocol=protocol,
            ),
            share_group=share_group or None,
            batch_max_lines=batch_max_lines,
            batch_max_delay_s=batch_max_delay_s,
            retry_max_s=retry_max_s,
            max_buffered_messages=max_buffered_messages,
            max_past_s=max_past_s or None,
            max_future_s=max_future_s,
        )
        influx_settings = influx_settings_from_options(
            url=influx,
            database=database,
            token=token,
            username=username,
            password=password,
            gzip=gzip,
        )
        store = open_store(influx_settings)
        worker = IngestWorker(settings=settings, store=store)
    except (ValidationError, ConfigError) as exc:
        typer.echo(f"invalid configuration: {exc}", err=True)
        raise typer.Exit(2) from None
    try:
        _run_until_signal(worker, stats_interval_s, retire=retire)
    finally:
        store.close()


def _run_until_signal(worker: IngestWorker, stats_interval_s: float, *, retire: bool) -> None:
    """Run the worker in a thread; SIGINT/SIGTERM ask it to stop, then wait for it."""

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: %s", signum, "retiring" if retire else "stopping")
        worker.stop(retire=retire)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    thread = threading.Thread(target=worker.run, name="ingest-writer")
    thread.start()
    try:
        next_stats = time.monotonic() + stats_interval_s
        while thread.is_alive():
            thread.join(0.5)
            if stats_interval_s > 0 and time.monotonic() >= next_stats:
                next_stats += stats_interval_s
                log.info("stats: %s", worker.stats())
    finally:
        worker.stop(retire=retire)
        thread.join()
        for s, handler in previous.items():
            signal.signal(s, handler)


@app.command("api")
def api(
    host: Annotated[str, typer.Option(envvar="RENKEI_API_HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="RENKEI_API_PORT")] = 8000,
    log_level: Annotated[str, typer.Option(envvar="RENKEI_LOG_LEVEL")] = "INFO",
) -> None:
    """Serve the registry, sharing, capacity and takeover API and the partner web page.

    Configured by ``RENKEI_API_*`` variables (see ``renkei.cloud.api.ApiSettings``), e.g.
    ``RENKEI_API_DATABASE_URL=postgresql+psycopg://...``; the schema is migrated first.
    """
    from renkei.cloud.api.serve import serve
    from renkei.cloud.api.settings import load_api_settings

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = load_api_settings()
    except ConfigError as exc:
        typer.echo(f"invalid configuration: {exc}", err=True)
        raise typer.Exit(2) from None
    serve(settings, host=host, port=port, log_level=log_level)


@app.command("capacity-publish")
def capacity_publish(
    database_url: RegistryUrl = None,
    influx: InfluxUrl = "http://127.0.0.1:8086",
    database: InfluxDatabase = "renkei",
    token: InfluxToken = None,
    username: InfluxUsername = None,
    password: InfluxPassword = None,
    horizon_days: Annotated[
        int | None,
        typer.Option(
            envvar="RENKEI_CAPACITY_HORIZON_DAYS",
            min=1,
            max=366,
            help="site-local days from today (default: the API's horizon, "
            "RENKEI_API_HORIZON_DAYS, 84 = the capacity dashboard's range)",
        ),
    ] = None,
    every: Annotated[
        float | None,
        typer.Option(
            envvar="RENKEI_CAPACITY_EVERY_S",
            min=1.0,
            help="publish every N seconds until SIGINT/SIGTERM (default: once, then exit)",
        ),
    ] = None,
    now: Annotated[
        str | None,
        typer.Option(
            help="run once as if at this instant, ISO 8601 with a UTC offset, e.g. "
            "2026-12-13T14:58:30Z (default: the system clock); not with --every",
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(envvar="RENKEI_LOG_LEVEL")] = "INFO",
) -> None:
    """Write the spare capacity of every registry machine to InfluxDB (``capacity``).

    One point per machine and site-local day of the horizon, computed as the API does
    (site calendars, bookings, availability measured from the telemetry in the same
    InfluxDB); rewriting overwrites. Calendar defaults come from the API's settings
    (``RENKEI_API_TIMEZONE``, ``RENKEI_API_DEFAULT_WEEKLY_HOURS``,
    ``RENKEI_API_DEFAULT_AVAILABILITY_RATIO``), so the dashboard and the API agree. Exit
    status: 0 written, 1 InfluxDB or the registry failed (one-shot), 2 bad configuration.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from renkei.cloud.api.settings import load_api_settings
    from renkei.cloud.capacity.publish import publish_capacity, publisher_state
    from renkei.cloud.registry import make_engine

    clock = None
    if now is not None:
        if every is not None:
            typer.echo(
                "invalid options: --now runs once; it cannot be combined with --every", err=True
            )
            raise typer.Exit(2)
        try:
            instant = datetime.fromisoformat(now)
        except ValueError:
            instant = None
        if instant is None or instant.utcoffset() is None:
            typer.echo(
                f"invalid --now {now!r}: expected ISO 8601 with a UTC offset, "
                "e.g. 2026-12-13T14:58:30Z or 2026-12-13T23:58:30+09:00",
                err=True,
            )
            raise typer.Exit(2)
        fixed = instant.astimezone(UTC)
        clock = lambda: fixed  # noqa: E731

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per request
    try:
        influx_settings = influx_settings_from_options(
            url=influx, database=database, token=token, username=username, password=password
        )
        api_settings = load_api_settings(
            influx_url=influx_settings.url,
            influx_database=influx_settings.database,
            influx_token=influx_settings.token,
            influx_username=influx_settings.username,
            influx_password=influx_settings.password,
        )
        if database_url:
            api_settings = api_settings.model_copy(update={"database_url": database_url})
    except ConfigError as exc:
        typer.echo(f"invalid configuration: {exc}", err=True)
        raise typer.Exit(2) from None
    days = horizon_days or api_settings.horizon_days
    store = open_store(influx_settings)
    engine = make_engine(api_settings.database_url)
    state = publisher_state(api_settings.capacity(), engine=engine, clock=clock)
    try:
        if every is None:
            try:
                report = publish_capacity(state, store, days=days)
            except StoreUnavailable as exc:
                typer.echo(f"capacity-publish: InfluxDB {influx_settings.url}: {exc}", err=True)
                raise typer.Exit(1) from None
            except SQLAlchemyError as exc:
                typer.echo(f"capacity-publish: registry database: {exc}", err=True)
                raise typer.Exit(1) from None
            if not report.ok:
                typer.echo(
                    f"capacity-publish: incomplete: machines left out {report.skipped_machines}, "
                    f"firms InfluxDB refused {report.rejected_firms} (see the log)",
                    err=True,
                )
                raise typer.Exit(1)
            return
        from renkei.cloud.periodic import run_until_signal

        run_until_signal(
            lambda: publish_capacity(state, store, days=days),
            every_s=every,
            name="capacity-publish",
        )
    finally:
        store.close()
        engine.dispose()


def _register_portability() -> None:
    """``renkei cloud export`` / ``renkei cloud import`` (:mod:`renkei.cloud.portability.cli`)."""
    from renkei.cloud.portability.cli import export_command, import_command

    app.command("export")(export_command)
    app.command("import")(import_command)


_register_portability()


def _register_watch() -> None:
    """``renkei cloud watch`` (:mod:`renkei.cloud.disruption.cli`)."""
    from renkei.cloud.disruption.cli import watch_command

    app.command("watch")(watch_command)


_register_watch()


def _register_rollout() -> None:
    """``renkei cloud rollout`` (:mod:`renkei.cloud.rollout`): advances model deployments."""
    from renkei.cloud.rollout.__main__ import rollout

    app.command("rollout")(rollout)


_register_rollout()


def _register_broker_acl() -> None:
    """``renkei cloud broker-acl`` (:mod:`renkei.cloud.broker_acl`): renders the broker's ACL."""
    from renkei.cloud.broker_acl import broker_acl_command

    app.command("broker-acl")(broker_acl_command)


_register_broker_acl()


def _register_gateways() -> None:
    """``renkei cloud gateways enroll|redeem|revoke|list`` (:mod:`renkei.cloud.cli_gateways`):
    gateway identities in the broker's dynamic-security plugin."""
    from renkei.cloud.cli_gateways import app as gateways_app

    app.add_typer(gateways_app, name="gateways")


_register_gateways()


def _register_site_bridge() -> None:
    """``renkei cloud site-bridge`` (:mod:`renkei.cloud.site_bridge`): a site broker's config."""
    from renkei.cloud.site_bridge import site_bridge_command

    app.command("site-bridge")(site_bridge_command)


_register_site_bridge()


def _register_init() -> None:
    """``renkei cloud init`` (:mod:`renkei.cloud.cli_init`): the first firm, site and admin
    key of an empty registry."""
    from renkei.cloud.cli_init import init_command

    app.command("init")(init_command)


_register_init()


def _register_backup() -> None:
    """``renkei cloud backup`` / ``restore`` (:mod:`renkei.cloud.backup.cli`)."""
    from renkei.cloud.backup.cli import backup_command, restore_command

    app.command("backup")(backup_command)
    app.command("restore")(restore_command)


_register_backup()


def _register_oee_sync() -> None:
    """``renkei cloud oee-sync`` (:mod:`renkei.cloud.oee.cli`): operator counts into
    InfluxDB as the writer."""
    from renkei.cloud.oee.cli import oee_sync_command

    app.command("oee-sync")(oee_sync_command)


_register_oee_sync()
