"""Issue 11 attacks against a real Mosquitto and a real InfluxDB, with exact counts.

- a field named like a tag (``firm``) must not blind another firm's queries;
- one message spreading points over 36 years must not create a shard per week;
- a gateway must not write as another gateway (payload ``gw``), also right after an
  ingest restart (retained births learned through the plain birth subscription).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from harness.loadgen import T0_MS, QoS1Publisher, machine_message, machine_topic_for
from harness.services import InfluxDB, Mosquitto
from harness.wait import wait_for
from renkei.cloud.capacity.availability import daily_up_hours
from renkei.cloud.ingest.worker import IngestWorker
from renkei.core.wire import (
    ACK_PREFIX,
    MIN_TS_MS,
    GatewayState,
    decode_ack_payload,
    encode,
    gateway_topic,
)
from tests.integration.test_ingest_worker import (
    DeadLetterSubscriber,
    running,
    settings_for,
    store_for,
)

ROWS = 60  # one row a second: one 1-minute availability bucket per message


def _victim_and_attacker(attacker_field: str) -> list[tuple[str, bytes]]:
    out = []
    for seq in range(20):  # victim: 20 messages x 60 rows, 1 s apart = 1,200 points
        out.append(
            (
                machine_topic_for(1, firm="victim", kind="features"),
                machine_message(
                    seq=seq, rows=ROWS, fields=2, gw="gw-v", step_ms=1000, kind="features"
                ),
            )
        )
    evil = orjson.loads(
        machine_message(seq=0, rows=ROWS, fields=2, gw="gw-a", step_ms=1000, kind="features")
    )
    evil["fields"][attacker_field] = [1.0] * ROWS
    out.append((machine_topic_for(2, firm="attacker", kind="features"), orjson.dumps(evil)))
    return out


def test_tag_named_field_cannot_blind_another_firm(
    mosquitto: Mosquitto, influxdb: InfluxDB, database: str
) -> None:
    store = store_for(influxdb, database)
    dlq = DeadLetterSubscriber(mosquitto)
    pub = QoS1Publisher(host="127.0.0.1", port=mosquitto.port, client_id="attack-1")
    try:
        with running(IngestWorker(settings=settings_for(mosquitto), store=store)) as worker:
            pub.publish_many(_victim_and_attacker("firm"))
            wait_for(lambda: worker.stats().acked == 21, 30, "21 messages acked")
            assert worker.stats().points == 1200
            assert {k: len(v) for k, v in dlq.by_reason.items()} == {"reserved_name": 1}
            assert "fields.firm" in dlq.by_reason["reserved_name"][0].detail
        # What the pre-fix ingest wrote: the attacker's point with a float field "firm".
        store.write_lines(
            b"features,firm=attacker,gw=gw-a,machine=m2,site=plant1 firm=1.0,f0=1.0 %d\n" % T0_MS,
            precision="ms",
        )
        assert store.count("features", "f0", where={"firm": "victim"}) == 1200
        assert store.count("features", "f0", where={"firm": "attacker"}) == 1
        day = datetime.fromtimestamp(T0_MS / 1000, UTC).date()
        up = daily_up_hours(store, first_day=day, days=2, timezone="UTC", where={"firm": "victim"})
        assert {k: sum(v.values()) for k, v in up.items()} == {"m1": 20 / 60}
    finally:
        pub.close()
        dlq.close()
        store.close()


def _shards(influx: InfluxDB, database: str) -> int:
    body = influx.query("SHOW SHARDS")
    return sum(len(s.get("values") or []) for s in body if s.get("name") == database)


def test_shard_bomb_is_dead_lettered_without_shards(
    mosquitto: Mosquitto, influxdb: InfluxDB, database: str
) -> None:
    store = store_for(influxdb, database)
    dlq = DeadLetterSubscriber(mosquitto)
    pub = QoS1Publisher(host="127.0.0.1", port=mosquitto.port, client_id="attack-2")
    week = 7 * 86_400_000
    stamps = list(range(MIN_TS_MS, T0_MS, week))  # ~1,900 weeks, all within the wire bounds
    bomb = orjson.loads(machine_message(seq=0, rows=len(stamps), fields=1, gw="gw-01"))
    bomb["ts_ms"] = stamps
    try:
        with running(IngestWorker(settings=settings_for(mosquitto), store=store)) as worker:
            pub.publish(machine_topic_for(1), machine_message(seq=1, rows=5, fields=1))
            pub.publish(machine_topic_for(1), orjson.dumps(bomb))
            wait_for(lambda: worker.stats().acked == 2, 30, "2 messages acked")
            assert worker.stats().points == 5
        assert len(stamps) > 1900
        assert [dl.reason for dl in dlq.by_reason["out_of_range_time"]] == ["out_of_range_time"]
        assert f"ts_ms[0]={MIN_TS_MS} ms" in dlq.by_reason["out_of_range_time"][0].detail
        assert dlq.total() == 1
        assert _shards(influxdb, database) == 2  # data (1) + the dead-letter counter (1)
    finally:
        pub.close()
        dlq.close()
        store.close()


def _birth(gw: str, machines: list[str]) -> tuple[str, bytes]:
    topic = gateway_topic(firm="acme", site="plant1", gateway=gw, kind="state")
    state = GatewayState(v=1, gw=gw, online=True, sent_ms=T0_MS + 7 * 86_400_000, machines=machines)
    return topic, encode(state)


def _publish_retained(broker: Mosquitto, births: list[tuple[str, bytes]]) -> None:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
    c.connect("127.0.0.1", broker.port)
    c.loop_start()
    try:
        for topic, payload in births:
            c.publish(topic, payload, qos=1, retain=True).wait_for_publish(10)
    finally:
        c.disconnect()
        c.loop_stop()


def _wait_births_learned(worker: IngestWorker) -> None:
    """Until the worker knows gw-2's retained birth (from its plain birth subscription)."""
    wait_for(
        lambda: (
            worker._bindings is not None
            and bool(worker._bindings.bound("acme", "plant1", "a1/l1/m2"))
        ),
        10,
        "retained births learned",
    )


