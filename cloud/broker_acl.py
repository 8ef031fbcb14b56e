"""Render the broker's ACL (``deploy/mosquitto/acl``) from the gateway config files.

Each gateway gets exactly the topics of the machines its config lists, so one gateway
cannot overwrite another gateway's points, even at the same site (issue 11, "Forged data
within a site"), plus its own birth/Last Will and health topics. Writing these blocks by
hand is error-prone; ``renkei cloud broker-acl GATEWAY.yaml ... --out acl`` renders the
whole file, and ``tests/unit/test_broker_acl.py`` checks that the shipped ACL equals the one
rendered from ``deploy/compose/gateways/``.

Every MQTT connection has a user of its own: compose.conf sets ``use_username_as_clientid``,
so the client id *is* the user name and no client can take over another's session (issue
11, "MQTT client-id takeover"). Hence a gateway has two users: ``{username}`` for its data
connection (:mod:`renkei.edge.transport.publisher`) and ``{username}-rollout`` for its model-rollout
connection (:mod:`renkei.edge.rollout.manager`); and each ingest worker has its own user
(``renkei-ingest-1``, ``renkei-ingest-2``; one shared-subscription group).

Only the fields the ACL needs are read from a gateway config (``gateway_id``, ``firm``,
``site``, ``mqtt.username``, ``machines[].id/area/line``), so the broker host needs neither
the models nor the data sets a full :func:`renkei.edge.config.load_config` would check. Topic
tree: :mod:`renkei.core.wire`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import typer
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from renkei.cloud.site_bridge import SiteBridge, bridge_acl_block, bridge_topics
from renkei.core.errors import ConfigError
from renkei.core.wire import (
    ACK_PREFIX,
    BRIDGE_PREFIX,
    DEADLETTER_PREFIX,
    HOST_PREFIX,
    ROLLOUT_PREFIX,
    TOPIC_ROOT,
    Level,
)

__all__ = [
    "ROLLOUT_USER_SUFFIX",
    "AclConfigError",
    "CloudUsers",
    "GatewayGrant",
    "TopicRule",
    "all_rules",
    "broker_acl_command",
    "check_unique",
    "cloud_rules",
    "gateway_rules",
    "load_gateway",
    "render_acl",
]

#: The rollout connection of gateway user ``u`` logs in as ``u + ROLLOUT_USER_SUFFIX``.
ROLLOUT_USER_SUFFIX = "-rollout"

_LAX = ConfigDict(frozen=True, extra="ignore")


class AclConfigError(ConfigError):
    """A gateway config the ACL cannot be rendered from; names the file and key path."""


class _Mqtt(BaseModel):
    model_config = _LAX
    username: Level | None = None


class _Machine(BaseModel):
    model_config = _LAX
    id: Level
    area: Level
    line: Level


class _Gateway(BaseModel):
    model_config = _LAX
    gateway_id: Level
    firm: Level
    site: Level
    mqtt: _Mqtt = _Mqtt()
    machines: list[_Machine]


@dataclass(frozen=True)
class GatewayGrant:
    """What one gateway may publish and read (from its config file)."""

    user: str
    gateway_id: str
    firm: str
    site: str
    machines: tuple[tuple[str, str, str], ...]
    """``(area, line, machine id)`` of every machine, in config order."""
    source: str = ""
    """The config file it came from (error messages only)."""


@dataclass(frozen=True)
class CloudUsers:
    """The cloud services' MQTT users (docker-compose.yml: RENKEI_MQTT_USERNAME)."""

    ingest: tuple[str, ...] = ("renkei-ingest-1", "renkei-ingest-2")
    watch: str = "renkei-watch"
    rollout: str = "renkei-rollout"


def load_gateway(path: Path) -> GatewayGrant:
    """Read the ACL-relevant part of a gateway YAML config (:mod:`renkei.edge.config`'s format).

    Raises:
        AclConfigError: unreadable file, bad YAML, a missing or invalid field (message:
            ``{file}: {key path}: {problem}``), or no ``mqtt.username`` (the broker admits
            only known users).
    """
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise AclConfigError(f"{path}: cannot read the gateway config: {exc}") from None
    try:
        cfg = _Gateway.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
            for err in exc.errors()
        )
        raise AclConfigError(f"{path}: {problems}") from None
    if cfg.mqtt.username is None:
        raise AclConfigError(f"{path}: mqtt.username: not set; the broker needs a user")
    if not cfg.machines:
        raise AclConfigError(f"{path}: machines: empty; the gateway would have no topic")
    return GatewayGrant(
        user=cfg.mqtt.username,
        gateway_id=cfg.gateway_id,
        firm=cfg.firm,
        site=cfg.site,
        machines=tuple((m.area, m.line, m.id) for m in cfg.machines),
        source=str(path),
    )


