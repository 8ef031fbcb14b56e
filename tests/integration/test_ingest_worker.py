"""The ingest worker against a real Mosquitto and a real InfluxDB: exact point counts.

Every test publishes packed messages with a plain paho client (QoS 1, waiting for the
broker's PUBACKs), lets the worker write them, and asserts the exact number of points in
InfluxDB (``SELECT count(f) ...``). Every wait is bounded.
"""

from __future__ import annotations

import base64
import os
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from harness.loadgen import T0_MS, QoS1Publisher, machine_message, machine_topic_for
from harness.services import InfluxDB, Mosquitto, ServiceError
from harness.wait import pause, wait_for
from renkei.cloud.ingest.worker import IngestSettings, IngestWorker
from renkei.cloud.store.influx import InfluxSettings, InfluxStore
from renkei.core.mqtt import BrokerSettings
from renkei.core.wire import MAX_PAYLOAD_BYTES, DeadLetter

ROWS, FIELDS = 50, 8


@pytest.fixture
def persistent_mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A broker whose persistence file really is written on stop.

    Run as root, Mosquitto drops to the ``mosquitto`` user, which cannot write into the
    test's temporary directory, so the plain fixture's broker loses its sessions on a
    restart ("Error saving in-memory database ... Permission denied"). ``user root``
    keeps it as root (the setting has no effect when not started as root).
    """
    extra = "user root\n" if os.geteuid() == 0 else ""
    broker = Mosquitto(workdir=tmp_path / "mosquitto-persistent", extra_conf=extra)
    broker.start()
    try:
        yield broker
    finally:
        broker.kill()


# --------------------------------------------------------------------------- helpers


def settings_for(broker: Mosquitto, **over: Any) -> IngestSettings:
    """Worker settings for ``broker``; ``protocol`` and ``keepalive_s`` in ``over`` go to
    the embedded :class:`BrokerSettings`, the rest to :class:`IngestSettings`."""
    mqtt_over = {k: over.pop(k) for k in ("protocol", "keepalive_s") if k in over}
    base: dict[str, Any] = {
        "broker": BrokerSettings.from_url(
            broker.url, client_id=f"ingest-{uuid.uuid4().hex[:8]}", **mqtt_over
        ),
        "batch_max_delay_s": 0.05,
        "retry_min_s": 0.2,
        "retry_max_s": 1.0,
        "stop_timeout_s": 5.0,
    }
    base.update(over)
    return IngestSettings(**base)


def store_for(influx: InfluxDB, database: str) -> InfluxStore:
    return InfluxStore(settings=InfluxSettings(url=influx.url, database=database, timeout_s=5))


@contextmanager
def running(worker: IngestWorker) -> Iterator[IngestWorker]:
    thread = threading.Thread(target=worker.run, name="test-ingest", daemon=True)
    thread.start()
    try:
        assert worker.wait_ready(15), f"worker not subscribed: {worker.stats()}"
        yield worker
    finally:
        worker.stop()
        thread.join(30)
        assert not thread.is_alive(), "worker did not stop"


def messages(seqs: range, *, machines: int = 3) -> list[tuple[str, bytes]]:
    return [
        (
            machine_topic_for(seq % machines),
            machine_message(seq=seq, rows=ROWS, fields=FIELDS, gw=f"gw-{seq % machines}"),
        )
        for seq in seqs
    ]


def count(influx: InfluxDB, database: str, field: str = "f0") -> int:
    try:
        return influx.count_points(database, "telemetry", field)
    except ServiceError:  # database not created yet
        return 0


def assert_exact(influx: InfluxDB, database: str, points: int, timeout_s: float = 30) -> None:
    wait_for(lambda: count(influx, database) >= points, timeout_s, f"{points} points")
    pause(0.5, "nothing more must arrive")
    for j in range(FIELDS):
        assert influx.count_points(database, "telemetry", f"f{j}") == points


class DeadLetterSubscriber:
    """Collects what the ingest publishes on renkei/dlq/v1/#."""

    def __init__(self, broker: Mosquitto) -> None:
        self.by_reason: dict[str, list[DeadLetter]] = defaultdict(list)
        self.topics: list[str] = []
        self._lock = threading.Lock()
        ready = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
        self.client.on_subscribe = lambda *a: ready.set()
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *a: c.subscribe("renkei/dlq/v1/#", qos=1)
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        assert ready.wait(10)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        dl = DeadLetter.model_validate_json(msg.payload)
        with self._lock:
            self.topics.append(msg.topic)
            self.by_reason[dl.reason].append(dl)

    def total(self) -> int:
        with self._lock:
            return len(self.topics)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def good_payload(**over: Any) -> dict[str, Any]:
    p = orjson.loads(machine_message(seq=10_000, rows=2, fields=2))
    p.update(over)
    return dict(p)


