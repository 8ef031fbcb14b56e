"""Credential rotation with overlap and expiry, with a real agent (``renkei edge run``), a
real Mosquitto with dynamic security and the API on uvicorn:

- a gateway publishing at QoS 1 rotates to its second credential while it runs (rotation
  token → ``renkei edge enrol`` rewrites its credentials file → the agent reconnects as
  the new user; the old one works until ``rotate --finish``) and the ingest side gets
  every message it enqueued, exactly once;
- credentials past their expiry are disabled in the broker by ``expire``, and the agent's
  log names its user and says "expired" beside the broker's refusal.
"""

from __future__ import annotations

import itertools
import json
import re
import statistics
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import yaml
from typer.testing import CliRunner

from harness.procs import start_agent
from harness.wait import wait_for
from renkei.cli import app as renkei_app
from renkei.cloud.broker_dynsec import DynsecAdmin
from renkei.cloud.cli import app as cloud_app
from renkei.cloud.gateway_identity import EnrolmentRefused, GatewayNotFound
from renkei.cloud.gateway_rotation import expire, finish_rotation, rotate
from renkei.cloud.registry import session_scope
from tests.dynsec_helpers import ADMIN_PASSWORD, ADMIN_USER, Peer, admin_settings
from tests.enrol_helpers import INGEST_PASSWORD, Stack, enrol_stack, gateway_config

MACHINE = "renkei/v1/acme/nagoya/molding/l1/imm-1/"


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    with enrol_stack(tmp_path) as s:
        yield s


def _enrol(stack: Stack, config: Path, token: str) -> None:
    done = CliRunner().invoke(
        renkei_app,
        ["edge", "enrol", "-c", str(config), "--api", stack.server.url],
        input=token + "\n",
    )
    assert done.exit_code == 0, done.output


def _bounded(config: Path, *, sim_seconds: float, speed: float) -> None:
    doc = yaml.safe_load(config.read_text())
    doc["machines"][0]["source"] |= {"duration_s": sim_seconds, "speed": speed}
    config.write_text(yaml.safe_dump(doc))


