"""The ``sparkplug`` live source against a real Mosquitto and a Sparkplug B Edge Node
(``harness/live/sparkplug_node.py``, payloads by pysparkplug)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import paho.mqtt.client as mqtt
import pysparkplug as spb
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from harness.live.sparkplug_node import EdgeNode, MetricDef
from harness.services import Mosquitto
from harness.wait import wait_for
from renkei.edge.sources.live import LiveSource, build_live_source
from renkei.edge.sources.live.base import LinkEvent, now_ms
from renkei.edge.sources.live.sparkplug.config import SparkplugSourceConfig
from renkei.edge.sources.live.sparkplug.driver import SparkplugDriver

DT = spb.DataType
GROUP = "Plant1"
NODE = "press-line"


def _metrics() -> tuple[list[MetricDef], dict[str, list[MetricDef]]]:
    node = [MetricDef("Cabinet Temp", 10, DT.FLOAT, 31.5)]
    devices = {
        "imm-7": [
            MetricDef("Injection Pressure", 1, DT.DOUBLE, 1000.0),
            MetricDef("Shot Count", 2, DT.UINT32, 100),
            MetricDef("Running", 3, DT.BOOLEAN, True),
            MetricDef("Mold Id", 4, DT.STRING, "M-12"),
            MetricDef("Delta", 5, DT.INT16, -3),
        ]
    }
    return node, devices


def _config(port: int, **over: Any) -> SparkplugSourceConfig:
    raw: dict[str, Any] = {
        "type": "sparkplug",
        "host": "127.0.0.1",
        "port": port,
        "client_id": "renkei-test-host",
        "group_id": GROUP,
        "edge_node_id": NODE,
        "keepalive_s": 5,
        "reorder_timeout_s": 0.2,
        "rebirth_min_interval_s": 0.5,
        "link": {"reconnect_min_s": 0.1, "reconnect_max_s": 0.5, "timeout_s": 3},
        "quality_interval_s": 1,
        "signals": [
            {"name": "cabinet_temp_C", "metric": "Cabinet Temp"},
            {
                "name": "inj_pressure_MPa",
                "device": "imm-7",
                "metric": "Injection Pressure",
                "scale": 0.1,
                "unit": "MPa",
            },
            {"name": "shots_total", "device": "imm-7", "metric": "Shot Count"},
            {"name": "running", "device": "imm-7", "metric": "Running"},
            {"name": "mold_id", "device": "imm-7", "metric": "Mold Id"},
            {"name": "delta", "device": "imm-7", "metric": "Delta"},
        ],
    }
    raw.update(over)
    return SparkplugSourceConfig.model_validate(raw)


def _has(values: list[tuple[int, float]], t: int, v: float) -> bool:
    return any(tt == t and abs(vv - v) < 1e-6 for tt, vv in values)


class Collector:
    """Polls a LiveSource and keeps every row value and event."""

    def __init__(self, source: LiveSource) -> None:
        self.source = source
        self.rows: list[tuple[int, dict[str, float]]] = []
        self.events: list[LinkEvent] = []
        self.quality: list[dict[str, float]] = []

    def poll(self) -> None:
        batch = self.source.poll()
        self.events += batch.events
        self.quality += [q for _, q in batch.quality]
        for block in batch.blocks:
            if block.stream != "slow":
                continue
            for j, t in enumerate(block.t_ms):
                self.rows.append((int(t), {n: float(v[j]) for n, v in block.fields.items()}))

    def values(self, name: str) -> list[tuple[int, float]]:
        return [(t, f[name]) for t, f in self.rows if not math.isnan(f[name])]

    def codes(self) -> list[str]:
        return [e.code for e in self.events]

    def wait(self, cond: Any, what: str, timeout_s: float = 10) -> None:
        def check() -> bool:
            self.poll()
            return bool(cond())

        wait_for(check, timeout_s, what, interval_s=0.05)


@pytest.fixture
def node(mosquitto: Mosquitto) -> Iterator[EdgeNode]:
    node_metrics, devices = _metrics()
    n = EdgeNode(
        port=mosquitto.port,
        group=GROUP,
        node_id=NODE,
        node_metrics=node_metrics,
        devices=devices,
    )
    yield n
    n.client.loop_stop()
    n.client.disconnect()


def _start(config: SparkplugSourceConfig) -> tuple[LiveSource, Collector]:
    source = build_live_source(config)
    source.start()
    c = Collector(source)
    c.wait(lambda: "source_up" in c.codes(), "source connected and subscribed")
    return source, c


@pytest.fixture
def live(mosquitto: Mosquitto) -> Iterator[tuple[LiveSource, Collector]]:
    source, c = _start(_config(mosquitto.port))
    yield source, c
    source.stop(timeout_s=3)
    assert not source.running


def test_births_and_aliased_data_reach_the_source(
    live: tuple[LiveSource, Collector], node: EdgeNode
) -> None:
    source, c = live
    node.start()
    # the births carry current values
    c.wait(lambda: c.values("inj_pressure_MPa"), "DBIRTH values")
    assert c.values("inj_pressure_MPa")[-1][1] == pytest.approx(100.0)  # 1000 * 0.1
    assert c.values("cabinet_temp_C")[-1][1] == pytest.approx(31.5)
    t0 = now_ms() + 1_000  # after the births (rows are strictly increasing)
    node.publish_data(
        {"Injection Pressure": 1234.0, "Shot Count": 101, "Running": False, "Delta": -7},
        device="imm-7",
        t_ms=t0,
    )
    node.publish_data({"Cabinet Temp": 33.25}, t_ms=t0 + 10)
    # no metric timestamp: the payload's timestamp is used
    node.publish_data({"Shot Count": 102}, device="imm-7", t_ms=t0 + 20, metric_time=False)
    c.wait(lambda: len(c.values("shots_total")) >= 3, "DDATA by alias")
    assert _has(c.values("inj_pressure_MPa"), t0, 123.4)
    assert (t0, 101.0) in c.values("shots_total")
    assert (t0 + 20, 102.0) in c.values("shots_total")
    assert (t0, 0.0) in c.values("running")
    assert (t0, -7.0) in c.values("delta")  # Int16 two's complement
    assert _has(c.values("cabinet_temp_C"), t0 + 10, 33.25)
    assert source.fields["inj_pressure_MPa"] == "MPa"
    # a String metric is not a number: one BAD reading and one event, never a value
    assert c.values("mold_id") == []
    assert c.codes().count("unsupported_metric") == 1
    assert source.totals["gateway_time"] == 0  # every reading had a device time
    assert node.commands == []  # nothing asked for a rebirth


def test_is_null_metric_is_bad_not_a_value(
    live: tuple[LiveSource, Collector], node: EdgeNode
) -> None:
    source, c = live
    node.start()
    c.wait(lambda: c.values("shots_total"), "births")
    bad_before = source.totals["bad"]
    node.publish_data({"Shot Count": 0}, device="imm-7", null=("Shot Count",))
    c.wait(lambda: source.totals["bad"] > bad_before, "is_null counted as bad")
    assert c.values("shots_total")[-1][1] == 100.0  # the null never became a value


def test_seq_gap_requests_rebirth_and_the_rebirth_restores_data(
    live: tuple[LiveSource, Collector], node: EdgeNode
) -> None:
    source, c = live
    node.start()
    c.wait(lambda: c.values("shots_total"), "births")
    assert node.births == 1
    node.publish_data({"Shot Count": 101}, device="imm-7")
    node.skip_seq(2)  # two DDATA lost on the way
    node.publish_data({"Shot Count": 104}, device="imm-7")
    c.wait(lambda: "rebirth_requested" in c.codes(), "rebirth request after the Reorder Timeout")
    wait_for(lambda: bool(node.commands) and node.births == 2, 5, "NCMD received, node reborn")
    cmd = node.commands[0]
    assert [(m.name, m.datatype, m.value) for m in cmd.metrics] == [
        ("Node Control/Rebirth", DT.BOOLEAN, True)
    ]
    assert "sequence_gap" in c.codes()
    # after the rebirth the node's seq restarts at 0 and data flows without a new request
    node.publish_data({"Shot Count": 105}, device="imm-7")
    c.wait(lambda: any(v == 105.0 for _, v in c.values("shots_total")), "data after rebirth")
    assert c.codes().count("rebirth_requested") == 1
    driver = source.driver
    assert isinstance(driver, SparkplugDriver)
    assert driver.rebirths_sent == 1


def test_late_message_within_the_reorder_timeout_is_no_gap(
    mosquitto: Mosquitto, node: EdgeNode
) -> None:
    source, c = _start(_config(mosquitto.port, reorder_timeout_s=3.0))
    try:
        node.start()
        c.wait(lambda: c.values("shots_total"), "births")
        s = node.seq
        node.seq = s + 1
        node.publish_data({"Shot Count": 201}, device="imm-7")  # seq s+1 before s
        node.seq = s
        node.publish_data({"Shot Count": 200}, device="imm-7")
        node.seq = s + 2
        node.publish_data({"Shot Count": 202}, device="imm-7")
        c.wait(lambda: len(c.values("shots_total")) >= 4, "all three DDATA")
        c.poll()
        assert "rebirth_requested" not in c.codes()
        assert node.commands == []
    finally:
        source.stop(timeout_s=3)


def test_data_before_any_birth_requests_rebirth(
    live: tuple[LiveSource, Collector], node: EdgeNode
) -> None:
    _, c = live
    node.start(births=False)  # as if the gateway started after the node's births
    node.seq = 17
    node.publish_data({"Shot Count": 300}, device="imm-7")
    c.wait(lambda: "rebirth_requested" in c.codes(), "rebirth for DDATA before NBIRTH")
    wait_for(lambda: node.births == 1, 5, "node answered with births")
    c.wait(lambda: c.values("shots_total"), "values from the births")
    node.publish_data({"Shot Count": 301}, device="imm-7")
    c.wait(lambda: (c.values("shots_total") or [(0, 0)])[-1][1] == 301.0, "data by alias")
    assert not any(v == 300.0 for _, v in c.values("shots_total"))  # unknown alias not guessed


def test_ndeath_marks_metrics_stale_and_an_old_bdseq_is_ignored(
    live: tuple[LiveSource, Collector], node: EdgeNode
) -> None:
    source, c = live
    node.start()
    c.wait(lambda: c.values("shots_total"), "births")
    # the Will of an older MQTT session arrives late: ignored
    node.publish_ndeath(bd_seq=node.bd_seq + 200)
    c.wait(lambda: "ndeath_ignored" in c.codes(), "stale NDEATH ignored")
    assert source.totals["bad"] == 1  # only the String metric's one BAD reading
    # now the node really dies: the broker delivers its Will (same bdSeq as the NBIRTH)
    node.auto_rebirth = False
    node.drop_connection()
    node.stop_loop()
    c.wait(lambda: "node_death" in c.codes(), "NDEATH from the Will")
    bad = [e for e in c.events if e.code == "signal_bad"]
    assert bad
    assert "stale (NDEATH)" in bad[-1].message
    # every signal of the node and its device got a BAD reading (counted, no value)
    assert source.totals["bad"] >= 1 + 6
    c.wait(lambda: any(q.get("bad", 0) >= 6 for q in c.quality), "quality row counts bad")
    _last_t, last = c.rows[-1]
    assert all(math.isnan(v) for v in last.values())


def test_ddeath_marks_the_device_stale(live: tuple[LiveSource, Collector], node: EdgeNode) -> None:
    _source, c = live
    node.start()
    c.wait(lambda: c.values("shots_total"), "births")
    node.publish_ddeath("imm-7")
    c.wait(lambda: "device_death" in c.codes(), "DDEATH")
    c.wait(lambda: "signal_bad" in c.codes(), "signals bad")
    msg = next(e.message for e in c.events if e.code == "signal_bad" and "DDEATH" in e.message)
    assert "shots_total" in msg
    assert "cabinet_temp_C" not in msg  # the node's own metric is still good


def test_malformed_payloads_do_not_crash(
    live: tuple[LiveSource, Collector], node: EdgeNode
) -> None:
    source, c = live
    node.start()
    c.wait(lambda: c.values("shots_total"), "births")
    node.publish_raw("DDATA", b"\xff\xff\xff garbage \x00", device="imm-7")
    node.publish_raw("NDATA", b"\x18\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01")  # seq 2**64-1
    node.publish_raw("NBIRTH", b"")  # empty: a valid empty payload, no bdSeq
    node.publish_data({"Shot Count": 555}, device="imm-7")
    c.wait(lambda: "malformed_payload" in c.codes(), "malformed event")
    driver = source.driver
    assert isinstance(driver, SparkplugDriver)
    assert driver.host is not None
    wait_for(lambda: driver.host is not None and driver.host.malformed >= 2, 5, "counted")
    assert source.running
    assert source.driver_failures == 0


def test_broker_restart_reconnects_and_data_resumes(
    live: tuple[LiveSource, Collector], node: EdgeNode, mosquitto: Mosquitto
) -> None:
    source, c = live
    node.start()
    c.wait(lambda: c.values("shots_total"), "births")
    mosquitto.kill()
    c.wait(lambda: "source_down" in c.codes(), "outage reported")
    mosquitto.start()
    c.wait(lambda: c.codes().count("source_up") >= 2, "reconnected", timeout_s=15)
    # the node reconnected too (new bdSeq, births); the gateway asked for a rebirth
    wait_for(lambda: node.client.is_connected() and node.births >= 2, 10, "node reborn")
    node.publish_data({"Shot Count": 777}, device="imm-7")
    c.wait(lambda: any(v == 777.0 for _, v in c.values("shots_total")), "data resumes")
    assert source.sink.outages == 1
    assert source.driver_failures == 0
    down = next(e for e in c.events if e.code == "source_down")
    assert "lost" in down.message or "connect" in down.message


def test_stop_is_prompt_while_the_broker_is_down(mosquitto: Mosquitto) -> None:
    source, _ = _start(_config(mosquitto.port))
    mosquitto.kill()
    import time

    t = time.monotonic()
    source.stop(timeout_s=3)
    assert not source.running
    assert time.monotonic() - t < 1.5


def test_only_the_needed_topics_are_subscribed(
    live: tuple[LiveSource, Collector], mosquitto: Mosquitto
) -> None:
    """Another node of the group, and STATE, never reach the driver."""
    _, c = live
    other = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="other")
    other.connect("127.0.0.1", mosquitto.port)
    other.loop_start()
    try:
        other.publish(f"spBv1.0/{GROUP}/NDATA/other-node", b"\x01garbage", qos=1).wait_for_publish(
            5
        )
        other.publish(f"spBv1.0/{GROUP}/DDATA/{NODE}/imm-7/extra", b"x", qos=1).wait_for_publish(5)
    finally:
        other.loop_stop()
        other.disconnect()
    c.poll()
    assert "malformed_payload" not in c.codes()
