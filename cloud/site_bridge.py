"""A site broker bridged to the cloud: its Mosquitto config and its block in the cloud ACL.

A factory may run its own Mosquitto (on a gateway or a site server) that its gateways and
local tools (a panel PC, Node-RED) use; that broker bridges the site's part of the topic
tree (:mod:`renkei.core.wire`) to the cloud broker over TLS, QoS 1, with a persistent session
and a bounded persistent queue (deploy/README.md, "Site broker"). This module is the one
source of both sides:

- :func:`render_site_conf`: the site broker's ``mosquitto.conf`` (listener, queue limits,
  persistence, the bridge with its topics and TLS);
- :func:`bridge_acl_block`: the bridge user's block in the cloud broker's ACL
  (:func:`renkei.cloud.broker_acl.render_acl`), granting exactly this site's topics and its
  bridge state topic.

What crosses the bridge, per site ``{firm}/{site}``::

    out 1  renkei/v1/{firm}/{site}/#                      machine data, gateway state/health
    out 1  renkei/rollout/v1/{firm}/{site}/+/report       model-rollout reports
    in  1  renkei/rollout/v1/{firm}/{site}/+/desired      desired models (retained)
    in  1  renkei/ack/v1/{firm}/{site}/+                  end-to-end acks of the ingest
    in  0  renkei/host/v1/+/heartbeat                     ingest liveness (gateways wait)

and Mosquitto's own bridge notification on ``renkei/bridge/v1/{firm}/{site}/state``:
``1`` (retained) when the bridge connects, ``0`` (retained) as its Last Will when the
connection breaks or the site broker dies.

``renkei cloud site-bridge`` (:func:`site_bridge_command`) writes the site config;
``deploy/site-broker/mosquitto.conf.example`` is its output for an example site
(``tests/unit/test_site_bridge.py`` checks that they agree).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from renkei.core.errors import ConfigError
from renkei.core.wire import (
    ACK_PREFIX,
    HOST_PREFIX,
    ROLLOUT_PREFIX,
    TOPIC_ROOT,
    Level,
    bridge_state_topic,
)

__all__ = [
    "SiteBridge",
    "SiteBridgeError",
    "bridge_acl_block",
    "bridge_topics",
    "render_site_conf",
    "site_bridge_command",
]

#: Placeholder the shipped example carries instead of a real password.
PASSWORD_PLACEHOLDER = "REPLACE-WITH-THE-BRIDGE-PASSWORD"


class SiteBridgeError(ConfigError):
    """Settings a site bridge cannot be rendered from; names the field and value."""


class SiteBridge(BaseModel):
    """One site broker's bridge to the cloud (immutable).

    Attributes are validated on construction (:class:`pydantic.ValidationError`, mapped to
    :class:`SiteBridgeError` by :meth:`build`).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    firm: Level = Field(description="firm id, a topic level of renkei/v1/{firm}/...")
    site: Level = Field(description="site id, a topic level of renkei/v1/{firm}/{site}/...")
    cloud_host: str = Field(
        min_length=1,
        pattern=r"^[A-Za-z0-9.:\-\[\]]+$",
        description="host name or address of the cloud broker's TLS listener",
    )
    cloud_port: int = Field(
        default=8883, ge=1, le=65535, description="TCP port of the cloud broker's TLS listener"
    )
    user: Level | None = Field(
        default=None,
        description="MQTT user (= client id) of the bridge on the cloud broker; "
        "default bridge-{firm}-{site}",
    )
    ca_file: str = Field(
        default="/etc/mosquitto/renkei/ca.crt",
        min_length=1,
        description="CA certificate the cloud broker's server certificate must chain to",
    )
    local_listener: str = Field(
        default="1883",
        pattern=r"^[0-9]{1,5}( [A-Za-z0-9.:\-]+)?$",
        description="the site broker's listener: 'PORT' or 'PORT ADDRESS' (Mosquitto syntax)",
    )
    local_password_file: str | None = Field(
        default="/etc/mosquitto/renkei/passwd",
        description="password file of the site's local users; None = anonymous clients",
    )
    local_acl_file: str | None = Field(
        default="/etc/mosquitto/renkei/acl",
        description="ACL of the site's local users; None = no ACL",
    )
    data_dir: str = Field(
        default="/var/lib/mosquitto",
        min_length=1,
        description="persistence directory (sessions and queued messages)",
    )
    max_queued_messages: int = Field(
        default=200_000,
        ge=1,
        description="most QoS 1 messages queued per client, the bridge included (count, "
        "inclusive); Mosquitto drops newer messages beyond it",
    )
    max_queued_bytes: int = Field(
        default=268_435_456,
        ge=0,
        description="most payload bytes queued per client (bytes, inclusive; 0 = no "
        "byte limit); Mosquitto drops newer messages beyond it",
    )
    keepalive_s: int = Field(
        default=30,
        ge=5,
        le=65535,
        description="bridge keepalive, seconds: a silent WAN is noticed after 1.5x this",
    )
    autosave_s: int = Field(
        default=30,
        ge=1,
        description="seconds between saves of the in-memory database (queue) to disk",
    )

    @property
    def bridge_user(self) -> str:
        """The bridge's MQTT user and client id on the cloud broker."""
        return self.user or f"bridge-{self.firm}-{self.site}"

    @property
    def state_topic(self) -> str:
        """Where Mosquitto publishes this bridge's ``1``/``0`` state."""
        return bridge_state_topic(firm=self.firm, site=self.site)

    @classmethod
    def build(cls, **values: object) -> SiteBridge:
        """Validate ``values`` into a :class:`SiteBridge`.

        Raises:
            SiteBridgeError: ``{field}: {problem} (got {value!r})`` for every bad field.
        """
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']} (got {e.get('input')!r})"
                for e in exc.errors()
            )
            raise SiteBridgeError(f"site bridge: {problems}") from None


