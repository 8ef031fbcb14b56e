"""``renkei cloud gateways enroll | redeem | revoke | list`` (:mod:`renkei.cloud.gateway_identity`).

- ``enroll GATEWAY.yaml``: records the gateway (its config's firm, site, MQTT user and
  machines) and prints a one-time enrolment token on standard output (nothing else goes
  there); ``--ttl-hours`` (default 24) bounds its life.
- ``redeem``: reads the token from standard input (never from the command line, which
  other users of the host can see), creates the gateway's two MQTT users and roles in the
  running broker and prints their credentials as one JSON object.
- ``revoke GW``: deletes the gateway's users and roles in the running broker (its
  sessions end at once) and marks it revoked.
- ``list``: every enrolled gateway as JSON lines (no secrets).
- ``rotate GW``: prints a one-time *rotation* token; the gateway redeems it
  (``renkei edge enrol``) for a second credential while the current one keeps working,
  switches, and ``rotate GW --finish`` then deletes the old one
  (:mod:`renkei.cloud.gateway_rotation`).
- ``expire``: disables in the running broker every credential past its expiry (run it
  from a timer, e.g. every minute).

The registry is the API's (``--database-url`` / ``RENKEI_API_DATABASE_URL``); the broker
is reached as the dynamic-security admin (``--broker`` / ``RENKEI_BROKER``,
``--dynsec-username`` / ``RENKEI_DYNSEC_USERNAME``, ``--dynsec-password`` /
``RENKEI_DYNSEC_PASSWORD``, the TLS options of every ``renkei cloud`` service). Exit
status: 0 done; 1 refused (token unknown, used, expired, revoked; gateway not found) or the
broker or database failed; 2 a bad option, setting or gateway config, named on one line.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError

from renkei.cloud.broker import broker_settings_from_options
from renkei.cloud.broker_acl import AclConfigError, load_gateway
from renkei.cloud.broker_dynsec import DynsecAdmin, DynsecError, DynsecSettings
from renkei.cloud.cli_options import Broker, RegistryUrl, TlsCaFile, TlsCert, TlsKey
from renkei.cloud.gateway_identity import (
    EnrolmentConflict,
    EnrolmentError,
    describe,
    enroll,
    redeem,
    revoke,
)
from renkei.cloud.gateway_rotation import expire, finish_rotation, rotate
from renkei.cloud.registry import make_engine, session_scope
from renkei.cloud.registry.gateways import GatewayEnrolment
from renkei.cloud.registry.migrate import upgrade
from renkei.core.errors import ConfigError

__all__ = ["app"]

app = typer.Typer(
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    help="Gateway identities in the broker: enrol, redeem a token, revoke.",
)

DynsecUsername = Annotated[
    str,
    typer.Option(envvar="RENKEI_DYNSEC_USERNAME", help="the broker's dynamic-security admin user"),
]
DynsecPassword = Annotated[
    str | None,
    typer.Option(envvar="RENKEI_DYNSEC_PASSWORD", help="its password (use the variable)"),
]


def _fail(command: str, message: str, status: int) -> typer.Exit:
    typer.echo(f"gateways {command}: {message}", err=True)
    return typer.Exit(status)


@contextmanager
def _registry(command: str, database_url: str | None) -> Iterator[Engine]:
    """The registry engine, migrated; a bad setting or database exits with one line."""
    from renkei.cloud.api.settings import load_api_settings  # lazy: the API package is heavy

    try:
        url = database_url or load_api_settings().database_url
    except ConfigError as exc:
        raise _fail(command, f"invalid configuration: {exc}", 2) from None
    engine = make_engine(url)
    try:
        upgrade(url)
        yield engine
    except SQLAlchemyError as exc:
        raise _fail(command, f"registry database: {type(exc).__name__}", 1) from None
    finally:
        engine.dispose()


def _dynsec(
    command: str,
    *,
    broker: str,
    username: str,
    password: str | None,
    tls_ca_file: str | None,
    tls_cert: str | None,
    tls_key: str | None,
) -> DynsecSettings:
    try:
        settings = broker_settings_from_options(
            url=broker,
            username=username,
            password=password,
            tls_ca_file=tls_ca_file,
            tls_cert_file=tls_cert,
            tls_key_file=tls_key,
        )
    except ConfigError as exc:
        raise _fail(command, str(exc), 2) from None
    return DynsecSettings(broker=settings)


@app.command("enroll")
def enroll_command(
    config: Annotated[Path, typer.Argument(help="the gateway's config file (YAML)")],
    ttl_hours: Annotated[float, typer.Option(help="token life, hours (> 0, <= 720)")] = 24.0,
    database_url: RegistryUrl = None,
) -> None:
    """Record a gateway and print its one-time enrolment token."""
    try:
        grant = load_gateway(config)
    except AclConfigError as exc:
        raise _fail("enroll", str(exc), 2) from None
    if not 0 < ttl_hours <= 720:
        raise _fail("enroll", f"--ttl-hours: expected > 0 and <= 720, got {ttl_hours}", 2)
    with _registry("enroll", database_url) as engine:
        try:
            with session_scope(engine) as session:
                token = enroll(
                    session, grant, now=datetime.now(UTC), ttl=timedelta(hours=ttl_hours)
                )
        except EnrolmentConflict as exc:
            raise _fail("enroll", str(exc), 2) from None
    typer.echo(
        f"gateways enroll: {grant.firm}/{grant.site}/{grant.gateway_id} (MQTT user "
        f"{grant.user}); the token below is valid {ttl_hours:g} h and works once",
        err=True,
    )
    typer.echo(token)


@app.command("redeem")
def redeem_command(
    broker: Broker = "mqtt://127.0.0.1:1883",
    dynsec_username: DynsecUsername = "renkei-dynsec-admin",
    dynsec_password: DynsecPassword = None,
    tls_ca_file: TlsCaFile = None,
    tls_cert: TlsCert = None,
    tls_key: TlsKey = None,
    database_url: RegistryUrl = None,
    credential_days: Annotated[
        float, typer.Option(help="life of the credentials, days (> 0, <= 3660; 0 = no expiry)")
    ] = 90.0,
) -> None:
    """Exchange the enrolment token on standard input for the gateway's MQTT credentials."""
    if not 0 <= credential_days <= 3660:
        raise _fail("redeem", f"--credential-days: expected 0..3660, got {credential_days}", 2)
    token = sys.stdin.readline().strip()
    if not token:
        raise _fail("redeem", "no token on standard input", 2)
    settings = _dynsec(
        "redeem",
        broker=broker,
        username=dynsec_username,
        password=dynsec_password,
        tls_ca_file=tls_ca_file,
        tls_cert=tls_cert,
        tls_key=tls_key,
    )
    with _registry("redeem", database_url) as engine:
        try:
            with DynsecAdmin(settings=settings) as admin, session_scope(engine) as session:
                credentials = redeem(
                    session,
                    admin,
                    token,
                    now=datetime.now(UTC),
                    credential_ttl=timedelta(days=credential_days) if credential_days else None,
                )
        except (EnrolmentError, DynsecError) as exc:
            raise _fail("redeem", str(exc), 1) from None
    typer.echo(json.dumps(credentials.reveal()))


