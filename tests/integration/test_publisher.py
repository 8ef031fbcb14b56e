"""The MQTT publisher against a real Mosquitto: zero loss across outages, Last Will,
birth, live data during a backlog drain, drain rate, refused PUBACKs.

A paho subscriber with a persistent session (as the cloud ingest has) collects what the
broker delivers; every test bounds its waits by time.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from harness.services import Mosquitto
from harness.wait import WaitTimeout, pause, wait_for
from renkei.core.wire import (
    GatewayState,
    MachineKind,
    MachinePayload,
    decode_gateway_payload,
    encode,
    gateway_topic,
    machine_topic,
)
from renkei.edge.transport.outbox import Outbox, OutboxSettings
from renkei.edge.transport.publisher import MqttSettings, Publisher, PublisherError

REPO = Path(__file__).resolve().parents[2]
GW = "gw-test"
STATE = gateway_topic(firm="acme", site="s1", gateway=GW, kind="state")
HEALTH = gateway_topic(firm="acme", site="s1", gateway=GW, kind="health")


def _topic(machine: str = "m1") -> str:
    return machine_topic(
        firm="acme", site="s1", area="a1", line="l1", machine=machine, kind="telemetry"
    )


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _telemetry(seq: int) -> bytes:
    """A real v1 message; ``sent_ms`` is the enqueue time, for latency measurements."""
    t = _now_ms()
    return encode(
        MachinePayload(
            v=1,
            gw=GW,
            seq=seq,
            sent_ms=t,
            kind=MachineKind.TELEMETRY,
            ts_ms=[t - 100 * (9 - i) for i in range(10)],
            fields={f"ch{c:02d}": [20.0 + c + i / 10 for i in range(10)] for c in range(4)},
        )
    )


def _state(online: bool) -> bytes:
    return encode(GatewayState(v=1, gw=GW, online=online, sent_ms=_now_ms()))


# ------------------------------------------------------------------ subscriber


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool
    wall_ms: int
    mono: float


class Collector:
    """A QoS 1 subscriber; ``persistent`` keeps its session across broker restarts."""

    def __init__(self, port: int, topic: str = "renkei/#", *, persistent: bool = True) -> None:
        self.topic = topic
        self.lock = threading.Lock()
        self.msgs: list[Received] = []
        self.subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"collector-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        self.client.reconnect_delay_set(0.1, 0.5)  # type: ignore[arg-type]
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.on_message = self._on_message
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 3600 if persistent else 0
        # clean_start=False from the first connect, as the ingest does: Mosquitto 2.0.11
        # does not save a session that began with clean_start=1 across a broker restart,
        # whatever its Session Expiry Interval.
        self.client.connect(
            "127.0.0.1", port, keepalive=10, clean_start=not persistent, properties=props
        )
        self.client.loop_start()
        assert self.subscribed.wait(10), "collector did not get its SUBACK"

    def _on_connect(
        self, client: mqtt.Client, u: object, flags: object, rc: object, p: object
    ) -> None:
        client.subscribe(self.topic, qos=1)

    def _on_message(self, client: mqtt.Client, u: object, m: mqtt.MQTTMessage) -> None:
        r = Received(m.topic, bytes(m.payload), bool(m.retain), _now_ms(), time.monotonic())
        with self.lock:
            self.msgs.append(r)

    def received(self, topic_part: str = "/telemetry") -> list[Received]:
        with self.lock:
            return [r for r in self.msgs if topic_part in r.topic]

    def seqs(self) -> list[int]:
        return [orjson.loads(r.payload)["seq"] for r in self.received()]

    def has_all(self, expected: set[int]) -> bool:
        return expected <= set(self.seqs())

    def states(self) -> list[tuple[bool, bool]]:
        """``(online, retain)`` of every state message, in arrival order."""
        out = []
        for r in self.received("/_gw/"):
            if r.topic.endswith("/state"):
                st = decode_gateway_payload(r.payload, "state")
                assert isinstance(st, GatewayState)
                out.append((st.online, r.retain))
        return out

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _retained_state(port: int) -> bool | None:
    """``online`` of the retained state message a new subscriber gets, or ``None``.

    A state published live while this subscriber is being set up arrives with
    ``retain=0`` (MQTT 3.3.1.3: the flag is set only on retained-message delivery);
    it is not the retained copy, so it is ignored and callers poll again.
    """
    c = Collector(port, STATE, persistent=False)
    try:
        with contextlib.suppress(WaitTimeout):  # no retained copy yet: the caller polls again
            wait_for(lambda: any(retain for _, retain in c.states()), 2.0, "a retained state")
        retained = [online for online, retain in c.states() if retain]
        return retained[-1] if retained else None
    finally:
        c.close()


# ------------------------------------------------------------------ fixtures


@dataclass
class Gateway:
    outbox: Outbox
    outbox_settings: OutboxSettings
    publisher: Publisher

    def enqueue(self, n: int, machine: str = "m1") -> list[int]:
        seqs = [self.outbox.enqueue(_topic(machine), _telemetry) for _ in range(n)]
        self.publisher.notify()
        return seqs


GatewayFactory = Callable[..., Gateway]


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[GatewayFactory]:
    made: list[Gateway] = []

    def make(
        broker: Mosquitto,
        *,
        rate: float = 200.0,
        max_inflight: int = 100,
        health: Callable[[], tuple[str, bytes]] | None = None,
        health_interval_s: float = 30.0,
        **mqtt_kw: object,
    ) -> Gateway:
        os_ = OutboxSettings(
            path=tmp_path / f"outbox-{len(made)}.sqlite3",
            drain_rate_msgs_per_s=rate,
            max_inflight=max_inflight,
        )
        ob = Outbox(settings=os_)
        # These tests drive the broker-level protocol (PUBACK deletes) with no ingest;
        # the end-to-end acknowledgement (ack="ingest") is tested in test_e2e_ack.py.
        kw: dict[str, object] = {"reconnect_min_s": 0.2, "reconnect_max_s": 1.0, "ack": "broker"}
        kw.update(mqtt_kw)
        pub = Publisher(
            settings=MqttSettings(host="127.0.0.1", port=broker.port, **kw),
            outbox=ob,
            outbox_settings=os_,
            state_topic=STATE,
            birth=lambda: _state(True),
            death=_state(False),
            health=health,
            health_interval_s=health_interval_s,
        )
        g = Gateway(ob, os_, pub)
        made.append(g)
        return g

    yield make
    for g in made:
        with contextlib.suppress(PublisherError):  # asserted on by the test that caused it
            g.publisher.stop(timeout_s=2.0)
        g.outbox.close()


@pytest.fixture
def collector(mosquitto: Mosquitto) -> Iterator[Collector]:
    c = Collector(mosquitto.port)
    yield c
    c.close()


def _connected(g: Gateway, timeout_s: float = 10.0) -> None:
    wait_for(lambda: g.publisher.stats().connected, timeout_s, "the publisher to connect")


def _drained(g: Gateway, timeout_s: float) -> None:
    wait_for(lambda: g.outbox.stats().backlog_msgs == 0, timeout_s, "the outbox to drain")


# ------------------------------------------------------------------ delivery


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_every_message_arrives_and_leaves_the_outbox(
    mosquitto: Mosquitto, collector: Collector, gateway: GatewayFactory, protocol: str
) -> None:
    g = gateway(mosquitto, protocol=protocol)
    g.publisher.start()
    _connected(g)
    expected: set[int] = set()
    for _ in range(50):
        expected.update(g.enqueue(20))
    assert len(expected) == 1000
    wait_for(lambda: collector.has_all(expected), 15, "every expected message")
    _drained(g, 5)
    st = g.publisher.stats()
    assert st.acked_total == 1000
    assert st.puback_failures_total == 0
    assert st.inflight == 0
    assert len(collector.seqs()) == 1000  # no duplicates without an outage


def test_inflight_window_is_bounded(
    mosquitto: Mosquitto, collector: Collector, gateway: GatewayFactory
) -> None:
    g = gateway(mosquitto, max_inflight=5)
    g.publisher.start()
    _connected(g)
    expected = set(g.enqueue(600))
    peak = 0

    def all_received() -> bool:  # samples the in-flight count while waiting
        nonlocal peak
        peak = max(peak, g.publisher.stats().inflight)
        return collector.has_all(expected)

    wait_for(all_received, 15, "every expected message", interval_s=0.0005)
    assert 1 <= peak <= 5


def test_broker_stop_and_start_mid_stream_loses_nothing(
    mosquitto: Mosquitto, collector: Collector, gateway: GatewayFactory
) -> None:
    g = gateway(mosquitto, rate=500.0)
    g.publisher.start()
    _connected(g)
    expected: set[int] = set()
    done = threading.Event()

    def produce() -> None:
        for i in range(300):  # ~3 s of data at 100 messages/s
            expected.update(g.enqueue(1))
            if i == 100:
                done.set()
            pause(0.01, "pace: 100 messages/s")

    producer = threading.Thread(target=produce)
    producer.start()
    assert done.wait(10)
    mosquitto.stop()
    pause(1.0, "the outage: messages pile up in the outbox")
    assert not g.publisher.stats().connected
    assert g.outbox.stats().backlog_msgs > 0
    mosquitto.start()
    producer.join(15)
    wait_for(
        lambda: collector.has_all(expected),
        15,
        lambda: f"every message; missing {sorted(expected - set(collector.seqs()))[:20]}",
    )
    _drained(g, 5)
    st = g.publisher.stats()
    assert st.disconnects_total >= 1 and st.connects_total >= 2
    dups = len(collector.seqs()) - len(expected)
    assert dups <= 2 * g.outbox_settings.max_inflight


def test_broker_down_at_start_up(
    mosquitto: Mosquitto, collector: Collector, gateway: GatewayFactory
) -> None:
    mosquitto.stop()  # the collector's persistent session is saved by the broker
    g = gateway(mosquitto)
    expected = set(g.enqueue(100))
    g.publisher.start()
    pause(0.8, "several failed connection attempts")
    expected.update(g.enqueue(50))
    assert not g.publisher.stats().connected
    mosquitto.start()
    _connected(g)
    expected.update(g.enqueue(50))
    wait_for(lambda: collector.has_all(expected), 15, "collector.has_all(expected)")
    _drained(g, 5)
    assert _retained_state(mosquitto.port) is True


# ------------------------------------------------------------------ state topic


def test_birth_is_retained_and_clean_stop_leaves_offline(
    mosquitto: Mosquitto, gateway: GatewayFactory
) -> None:
    assert _retained_state(mosquitto.port) is None
    g = gateway(mosquitto)
    g.publisher.start()
    _connected(g)
    wait_for(
        lambda: _retained_state(mosquitto.port) is True,
        5,
        "_retained_state(mosquitto.port) is True",
    )
    g.publisher.stop(timeout_s=5)
    assert _retained_state(mosquitto.port) is False


def test_birth_is_published_again_after_a_reconnect(
    mosquitto: Mosquitto, gateway: GatewayFactory
) -> None:
    g = gateway(mosquitto)
    g.publisher.start()
    _connected(g)
    mosquitto.kill()  # a crash: no session or retained-message save since the birth
    mosquitto.start()
    wait_for(
        lambda: g.publisher.stats().connects_total >= 2,
        10,
        "g.publisher.stats().connects_total >= 2",
    )
    wait_for(
        lambda: _retained_state(mosquitto.port) is True,
        5,
        "_retained_state(mosquitto.port) is True",
    )


_CHILD = """
import contextlib, sys
sys.path.insert(0, {repo!r})
from pathlib import Path
from harness.wait import WaitTimeout, pause, wait_for
from renkei.edge.transport.outbox import Outbox, OutboxSettings
from renkei.edge.transport.publisher import MqttSettings, Publisher
from tests.integration.test_publisher import STATE, _state

