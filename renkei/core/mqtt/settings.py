"""Broker connection settings shared by every Renkei MQTT client (frozen pydantic model)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Self
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from renkei.core.errors import ConfigError

#: Characters of an MQTT client id Renkei accepts (MQTT 5 §3.1.3.1 guarantees 0-9a-zA-Z;
#: Mosquitto accepts more, ``_.-`` are safe in every broker we met).
CLIENT_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


class BrokerSettingsError(ConfigError):
    """Broker settings that cannot be used (bad URL, half a TLS key pair, unreadable file).
    A :class:`~renkei.core.errors.ConfigError` (so also a ``ValueError``)."""


class BrokerSettings(BaseModel):
    """Where the broker is and how to authenticate to it (immutable).

    Embedded by the gateway config (``mqtt:``), the publisher, the model rollout and the
    cloud services' settings. Build it from a URL with :meth:`from_url`
    (``mqtt://host[:1883]`` or ``mqtts://host[:8883]``).

    Attributes:
        host: broker host name or address.
        port: TCP port, 1..65535.
        client_id: MQTT client id; ``None`` = the owner picks one (the gateway id, ...).
            Keep it stable across restarts where the broker keeps a session for it.
        username, password: MQTT credentials (the password is never logged).
        tls: use TLS; implied by any ``tls_*`` file. Alone it verifies the broker
            against the system CA store.
        tls_ca_file: PEM CA bundle that signed the broker's certificate.
        tls_cert_file, tls_key_file: PEM client certificate and key (mutual TLS); both
            or neither.
        tls_insecure: skip the broker certificate's host-name check (testing only).
        keepalive_s: MQTT keep-alive, seconds (5..65535, the protocol's 16-bit field);
            the broker fires the Last Will after 1.5x this without a packet.
        protocol: ``"5"`` (MQTT 5.0) or ``"3.1.1"``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65_535)] = 1883
    client_id: str | None = None
    username: str | None = None
    password: SecretStr | None = None
    tls: bool = False
    tls_ca_file: Path | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    tls_insecure: bool = False
    keepalive_s: Annotated[int, Field(ge=5, le=65_535)] = 30
    protocol: Literal["5", "3.1.1"] = "5"

    @model_validator(mode="after")
    def _key_pair(self) -> Self:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise BrokerSettingsError("tls_cert_file and tls_key_file must be given together")
        if self.client_id is not None and (
            not self.client_id
            or len(self.client_id) > 64
            or not set(self.client_id) <= CLIENT_ID_CHARS
        ):
            raise BrokerSettingsError("client_id must be 1-64 characters of [A-Za-z0-9_.-]")
        return self

    @classmethod
    def from_url(cls, url: str, **fields: object) -> BrokerSettings:
        """Settings from ``mqtt://host[:port]`` (plain, default port 1883) or
        ``mqtts://host[:port]`` (TLS, default 8883) plus any other field.

        Raises:
            BrokerSettingsError: not such a URL, or a bad port.
        """
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise BrokerSettingsError(f"broker URL {url!r}: {exc}") from exc
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise BrokerSettingsError(
                f"broker URL must be mqtt://host[:port] or mqtts://host[:port], got {url!r}"
            )
        tls = parts.scheme == "mqtts"
        values: dict[str, object] = {
            "host": parts.hostname,
            "port": port if port is not None else (8883 if tls else 1883),
            "tls": tls or bool(fields.pop("tls", False)),
        }
        values.update(fields)
        return cls.model_validate(values)

    @property
    def uses_tls(self) -> bool:
        """Whether the connection uses TLS."""
        return self.tls or self.tls_ca_file is not None or self.tls_cert_file is not None

    @property
    def url(self) -> str:
        """``mqtt://host:port`` or ``mqtts://host:port`` (no credentials), for log lines."""
        return f"{'mqtts' if self.uses_tls else 'mqtt'}://{self.host}:{self.port}"

    @property
    def address(self) -> str:
        """``host:port (TLS|plain TCP)``, for log lines."""
        return f"{self.host}:{self.port} ({'TLS' if self.uses_tls else 'plain TCP'})"
