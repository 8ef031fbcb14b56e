"""End-to-end acknowledgement and broker-outage reporting, against real Mosquitto/InfluxDB.

Issue 11: with Mosquitto killed (``kill -9``) while it held PUBACKed messages for an ingest
that was down, those messages were gone: the gateway had deleted them on PUBACK, the
broker had not saved them yet (autosave window). With ``ack: ingest`` the gateway keeps
every message until the ingest confirms it is in InfluxDB, and re-publishes after the
reconnect: lost 0. The ``broker`` case documents the old behaviour (every message of the
window lost), which proves the test hits the window.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.services import InfluxDB, Mosquitto, ServiceError, free_port
from harness.wait import wait_for
from renkei.cloud.ingest.worker import IngestWorker
from renkei.edge.transport.outbox import Outbox, OutboxSettings
from renkei.edge.transport.publisher import Publisher
from tests.integration.test_ingest_faults import start_ingest
from tests.integration.test_ingest_worker import running, settings_for, store_for
from tests.seq_gateway import make_publisher, seq_payload, seq_topic, seqs_in_influx

GW = "gw-ack-1"


@pytest.fixture
def crashy_mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A broker that saves its database only on a clean stop (within this test): a
    ``kill -9`` loses everything it accepted, as in a crash inside the autosave window."""
    broker = Mosquitto(workdir=tmp_path / "mq", extra_conf="autosave_interval 3600\n")
    broker.start()
    try:
        yield broker
    finally:
        broker.kill()


@contextlib.contextmanager
def seq_gateway(tmp_path: Path, port: int, **mqtt: object) -> Iterator[tuple[Outbox, Publisher]]:
    settings = OutboxSettings(path=tmp_path / f"{GW}.sqlite3", max_inflight=20)
    outbox = Outbox(settings=settings)
    pub = make_publisher(outbox, settings, GW, port, **mqtt)
    pub.start()
    try:
        yield outbox, pub
    finally:
        pub.stop(timeout_s=2.0)
        outbox.close()


def enqueue(outbox: Outbox, pub: Publisher, n: int, t0_ms: int) -> None:
    for _ in range(n):
        outbox.enqueue(seq_topic(), lambda seq: seq_payload(GW, seq, t0_ms))
    pub.notify()


def stored(influx: InfluxDB, database: str) -> list[int]:
    try:
        return seqs_in_influx(influx, database, GW)
    except ServiceError:  # database not created yet
        return []