os_ = OutboxSettings(path=Path(sys.argv[2]))
pub = Publisher(
    settings=MqttSettings(host="127.0.0.1", port=int(sys.argv[1]), keepalive_s=60),
    outbox=Outbox(settings=os_), outbox_settings=os_, state_topic=STATE,
    birth=lambda: _state(True), death=_state(False),
)
pub.start()
with contextlib.suppress(WaitTimeout):
    wait_for(lambda: pub.stats().connected, 20, "the publisher to connect", interval_s=0.01)
print("up" if pub.stats().connected else "down", flush=True)
pause(60, "stay connected until the test kills this process")
"""


@pytest.mark.timeout(60)
def test_last_will_is_retained_when_the_publisher_process_is_killed(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    watcher = Collector(mosquitto.port, STATE, persistent=False)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _CHILD.format(repo=str(REPO)),
            str(mosquitto.port),
            str(tmp_path / "child.sqlite3"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"up"
        wait_for(lambda: (True, False) in watcher.states(), 5, "(True, False) in watcher.states()")
        assert _retained_state(mosquitto.port) is True
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        # keepalive is 60 s: the Will must come from the closed socket, not a timeout.
        wait_for(lambda: watcher.states()[-1][0] is False, 5, "watcher.states()[-1][0] is False")
        assert _retained_state(mosquitto.port) is False
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        watcher.close()


# ------------------------------------------------------------------ live vs backlog


def _drain_rate(msgs: list[Received]) -> float:
    times = sorted(r.mono for r in msgs)
    return (len(times) - 1) / (times[-1] - times[0])


def test_drain_rate_is_honoured(
    mosquitto: Mosquitto, collector: Collector, gateway: GatewayFactory
) -> None:
    rate = 150.0
    g = gateway(mosquitto, rate=rate)
    backlog = set(g.enqueue(600))  # before start: all of it is backlog (~4 s)
    g.publisher.start()
    wait_for(lambda: collector.has_all(backlog), 15, "collector.has_all(backlog)")
    measured = _drain_rate(collector.received())
    assert rate * 0.8 <= measured <= rate * 1.2, measured
    _drained(g, 5)
    assert not g.publisher.stats().backlog_draining


def test_live_data_flows_promptly_while_a_backlog_drains(
    mosquitto: Mosquitto, collector: Collector, gateway: GatewayFactory
) -> None:
    rate = 250.0
    g = gateway(mosquitto, rate=rate)
    backlog = set(g.enqueue(1250))  # ~5 s of draining
    g.publisher.start()
    _connected(g)
    live: set[int] = set()
    t_end = time.monotonic() + 3.0
    while time.monotonic() < t_end:  # 20 live messages/s for 3 s, during the drain
        live.update(g.enqueue(1))
        pause(0.05, "pace: 20 live messages/s")
    assert g.publisher.stats().backlog_draining  # the drain is still going on
    wait_for(lambda: collector.has_all(backlog | live), 15, "collector.has_all(backlog | live)")
    by_seq = {orjson.loads(r.payload)["seq"]: r for r in collector.received()}
    latencies = sorted(by_seq[s].wall_ms - orjson.loads(by_seq[s].payload)["sent_ms"] for s in live)
    p95 = latencies[int(0.95 * (len(latencies) - 1))]
    assert p95 <= 250, latencies
    last_live = max(by_seq[s].mono for s in live)
    assert sum(by_seq[s].mono > last_live for s in backlog) > 100  # interleaved, not after
    measured = _drain_rate([by_seq[s] for s in backlog])
    assert rate * 0.8 <= measured <= rate * 1.2, measured


# ------------------------------------------------------------------ refusals and health


def _acl_broker(tmp_path: Path, acl: Path, extra: str = "") -> Mosquitto:
    # ``user root``: Mosquitto started as root would switch to user mosquitto, which cannot
    # read the test's private temp directory.
    broker = Mosquitto(
        workdir=tmp_path / "mq-acl", extra_conf=f"user root\nacl_file {acl}\n{extra}"
    )
    broker.start()
    return broker


_ACL_BASE = "topic read renkei/#\ntopic write renkei/v1/acme/s1/_gw/#\n"


@pytest.mark.timeout(60)
def test_refused_puback_keeps_the_record_and_retries_until_accepted(
    tmp_path: Path, gateway: GatewayFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="renkei.edge.transport.publisher")
    acl = tmp_path / "acl"
    acl.write_text(_ACL_BASE + f"topic write {_topic('m1')}\n")
    # Mosquitto 2.0.11 with ``max_queued_messages 0`` (renkei.conf) closes the connection
    # after a denied QoS 1 PUBLISH; a finite limit makes it answer with PUBACK 0x87 and
    # keep the connection, which is the case this test is about.
    broker = _acl_broker(tmp_path, acl, "max_queued_messages 1000000\n")
    try:
        coll = Collector(broker.port)
        g = gateway(broker, puback_retry_min_s=0.1, puback_retry_max_s=0.3)
        g.publisher.start()
        _connected(g)
        ok = set(g.enqueue(5, "m1"))
        refused = set(g.enqueue(3, "m2"))  # not authorized
        wait_for(lambda: coll.has_all(ok), 5, "coll.has_all(ok)")
        wait_for(
            lambda: g.publisher.stats().puback_failures_total >= 9,
            5,
            "g.publisher.stats().puback_failures_total >= 9",
        )  # 3 tries each
        st = g.publisher.stats()
        assert st.puback_failures_by_reason.get("Not authorized", 0) >= 9
        assert st.retry_pending == 3
        assert st.disconnects_total == 0
        wait_for(
            lambda: {r.id for r in g.outbox.peek(-1, 100)} == refused,
            5,
            "{r.id for r in g.outbox.peek(-1, 100)} == refused",
        )  # kept
        refusals = [r for r in caplog.records if "refused message" in r.getMessage()]
        assert len(refusals) == 1  # logged once per reason
        acl.write_text(_ACL_BASE + "topic write renkei/v1/acme/s1/a1/l1/+/telemetry\n")
        assert broker.proc is not None
        broker.proc.send_signal(signal.SIGHUP)  # Mosquitto reloads the ACL
        wait_for(lambda: coll.has_all(refused), 10, "coll.has_all(refused)")
        _drained(g, 5)
        assert g.publisher.stats().retry_pending == 0
        coll.close()
    finally:
        broker.kill()


@pytest.mark.timeout(60)
def test_broker_that_disconnects_on_a_denied_publish_loses_nothing(
    tmp_path: Path, gateway: GatewayFactory
) -> None:
    # renkei.conf unchanged: Mosquitto 2.0.11 drops the connection after the refusal (an
    # MQTT 3.1.1 broker may do so too, [MQTT-3.3.5-2]).
    acl = tmp_path / "acl"
    acl.write_text(_ACL_BASE + f"topic write {_topic('m1')}\n")
    broker = _acl_broker(tmp_path, acl)
    try:
        coll = Collector(broker.port)
        g = gateway(broker, puback_retry_min_s=0.2, puback_retry_max_s=0.5)
        g.publisher.start()
        _connected(g)
        ok = set(g.enqueue(5, "m1"))
        refused = set(g.enqueue(3, "m2"))
        ok |= set(g.enqueue(5, "m1"))
        wait_for(lambda: coll.has_all(ok), 10, "coll.has_all(ok)")
        wait_for(
            lambda: g.publisher.stats().disconnects_total >= 2,
            10,
            "g.publisher.stats().disconnects_total >= 2",
        )
        # The refused ones stay; the others leave once acknowledged (possibly after a
        # retry, when a drop interrupted their PUBACK).
        wait_for(
            lambda: {r.id for r in g.outbox.peek(-1, 100)} == refused,
            10,
            "{r.id for r in g.outbox.peek(-1, 100)} == refused",
        )
        acl.write_text(_ACL_BASE + "topic write renkei/v1/acme/s1/a1/l1/+/telemetry\n")
        assert broker.proc is not None
        broker.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: coll.has_all(refused), 10, "coll.has_all(refused)")
        _drained(g, 5)
        coll.close()
    finally:
        broker.kill()


def test_health_is_published_directly_while_connected(
    mosquitto: Mosquitto, collector: Collector, gateway: GatewayFactory
) -> None:
    calls = 0

    def health() -> tuple[str, bytes]:
        nonlocal calls
        calls += 1
        return HEALTH, orjson.dumps({"n": calls})

    g = gateway(mosquitto, health=health, health_interval_s=0.2)
    g.publisher.start()
    _connected(g)
    wait_for(
        lambda: len(collector.received("/health")) >= 5,
        5,
        'len(collector.received("/health")) >= 5',
    )
    assert g.outbox.stats().enqueued_total == 0  # not via the outbox
    assert g.publisher.stats().health_published_total >= 5


def test_a_failing_health_callback_stops_the_pump_loudly(
    mosquitto: Mosquitto, gateway: GatewayFactory
) -> None:
    def health() -> tuple[str, bytes]:
        raise RuntimeError("health source broken")

    g = gateway(mosquitto, health=health, health_interval_s=0.1)
    g.publisher.start()
    wait_for(
        lambda: g.publisher.stats().pump_error is not None,
        5,
        "g.publisher.stats().pump_error is not None",
    )
    assert "health source broken" in str(g.publisher.stats().pump_error)
    with pytest.raises(PublisherError, match="health source broken"):
        g.publisher.stop(timeout_s=2)
    assert _retained_state(mosquitto.port) is False  # the cloud sees it offline


def test_stop_with_the_broker_down_keeps_every_message(
    mosquitto: Mosquitto, gateway: GatewayFactory
) -> None:
    mosquitto.stop()
    g = gateway(mosquitto)
    g.publisher.start()
    g.enqueue(40)
    t0 = time.monotonic()
    g.publisher.stop(timeout_s=2)
    assert time.monotonic() - t0 < 3
    assert g.outbox.stats().backlog_msgs == 40
