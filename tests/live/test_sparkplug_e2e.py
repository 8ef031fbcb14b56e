"""End to end: a Sparkplug B Edge Node on a real Mosquitto → a ``GatewayAgent`` with a
``sparkplug`` source → Renkei telemetry, event and quality rows on the same broker (seen by
a ``Witness``)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pysparkplug as spb

from harness.live.sparkplug_node import EdgeNode, MetricDef
from harness.services import Mosquitto
from harness.wait import wait_for
from harness.witness import Witness
from renkei.edge.agent import GatewayAgent
from renkei.edge.config import load_config
from renkei.edge.sources.live.base import now_ms
from tests.e2e import write_gateway_config

DT = spb.DataType


def _rows(witness: Witness, kind: str) -> list[dict[str, Any]]:
    return [p for topic, p in witness.machine_messages() if topic.kind.value == kind]


def _values(witness: Witness, field: str) -> dict[int, float]:
    out: dict[int, float] = {}
    for p in _rows(witness, "telemetry"):
        for t, v in zip(p["ts_ms"], p["fields"].get(field, [])):
            if v is not None:
                out[int(t)] = float(v)
    return out


def test_sparkplug_node_to_renkei_telemetry(mosquitto: Mosquitto, tmp_path: Path) -> None:
    source = {
        "type": "sparkplug",
        "host": "127.0.0.1",
        "port": mosquitto.port,
        "client_id": "gw-e2e-sparkplug",
        "group_id": "Plant1",
        "edge_node_id": "press-line",
        "keepalive_s": 5,
        "quality_interval_s": 1,
        "link": {"reconnect_min_s": 0.1, "reconnect_max_s": 0.5},
        "signals": [
            {
                "name": "inj_pressure_MPa",
                "device": "imm-7",
                "metric": "Injection Pressure",
                "scale": 0.1,
                "unit": "MPa",
            },
            {"name": "running", "device": "imm-7", "metric": "Running"},
        ],
    }
    path = write_gateway_config(
        tmp_path / "gw.yaml",
        port=mosquitto.port,
        state_dir=tmp_path / "state",
        # no cloud ingest here: the gateway publishes on the broker's PUBACK
        mqtt={
            "host": "127.0.0.1",
            "port": mosquitto.port,
            "keepalive_s": 5,
            "wait_for_ingest": None,
            "ack": "broker",
        },
        machines=[{"id": "imm-7", "area": "molding", "line": "line-1", "source": source}],
    )
    config = load_config(path)
    witness = Witness(port=mosquitto.port)
    node = EdgeNode(
        port=mosquitto.port,
        group="Plant1",
        node_id="press-line",
        devices={
            "imm-7": [
                MetricDef("Injection Pressure", 1, DT.DOUBLE, 1000.0),
                MetricDef("Running", 2, DT.BOOLEAN, True),
            ]
        },
    )
    agent = GatewayAgent(config=config)
    thread = threading.Thread(target=agent.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: "imm-7" in agent.live_sources, 10, "live source started")
        live = agent.live_sources["imm-7"]
        wait_for(lambda: live.sink.connects >= 1, 10, "sparkplug source subscribed")
        node.start()
        t0 = now_ms() + 1_000
        sent = {t0 + 100 * i: 1000.0 + i for i in range(10)}
        for t, v in sent.items():
            node.publish_data({"Injection Pressure": v}, device="imm-7", t_ms=t)
        wait_for(
            lambda: set(sent) <= set(_values(witness, "inj_pressure_MPa")),
            20,
            "telemetry rows with the DDATA values at their metric timestamps",
        )
        got = _values(witness, "inj_pressure_MPa")
        for t, v in sent.items():
            assert abs(got[t] - v * 0.1) < 1e-9
        wait_for(lambda: bool(_rows(witness, "quality")), 10, "quality rows")
        events = str(_rows(witness, "event"))
        assert "node_birth" in events
        assert "source_up" in events
        assert live.totals["readings"] >= len(sent)
    finally:
        agent.stop()
        thread.join(30)
        node.close()
        witness.close()
    assert not thread.is_alive()
