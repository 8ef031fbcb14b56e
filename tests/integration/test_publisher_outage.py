"""The gateway is loud when it cannot reach the broker (issue 15), against real Mosquitto.

A broker that was up is stopped while the gateway keeps writing, then restarted on the same
port: one WARNING for the loss, one WARNING for the first failed reconnect (address, TLS or
not, the reason's kind), reminders with the failed attempts and the backlog, one INFO on
recovery with the outage's duration and attempts; every message arrives. Refused
credentials are reported the same way ("auth"), never with the password. Short reminder
intervals instead of sleeps; every wait is bounded.
"""

from __future__ import annotations

import logging
import subprocess
import time
from pathlib import Path

import pytest

from harness.services import Mosquitto
from harness.wait import wait_for
from renkei.edge.transport.outbox import Outbox, OutboxSettings
from tests.seq_gateway import make_publisher, seq_payload, seq_topic

GW = "gw-outage-1"
LOGGER = "renkei.edge.transport.publisher"


def _messages(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == level]


def test_broker_stopped_and_restarted_is_reported_loudly_and_nothing_is_lost(
    mosquitto: Mosquitto, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    port = mosquitto.port
    t0 = (time.time_ns() // 1_000_000 // 1000) * 1000 - 3_600_000
    settings = OutboxSettings(path=tmp_path / "ob.sqlite3", max_inflight=20)
    outbox = Outbox(settings=settings)
    pub = make_publisher(outbox, settings, GW, port, ack="broker", outage_log_interval_s=0.3)
    pub.start()
    try:
        wait_for(lambda: pub.stats().connected, 10, "the first connect")
        mosquitto.stop()
        wait_for(lambda: pub.stats().broker_unreachable, 15, "a failed reconnect")
        for _ in range(5):
            outbox.enqueue(seq_topic(), lambda seq: seq_payload(GW, seq, t0))
        pub.notify()

        def reminders() -> list[str]:
            return [m for m in _messages(caplog, logging.WARNING) if "still not connected" in m]

        wait_for(lambda: any("backlog 5 messages" in m for m in reminders()), 15, "a reminder")
        warnings = _messages(caplog, logging.WARNING)
        assert any(m.startswith(f"disconnected from 127.0.0.1:{port}") for m in warnings)
        first = [m for m in warnings if m.startswith("cannot connect to broker")]
        assert len(first) == 1, warnings  # one warning for the outage, then reminders
        assert f"broker 127.0.0.1:{port} (plain TCP): refused" in first[0], first[0]
        reminder = next(m for m in reminders() if "backlog 5 messages" in m)
        attempts = int(reminder.split(" failed attempts")[0].rsplit(" ", 1)[1])
        assert attempts >= 1, reminder
        assert "messages stay in the outbox" in reminder, reminder

        mosquitto.start()
        wait_for(lambda: outbox.stats().backlog_msgs == 0, 20, "the backlog to drain")
        infos = _messages(caplog, logging.INFO)
        back = [m for m in infos if "reachable again after an outage of" in m]
        assert len(back) == 1, infos
        assert f"broker 127.0.0.1:{port} (plain TCP)" in back[0], back[0]
        n = int(back[0].split(" failed connection attempts")[0].rsplit(" ", 1)[1])
        assert n >= attempts, (back[0], reminder)
        assert not pub.stats().broker_unreachable
    finally:
        pub.stop(timeout_s=2.0)
        outbox.close()


def test_refused_credentials_are_an_auth_warning_without_the_password(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    passwd = tmp_path / "passwd"
    subprocess.run(
        ["mosquitto_passwd", "-b", "-c", str(passwd), GW, "right-secret"],
        check=True,
        capture_output=True,
    )
    passwd.chmod(0o600)
    broker = Mosquitto(
        workdir=tmp_path / "mq", extra_conf=f"allow_anonymous false\npassword_file {passwd}\n"
    )
    broker.start()
    caplog.set_level(logging.INFO)
    settings = OutboxSettings(path=tmp_path / "ob.sqlite3", max_inflight=20)
    outbox = Outbox(settings=settings)
    pub = make_publisher(
        outbox,
        settings,
        GW,
        broker.port,
        ack="broker",
        outage_log_interval_s=0.3,
        username=GW,
        password="wrong-secret",
    )
    pub.start()
    try:
        wait_for(
            lambda: any("still not connected" in m for m in _messages(caplog, logging.WARNING)),
            15,
            "a reminder",
        )
        first = next(
            m for m in _messages(caplog, logging.WARNING) if m.startswith("cannot connect")
        )
        assert f"broker 127.0.0.1:{broker.port} (plain TCP): auth:" in first, first
        text = "\n".join(r.getMessage() for r in caplog.records)
        assert "wrong-secret" not in text and "right-secret" not in text
        # The session does not log the refusal a second time.
        assert not [r for r in caplog.records if r.name == "renkei.core.mqtt.session"]
    finally:
        pub.stop(timeout_s=2.0)
        outbox.close()
        broker.kill()
