"""The cloud services' broker connection: one embedded :class:`BrokerSettings` each.

The ingest worker (:class:`renkei.cloud.ingest.IngestSettings`), the disruption watcher
(:class:`renkei.cloud.disruption.WatchSettings`) and the rollout controller
(:class:`renkei.cloud.rollout.RolloutSettings`) each hold their broker connection as
``broker: BrokerSettings`` (:mod:`renkei.core.mqtt`) and connect with a
:class:`renkei.core.mqtt.MqttSession` (whose TLS problems are a
:class:`~renkei.core.mqtt.BrokerSettingsError`, a :class:`ConfigError`: what the
``renkei cloud`` commands report as "invalid configuration", exit status 2). This module
adds what the three share on top of the core:

- :func:`host_client_id`: a service's default MQTT client id (``BrokerSettings.client_id``
  ``None`` means "the service picks one");
- :func:`broker_settings_from_options`: the shared command-line options
  (:mod:`renkei.cloud.cli_options`: ``--broker`` / ``RENKEI_BROKER``, ``--mqtt-username``,
  ``--mqtt-password``, ``--tls-ca-file``, ``--tls-cert``, ``--tls-key``) to one
  ``BrokerSettings``, with a one-line :class:`ConfigError` naming the bad option.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Final

from pydantic import SecretStr, ValidationError

from renkei.cloud._exceptions import ConfigError
from renkei.core.mqtt import BrokerSettings, BrokerSettingsError
from renkei.core.mqtt.settings import CLIENT_ID_CHARS

__all__ = [
    "BROKER_OPTIONS",
    "broker_settings_from_options",
    "host_client_id",
]

#: The command-line option (and environment variable) behind each ``BrokerSettings``
#: field, for error messages.
BROKER_OPTIONS: Final[dict[str, str]] = {
    "host": "--broker / RENKEI_BROKER",
    "port": "--broker / RENKEI_BROKER",
    "tls": "--broker / RENKEI_BROKER",
    "username": "--mqtt-username / RENKEI_MQTT_USERNAME",
    "password": "--mqtt-password / RENKEI_MQTT_PASSWORD",
    "tls_ca_file": "--tls-ca-file / RENKEI_MQTT_TLS_CA_FILE",
    "tls_cert_file": "--tls-cert / RENKEI_MQTT_TLS_CERT",
    "tls_key_file": "--tls-key / RENKEI_MQTT_TLS_KEY",
    "client_id": "--client-id",
    "protocol": "--protocol / RENKEI_MQTT_PROTOCOL",
}


def host_client_id(prefix: str) -> str:
    """``{prefix}-{hostname}`` (characters outside ``[A-Za-z0-9_.-]`` become ``-``), at
    most 64 characters: stable across restarts of one host, distinct between hosts."""
    host = "".join(ch if ch in CLIENT_ID_CHARS else "-" for ch in socket.gethostname())
    return f"{prefix}-{host}"[:64]


def broker_settings_from_options(
    *,
    url: str,
    username: str | None = None,
    password: str | None = None,
    tls_ca_file: str | Path | None = None,
    tls_cert_file: str | Path | None = None,
    tls_key_file: str | Path | None = None,
    client_id: str | None = None,
    protocol: str = "5",
) -> BrokerSettings:
    """:class:`BrokerSettings` from the ``renkei cloud`` commands' broker options.

    Args:
        url: ``mqtt://host[:1883]`` or ``mqtts://host[:8883]`` (``--broker``).
        username, password: MQTT credentials (the password from ``RENKEI_MQTT_PASSWORD``).
        tls_ca_file: PEM CA bundle of the broker certificate (implies TLS).
        tls_cert_file, tls_key_file: PEM client certificate and key (mutual TLS).
        client_id: MQTT client id, or ``None`` for the service's default.
        protocol: ``"5"`` or ``"3.1.1"``.

    Raises:
        ConfigError: a bad value or a TLS file that does not exist; one line naming the
            option, e.g. ``invalid broker settings: --broker / RENKEI_BROKER: broker URL
            must be mqtt://host[:port] or mqtts://host[:port], got 'http://x'``.
    """
    files = {
        "tls_ca_file": tls_ca_file,
        "tls_cert_file": tls_cert_file,
        "tls_key_file": tls_key_file,
    }
    for name, path in files.items():
        if path is not None and not Path(path).is_file():
            raise ConfigError(f"invalid broker settings: {BROKER_OPTIONS[name]}: no file {path}")
    fields: dict[str, object] = {
        name: Path(path) for name, path in files.items() if path is not None
    }
    if username is not None:
        fields["username"] = username
    if password is not None:
        fields["password"] = SecretStr(password)
    if client_id is not None:
        fields["client_id"] = client_id
    fields["protocol"] = protocol
    try:
        return BrokerSettings.from_url(url, **fields)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            loc = str(error["loc"][0]) if error["loc"] else ""
            message = error["msg"].removeprefix("Value error, ")
            where = BROKER_OPTIONS.get(loc)
            problems.append(message if where is None else f"{where}: {message}")
        raise ConfigError("invalid broker settings: " + "; ".join(problems)) from None
    except BrokerSettingsError as exc:  # the URL itself
        raise ConfigError(f"invalid broker settings: {BROKER_OPTIONS['host']}: {exc}") from None