def bridge_topics(bridge: SiteBridge) -> list[tuple[str, str, int]]:
    """``(pattern, direction, qos)`` of every topic the bridge carries, in config order."""
    site = f"{bridge.firm}/{bridge.site}"
    return [
        (f"{TOPIC_ROOT}/{site}/#", "out", 1),
        (f"{ROLLOUT_PREFIX}/{site}/+/report", "out", 1),
        (f"{ROLLOUT_PREFIX}/{site}/+/desired", "in", 1),
        (f"{ACK_PREFIX}/{site}/+", "in", 1),
        (f"{HOST_PREFIX}/+/heartbeat", "in", 0),
    ]


def bridge_acl_block(bridge: SiteBridge) -> list[str]:
    """The bridge user's lines of the cloud ACL: exactly the site's topics and its state."""
    lines = [
        f"# site broker bridge of {bridge.firm}/{bridge.site} (cloud/site_bridge.py)",
        f"user {bridge.bridge_user}",
    ]
    for pattern, direction, _qos in bridge_topics(bridge):
        lines.append(f"topic {'write' if direction == 'out' else 'read'} {pattern}")
    lines.append(f"topic write {bridge.state_topic}")
    return lines


_HEADER = """\
# Renkei site broker of {firm}/{site}, bridged to the cloud broker {host}:{port}.
# GENERATED by `renkei cloud site-bridge` (cloud/site_bridge.py); deploy/README.md,
# "Site broker", says when to use one and what each value is for.
#
# Gateways and local tools connect to this broker as they would to the cloud; the bridge
# carries the site's topics to the cloud (QoS 1) and the cloud's answers back. While the
# WAN is down the bridge's persistent session queues here, up to max_queued_messages /
# max_queued_bytes per client; beyond that Mosquitto drops the NEWER messages (the
# publisher still gets its PUBACK). With `mqtt.ack: ingest` the gateways keep every
# message in their outbox until the cloud ingest confirms it and re-publish what was not
# confirmed, so a drop here costs a re-send, not data.
"""


