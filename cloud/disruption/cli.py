"""``renkei cloud watch``: run the disruption watcher until SIGINT/SIGTERM.

Options can also be given as environment variables (shown in ``--help``). The suspicion
thresholds come from the API's settings (``RENKEI_API_SUSPECT_WINDOW_S``,
``RENKEI_API_SUSPECT_OFFLINE_FRACTION``, ``RENKEI_API_SUSPECT_MIN_GATEWAYS``,
``RENKEI_API_ZONE_RADIUS_KM``), so the watcher and the API agree on them.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import Annotated

import typer
from pydantic import ValidationError

from renkei.cloud._exceptions import ConfigError
from renkei.cloud.broker import broker_settings_from_options
from renkei.cloud.cli_options import (
    Broker,
    MqttPassword,
    MqttUsername,
    RegistryUrl,
    TlsCaFile,
    TlsCert,
    TlsKey,
)

__all__ = ["watch_command"]

log = logging.getLogger("renkei.cloud.disruption")


def watch_command(
    broker: Broker = "mqtt://127.0.0.1:1883",
    database_url: RegistryUrl = None,
    mqtt_username: MqttUsername = None,
    mqtt_password: MqttPassword = None,
    client_id: Annotated[
        str | None,
        typer.Option(
            envvar="RENKEI_WATCH_CLIENT_ID",
            help="stable MQTT client id (its persistent session); default renkei-watch-<host>",
        ),
    ] = None,
    tls_ca_file: TlsCaFile = None,
    tls_cert: TlsCert = None,
    tls_key: TlsKey = None,
    migrate: Annotated[
        bool, typer.Option(help="bring the registry schema to the newest revision first")
    ] = True,
    stats_interval_s: Annotated[
        float, typer.Option(help="log the counters every N seconds (0 = never)")
    ] = 60.0,
    log_level: Annotated[str, typer.Option(envvar="RENKEI_LOG_LEVEL")] = "INFO",
) -> None:
    """Watch gateway and site bridge states and raise suspected disruptions."""
    from renkei.cloud.api.settings import load_api_settings
    from renkei.cloud.disruption.suspect import SuspectRules
    from renkei.cloud.disruption.watch import DisruptionWatcher, WatchSettings
    from renkei.cloud.registry import make_engine
    from renkei.cloud.registry.migrate import upgrade

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        api = load_api_settings()
        if database_url:
            api = api.model_copy(update={"database_url": database_url})
        rules = SuspectRules(
            window_s=api.suspect_window_s,
            offline_fraction=api.suspect_offline_fraction,
            min_gateways=api.suspect_min_gateways,
            zone_radius_km=api.zone_radius_km,
        )
        settings = WatchSettings(
            broker=broker_settings_from_options(
                url=broker,
                username=mqtt_username,
                password=mqtt_password,
                tls_ca_file=tls_ca_file,
                tls_cert_file=tls_cert,
                tls_key_file=tls_key,
                client_id=client_id or None,
            )
        )
    except (ValidationError, ValueError) as exc:
        typer.echo(f"invalid configuration: {exc}", err=True)
        raise typer.Exit(2) from None
    engine = make_engine(api.database_url)
    try:
        if migrate:
            upgrade(engine.url.render_as_string(hide_password=False))
        try:
            watcher = DisruptionWatcher(settings=settings, engine=engine, rules=rules)
        except ConfigError as exc:  # the TLS files do not load
            typer.echo(f"invalid configuration: {exc}", err=True)
            raise typer.Exit(2) from None
        stop = threading.Event()

        def on_signal(signum: int, frame: FrameType | None) -> None:
            log.info("signal %d: stopping", signum)
            stop.set()

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        watcher.start()
        try:
            interval = stats_interval_s if stats_interval_s > 0 else None
            while not stop.wait(interval):
                log.info("stats: %s", watcher.stats())
        finally:
            watcher.stop()
            for s, handler in previous.items():
                signal.signal(s, handler)
            log.info("watch stopped: %s", watcher.stats())
    finally:
        engine.dispose()