def test_forged_gateway_id_is_dead_lettered_also_after_an_ingest_restart(
    mosquitto: Mosquitto, influxdb: InfluxDB, database: str
) -> None:
    # Births are retained *before* the worker exists: it can only learn them through its
    # plain birth subscription (a shared subscription gets no retained messages).
    _publish_retained(mosquitto, [_birth("gw-1", ["a1/l1/m1"]), _birth("gw-2", ["a1/l1/m2"])])
    store = store_for(influxdb, database)
    dlq = DeadLetterSubscriber(mosquitto)
    pub = QoS1Publisher(host="127.0.0.1", port=mosquitto.port, client_id="attack-3")
    msgs = [
        (machine_topic_for(1), machine_message(seq=0, rows=10, fields=1, gw="gw-1")),
        (machine_topic_for(2), machine_message(seq=1, rows=10, fields=1, gw="gw-2")),
        # gw-2 publishes on its own machine's topic as gw-1 (seq 2 of "gw-1")
        (machine_topic_for(2), machine_message(seq=2, rows=10, fields=1, gw="gw-1")),
        # a machine nobody claims, from a gateway without a birth: accepted (documented)
        (machine_topic_for(3), machine_message(seq=3, rows=10, fields=1, gw="gw-3")),
    ]
    try:
        settings = settings_for(mosquitto)
        with running(IngestWorker(settings=settings, store=store)) as worker:
            _wait_births_learned(worker)
            pub.publish_many(msgs)
            # (Mosquitto also hands the retained births to the shared subscription, which
            # writes them as gateway_state points; only telemetry is counted here.)
            wait_for(lambda: dlq.total() == 1, 30, "1 dead letter")
            wait_for(
                lambda: worker.stats().acked >= 4 and worker.stats().buffered == 0,
                30,
                "4 messages acked",
            )
        assert {k: len(v) for k, v in dlq.by_reason.items()} == {"gateway_mismatch": 1}
        detail = dlq.by_reason["gateway_mismatch"][0].detail
        assert "gw='gw-1'" in detail and "a1/l1/m2" in detail
        assert store.count("telemetry", "f0", where={"gw": "gw-1", "machine": "m2"}) == 0
        assert store.count("telemetry", "f0") == 30
    finally:
        pub.close()
        dlq.close()
        store.close()