@app.command("revoke")
def revoke_command(
    gateway: Annotated[str, typer.Argument(help="the gateway id")],
    firm: Annotated[str | None, typer.Option(help="its firm (if the id is ambiguous)")] = None,
    site: Annotated[str | None, typer.Option(help="its site (if the id is ambiguous)")] = None,
    broker: Broker = "mqtt://127.0.0.1:1883",
    dynsec_username: DynsecUsername = "renkei-dynsec-admin",
    dynsec_password: DynsecPassword = None,
    tls_ca_file: TlsCaFile = None,
    tls_cert: TlsCert = None,
    tls_key: TlsKey = None,
    database_url: RegistryUrl = None,
) -> None:
    """Cut a gateway off at once: delete its MQTT users and roles in the running broker."""
    settings = _dynsec(
        "revoke",
        broker=broker,
        username=dynsec_username,
        password=dynsec_password,
        tls_ca_file=tls_ca_file,
        tls_cert=tls_cert,
        tls_key=tls_key,
    )
    with _registry("revoke", database_url) as engine:
        try:
            with DynsecAdmin(settings=settings) as admin, session_scope(engine) as session:
                row = revoke(session, admin, gateway, firm=firm, site=site, now=datetime.now(UTC))
                name = f"{row.firm_id}/{row.site}/{row.gateway_id}"
                users = f"{row.username}, {row.username}-rollout"
        except (EnrolmentError, DynsecError) as exc:
            raise _fail("revoke", str(exc), 1) from None
    typer.echo(f"gateways revoke: {name}: MQTT users {users} deleted and disconnected")


