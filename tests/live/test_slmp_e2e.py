"""End to end: `renkei edge run` polls the SLMP test server (a subprocess) and publishes the
PLC's values as telemetry to a real Mosquitto, seen by a witness subscriber."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.live.slmp_server import SlmpServer
from harness.procs import start_agent
from harness.services import Mosquitto
from harness.wait import wait_for
from harness.witness import Witness
from tests.e2e import write_gateway_config


def _telemetry(witness: Witness) -> list[dict[str, Any]]:
    return [p for t, p in witness.machine_messages() if t.kind.value == "telemetry"]


def test_agent_publishes_plc_values(tmp_path: Path, mosquitto: Mosquitto) -> None:
    plc = SlmpServer(tmp_path / "slmp.log", preset={"D100": [215, 0x86A0, 0x0001], "M0": [1]})
    plc.start()
    witness = Witness(port=mosquitto.port, client_id="witness-slmp")
    source = {
        "type": "slmp",
        "host": "127.0.0.1",
        "port": plc.port,
        "poll_interval_ms": 100,
        "monitoring_timer_s": 0.5,
        "link": {"reconnect_min_s": 0.1, "reconnect_max_s": 0.5, "timeout_s": 1},
        "signals": [
            {"name": "barrel_temp_C", "device": "D100", "scale": 0.1, "unit": "degC"},
            {"name": "shot_counter", "device": "D101", "type": "uint32"},
            {"name": "running", "device": "M0", "type": "bool"},
        ],
    }
    machine = {"id": "plc-1", "area": "molding", "line": "line-1", "source": source}
    cfg = write_gateway_config(
        tmp_path / "gw.yaml",
        port=mosquitto.port,
        state_dir=tmp_path / "state",
        machines=[machine],
        # no ingest in this test: publish at once, a message is done on the broker's PUBACK
        mqtt={
            "host": "127.0.0.1",
            "port": mosquitto.port,
            "keepalive_s": 5,
            "wait_for_ingest": None,
            "ack": "broker",
        },
    )
    agent = start_agent(cfg, tmp_path / "agent.log")
    try:

        def seen() -> bool:
            assert agent.alive(), agent.tail()
            return any("shot_counter" in p.get("fields", {}) for p in _telemetry(witness))

        try:
            wait_for(seen, 15, "telemetry with the PLC's values")
        except AssertionError:
            topics = sorted({m[0] for m in witness.messages})
            raise AssertionError(f"{topics[:20]}\n{agent.tail()}") from None
        row = next(p for p in _telemetry(witness) if "shot_counter" in p.get("fields", {}))
        fields = row["fields"]
        assert fields["barrel_temp_C"][0] == 21.5
        assert fields["shot_counter"][0] == 100_000  # D101 low word 0x86A0, D102 high word 1
        assert fields["running"][0] == 1
        assert agent.alive()
    finally:
        agent.terminate()
        witness.close()
        plc.stop()