# --------------------------------------------------------------------------- a) exact + DLQ


def test_exact_counts_and_every_bad_message_dead_lettered(
    mosquitto: Mosquitto, influxdb: InfluxDB, database: str
) -> None:
    dlq = DeadLetterSubscriber(mosquitto)
    topic = machine_topic_for(1)
    p = good_payload()
    del p["gw"]
    bad: list[tuple[str, str, bytes]] = [
        ("malformed_json", topic, b'{"v": 1, "ts_ms": [1,'),
        ("malformed_json", topic, b'{"v":1,"fields":{"a":[NaN]}}'),
        ("schema_version", topic, orjson.dumps(good_payload(v=2))),
        ("invalid_payload", topic, orjson.dumps(p)),
        ("invalid_payload", topic, orjson.dumps(good_payload(fields={"a": [1.0]}))),
        ("invalid_payload", topic, orjson.dumps(good_payload(fields={"a": ["inf", 1.0]}))),
        ("bad_timestamp", topic, orjson.dumps(good_payload(ts_ms=[1, 2]))),
        ("oversize", topic, b"x" * (MAX_PAYLOAD_BYTES + 10)),
        ("bad_topic", "renkei/v1/acme/plant1/a1/l1/m1/bogus", orjson.dumps(good_payload())),
        ("bad_topic", "renkei/v1/too/short", orjson.dumps(good_payload())),
    ]
    worker = IngestWorker(settings=settings_for(mosquitto), store=store_for(influxdb, database))
    try:
        with running(worker), QoS1Publisher(host="127.0.0.1", port=mosquitto.port) as pub:
            good = messages(range(40))
            # Interleave the bad messages with the good ones.
            stream = good[:20] + [(t, raw) for _, t, raw in bad] + good[20:]
            pub.publish_many(stream)
            assert_exact(influxdb, database, 40 * ROWS)
            wait_for(lambda: dlq.total() == len(bad), 15, "all dead letters")
            expected: dict[str, list[bytes]] = defaultdict(list)
            for reason, _, raw in bad:
                expected[reason].append(raw)
            assert set(dlq.by_reason) == set(expected)
            for reason, raws in expected.items():
                got = [base64.b64decode(d.payload_b64) for d in dlq.by_reason[reason]]
                assert sorted(got) == sorted(raws), reason
                assert all(d.detail for d in dlq.by_reason[reason])
            assert sorted(dlq.topics) == sorted(f"renkei/dlq/v1/{r}" for r, _, _ in bad)
            # The worker keeps running: more good data still arrives, exactly.
            pub.publish_many(messages(range(40, 50)))
            assert_exact(influxdb, database, 50 * ROWS)
            stats = worker.stats()
            assert stats.dead_letters == {r: len(v) for r, v in expected.items()}
            assert stats.acked == 50 + len(bad)
            assert stats.points == 50 * ROWS
            assert stats.field_values == 50 * ROWS * FIELDS
        series = influxdb.query(
            'SELECT sum("count") FROM ingest_deadletters GROUP BY "reason"', db=database
        )
        per_reason = {s["tags"]["reason"]: s["values"][0][1] for s in series}
        assert per_reason == {r: len(v) for r, v in expected.items()}
    finally:
        dlq.close()