@app.command("list")
def list_command(database_url: RegistryUrl = None) -> None:
    """Every enrolled gateway as one JSON object per line (no secrets)."""
    with _registry("list", database_url) as engine, session_scope(engine) as session:
        rows = session.scalars(select(GatewayEnrolment).order_by(GatewayEnrolment.username))
        for row in rows:
            typer.echo(json.dumps(describe(row)))


@app.command("rotate")
def rotate_command(
    gateway: Annotated[str, typer.Argument(help="the gateway id")],
    finish: Annotated[
        bool, typer.Option("--finish", help="delete the old credential (after the switch)")
    ] = False,
    ttl_hours: Annotated[float, typer.Option(help="token life, hours (> 0, <= 720)")] = 24.0,
    firm: Annotated[str | None, typer.Option(help="its firm (if the id is ambiguous)")] = None,
    site: Annotated[str | None, typer.Option(help="its site (if the id is ambiguous)")] = None,
    broker: Broker = "mqtt://127.0.0.1:1883",
    dynsec_username: DynsecUsername = "renkei-dynsec-admin",
    dynsec_password: DynsecPassword = None,
    tls_ca_file: TlsCaFile = None,
    tls_cert: TlsCert = None,
    tls_key: TlsKey = None,
    database_url: RegistryUrl = None,
) -> None:
    """Print a rotation token (the old credential keeps working), or with --finish delete
    the old credential once the gateway has switched."""
    if not finish:
        if not 0 < ttl_hours <= 720:
            raise _fail("rotate", f"--ttl-hours: expected > 0 and <= 720, got {ttl_hours}", 2)
        with _registry("rotate", database_url) as engine:
            try:
                with session_scope(engine) as session:
                    token = rotate(
                        session,
                        gateway,
                        firm=firm,
                        site=site,
                        now=datetime.now(UTC),
                        ttl=timedelta(hours=ttl_hours),
                    )
            except EnrolmentError as exc:
                raise _fail("rotate", str(exc), 1) from None
        typer.echo(
            f"gateways rotate: {gateway}: the token below gives it a second credential "
            f"(valid {ttl_hours:g} h, once); run `renkei edge enrol` on the gateway with it, "
            "then `renkei cloud gateways rotate --finish`",
            err=True,
        )
        typer.echo(token)
        return
    settings = _dynsec(
        "rotate",
        broker=broker,
        username=dynsec_username,
        password=dynsec_password,
        tls_ca_file=tls_ca_file,
        tls_cert=tls_cert,
        tls_key=tls_key,
    )
    with _registry("rotate", database_url) as engine:
        try:
            with DynsecAdmin(settings=settings) as admin, session_scope(engine) as session:
                users = finish_rotation(session, admin, gateway, firm=firm, site=site)
        except (EnrolmentError, DynsecError) as exc:
            raise _fail("rotate", str(exc), 1) from None
    if users:
        typer.echo(f"gateways rotate: {gateway}: old MQTT users {', '.join(users)} deleted")
    else:
        typer.echo(f"gateways rotate: {gateway}: no rotation to finish")


@app.command("expire")
def expire_command(
    broker: Broker = "mqtt://127.0.0.1:1883",
    dynsec_username: DynsecUsername = "renkei-dynsec-admin",
    dynsec_password: DynsecPassword = None,
    tls_ca_file: TlsCaFile = None,
    tls_cert: TlsCert = None,
    tls_key: TlsKey = None,
    database_url: RegistryUrl = None,
    every: Annotated[
        float | None,
        typer.Option(
            min=1.0,
            help="check every N seconds until SIGINT/SIGTERM (default: once, then exit)",
        ),
    ] = None,
) -> None:
    """Disable in the running broker every gateway credential past its expiry
    (``--every 60`` keeps doing it: compose's ``gateway-expiry`` service)."""
    settings = _dynsec(
        "expire",
        broker=broker,
        username=dynsec_username,
        password=dynsec_password,
        tls_ca_file=tls_ca_file,
        tls_cert=tls_cert,
        tls_key=tls_key,
    )
    with _registry("expire", database_url) as engine:

        def once() -> list[str]:
            with DynsecAdmin(settings=settings) as admin, session_scope(engine) as session:
                users = expire(session, admin, now=datetime.now(UTC))
            typer.echo(
                f"gateways expire: {len(users)} MQTT user(s) disabled: {', '.join(users) or '-'}"
            )
            return users

        if every is not None:
            from renkei.cloud.periodic import run_until_signal

            run_until_signal(once, every_s=every, name="gateways expire")
            return
        try:
            once()
        except DynsecError as exc:
            raise _fail("expire", str(exc), 1) from None
