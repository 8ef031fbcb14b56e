"""Command-line options shared by the ``renkei cloud`` services (typer ``Annotated`` types).

The ingest worker, the rollout controller, the disruption watcher and the capacity
publisher read the same brokers, databases and InfluxDB; these aliases give each option one
flag name, one environment variable and one help text everywhere (``--influx`` /
``RENKEI_INFLUX_URL``, ...). The flag name comes from the parameter name, so use them as
``influx: InfluxUrl = "http://127.0.0.1:8086"``. The broker options (``Broker``,
``MqttUsername``, ``MqttPassword``, ``TlsCaFile``, ``TlsCert``, ``TlsKey``) become one
:class:`renkei.core.mqtt.BrokerSettings` through
:func:`renkei.cloud.broker.broker_settings_from_options`.
"""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = [
    "Broker",
    "InfluxDatabase",
    "InfluxPassword",
    "InfluxToken",
    "InfluxUrl",
    "InfluxUsername",
    "MqttPassword",
    "MqttUsername",
    "RegistryUrl",
    "TlsCaFile",
    "TlsCert",
    "TlsKey",
]

Broker = Annotated[
    str, typer.Option(envvar="RENKEI_BROKER", help="mqtt://host:port or mqtts://host:port")
]
InfluxUrl = Annotated[
    str, typer.Option(envvar="RENKEI_INFLUX_URL", help="InfluxDB base URL (v1 HTTP API)")
]
InfluxDatabase = Annotated[str, typer.Option(envvar="RENKEI_INFLUX_DATABASE")]
InfluxToken = Annotated[
    str | None, typer.Option(envvar="RENKEI_INFLUX_TOKEN", help="InfluxDB API token")
]
InfluxUsername = Annotated[str | None, typer.Option(envvar="RENKEI_INFLUX_USERNAME")]
InfluxPassword = Annotated[str | None, typer.Option(envvar="RENKEI_INFLUX_PASSWORD")]
MqttUsername = Annotated[str | None, typer.Option(envvar="RENKEI_MQTT_USERNAME")]
MqttPassword = Annotated[str | None, typer.Option(envvar="RENKEI_MQTT_PASSWORD")]
TlsCaFile = Annotated[
    str | None,
    typer.Option(
        envvar="RENKEI_MQTT_TLS_CA_FILE",
        help="PEM CA bundle that signed the broker's certificate (default: system CAs)",
    ),
]
TlsCert = Annotated[
    str | None,
    typer.Option(
        envvar="RENKEI_MQTT_TLS_CERT", help="PEM client certificate (mutual TLS; with --tls-key)"
    ),
]
TlsKey = Annotated[
    str | None,
    typer.Option(envvar="RENKEI_MQTT_TLS_KEY", help="PEM client key (mutual TLS; with --tls-cert)"),
]
RegistryUrl = Annotated[
    str | None,
    typer.Option(
        envvar="RENKEI_API_DATABASE_URL", help="registry database URL (default: the API's default)"
    ),
]