def render_site_conf(bridge: SiteBridge, *, password: str) -> str:
    """The site broker's whole ``mosquitto.conf``.

    ``password`` is the bridge user's password on the cloud broker; it ends up in the file
    (Mosquitto has no other way), so write the result with mode 0600.

    Raises:
        SiteBridgeError: ``password`` is empty or holds a line break or leading/trailing
            space (Mosquitto would read another value).
    """
    if not password or password != password.strip() or "\n" in password or "\r" in password:
        raise SiteBridgeError(
            "site bridge: password: must be one line without leading or trailing space"
        )
    b = bridge
    out = [_HEADER.format(firm=b.firm, site=b.site, host=b.cloud_host, port=b.cloud_port)]
    out += [
        "# --- Local listener (gateways, panel PC, Node-RED) ---",
        "per_listener_settings false",
    ]
    if b.local_password_file is None:
        out += [
            "# No password file: any client on the network may connect. Tests only.",
            "allow_anonymous true",
        ]
    else:
        out += ["allow_anonymous false", f"password_file {b.local_password_file}"]
    if b.local_acl_file is not None:
        out += [
            "# The site's gateway users: render with `renkei cloud broker-acl` from the",
            "# site's gateway configs, exactly as for the cloud broker.",
            f"acl_file {b.local_acl_file}",
        ]
    out += [f"listener {b.local_listener}"]
    if b.local_password_file is not None:
        out += [
            "# The client id is the user name, so no local client can take over a gateway's",
            "# session or fire its Last Will (must follow the listener line).",
            "use_username_as_clientid true",
        ]
    out += [""]
    out += [
        "# --- Queue and persistence ---",
        "# Per client, the bridge included: size for the site's message rate times the",
        '# longest WAN outage to ride out (deploy/README.md, "Sizing the queue").',
        f"max_queued_messages {b.max_queued_messages}",
        f"max_queued_bytes {b.max_queued_bytes}",
        "queue_qos0_messages false",
        "# QoS 1 messages in flight on the bridge (and to each client) before a PUBACK.",
        "max_inflight_messages 100",
        "max_packet_size 4194304",
        "persistent_client_expiration 7d",
        "persistence true",
        f"persistence_location {b.data_dir}/",
        "persistence_file mosquitto.db",
        "# A save writes the whole queue; a crash loses what arrived since the last one",
        "# (the gateways' outboxes re-send it when they use mqtt.ack: ingest).",
        f"autosave_interval {b.autosave_s}",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "",
        "# --- Bridge to the cloud broker ---",
        "connection renkei-cloud",
        f"address {b.cloud_host}:{b.cloud_port}",
        "# MQTT 3.1.1: cleansession false keeps the bridge's session on BOTH brokers",
        "# (the cloud queues acks and desired models for it, as this broker queues data).",
        "bridge_protocol_version mqttv311",
        "cleansession false",
        "start_type automatic",
        "restart_timeout 2 30",
        f"keepalive_interval {b.keepalive_s}",
        "try_private true",
        f"remote_clientid {b.bridge_user}",
        f"remote_username {b.bridge_user}",
        f"remote_password {password}",
        "# 1 on connect, 0 as the bridge's Last Will: retained on both brokers.",
        "notifications true",
        "notifications_local_only false",
        f"notification_topic {b.state_topic}",
        f"bridge_cafile {b.ca_file}",
        "bridge_insecure false",
        "bridge_tls_version tlsv1.2",
    ]
    out += [f"topic {p} {d} {q}" for p, d, q in bridge_topics(b)]
    return "\n".join(out) + "\n"


def site_bridge_command(
    firm: Annotated[str, typer.Option(help="firm id (topic level)")],
    site: Annotated[str, typer.Option(help="site id (topic level)")],
    cloud_host: Annotated[str, typer.Option(help="cloud broker host name (TLS)")],
    password_file: Annotated[
        Path,
        typer.Option(help="file holding the bridge user's cloud password (one line)"),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="write the mosquitto.conf here")],
    cloud_port: Annotated[int, typer.Option(help="cloud broker TLS port")] = 8883,
    user: Annotated[
        str | None, typer.Option(help="bridge user on the cloud (default bridge-FIRM-SITE)")
    ] = None,
    ca_file: Annotated[
        str, typer.Option(help="CA of the cloud broker's certificate, as the site sees it")
    ] = "/etc/mosquitto/renkei/ca.crt",
    max_queued_messages: Annotated[
        int, typer.Option(help="messages queued per client while the WAN is down")
    ] = 200_000,
    max_queued_bytes: Annotated[
        int, typer.Option(help="bytes queued per client while the WAN is down (0 = no limit)")
    ] = 268_435_456,
) -> None:
    """Write a site broker's mosquitto.conf bridging FIRM/SITE to the cloud (mode 0600)."""
    try:
        bridge = SiteBridge.build(
            firm=firm,
            site=site,
            cloud_host=cloud_host,
            cloud_port=cloud_port,
            user=user,
            ca_file=ca_file,
            max_queued_messages=max_queued_messages,
            max_queued_bytes=max_queued_bytes,
        )
        try:
            password = password_file.read_text(encoding="utf-8").rstrip("\n")
        except OSError as exc:
            raise SiteBridgeError(
                f"site bridge: --password-file {password_file}: {exc.strerror}"
            ) from None
        text = render_site_conf(bridge, password=password)
    except SiteBridgeError as exc:
        typer.echo(f"site-bridge: {exc}", err=True)
        raise typer.Exit(2) from None
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    typer.echo(
        f"site-bridge: wrote {out}; the cloud ACL needs user {bridge.bridge_user} "
        f"(renkei cloud broker-acl --site-bridge {firm}/{site})",
        err=True,
    )
