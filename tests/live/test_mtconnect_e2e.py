"""End to end: a gateway agent reads the test MTConnect agent (subprocess) and publishes to
a real Mosquitto; a witness subscriber sees telemetry rows with the machine's values and
units, and the agent's condition changes as events."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.live.mtconnect_agent import AgentProcess
from harness.services import Mosquitto
from harness.wait import wait_for
from harness.witness import Witness
from renkei.edge.agent import GatewayAgent
from renkei.edge.config import GatewayConfig
from tests.datasets import require_data_dir


@pytest.fixture
def mtc_agent(tmp_path: Path) -> Iterator[AgentProcess]:
    probe = require_data_dir() / "mtconnect" / "simulator" / "VMC-3Axis.xml"
    agent = AgentProcess(probe, tmp_path, period_ms=10)
    agent.start()
    yield agent
    agent.kill()


@pytest.fixture
def witness(mosquitto: Mosquitto) -> Iterator[Witness]:
    w = Witness(port=mosquitto.port, client_id="witness-mtconnect")
    yield w
    w.close()


def _config(state: Path, port: int, url: str) -> GatewayConfig:
    return GatewayConfig.model_validate(
        {
            "gateway_id": "gw-mtc-e2e",
            "firm": "acme",
            "site": "s1",
            "state_dir": str(state),
            "mqtt": {"host": "127.0.0.1", "port": port, "wait_for_ingest": None},
            "publish": {"flush_interval_s": 0.1, "health_interval_s": 0.5},
            "machines": [
                {
                    "id": "vmc-1",
                    "area": "machining",
                    "line": "line-1",
                    "source": {
                        "type": "mtconnect",
                        "url": url,
                        "device": "VMC-3Axis",
                        "interval_ms": 50,
                        "quality_interval_s": 1,
                        "signals": [
                            {"name": "x_pos", "data_item": "x2"},
                            {"name": "spindle_rpm", "data_item": "Sspeed"},
                            {"name": "z_load", "data_item": "Zload"},
                        ],
                    },
                    "window_s": 1,
                }
            ],
        }
    )


def test_gateway_publishes_mtconnect_telemetry_and_condition_events(
    tmp_path: Path, mosquitto: Mosquitto, witness: Witness, mtc_agent: AgentProcess
) -> None:
    agent = GatewayAgent(config=_config(tmp_path / "state", mosquitto.port, mtc_agent.url))
    errors: list[BaseException] = []

    def run() -> None:
        try:
            agent.run()
        except BaseException as exc:  # checked below
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:

        def rows(kind: str) -> list[dict[str, Any]]:
            return [p for t, p in witness.machine_messages() if t.kind.value == kind]

        def x_values() -> list[float]:
            return [
                v for p in rows("telemetry") for v in p["fields"].get("x_pos", []) if v is not None
            ]

        def event_codes() -> list[str]:
            return [e["code"] for p in rows("event") for e in p["events"]]

        wait_for(lambda: len(x_values()) >= 20, 20, "x_pos telemetry rows")
        wait_for(lambda: "condition_fault" in event_codes(), 20, "condition_fault event")
        wait_for(lambda: "condition_normal" in event_codes(), 20, "condition_normal event")
        assert "source_up" in event_codes()
        assert len(set(x_values())) > 5
        telemetry = rows("telemetry")
        assert all(v is None for p in telemetry for v in p["fields"].get("z_load", [])), (
            "UNAVAILABLE is published as null, never as a value"
        )
        wait_for(
            lambda: any(v for p in rows("quality") for v in p["fields"].get("bad", [])),
            10,
            "quality rows counting the bad (UNAVAILABLE) reading",
        )
        fault = next(
            e for p in rows("event") for e in p["events"] if e["code"] == "condition_fault"
        )
        assert "E42" in fault["message"] and fault["severity"] == "alarm"
    finally:
        agent.stop()
        thread.join(30)
    assert not thread.is_alive()
    assert not errors, errors