@pytest.mark.parametrize("ack", ["ingest", "broker"])
def test_broker_kill9_in_the_autosave_window(
    ack: str, tmp_path: Path, crashy_mosquitto: Mosquitto, influxdb: InfluxDB, database: str
) -> None:
    broker = crashy_mosquitto
    t0 = (time.time_ns() // 1_000_000 // 1000) * 1000 - 3_600_000
    log = tmp_path / "ingest.log"
    ingest = start_ingest(broker, influxdb, database, "ingest-ack-1", log)
    try:
        with seq_gateway(
            tmp_path, broker.port, ack=ack, wait_for_ingest="renkei-ingest", confirm_timeout_s=300
        ) as (outbox, pub):
            # 1. 20 messages go through end to end.
            enqueue(outbox, pub, 20, t0)
            wait_for(lambda: len(stored(influxdb, database)) == 20, 30, "the first 20 seqs")
            wait_for(lambda: outbox.stats().backlog_msgs == 0, 10, "the outbox to empty")
            # 2. The ingest dies; 30 more are PUBACKed by the broker and queued in the
            #    ingest's persistent session, in memory only.
            ingest.kill()
            ingest.wait(10)
            enqueue(outbox, pub, 30, t0)
            wait_for(lambda: pub.stats().acked_total == 50, 20, "50 PUBACKs")
            # PUBACKed messages leave the outbox in batched deletes, a moment after the
            # count: wait for the kept backlog to settle before the broker is killed
            want = 30 if ack == "ingest" else 0
            wait_for(lambda: outbox.stats().backlog_msgs == want, 10, f"{want} kept")
            kept = outbox.stats().backlog_msgs
            assert kept == want
            if ack == "ingest":
                assert pub.stats().unconfirmed == 30
            # 3. The broker crashes inside its autosave window and comes back; so does
            #    the ingest.
            broker.kill()
            broker.start()
            ingest = start_ingest(broker, influxdb, database, "ingest-ack-1", log)
            wait_for(lambda: pub.stats().connects_total == 2, 20, "the gateway to reconnect")
            # 4. A probe published after the recovery: once it is stored, everything
            #    that is coming has come.
            enqueue(outbox, pub, 1, t0)
            wait_for(lambda: 50 in stored(influxdb, database), 30, "the probe seq 50")
            wait_for(lambda: outbox.stats().backlog_msgs == 0, 30, "the outbox to empty")
            seqs = stored(influxdb, database)
            assert outbox.stats().dropped_total == 0
    finally:
        if ingest.poll() is None:
            ingest.kill()
            ingest.wait(10)
    if ack == "ingest":
        assert seqs == list(range(51)), f"lost {sorted(set(range(51)) - set(seqs))}"
    else:
        # The old behaviour, documented: every message of the window is lost.
        assert seqs == [*range(20), 50]


def test_unconfirmed_messages_are_bounded_and_republished_after_the_timeout(
    tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB, database: str
) -> None:
    """No ingest subscribed: the broker PUBACKs and delivers to nobody. The gateway holds
    at most ``max_unconfirmed``, re-publishes them after the timeout, and once an ingest
    is there, every message arrives."""
    t0 = (time.time_ns() // 1_000_000 // 1000) * 1000 - 3_600_000
    with seq_gateway(
        tmp_path, mosquitto.port, max_unconfirmed=5, confirm_timeout_s=0.5, confirm_timeout_max_s=1
    ) as (outbox, pub):
        enqueue(outbox, pub, 20, t0)
        wait_for(lambda: pub.stats().unconfirmed == 5, 10, "5 unconfirmed")
        wait_for(lambda: pub.stats().republished_unconfirmed_total >= 5, 10, "re-publications")
        st = pub.stats()
        assert st.unconfirmed_full and st.unconfirmed + st.inflight <= 5
        assert outbox.stats().backlog_msgs == 20
        worker = IngestWorker(settings=settings_for(mosquitto), store=store_for(influxdb, database))
        with running(worker):
            wait_for(lambda: outbox.stats().backlog_msgs == 0, 30, "all 20 confirmed")
            assert stored(influxdb, database) == list(range(20))
            stats = worker.stats()
            acct = stats.gateways[f"{GW}@0"]
            assert acct.highest == 19 and acct.missing == 0
            assert acct.handled == acct.duplicates + 20
        assert pub.stats().confirmed_total >= 20


def test_ack_topic_of_another_gateway_or_garbage_is_ignored(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    """An ack that is invalid or names another gateway deletes nothing."""
    from harness.witness import Witness

    t0 = (time.time_ns() // 1_000_000 // 1000) * 1000 - 3_600_000
    with seq_gateway(tmp_path, mosquitto.port, confirm_timeout_s=300) as (outbox, pub):
        enqueue(outbox, pub, 3, t0)
        wait_for(lambda: pub.stats().unconfirmed == 3, 10, "3 unconfirmed")
        w = Witness(port=mosquitto.port, client_id="forger")
        try:
            topic = f"renkei/ack/v1/acme/osaka/{GW}"
            for payload in (
                b'{"v":1,"gw":"gw-other","epoch":0,"ranges":[[0,2]],"sent_ms":1}',
                b'{"v":1,"gw":"' + GW.encode() + b'","ranges":[[2,0]],"sent_ms":1}',
                b"not json",
            ):
                w.client.publish(topic, payload, qos=1).wait_for_publish(5)
            wait_for(lambda: pub.stats().acks_ignored_total == 3, 10, "3 ignored acks")
            assert outbox.stats().backlog_msgs == 3
            ok = b'{"v":1,"gw":"' + GW.encode() + b'","epoch":0,"ranges":[[0,1]],"sent_ms":1}'
            w.client.publish(topic, ok, qos=1).wait_for_publish(5)
            wait_for(lambda: outbox.stats().backlog_msgs == 1, 10, "seqs 0-1 deleted")
            assert [r.seq for r in outbox.peek(-1, 10)] == [2]
            assert pub.stats().unconfirmed == 1 and pub.stats().confirmed_total == 2
        finally:
            w.close()


def test_broker_outage_is_reported_at_warning_with_backlog_and_recovery(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Nothing listens on the port: WARNING with address, TLS or not, and the reason;
    reminders with the backlog; INFO with the outage duration once a broker is there."""
    port = free_port()
    caplog.set_level(logging.INFO, logger="renkei.edge.transport.publisher")
    t0 = (time.time_ns() // 1_000_000 // 1000) * 1000 - 3_600_000
    broker = Mosquitto(workdir=tmp_path / "mq", port=port)
    try:
        with seq_gateway(tmp_path, port, ack="broker", outage_log_interval_s=0.5) as (outbox, pub):
            enqueue(outbox, pub, 3, t0)

            def warnings() -> list[str]:
                return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]

            wait_for(lambda: any("still not connected" in m for m in warnings()), 15, "a reminder")
            first = warnings()[0]
            assert f"cannot connect to broker 127.0.0.1:{port} (plain TCP): refused" in first
            assert "ConnectionRefusedError" in first, first
            assert "messages stay in the outbox (backlog" in first, first
            reminder = next(m for m in warnings() if "still not connected" in m)
            assert "backlog 3 messages" in reminder and "oldest" in reminder, reminder
            assert "failed attempts" in reminder, reminder
            assert pub.stats().broker_unreachable
            broker.start()
            wait_for(lambda: outbox.stats().backlog_msgs == 0, 20, "the backlog to drain")
            infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
            assert any(
                f"broker 127.0.0.1:{port} (plain TCP) reachable again after an outage of" in m
                for m in infos
            ), infos
            assert not pub.stats().broker_unreachable
    finally:
        broker.kill()