def test_rotation_overlaps_and_loses_nothing(stack: Stack, tmp_path: Path) -> None:
    config = gateway_config(tmp_path, stack.broker.port)
    _bounded(config, sim_seconds=120, speed=10)  # ~12 s of publishing
    _enrol(stack, config, stack.enroll())
    with session_scope(stack.rig.engine) as s, pytest.raises(GatewayNotFound):
        rotate(s, "gw-zz", now=stack.rig.now, ttl=timedelta(hours=1))
    sink = Peer(stack.broker.port, "renkei-ingest-1", INGEST_PASSWORD).connect()
    arrivals: list[float] = []  # monotonic arrival of each machine message at the sink
    record = sink.client.on_message
    assert record is not None

    def stamped(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        if msg.topic.startswith(MACHINE):
            arrivals.append(time.monotonic())
        record(client, userdata, msg)

    sink.client.on_message = stamped
    assert sink.subscribe("renkei/v1/acme/nagoya/#") == "Granted QoS 1"
    agent = start_agent(config, tmp_path / "agent.log")
    try:
        wait_for(lambda: any(t.startswith(MACHINE) for t in sink.topics()), 30.0, agent.tail)
        t_rotate = time.monotonic()
        with session_scope(stack.rig.engine) as s:
            token = rotate(s, "gw-a", now=stack.rig.now, ttl=timedelta(hours=1))
        _enrol(stack, config, token)  # the gateway gets user gw-a.r1; gw-a still works
        with DynsecAdmin(settings=admin_settings(stack.broker)) as admin:
            assert admin.get_client("gw-a") is not None
            assert admin.get_client("gw-a.r1") is not None
        wait_for(
            lambda: "MQTT credentials rotated: user gw-a -> gw-a.r1" in agent.log.read_text(),
            10.0,
            agent.tail,
        )
        t_switched = time.monotonic()
        before_finish = sum(t.startswith(MACHINE) for t in sink.topics())
        with (
            DynsecAdmin(settings=admin_settings(stack.broker)) as admin,
            session_scope(stack.rig.engine) as s,
        ):
            assert finish_rotation(s, admin, "gw-a") == ["gw-a", "gw-a-rollout"]
            assert admin.get_client("gw-a") is None and admin.get_client("gw-a.r1") is not None
        wait_for(
            lambda: sum(t.startswith(MACHINE) for t in sink.topics()) > before_finish + 3,
            10.0,
            "messages through the new user after the old one was deleted",
        )
        assert agent.proc.wait(60) == 0, agent.tail()
    finally:
        agent.terminate()
    log = agent.log.read_text()
    enqueued = int(re.search(r"stopped: \d+ blocks, (\d+) messages enqueued", log)[1])  # type: ignore[index]
    wait_for(
        lambda: sum(t.startswith(MACHINE) for t in sink.topics()) >= enqueued,
        10.0,
        "every enqueued message at the sink",
    )
    received = [(t, p) for t, p in list(sink.received) if t.startswith(MACHINE)]
    sink.close()
    duplicates = [m for m, n in Counter(received).items() if n > 1]
    assert len(received) == enqueued and not duplicates, (len(received), enqueued)
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    around = [b - a for a, b in itertools.pairwise(arrivals) if t_rotate - 1 <= b <= t_switched + 2]
    # No gap in delivery: the switch costs no more than the agent's normal rhythm (it
    # publishes in bursts every publish.flush_interval_s = 1 s) plus a reconnect.
    assert max(around) < 2.5, (max(around), sorted(gaps)[-5:])
    print(
        f"\nrotation: {enqueued} messages enqueued, {len(received)} received, 0 lost, "
        f"0 duplicated; {before_finish} before the old user was deleted; longest pause "
        f"between arrivals around the switch {max(around) * 1000:.0f} ms (whole run: "
        f"{max(gaps) * 1000:.0f} ms, median {statistics.median(gaps) * 1000:.0f} ms)"
    )


def test_expired_credentials_are_refused_and_the_gateway_says_so(
    stack: Stack, tmp_path: Path
) -> None:
    # Credentials that expired a day ago by the agent's own clock (30-day credentials).
    stack.rig.now = datetime.now(UTC) - timedelta(days=31)
    config = gateway_config(tmp_path, stack.broker.port)
    _enrol(stack, config, stack.enroll())
    with (
        DynsecAdmin(settings=admin_settings(stack.broker)) as admin,
        session_scope(stack.rig.engine) as s,
    ):
        assert expire(s, admin, now=stack.rig.now + timedelta(days=29)) == []
        assert expire(s, admin, now=stack.rig.now + timedelta(days=30)) == [
            "gw-a",
            "gw-a-rollout",
        ]
        assert admin.get_client("gw-a")["disabled"] is True  # type: ignore[index]
    agent = start_agent(config, tmp_path / "agent.log")
    try:
        wait_for(
            lambda: (
                "Not authorized" in agent.log.read_text()
                and "credentials expired at" in agent.log.read_text()
            ),
            20.0,
            agent.tail,
        )
    finally:
        agent.terminate()
    log = agent.log.read_text()
    assert "MQTT user 'gw-a': credentials expired at" in log, log
    assert "auth: the broker refused the credentials (Not authorized)" in log, log

    # A rotation brings an expired gateway back (the other slot is new and enabled).
    with session_scope(stack.rig.engine) as s:
        token = rotate(s, "gw-a", now=stack.rig.now, ttl=timedelta(hours=1))
    _enrol(stack, config, token)
    creds = yaml.safe_load((tmp_path / "secrets" / "mqtt.json").read_text())
    assert creds["username"] == "gw-a.r1"
    Peer(stack.broker.port, "gw-a.r1", creds["password"]).connect().close()
    with session_scope(stack.rig.engine) as s, pytest.raises(EnrolmentRefused, match="overlap"):
        rotate(s, "gw-a", now=stack.rig.now, ttl=timedelta(hours=1))


def test_cli_rotate_finish_expire_and_list(stack: Stack) -> None:
    env = {
        "RENKEI_API_DATABASE_URL": stack.rig.settings.database_url,
        "RENKEI_BROKER": f"mqtt://127.0.0.1:{stack.broker.port}",
        "RENKEI_DYNSEC_USERNAME": ADMIN_USER,
        "RENKEI_DYNSEC_PASSWORD": ADMIN_PASSWORD,
    }
    runner = CliRunner()
    stack.rig.now = datetime.now(UTC)  # the CLI reads the wall clock
    unused = runner.invoke(cloud_app, ["gateways", "rotate", "gw-a"], env=env)
    assert unused.exit_code == 1, unused.output  # not enrolled yet
    token = stack.enroll()
    assert (
        "not redeemed" in runner.invoke(cloud_app, ["gateways", "rotate", "gw-a"], env=env).stderr
    )
    first = runner.invoke(
        cloud_app, ["gateways", "redeem", "--credential-days", "0"], input=token + "\n", env=env
    )
    assert first.exit_code == 0 and "expires_at" not in first.stdout, first.output
    rotated = runner.invoke(cloud_app, ["gateways", "rotate", "gw-a", "--ttl-hours", "1"], env=env)
    assert rotated.exit_code == 0, rotated.output
    second = runner.invoke(
        cloud_app, ["gateways", "redeem"], input=rotated.stdout.strip() + "\n", env=env
    )
    creds = json.loads(second.stdout)
    assert (creds["username"], creds["rollout_username"]) == ("gw-a.r1", "gw-a.r1-rollout")
    old = Peer(stack.broker.port, "gw-a", json.loads(first.stdout)["password"]).connect()
    listed = json.loads(runner.invoke(cloud_app, ["gateways", "list"], env=env).stdout)
    assert (listed["current_user"], listed["retiring_user"]) == ("gw-a.r1", "gw-a")
    finished = runner.invoke(cloud_app, ["gateways", "rotate", "gw-a", "--finish"], env=env)
    assert "old MQTT users gw-a, gw-a-rollout deleted" in finished.stdout, finished.output
    wait_for(lambda: old.disconnects, 1.0, "the old user's session to end")
    old.close()
    new = Peer(stack.broker.port, "gw-a.r1", creds["password"]).connect()
    none = runner.invoke(cloud_app, ["gateways", "expire"], env=env)
    assert none.exit_code == 0 and "0 MQTT user(s) disabled" in none.stdout, none.output
    new.close()