def check_unique(gateways: Sequence[GatewayGrant], cloud: CloudUsers) -> None:
    """Refuse two grants of one user, gateway id or machine topic (names both sources).

    Raises:
        AclConfigError: the first such conflict.
    """
    users: dict[str, str] = {u: "the cloud services" for u in (*cloud.ingest, cloud.watch)}
    users[cloud.rollout] = "the cloud services"
    gateway_ids: dict[tuple[str, str, str], str] = {}
    machines: dict[tuple[str, ...], str] = {}
    for g in gateways:
        for user in (g.user, g.user + ROLLOUT_USER_SUFFIX):
            if user in users:
                raise AclConfigError(f"{g.source}: MQTT user {user!r} is also in {users[user]}")
            users[user] = g.source
        key = (g.firm, g.site, g.gateway_id)
        if key in gateway_ids:
            raise AclConfigError(
                f"{g.source}: gateway_id {g.gateway_id!r} at {g.firm}/{g.site} is also in "
                f"{gateway_ids[key]}"
            )
        gateway_ids[key] = g.source
        for machine in g.machines:
            mkey = (g.firm, g.site, *machine)
            if mkey in machines:
                raise AclConfigError(
                    f"{g.source}: machine {'/'.join(mkey)} is also in {machines[mkey]}; "
                    "a machine's topics belong to one gateway"
                )
            machines[mkey] = g.source


_HEADER = """\
# Mosquitto ACL of Renkei's broker (acl_file in compose.conf). Deny by default: a user may
# publish ("write") and subscribe/receive ("read") only the topics listed after its `user`
# line. Topic tree: renkei/core/wire.py.
#
#   renkei/v1/{firm}/{site}/{area}/{line}/{machine}/{kind}   machine data (gateways)
#   renkei/v1/{firm}/{site}/_gw/{gateway}/state|health       gateway birth/Last Will, health
#   renkei/host/v1/{group}/heartbeat                          ingest liveness (gateways wait)
#   renkei/dlq/v1/{reason}                                    dead letters (ingest)
#   renkei/rollout/v1/{firm}/{site}/{gateway}/desired|report  model rollout
#   renkei/ack/v1/{firm}/{site}/{gateway}                     end-to-end acks (ingest ->
#                                                             gateway: only the ingest
#                                                             writes, each gateway reads
#                                                             only its own)
#   renkei/bridge/v1/{firm}/{site}/state                      a site broker's bridge, 1/0
#
# GENERATED by `renkei cloud broker-acl` (cloud/broker_acl.py) from the gateway configs;
# do not edit the gateway blocks by hand. Adding a gateway: its config file, then render
# this file again and give the broker a password for both of its users (deploy/README.md,
# "Adding a gateway").
#
# Every connection has a user of its own: compose.conf sets use_username_as_clientid, so
# the client id is the user name and nobody can take over another client's session or
# fire its Last Will. A gateway's data connection logs in as its user and may publish on
# exactly its own machines' topics (one line per machine; `+` = the kind) and its own
# _gw/{gateway}/ topics; its model-rollout connection logs in as `{user}-rollout`.
# Mosquitto re-reads this file on SIGHUP.
"""


@dataclass(frozen=True, slots=True)
class TopicRule:
    """One grant of one MQTT user: ``read`` (subscribe to and receive) or ``write``
    (publish) the topic filter ``topic``. The one statement of who may use which topic:
    :func:`render_acl` writes these as ``topic read|write`` lines of the ACL file, and
    :mod:`renkei.cloud.broker_dynsec` as the ACLs of the user's dynamic-security role."""

    access: Literal["read", "write"]
    topic: str