def test_store_rejected_message_is_isolated_and_dead_lettered(
    mosquitto: Mosquitto, influxdb: InfluxDB, database: str
) -> None:
    """InfluxDB refuses one message (field type conflict): bisect finds it, the rest lands."""
    influxdb.create_database(database)
    store = store_for(influxdb, database)
    # f7 already exists as a string: any float f7 is a field type conflict (HTTP 400).
    # (Same shard as the messages: loadgen's T0_MS.)
    store.write_lines(b'telemetry,machine=seed f7="text" %d' % T0_MS)
    dlq = DeadLetterSubscriber(mosquitto)
    try:
        worker = IngestWorker(settings=settings_for(mosquitto, batch_max_delay_s=0.5), store=store)
        with running(worker), QoS1Publisher(host="127.0.0.1", port=mosquitto.port) as pub:
            good = [
                (machine_topic_for(1), machine_message(seq=s, rows=ROWS, fields=7))
                for s in range(30)
            ]
            poison = (machine_topic_for(2), machine_message(seq=99, rows=ROWS, fields=8))
            pub.publish_many(good[:15] + [poison] + good[15:])
            wait_for(lambda: dlq.total() == 1, 20, "the store_rejected dead letter")
            [dl] = dlq.by_reason["store_rejected"]
            assert base64.b64decode(dl.payload_b64) == poison[1]
            assert "field type conflict" in dl.detail
            wait_for(lambda: worker.stats().acked == 31, 10, "all acked")
            assert influxdb.count_points(database, "telemetry", "f0") == 30 * ROWS
            assert worker.stats().points == 30 * ROWS
    finally:
        dlq.close()


# --------------------------------------------------------------------------- b) redelivery


def test_same_message_twice_creates_no_duplicates(
    mosquitto: Mosquitto, influxdb: InfluxDB, database: str
) -> None:
    worker = IngestWorker(settings=settings_for(mosquitto), store=store_for(influxdb, database))
    with running(worker), QoS1Publisher(host="127.0.0.1", port=mosquitto.port) as pub:
        batch = messages(range(10))
        pub.publish_many(batch)
        pub.publish_many(batch)  # a gateway redelivering after a lost PUBACK
        pub.publish_many(batch[:3])
        wait_for(lambda: worker.stats().acked == 23, 20, "23 messages acked")
        assert_exact(influxdb, database, 10 * ROWS)


# --------------------------------------------------------------------------- e) shared sub


def test_two_workers_share_the_stream(
    mosquitto: Mosquitto, influxdb: InfluxDB, database: str
) -> None:
    w1 = IngestWorker(settings=settings_for(mosquitto), store=store_for(influxdb, database))
    w2 = IngestWorker(settings=settings_for(mosquitto), store=store_for(influxdb, database))
    with (
        running(w1),
        running(w2),
        QoS1Publisher(host="127.0.0.1", port=mosquitto.port) as pub,
    ):
        pub.publish_many(messages(range(100), machines=5))
        assert_exact(influxdb, database, 100 * ROWS)
        wait_for(lambda: w1.stats().acked + w2.stats().acked == 100, 10, "100 acks")
        s1, s2 = w1.stats(), w2.stats()
        assert s1.messages > 0 and s2.messages > 0, (s1, s2)
        assert s1.messages + s2.messages == 100
        assert s1.points + s2.points == 100 * ROWS


def test_retired_worker_stops_taking_a_share(
    mosquitto: Mosquitto, influxdb: InfluxDB, database: str
) -> None:
    """Mosquitto routes a share to *offline* group members; a retired worker is no member."""
    w1 = IngestWorker(settings=settings_for(mosquitto), store=store_for(influxdb, database))
    w2 = IngestWorker(settings=settings_for(mosquitto), store=store_for(influxdb, database))
    t1 = threading.Thread(target=w1.run, daemon=True)
    t1.start()
    assert w1.wait_ready(15)
    with running(w2), QoS1Publisher(host="127.0.0.1", port=mosquitto.port) as pub:
        pub.publish_many(messages(range(40)))
        w1.stop(retire=True)
        t1.join(30)
        assert not t1.is_alive()
        got_before = w2.stats().messages
        pub.publish_many(messages(range(40, 80)))
        assert_exact(influxdb, database, 80 * ROWS)
        assert w2.stats().messages - got_before == 40  # the whole stream, nothing parked
        assert w1.stats().messages + w2.stats().messages == 80


