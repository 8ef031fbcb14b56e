"""End to end: ``renkei edge run`` with ``source: {type: opcua, preset: euromap77}`` against
the real IMM2MES server subprocess and a real Mosquitto; the server is killed (-9) and
restarted mid-run and the agent resumes by itself.

Needs the generic OPC UA driver (:mod:`renkei.edge.sources.live.opcua.driver`) with the
``euromap77`` preset wired (``endpoint`` key,
:func:`~renkei.edge.sources.live.opcua.euromap77.resolve` after every connect, the cycle-event
subscription): it fails, not skips, until then.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.live.imm2mes_server import Imm2MesServer, cycle_values
from harness.procs import start_agent
from harness.services import Mosquitto
from harness.wait import wait_for
from harness.witness import Witness
from tests.datasets import require_data_dir
from tests.e2e import write_gateway_config

CYCLE_S = 0.5


@pytest.fixture
def imm(tmp_path: Path) -> Iterator[Imm2MesServer]:
    server = Imm2MesServer(tmp_path / "imm", require_data_dir(), cycle_s=CYCLE_S)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _rows(witness: Witness, kind: str) -> list[tuple[int, dict[str, Any]]]:
    """(t_ms, fields) rows of machine messages of ``kind``, in arrival order."""
    out: list[tuple[int, dict[str, Any]]] = []
    for topic, p in witness.machine_messages():
        if topic.kind.value != kind:
            continue
        fields = p.get("fields", {})
        for j, t in enumerate(p["ts_ms"]):
            out.append((int(t), {k: v[j] for k, v in fields.items()}))
    return out


def _events(witness: Witness) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for topic, p in witness.machine_messages():
        if topic.kind.value == "event":
            out.extend(p.get("events", []))
    return out


def _shot_counts(witness: Witness) -> list[int]:
    return [int(f["shot_count"]) for _, f in _rows(witness, "shot")]


def test_agent_reads_an_imm2mes_machine_and_survives_a_server_restart(
    tmp_path: Path, mosquitto: Mosquitto, imm: Imm2MesServer
) -> None:
    config = write_gateway_config(
        tmp_path / "gateway.yaml",
        port=mosquitto.port,
        state_dir=tmp_path / "state",
        # no ingest in this test: publish without waiting for its heartbeat, delete on PUBACK
        mqtt={
            "host": "127.0.0.1",
            "port": mosquitto.port,
            "wait_for_ingest": None,
            "ack": "broker",
        },
        machines=[
            {
                "id": "imm-77",
                "area": "molding",
                "line": "line-1",
                "source": {
                    "type": "opcua",
                    "endpoint": imm.endpoint,
                    "preset": "euromap77",
                    "euromap77": {"zones": 4},
                    "link": {"reconnect_min_s": 0.2, "reconnect_max_s": 1.0, "timeout_s": 2.0},
                    "quality_interval_s": 1,
                },
            }
        ],
    )
    witness = Witness(port=mosquitto.port, client_id="witness-em77")
    agent = start_agent(config, tmp_path / "agent.log")
    try:
        wait_for(lambda: len(_shot_counts(witness)) >= 4, 60, f"4 shot rows\n{agent.tail()}")
        telemetry = _rows(witness, "telemetry")
        assert any(f.get("machine_mode") == 1 for _, f in telemetry), agent.tail()
        assert any(f.get("barrel_temp_zone1_C") is not None for _, f in telemetry)

        before = _shot_counts(witness)
        imm.kill9()
        wait_for(
            lambda: any(e["code"] == "source_down" for e in _events(witness)),
            30,
            f"a source_down event\n{agent.tail()}",
        )
        imm.start()  # same port; the simulator restarts at cycle 1
        wait_for(
            lambda: any(
                e["code"] == "source_up" and "again" in e["message"] for e in _events(witness)
            ),
            60,
            f"source_up after the restart\n{agent.tail()}",
        )
        n_after = len(_shot_counts(witness))
        wait_for(
            lambda: len(_shot_counts(witness)) >= n_after + 3,
            30,
            f"shots after the restart\n{agent.tail()}",
        )
        assert agent.alive(), agent.tail()
    finally:
        agent.terminate()
        witness.close()

    counts = _shot_counts(witness)
    # the restarted simulator counts from 1 again: a counter reset, not a cycle
    resets = [i for i in range(1, len(counts)) if counts[i] < counts[i - 1]]
    assert len(resets) == 1, counts
    first, second = counts[: resets[0]], counts[resets[0] :]
    assert len(before) >= 4 and len(first) >= len(before)
    # one row per cycle, consecutive, no duplicates, on both sides of the outage
    assert first == list(range(first[0], first[0] + len(first)))
    assert len(second) >= 3 and second == list(range(second[0], second[0] + len(second)))
    # each shot row carries its own cycle's parameters (from the cycle event)
    for _, f in _rows(witness, "shot"):
        n = int(f["shot_count"])
        assert f["injection_time_s"] == pytest.approx(
            cycle_values(0, n)["iu1.InjectionTime"] / 1000
        )
        assert f["cushion_mm"] == pytest.approx(cycle_values(0, n)["iu1.CushionStroke"])