def cloud_rules(cloud: CloudUsers = CloudUsers()) -> dict[str, tuple[TopicRule, ...]]:
    """The cloud services' users and their rules, in ACL order: each ingest worker (reads
    everything; writes its heartbeat, dead letters and end-to-end acks), the watcher
    (gateway states) and the rollout controller (desired out, reports in)."""
    heartbeat = f"{HOST_PREFIX}/+/heartbeat"
    rules: dict[str, tuple[TopicRule, ...]] = {}
    for user in cloud.ingest:
        rules[user] = (
            TopicRule("read", "#"),
            TopicRule("write", heartbeat),
            TopicRule("write", f"{DEADLETTER_PREFIX}/#"),
            TopicRule("write", f"{ACK_PREFIX}/#"),
        )
    rules[cloud.watch] = (
        TopicRule("read", f"{TOPIC_ROOT}/+/+/_gw/+/state"),
        TopicRule("read", f"{BRIDGE_PREFIX}/+/+/state"),
    )
    rules[cloud.rollout] = (
        TopicRule("write", f"{ROLLOUT_PREFIX}/+/+/+/desired"),
        TopicRule("read", f"{ROLLOUT_PREFIX}/+/+/+/report"),
    )
    return rules


def gateway_rules(g: GatewayGrant) -> dict[str, tuple[TopicRule, ...]]:
    """A gateway's two users and their rules: ``{g.user: data connection,
    g.user + ROLLOUT_USER_SUFFIX: model-rollout connection}``.

    The data user writes exactly its machines' topics (any kind) and its own
    ``_gw/{gateway}/`` birth/Last Will/health topics, and reads the ingest heartbeats and
    its own end-to-end acks; the rollout user reads its desired model set and writes its
    report.
    """
    site = f"{TOPIC_ROOT}/{g.firm}/{g.site}"
    rollout = f"{ROLLOUT_PREFIX}/{g.firm}/{g.site}/{g.gateway_id}"
    return {
        g.user: (
            *(
                TopicRule("write", f"{site}/{area}/{line}/{machine}/+")
                for area, line, machine in g.machines
            ),
            TopicRule("write", f"{site}/_gw/{g.gateway_id}/+"),
            TopicRule("read", f"{HOST_PREFIX}/+/heartbeat"),
            TopicRule("read", f"{ACK_PREFIX}/{g.firm}/{g.site}/{g.gateway_id}"),
        ),
        g.user + ROLLOUT_USER_SUFFIX: (
            TopicRule("read", f"{rollout}/desired"),
            TopicRule("write", f"{rollout}/report"),
        ),
    }


def all_rules(
    gateways: Sequence[GatewayGrant],
    cloud: CloudUsers = CloudUsers(),
    bridges: Sequence[SiteBridge] = (),
) -> dict[str, tuple[TopicRule, ...]]:
    """Every user of :func:`render_acl`'s file and its rules, in the file's order (the
    dynamic-security roles file, :func:`renkei.cloud.broker_dynsec.render_roles`).

    Raises:
        AclConfigError: as :func:`render_acl`.
    """
    check_unique(gateways, cloud)
    _check_bridges(gateways, cloud, bridges)
    rules = dict(cloud_rules(cloud))
    for g in gateways:
        rules.update(gateway_rules(g))
    for b in bridges:
        rules[b.bridge_user] = (
            *(
                TopicRule("write" if direction == "out" else "read", pattern)
                for pattern, direction, _qos in bridge_topics(b)
            ),
            TopicRule("write", b.state_topic),
        )
    return rules


def _lines(rules: Sequence[TopicRule]) -> list[str]:
    return [f"topic {rule.access} {rule.topic}" for rule in rules]


def render_acl(
    gateways: Sequence[GatewayGrant],
    cloud: CloudUsers = CloudUsers(),
    bridges: Sequence[SiteBridge] = (),
) -> str:
    """The whole ACL file: the cloud services' blocks, one pair of blocks per gateway, then
    one block per site broker bridge (:mod:`renkei.cloud.site_bridge`).

    Gateways and bridges are rendered in the given order.

    Raises:
        AclConfigError: two gateways share a user, a gateway id (at one site) or a machine;
            a bridge user is also another user, or two bridges serve one site.
    """
    check_unique(gateways, cloud)
    _check_bridges(gateways, cloud, bridges)
    services = cloud_rules(cloud)
    out = [_HEADER, "# --- Cloud services " + "-" * 70, ""]
    for user in cloud.ingest:
        out += [
            "# An ingest worker (one shared subscription): reads everything, publishes its",
            "# heartbeat, dead letters and end-to-end acks (only the ingest confirms data).",
            f"user {user}",
            *_lines(services[user]),
            "",
        ]
    out += [
        "# Disruption watcher (renkei cloud watch): gateway birth / Last Will states and",
        "# site broker bridge states only.",
        f"user {cloud.watch}",
        *_lines(services[cloud.watch]),
        "",
        "# Rollout controller (python -m renkei.cloud.rollout): desired model sets out,"
        " reports in.",
        f"user {cloud.rollout}",
        *_lines(services[cloud.rollout]),
        "",
        "# --- Gateways (generated: two users each) " + "-" * 47,
    ]
    for g in gateways:
        count = len(g.machines)
        out += [
            "",
            f"# gateway {g.gateway_id} at {g.firm}/{g.site}: "
            f"{count} machine{'s' if count != 1 else ''}",
        ]
        for n, (user, rules) in enumerate(gateway_rules(g).items()):
            out += [*([""] if n else []), f"user {user}", *_lines(rules)]
    if bridges:
        out += ["", "# --- Site broker bridges (generated: one user each) " + "-" * 37]
    for bridge in bridges:
        out += ["", *bridge_acl_block(bridge)]
    return "\n".join(out) + "\n"


