"""``python -m renkei.cloud.rollout`` (= ``renkei cloud rollout``): run the rollout controller until
SIGINT/SIGTERM.

Options can also be given as environment variables (``RENKEI_API_DATABASE_URL``,
``RENKEI_BROKER``, ``RENKEI_MQTT_USERNAME``, ``RENKEI_MQTT_PASSWORD``,
``RENKEI_MQTT_TLS_CA_FILE``, ``RENKEI_MQTT_TLS_CERT``, ``RENKEI_MQTT_TLS_KEY``,
``RENKEI_ROLLOUT_CLIENT_ID``). The InfluxDB receiving the ``model_deploy`` points is
named like ``renkei cloud ingest``'s: ``--influx`` / ``RENKEI_INFLUX_URL``, ``--database``
/ ``RENKEI_INFLUX_DATABASE``, ``--token``, ``--username``, ``--password`` /
``RENKEI_INFLUX_TOKEN``, ``RENKEI_INFLUX_USERNAME``, ``RENKEI_INFLUX_PASSWORD``. Without
``--influx`` no points are written and the controller only drives deployments. A bad value
stops start-up with exit status 2 and the option named.
"""

from __future__ import annotations

import logging
import signal
from typing import Annotated

import typer
from pydantic import ValidationError

from renkei.cloud._exceptions import ConfigError
from renkei.cloud.broker import broker_settings_from_options
from renkei.cloud.cli_options import (
    Broker,
    InfluxDatabase,
    InfluxPassword,
    InfluxToken,
    InfluxUsername,
    MqttPassword,
    MqttUsername,
    TlsCaFile,
    TlsCert,
    TlsKey,
)
from renkei.cloud.rollout.controller import RolloutController, RolloutSettings
from renkei.cloud.store import influx_settings_from_options

__all__ = ["app", "rollout"]

app = typer.Typer(no_args_is_help=False, pretty_exceptions_show_locals=False)


@app.command("rollout")
def rollout(
    database_url: Annotated[
        str, typer.Option(envvar="RENKEI_API_DATABASE_URL", help="registry database URL")
    ] = "sqlite:///renkei-registry.sqlite3",
    broker: Broker = "mqtt://127.0.0.1:1883",
    mqtt_username: MqttUsername = None,
    mqtt_password: MqttPassword = None,
    tls_ca_file: TlsCaFile = None,
    tls_cert: TlsCert = None,
    tls_key: TlsKey = None,
    client_id: Annotated[
        str, typer.Option(envvar="RENKEI_ROLLOUT_CLIENT_ID", help="MQTT client id")
    ] = "renkei-rollout",
    influx: Annotated[
        str | None,
        typer.Option(
            envvar="RENKEI_INFLUX_URL",
            help="InfluxDB base URL (v1 HTTP API) for the model_deploy points; unset = none",
        ),
    ] = None,
    database: InfluxDatabase = "renkei",
    token: InfluxToken = None,
    username: InfluxUsername = None,
    password: InfluxPassword = None,
    log_level: Annotated[str, typer.Option("--log-level")] = "INFO",
) -> None:
    """Drive model deployments: store gateway reports, publish desired states, and write
    each reported deployment outcome to InfluxDB (``model_deploy``) when ``--influx`` is set."""
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per request
    try:
        if influx is None and (token is not None or username is not None):
            raise ConfigError(
                "RENKEI_INFLUX_TOKEN/RENKEI_INFLUX_USERNAME are set but --influx / "
                "RENKEI_INFLUX_URL is not: set the URL to write model_deploy points, or "
                "unset the credentials"
            )
        settings = RolloutSettings(
            database_url=database_url,
            broker=broker_settings_from_options(
                url=broker,
                username=mqtt_username,
                password=mqtt_password,
                tls_ca_file=tls_ca_file,
                tls_cert_file=tls_cert,
                tls_key_file=tls_key,
                client_id=client_id,
            ),
            influx=None
            if influx is None
            else influx_settings_from_options(
                url=influx, database=database, token=token, username=username, password=password
            ),
        )
    except (ValidationError, ConfigError) as exc:
        typer.echo(f"invalid configuration: {exc}", err=True)
        raise typer.Exit(2) from None
    from renkei.cloud.registry.migrate import upgrade

    upgrade(database_url)  # the registry schema, as `renkei cloud api` does at start
    try:
        controller = RolloutController(settings)
    except ConfigError as exc:  # the TLS files do not load
        typer.echo(f"invalid configuration: {exc}", err=True)
        raise typer.Exit(2) from None
    if settings.influx is None:
        logging.getLogger("renkei.cloud.rollout").info(
            "no InfluxDB (--influx / RENKEI_INFLUX_URL): model_deploy points are not written"
        )
    signal.signal(signal.SIGTERM, lambda *_: controller.stop())
    signal.signal(signal.SIGINT, lambda *_: controller.stop())
    controller.run()


if __name__ == "__main__":  # pragma: no cover
    app()
