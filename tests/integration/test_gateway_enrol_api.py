"""``POST /api/v1/gateways/enrol`` against a real registry, a real uvicorn and a real
Mosquitto with dynamic security: a gateway redeems its token once (no API key), the
answer's credentials work in the broker, every refusal looks the same (not an oracle),
failures are rate-limited per address, two simultaneous redeems give one set of
credentials; and end to end: ``renkei edge enrol`` writes the credentials file (0600) and
``renkei edge run`` publishes through the broker with it."""

from __future__ import annotations

import logging
import stat
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from harness.procs import start_agent
from harness.wait import wait_for
from renkei.cli import app as renkei_app
from renkei.cloud.api import ApiSettings, create_app
from renkei.cloud.broker_acl import GatewayGrant
from renkei.cloud.broker_dynsec import DynsecAdmin
from renkei.cloud.gateway_identity import TOKEN_PREFIX, revoke
from renkei.cloud.registry import session_scope
from tests.dynsec_helpers import Peer, admin_settings
from tests.enrol_helpers import (
    ENROL,
    INGEST_PASSWORD,
    REFUSED,
    Stack,
    enrol_stack,
    gateway_config,
)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    with enrol_stack(tmp_path) as s:
        yield s


def test_token_is_exchanged_once_without_a_key_and_refusals_all_look_alike(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = stack.enroll()
    ok = stack.post(token)
    assert ok.status_code == 200, ok.text
    creds = ok.json()
    assert (creds["firm"], creds["site"], creds["gateway_id"]) == ("acme", "nagoya", "gw-a")
    assert (creds["username"], creds["rollout_username"]) == ("gw-a", "gw-a-rollout")
    assert creds["broker_url"] == f"mqtt://127.0.0.1:{stack.broker.port}"
    assert creds["expires_at"].startswith((stack.rig.now + timedelta(days=30)).isoformat()[:19]), (
        creds
    )
    gw = Peer(stack.broker.port, "gw-a", creds["password"]).connect()
    assert gw.subscribe("renkei/ack/v1/acme/nagoya/gw-a") == "Granted QoS 1"
    gw.close()

    # used, unknown, malformed, expired and revoked tokens: one status, one body
    expired = stack.enroll(
        GatewayGrant(
            user="gw-e", gateway_id="gw-e", firm="acme", site="nagoya", machines=(("m", "l", "e"),)
        ),
        ttl=timedelta(minutes=5),
    )
    revoked = stack.enroll(
        GatewayGrant(
            user="gw-r", gateway_id="gw-r", firm="acme", site="nagoya", machines=(("m", "l", "r"),)
        )
    )
    with (
        DynsecAdmin(settings=admin_settings(stack.broker)) as admin,
        session_scope(stack.rig.engine) as s,
    ):
        revoke(s, admin, "gw-r", now=stack.rig.now)
    stack.rig.now += timedelta(minutes=5)
    for bad in (token, TOKEN_PREFIX + "x" * 43, "not-a-token", expired, revoked):
        r = stack.post(bad)
        assert (r.status_code, r.json()["error"]) == (401, REFUSED), (bad[:6], r.text)
    # the old password still works: a refused redeem changes nothing in the broker
    Peer(stack.broker.port, "gw-a", creds["password"]).connect().close()
    for secret in (token, expired, revoked, creds["password"]):
        assert secret not in caplog.text


def test_failures_are_rate_limited_per_address(tmp_path: Path) -> None:
    with enrol_stack(tmp_path, enrol_failures_per_minute=3) as stack:
        token = stack.enroll()
        for _ in range(3):
            assert stack.post(TOKEN_PREFIX + "y" * 43).status_code == 401
        limited = stack.post(token)  # even a good token waits: no guessing around the limit
        assert limited.status_code == 429, limited.text
        assert limited.headers["Retry-After"] == "60"
        stack.rig.now += timedelta(seconds=59)
        assert stack.post(token).status_code == 429
        stack.rig.now += timedelta(seconds=1)
        assert stack.post(token).status_code == 200


def test_two_simultaneous_redeems_give_exactly_one_set_of_credentials(stack: Stack) -> None:
    for round_ in range(3):
        grant = GatewayGrant(
            user=f"gw-{round_}",
            gateway_id=f"gw-{round_}",
            firm="acme",
            site="nagoya",
            machines=(("molding", "l1", f"m-{round_}"),),
        )
        token = stack.enroll(grant)
        start = threading.Barrier(2)
        answers: list[httpx.Response] = []

        def attempt(token: str, start: threading.Barrier, answers: list[httpx.Response]) -> None:
            start.wait(5)
            answers.append(stack.post(token))

        threads = [threading.Thread(target=attempt, args=(token, start, answers)) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert sorted(a.status_code for a in answers) == [200, 401], [a.text for a in answers]
        (won,) = [a.json() for a in answers if a.status_code == 200]
        Peer(stack.broker.port, grant.user, won["password"]).connect().close()


def test_no_broker_configured_is_503_and_the_token_stays_usable(
    stack: Stack, tmp_path: Path
) -> None:
    token = stack.enroll()
    bare = create_app(
        ApiSettings(database_url=stack.rig.settings.database_url), clock=lambda: stack.rig.now
    )
    try:
        with TestClient(bare) as client:
            r = client.post(ENROL, json={"token": token})
        assert r.status_code == 503 and "RENKEI_API_DYNSEC_BROKER" in r.text, r.text
    finally:
        bare.state.notify.close()
        bare.state.renkei.engine.dispose()
    assert stack.post(token).status_code == 200


def test_edge_enrol_writes_0600_credentials_and_the_gateway_publishes_with_them(
    stack: Stack, tmp_path: Path
) -> None:
    config = gateway_config(tmp_path, stack.broker.port)
    token = stack.enroll()
    runner = CliRunner()
    nothing = runner.invoke(renkei_app, ["edge", "enrol", "-c", str(config), "--api", "x"])
    assert nothing.exit_code == 2 and "no token" in nothing.stderr
    done = runner.invoke(
        renkei_app,
        ["edge", "enrol", "-c", str(config), "--api", stack.server.url],
        input=token + "\n",
    )
    assert done.exit_code == 0, done.output
    assert token not in done.output
    creds_file = tmp_path / "secrets" / "mqtt.json"
    assert stat.S_IMODE(creds_file.stat().st_mode) == 0o600
    again = runner.invoke(
        renkei_app,
        ["edge", "enrol", "-c", str(config), "--api", stack.server.url],
        input=token + "\n",
    )
    assert again.exit_code == 1 and "HTTP 401" in again.stderr, again.output

    sink = Peer(stack.broker.port, "renkei-ingest-1", INGEST_PASSWORD).connect()
    assert sink.subscribe("renkei/v1/acme/nagoya/#") == "Granted QoS 1"
    agent = start_agent(config, tmp_path / "agent.log")
    try:
        wait_for(
            lambda: any("/molding/l1/imm-1/" in t for t in sink.topics()),
            30.0,
            lambda: f"gw-a's telemetry at the sink; agent log:\n{agent.tail()}",
        )
    finally:
        agent.terminate()
        sink.close()

    creds_file.chmod(0o644)
    refused = runner.invoke(renkei_app, ["edge", "run", "-c", str(config), "--duration", "1"])
    assert refused.exit_code == 2 and "mode 0644" in refused.stderr, refused.output