def _check_bridges(
    gateways: Sequence[GatewayGrant], cloud: CloudUsers, bridges: Sequence[SiteBridge]
) -> None:
    """Refuse a bridge user that is another user, and two bridges of one site."""
    users = {*cloud.ingest, cloud.watch, cloud.rollout}
    for g in gateways:
        users |= {g.user, g.user + ROLLOUT_USER_SUFFIX}
    sites: set[tuple[str, str]] = set()
    for b in bridges:
        if b.bridge_user in users:
            raise AclConfigError(f"site bridge {b.firm}/{b.site}: user {b.bridge_user!r} is taken")
        if (b.firm, b.site) in sites:
            raise AclConfigError(f"site bridge {b.firm}/{b.site}: listed twice")
        users.add(b.bridge_user)
        sites.add((b.firm, b.site))


def _parse_bridge(spec: str) -> SiteBridge:
    """``FIRM/SITE`` or ``FIRM/SITE=USER`` (``--site-bridge``) as a :class:`SiteBridge`."""
    where, _, user = spec.partition("=")
    firm, _, site = where.partition("/")
    try:
        return SiteBridge(firm=firm, site=site, cloud_host="unused", user=user or None)
    except ValidationError as exc:
        raise AclConfigError(
            f"--site-bridge {spec!r}: expected FIRM/SITE or FIRM/SITE=USER with levels of "
            f"[A-Za-z0-9_.-] ({exc.error_count()} problems)"
        ) from None


def broker_acl_command(
    configs: Annotated[
        list[Path], typer.Argument(help="gateway config files (YAML), in the order to render")
    ],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="write here (default: standard output)")
    ] = None,
    ingest_user: Annotated[
        list[str] | None,
        typer.Option("--ingest-user", help="MQTT user of one ingest worker (repeat)"),
    ] = None,
    watch_user: Annotated[str, typer.Option(help="MQTT user of the watcher")] = "renkei-watch",
    rollout_user: Annotated[
        str, typer.Option(help="MQTT user of the rollout controller")
    ] = "renkei-rollout",
    site_bridge: Annotated[
        list[str] | None,
        typer.Option(help="a site broker's bridge: FIRM/SITE or FIRM/SITE=USER (repeat)"),
    ] = None,
    roles_out: Annotated[
        Path | None,
        typer.Option(
            "--roles-out",
            help="also write the same rules as dynamic-security roles "
            "(deploy/mosquitto/dynsec-roles)",
        ),
    ] = None,
) -> None:
    """Render the broker ACL (deploy/mosquitto/acl) from gateway config files, and with
    --roles-out the same rules as dynamic-security roles (deploy/mosquitto/dynsec-roles)."""
    # broker_dynsec imports this module (TopicRule); import it only when called.
    from renkei.cloud.broker_dynsec import render_roles

    cloud = CloudUsers(
        ingest=tuple(ingest_user) if ingest_user else CloudUsers().ingest,
        watch=watch_user,
        rollout=rollout_user,
    )
    try:
        bridges = [_parse_bridge(spec) for spec in site_bridge or ()]
        gateways = [load_gateway(p) for p in configs]
        text = render_acl(gateways, cloud, bridges)
        roles = render_roles(all_rules(gateways, cloud, bridges))
    except AclConfigError as exc:
        typer.echo(f"broker-acl: {exc}", err=True)
        raise typer.Exit(2) from None
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"broker-acl: wrote {out} ({len(configs)} gateways)", err=True)
    if roles_out is not None:
        roles_out.write_text(roles, encoding="utf-8")
        typer.echo(f"broker-acl: wrote {roles_out} (dynamic-security roles)", err=True)