class AckSubscriber:
    """Collects the ingest's end-to-end acks (``renkei/ack/v1/#``) as (gw, seqs)."""

    def __init__(self, broker: Mosquitto) -> None:
        self.acked: dict[str, set[int]] = {}
        self._lock = threading.Lock()
        ready = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
        self.client.on_subscribe = lambda *a: ready.set()
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *a: c.subscribe(f"{ACK_PREFIX}/#", qos=1)
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        assert ready.wait(10)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        ack = decode_ack_payload(bytes(msg.payload))
        with self._lock:
            seqs = self.acked.setdefault(ack.gw, set())
            for lo, hi in ack.ranges:
                seqs.update(range(lo, hi + 1))

    def seqs(self, gw: str) -> set[int]:
        with self._lock:
            return set(self.acked.get(gw, ()))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_a_forged_gateway_id_is_never_confirmed_to_the_named_gateway(
    mosquitto: Mosquitto, influxdb: InfluxDB, database: str
) -> None:
    """An end-to-end ack makes a gateway delete data: a message whose payload ``gw`` is not
    bound to its topic -- forged on another gateway's own machine topic, valid or invalid
    (dead-lettered), or from a gateway with no birth -- is handled but never confirmed."""
    _publish_retained(mosquitto, [_birth("gw-1", ["a1/l1/m1"]), _birth("gw-2", ["a1/l1/m2"])])
    store = store_for(influxdb, database)
    acks = AckSubscriber(mosquitto)
    pub = QoS1Publisher(host="127.0.0.1", port=mosquitto.port, client_id="attack-4")
    invalid = orjson.loads(machine_message(seq=7, rows=10, fields=1, gw="gw-1"))
    invalid["fields"]["firm"] = [1.0] * 10  # dead-lettered (reserved_name) before any binding
    msgs = [
        # gw-2, on its own machine's topic, names gw-1: invalid (7) and valid (8) payloads
        (machine_topic_for(2), orjson.dumps(invalid)),
        (machine_topic_for(2), machine_message(seq=8, rows=10, fields=1, gw="gw-1")),
        # a gateway without a birth on a machine nobody claims: written, not confirmed
        (machine_topic_for(3), machine_message(seq=9, rows=10, fields=1, gw="gw-3")),
        # the real gateways' own messages are confirmed
        (machine_topic_for(1), machine_message(seq=10, rows=10, fields=1, gw="gw-1")),
        (machine_topic_for(2), machine_message(seq=11, rows=10, fields=1, gw="gw-2")),
    ]
    try:
        with running(IngestWorker(settings=settings_for(mosquitto), store=store)) as worker:
            _wait_births_learned(worker)
            pub.publish_many(msgs)
            wait_for(
                lambda: acks.seqs("gw-1") == {10} and acks.seqs("gw-2") == {11},
                30,
                "the bound gateways' own acks",
            )
            wait_for(
                lambda: worker.stats().acked >= 5 and worker.stats().buffered == 0,
                30,
                "5 messages handled",
            )
            # 7 (dead-lettered reserved_name) and 9 (no birth); 8 is a gateway_mismatch
            # dead letter, never confirmed either
            assert worker._acks.unbound_total == 2
        assert acks.seqs("gw-1") == {10}  # never 7 or 8
        assert acks.seqs("gw-3") == set()
        assert store.count("telemetry", "f0", where={"gw": "gw-3"}) == 10  # still written
    finally:
        pub.close()
        acks.close()
        store.close()
