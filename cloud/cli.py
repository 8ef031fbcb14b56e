"""``renkei cloud ...`` commands (typer). Mounted by ``renkei.cli`` as ``renkei cloud``.

- ``ingest``: MQTT -> InfluxDB ingest worker; ``api``: the registry/sharing/takeover API and
  the partner web page; ``watch``: gateway states and suspected disruptions (Last Will);
  ``rollout``: advances model deployments; ``export`` / ``import``: a firm's archive.

``renkei cloud ingest`` (or ``python -m cloud.ingest``) runs the MQTT -> InfluxDB ingest
worker until SIGINT/SIGTERM, then stops cleanly: flushes what it holds, acknowledges it,
disconnects. Every option can also be given as an environment variable (shown in
``--help``), which is how containers configure it.
"""

from __future__ import annotations

import gc
import logging
import signal
import threading
import time
from types import FrameType
from typing import Annotated

import typer
from pydantic import SecretStr, ValidationError

from cloud._exceptions import ConfigError
from cloud.ingest.worker import IngestSettings, IngestWorker
from cloud.store.influx import InfluxSettings, InfluxStore

__all__ = ["api", "app", "ingest"]

app = typer.Typer(no_args_is_help=True, pretty_exceptions_show_locals=False)

log = logging.getLogger("cloud.ingest")


@app.command("ingest")
def ingest(
    broker: Annotated[
        str, typer.Option(envvar="RENKEI_BROKER", help="mqtt://host:port or mqtts://host:port")
    ] = "mqtt://127.0.0.1:1883",
    influx: Annotated[
        str, typer.Option(envvar="RENKEI_INFLUX_URL", help="InfluxDB base URL (v1 HTTP API)")
    ] = "http://127.0.0.1:8086",
    database: Annotated[str, typer.Option(envvar="RENKEI_INFLUX_DATABASE")] = "renkei",
    token: Annotated[
        str | None, typer.Option(envvar="RENKEI_INFLUX_TOKEN", help="InfluxDB API token")
    ] = None,
    username: Annotated[str | None, typer.Option(envvar="RENKEI_INFLUX_USERNAME")] = None,
    password: Annotated[str | None, typer.Option(envvar="RENKEI_INFLUX_PASSWORD")] = None,
    mqtt_username: Annotated[str | None, typer.Option(envvar="RENKEI_MQTT_USERNAME")] = None,
    mqtt_password: Annotated[str | None, typer.Option(envvar="RENKEI_MQTT_PASSWORD")] = None,
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
        extra = {"client_id": client_id} if client_id else {}
        settings = IngestSettings(
            broker_url=broker,
            username=mqtt_username,
            password=SecretStr(mqtt_password) if mqtt_password is not None else None,
            share_group=share_group or None,
            protocol=protocol,  # validated by pydantic
            batch_max_lines=batch_max_lines,
            batch_max_delay_s=batch_max_delay_s,
            retry_max_s=retry_max_s,
            max_buffered_messages=max_buffered_messages,
            **extra,
        )
        influx_settings = InfluxSettings(
            url=influx,
            database=database,
            token=SecretStr(token) if token is not None else None,
            username=username,
            password=SecretStr(password) if password is not None else None,
            gzip=gzip,
        )
        store = InfluxStore(settings=influx_settings)
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

    Configured by ``RENKEI_API_*`` variables (see ``cloud.api.ApiSettings``), e.g.
    ``RENKEI_API_DATABASE_URL=postgresql+psycopg://...``; the schema is migrated first.
    """
    import uvicorn

    from cloud.api import ApiSettings, create_app

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = ApiSettings()
    except ValidationError as exc:
        typer.echo(f"invalid configuration (RENKEI_API_*): {exc}", err=True)
        raise typer.Exit(2) from None
    application = create_app(settings)
    # The long-lived objects of start-up (index, ORM, routes) leave the GC's generations, so
    # full collections stop walking them: capacity-search p99 113 -> 46 ms (bench/RESULTS.md).
    gc.freeze()
    uvicorn.run(application, host=host, port=port, log_level=log_level.lower())


def _register_portability() -> None:
    """``renkei cloud export`` / ``renkei cloud import`` (:mod:`cloud.portability.cli`)."""
    from cloud.portability.cli import export_command, import_command

    app.command("export")(export_command)
    app.command("import")(import_command)


_register_portability()


def _register_watch() -> None:
    """``renkei cloud watch`` (:mod:`cloud.disruption.cli`)."""
    from cloud.disruption.cli import watch_command

    app.command("watch")(watch_command)


_register_watch()


def _register_rollout() -> None:
    """``renkei cloud rollout`` (:mod:`cloud.rollout`): advances model deployments."""
    from cloud.rollout.__main__ import rollout

    app.command("rollout")(rollout)


_register_rollout()