# --------------------------------------------------------------------------- f) broker restart


def test_broker_restart_with_persistent_session(
    persistent_mosquitto: Mosquitto, influxdb: InfluxDB, database: str
) -> None:
    mosquitto = persistent_mosquitto
    settings = settings_for(mosquitto)
    store = store_for(influxdb, database)
    pub = QoS1Publisher(host="127.0.0.1", port=mosquitto.port, client_id="pub-f")
    try:
        with running(IngestWorker(settings=settings, store=store)):
            pub.publish_many(messages(range(0, 30)))
            assert_exact(influxdb, database, 30 * ROWS)
        # The worker is down; its session (and subscription) lives on in the broker.
        pub.publish_many(messages(range(30, 60)))
        mosquitto.restart()  # SIGTERM: the broker saves its persistence file, then starts
        assert pub.wait_connected(15)
        worker = IngestWorker(settings=settings, store=store)
        with running(worker):
            # Published before the broker stop, delivered after the restart:
            assert_exact(influxdb, database, 60 * ROWS)
            # Mid-stream restart while the worker is consuming.
            sender = threading.Thread(
                target=pub.publish_many, args=(messages(range(60, 90)),), daemon=True
            )
            sender.start()
            sender.join(30)
            mosquitto.restart()
            assert pub.wait_connected(15)
            wait_for(lambda: worker.stats().subscribed, 20, "worker re-subscribed")
            pub.publish_many(messages(range(90, 120)))
            assert_exact(influxdb, database, 120 * ROWS, timeout_s=40)
            assert worker.stats().connects >= 2
    finally:
        pub.close()


def test_mqtt_311_plain_subscription(
    persistent_mosquitto: Mosquitto, influxdb: InfluxDB, database: str
) -> None:
    """MQTT 3.1.1 + plain subscription (the demo's amqtt mode), persistent session too."""
    mosquitto = persistent_mosquitto
    settings = settings_for(mosquitto, protocol="3.1.1", share_group=None)
    store = store_for(influxdb, database)
    with QoS1Publisher(host="127.0.0.1", port=mosquitto.port, protocol="3.1.1") as pub:
        with running(IngestWorker(settings=settings, store=store)):
            pub.publish_many(messages(range(20)))
            assert_exact(influxdb, database, 20 * ROWS)
        pub.publish_many(messages(range(20, 40)))  # queued in the clean_session=False session
        mosquitto.restart()
        assert pub.wait_connected(15)
        # A plain subscription is restored from the broker's persistence, so messages
        # published after the restart, before the worker is back, are queued too.
        pub.publish_many(messages(range(40, 60)))
        with running(IngestWorker(settings=settings, store=store)):
            assert_exact(influxdb, database, 60 * ROWS)


def test_gateway_state_and_health_points(
    mosquitto: Mosquitto, influxdb: InfluxDB, database: str
) -> None:
    now = time.time_ns() // 1_000_000
    state = {"v": 1, "gw": "gw-9", "online": True, "sent_ms": now, "models": {"t2": "1.0"}}
    health = {
        "v": 1,
        "gw": "gw-9",
        "seq": 1,
        "sent_ms": now,
        "outbox_backlog": 3,
        "outbox_bytes": 300,
        "dropped_total": 0,
        "published_total": 12,
    }
    worker = IngestWorker(settings=settings_for(mosquitto), store=store_for(influxdb, database))
    with running(worker), QoS1Publisher(host="127.0.0.1", port=mosquitto.port) as pub:
        pub.publish("renkei/v1/acme/plant1/_gw/gw-9/state", orjson.dumps(state))
        pub.publish("renkei/v1/acme/plant1/_gw/gw-9/health", orjson.dumps(health))
        wait_for(lambda: worker.stats().acked == 2, 10, "2 acks")
    assert influxdb.count_points(database, "gateway_state", "online") == 1
    assert influxdb.count_points(database, "gateway_health", "outbox_backlog") == 1
    [s] = influxdb.query('SELECT "online", "model.t2" FROM gateway_state', db=database)
    assert s["values"][0][1:] == [1, "1.0"]
