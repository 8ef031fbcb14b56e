"""Gateway enrolment against a real registry (SQLite, migrated) and a real Mosquitto with
dynamic security: a token is exchanged once, before it expires, for credentials that work
in the broker for exactly the gateway's topics; every other use is refused with its reason;
a broker failure during the exchange leaves the token usable; the CLI does the same, with
the token on standard output (enroll) and standard input (redeem)."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError
from typer.testing import CliRunner

from harness.services import DynsecMosquitto
from harness.wait import wait_for
from renkei.cloud.broker_acl import GatewayGrant, load_gateway
from renkei.cloud.broker_dynsec import (
    DynsecAdmin,
    DynsecUnavailable,
    default_acl_access,
)
from renkei.cloud.cli import app
from renkei.cloud.gateway_identity import (
    TOKEN_PREFIX,
    EnrolmentConflict,
    EnrolmentRefused,
    GatewayNotFound,
    enroll,
    redeem,
    revoke,
)
from renkei.cloud.registry import Firm, GatewayEnrolment, make_engine, session_scope
from renkei.cloud.registry.migrate import upgrade
from tests.dynsec_helpers import ADMIN_PASSWORD, ADMIN_USER, Peer, admin_settings, dynsec_broker

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
DAY = timedelta(hours=24)
GW = GatewayGrant(
    user="gw-a",
    gateway_id="gw-a",
    firm="acme",
    site="nagoya",
    machines=(("molding", "line-1", "imm-1"),),
)


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    url = f"sqlite:///{tmp_path / 'registry.sqlite3'}"
    upgrade(url)
    engine = make_engine(url)
    with session_scope(engine) as s:
        s.add_all(
            [Firm(id="acme", name="Acme", region="chubu"), Firm(id="beta", name="B", region="x")]
        )
    try:
        yield url, engine
    finally:
        engine.dispose()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[DynsecMosquitto]:
    with dynsec_broker(tmp_path / "broker") as b:
        with DynsecAdmin(settings=admin_settings(b)) as admin:
            admin.run(default_acl_access())
        yield b


def _enroll(engine: Engine, grant: GatewayGrant = GW, ttl: timedelta = DAY) -> str:
    with session_scope(engine) as s:
        return enroll(s, grant, now=T0, ttl=ttl)


def _redeem(engine: Engine, broker: DynsecMosquitto, token: str, now: datetime) -> dict[str, str]:
    with DynsecAdmin(settings=admin_settings(broker)) as admin, session_scope(engine) as s:
        return redeem(s, admin, token, now=now).reveal()


def test_token_is_random_stored_hashed_and_works_once(
    registry: tuple[str, Engine], broker: DynsecMosquitto
) -> None:
    _, engine = registry
    token = _enroll(engine)
    assert token.startswith(TOKEN_PREFIX) and len(token) == len(TOKEN_PREFIX) + 43
    with session_scope(engine) as s:
        row = s.get(GatewayEnrolment, "gw-a")
        assert row is not None and token not in repr(vars(row)) and row.token_sha256
    creds = _redeem(engine, broker, token, T0 + DAY - timedelta(seconds=1))
    assert (creds["username"], creds["rollout_username"]) == ("gw-a", "gw-a-rollout")
    assert creds["password"] != creds["rollout_password"] and len(creds["password"]) == 43

    gw = Peer(broker.port, "gw-a", creds["password"]).connect()
    assert gw.subscribe("renkei/ack/v1/acme/nagoya/gw-a") == "Granted QoS 1"
    assert gw.subscribe("renkei/ack/v1/acme/nagoya/gw-b") == "Not authorized"
    gw.close()
    Peer(broker.port, "gw-a-rollout", creds["rollout_password"]).connect().close()

    with pytest.raises(EnrolmentRefused, match="already used") as info:
        _redeem(engine, broker, token, T0 + timedelta(hours=1))
    assert info.value.reason == "used" and token not in str(info.value)
    with pytest.raises(EnrolmentRefused, match="unknown token"):
        _redeem(engine, broker, TOKEN_PREFIX + "x" * 43, T0)
    with pytest.raises(EnrolmentRefused, match="unknown token"):
        _redeem(engine, broker, "not-a-token", T0)


def test_expired_token_is_refused_and_enrolling_again_replaces_it(
    registry: tuple[str, Engine], broker: DynsecMosquitto
) -> None:
    _, engine = registry
    old = _enroll(engine, ttl=timedelta(minutes=10))
    with pytest.raises(EnrolmentRefused, match="expired at 2026-12-07T09:10:00") as info:
        _redeem(engine, broker, old, T0 + timedelta(minutes=10))
    assert info.value.reason == "expired"
    new = _enroll(engine)
    assert new != old
    with pytest.raises(EnrolmentRefused, match="unknown token"):
        _redeem(engine, broker, old, T0)
    assert _redeem(engine, broker, new, T0)["username"] == "gw-a"


def test_broker_failure_leaves_the_token_usable(
    registry: tuple[str, Engine], broker: DynsecMosquitto
) -> None:
    _, engine = registry
    token = _enroll(engine)
    settings = admin_settings(broker).model_copy(update={"timeout_s": 1.0})
    with DynsecAdmin(settings=settings) as admin:
        broker.kill()  # after the admin connected: the exchange itself fails
        with pytest.raises(DynsecUnavailable), session_scope(engine) as s:
            redeem(s, admin, token, now=T0)
    with session_scope(engine) as s:
        assert s.scalars(select(GatewayEnrolment.token_used_at)).one() is None
    broker.start()
    assert _redeem(engine, broker, token, T0)["username"] == "gw-a"


def test_revoked_gateway_cannot_redeem_and_unknown_ids_are_named(
    registry: tuple[str, Engine], broker: DynsecMosquitto
) -> None:
    _, engine = registry
    token = _enroll(engine)
    with DynsecAdmin(settings=admin_settings(broker)) as admin, session_scope(engine) as s:
        row = revoke(s, admin, "gw-a", now=T0)
        assert row.revoked_at is not None
        with pytest.raises(GatewayNotFound, match="no enrolled gateway 'gw-zz'"):
            revoke(s, admin, "gw-zz", now=T0)
    with pytest.raises(EnrolmentRefused, match="was revoked"):
        _redeem(engine, broker, token, T0)


def test_conflicts_are_refused(registry: tuple[str, Engine]) -> None:
    _, engine = registry
    _enroll(engine)
    cases = {
        "firm 'nope' is not in the registry": GatewayGrant(
            user="gw-n", gateway_id="gw-n", firm="nope", site="s", machines=(("a", "l", "m"),)
        ),
        "machine acme/nagoya/molding/line-1/imm-1 is also in": GatewayGrant(
            user="gw-b",
            gateway_id="gw-b",
            firm="acme",
            site="nagoya",
            machines=(("molding", "line-1", "imm-1"),),
        ),
        "MQTT user 'renkei-ingest-1' is also in the cloud services": GatewayGrant(
            user="renkei-ingest-1",
            gateway_id="gw-c",
            firm="acme",
            site="nagoya",
            machines=(("x", "y", "z"),),
        ),
        "is enrolled as MQTT user 'gw-a'": GatewayGrant(
            user="gw-other",
            gateway_id="gw-a",
            firm="acme",
            site="nagoya",
            machines=(("x", "y", "z"),),
        ),
        "MQTT user 'gw-a' belongs to another firm": GatewayGrant(
            user="gw-a",
            gateway_id="gw-a",
            firm="beta",
            site="kobe",
            machines=(("x", "y", "z"),),
        ),
    }
    for message, grant in cases.items():
        with pytest.raises(EnrolmentConflict, match=message), session_scope(engine) as s:
            enroll(s, grant, now=T0, ttl=DAY)
    with pytest.raises(ValueError, match="ttl"), session_scope(engine) as s:
        enroll(s, GW, now=T0, ttl=timedelta(days=31))


def test_cli_enroll_redeem_revoke_list(
    registry: tuple[str, Engine], broker: DynsecMosquitto, tmp_path: Path
) -> None:
    url, engine = registry
    config = tmp_path / "gw-a.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "gateway_id": "gw-a",
                "firm": "acme",
                "site": "nagoya",
                "mqtt": {"username": "gw-a"},
                "machines": [{"id": "imm-1", "area": "molding", "line": "line-1"}],
            }
        )
    )
    assert load_gateway(config) == dataclasses.replace(GW, source=str(config))
    env = {
        "RENKEI_API_DATABASE_URL": url,
        "RENKEI_BROKER": f"mqtt://127.0.0.1:{broker.port}",
        "RENKEI_DYNSEC_USERNAME": ADMIN_USER,
        "RENKEI_DYNSEC_PASSWORD": ADMIN_PASSWORD,
    }
    runner = CliRunner()
    enrolled = runner.invoke(app, ["gateways", "enroll", str(config), "--ttl-hours", "1"], env=env)
    assert enrolled.exit_code == 0, enrolled.output
    token = enrolled.stdout.strip()
    assert token.startswith(TOKEN_PREFIX) and "\n" not in token

    redeemed = runner.invoke(app, ["gateways", "redeem"], input=token + "\n", env=env)
    assert redeemed.exit_code == 0, redeemed.output
    creds = json.loads(redeemed.stdout)
    gw = Peer(broker.port, "gw-a", creds["password"]).connect()

    again = runner.invoke(app, ["gateways", "redeem"], input=token + "\n", env=env)
    assert again.exit_code == 1 and "already used" in again.stderr and token not in again.stderr

    listed = runner.invoke(app, ["gateways", "list"], env=env)
    (row,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert (row["gateway_id"], row["revoked_at"]) == ("gw-a", None)
    assert "token_sha256" not in row and token not in listed.stdout

    revoked = runner.invoke(app, ["gateways", "revoke", "gw-a"], env=env)
    assert revoked.exit_code == 0, revoked.output
    assert "acme/nagoya/gw-a" in revoked.stdout
    wait_for(lambda: gw.disconnects, 1.0, "the revoked gateway's disconnect")
    gw.close()

    missing = runner.invoke(app, ["gateways", "revoke", "gw-zz"], env=env)
    assert missing.exit_code == 1 and "no enrolled gateway 'gw-zz'" in missing.stderr
    bad = runner.invoke(app, ["gateways", "enroll", str(tmp_path / "nope.yaml")], env=env)
    assert bad.exit_code == 2 and "cannot read the gateway config" in bad.stderr
    with session_scope(engine) as s:
        assert s.scalars(select(GatewayEnrolment.revoked_at)).one() is not None


def test_two_simultaneous_redeems_of_one_token_give_one_set_of_credentials(
    registry: tuple[str, Engine], broker: DynsecMosquitto
) -> None:
    """Two registry sessions race for one token (one admin connection, shared: the broker
    binds client ids to user names, so two admin connections would end each other)."""
    _, engine = registry
    token = _enroll(engine)
    outcomes: list[object] = []
    start = threading.Barrier(2)

    def attempt(admin: DynsecAdmin) -> None:
        start.wait(5)
        try:
            with session_scope(engine) as s:
                outcomes.append(redeem(s, admin, token, now=T0).reveal()["username"])
        except (EnrolmentRefused, SQLAlchemyError) as exc:
            outcomes.append(exc)

    with DynsecAdmin(settings=admin_settings(broker)) as admin:
        threads = [threading.Thread(target=attempt, args=(admin,)) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert len(outcomes) == 2 and outcomes.count("gw-a") == 1, outcomes
    (loser,) = [o for o in outcomes if o != "gw-a"]
    assert isinstance(loser, EnrolmentRefused | SQLAlchemyError), loser
    print(f"\nsimultaneous redeem: the second got {loser!r}")


def test_revoke_with_the_broker_down_changes_nothing(
    registry: tuple[str, Engine], broker: DynsecMosquitto
) -> None:
    _, engine = registry
    _redeem(engine, broker, _enroll(engine), T0)
    settings = admin_settings(broker).model_copy(update={"timeout_s": 1.0})
    with DynsecAdmin(settings=settings) as admin:
        broker.kill()
        with pytest.raises(DynsecUnavailable), session_scope(engine) as s:
            revoke(s, admin, "gw-a", now=T0)
    with session_scope(engine) as s:
        assert s.scalars(select(GatewayEnrolment.revoked_at)).one() is None
