"""End to end: gateway agent → real Mosquitto → ingest → real InfluxDB.

Each test asserts zero loss (gap-free per-gateway sequence numbers seen by a witness
subscriber) and the exact number of points in InfluxDB (no loss, no duplicates).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from edge.sources.datasets import require_data_dir
from tests.e2e import Witness, start_agent, start_ingest, wait_for, write_gateway_config
from tests.services import InfluxDB, Mosquitto, ServiceError

pytestmark = pytest.mark.slow


def _settle(
    witness: Witness, influx: InfluxDB, db: str, kind: str, field: str, timeout_s: float = 60
) -> int:
    """Wait until InfluxDB holds exactly the witnessed points of ``kind``; return the count."""
    expected = witness.expected_points(kind, field)

    def done() -> bool:
        nonlocal expected
        expected = witness.expected_points(kind, field)
        try:
            return influx.count_points(db, kind, field) == expected
        except (ServiceError, OSError):  # database not created yet
            return False

    wait_for(done, timeout_s, f"{expected} {kind}.{field} points in InfluxDB")
    # Stable: nothing more arrives and nothing is duplicated later.
    time.sleep(0.5)
    assert influx.count_points(db, kind, field) == witness.expected_points(kind, field)
    return expected


def test_full_replay_of_real_dataset_file(
    tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB, database: str
) -> None:
    """SKAB valve1/1.csv replayed completely: one telemetry point per CSV row, exactly."""
    data_dir = require_data_dir()
    csv = data_dir / "skab" / "data" / "valve1" / "1.csv"
    n_rows = sum(1 for _ in csv.open()) - 1
    witness = Witness(port=mosquitto.port)
    ingest = start_ingest(broker_port=mosquitto.port, influx_url=influxdb.url,
                          database=database, log=tmp_path / "ingest.log")
    cfg = write_gateway_config(
        tmp_path / "gw.yaml", port=mosquitto.port, state_dir=tmp_path / "state",
        gateway_id="gw-skab-e2e",
        machines=[{
            "id": "pump-1", "area": "utilities", "line": "water-loop",
            "source": {"type": "replay", "preset": "skab", "path": str(csv), "speed": 500,
                       "timestamps": "keep"},
            "window_s": 10,
            "model": {"dir": str(Path(__file__).resolve().parents[2] / "models" / "artifacts"
                                 / "skab-pump-t2")},
        }],
    )
    agent = start_agent(cfg, tmp_path / "agent.log")
    try:
        wait_for(lambda: not agent.alive(), 120, f"agent to finish the replay\n{agent.tail()}")
        assert agent.proc.returncode == 0, agent.tail()
        counts = witness.assert_gap_free()
        assert counts["gw-skab-e2e"] > 0
        got = _settle(witness, influxdb, database, "telemetry", "current_A")
        assert got == n_rows
        _settle(witness, influxdb, database, "anomaly", "score")
        _settle(witness, influxdb, database, "features", "current_A_mean")
    finally:
        ingest.terminate()
        witness.close()


def test_broker_restart_mid_stream(
    tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB, database: str
) -> None:
    witness = Witness(port=mosquitto.port)
    ingest = start_ingest(broker_port=mosquitto.port, influx_url=influxdb.url,
                          database=database, log=tmp_path / "ingest.log")
    cfg = write_gateway_config(tmp_path / "gw.yaml", port=mosquitto.port,
                               state_dir=tmp_path / "state")
    agent = start_agent(cfg, tmp_path / "agent.log")
    try:
        time.sleep(4)
        mosquitto.stop()
        time.sleep(4)  # gateway buffers to its outbox meanwhile
        mosquitto.start()
        time.sleep(4)
        agent.terminate()
        wait_for(lambda: witness.client.is_connected(), 20, "witness reconnect")
        time.sleep(2)
        witness.assert_gap_free()
        _settle(witness, influxdb, database, "telemetry", "oil_temp_C")
        _settle(witness, influxdb, database, "anomaly", "score")
    finally:
        agent.kill9()
        ingest.terminate()
        witness.close()


def test_kill9_ingest_mid_stream(
    tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB, database: str
) -> None:
    witness = Witness(port=mosquitto.port)
    ingest = start_ingest(broker_port=mosquitto.port, influx_url=influxdb.url,
                          database=database, log=tmp_path / "ingest.log")
    cfg = write_gateway_config(tmp_path / "gw.yaml", port=mosquitto.port,
                               state_dir=tmp_path / "state")
    agent = start_agent(cfg, tmp_path / "agent.log")
    try:
        time.sleep(4)
        ingest.kill9()
        time.sleep(3)
        ingest = start_ingest(broker_port=mosquitto.port, influx_url=influxdb.url,
                              database=database, log=tmp_path / "ingest2.log")
        time.sleep(3)
        agent.terminate()
        witness.assert_gap_free()
        _settle(witness, influxdb, database, "telemetry", "oil_temp_C")
        _settle(witness, influxdb, database, "features", "vib_rms_g")
    finally:
        agent.kill9()
        ingest.terminate()
        witness.close()


def test_influxdb_down_30s(
    tmp_path: Path, mosquitto: Mosquitto, influxdb_own: InfluxDB, database: str
) -> None:
    witness = Witness(port=mosquitto.port)
    ingest = start_ingest(broker_port=mosquitto.port, influx_url=influxdb_own.url,
                          database=database, log=tmp_path / "ingest.log")
    cfg = write_gateway_config(tmp_path / "gw.yaml", port=mosquitto.port,
                               state_dir=tmp_path / "state")
    agent = start_agent(cfg, tmp_path / "agent.log")
    try:
        time.sleep(3)
        influxdb_own.stop()
        time.sleep(30)
        influxdb_own.start()
        time.sleep(3)
        agent.terminate()
        assert ingest.alive(), ingest.tail()
        witness.assert_gap_free()
        _settle(witness, influxdb_own, database, "telemetry", "oil_temp_C", timeout_s=90)
        _settle(witness, influxdb_own, database, "anomaly", "score")
    finally:
        agent.kill9()
        ingest.terminate()
        witness.close()


def test_kill9_agent_then_restart(
    tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB, database: str
) -> None:
    """The outbox survives kill -9: with the broker down, messages pile up on disk; the agent
    is killed, the broker returns, a restarted agent delivers the backlog (same seq line)."""
    witness = Witness(port=mosquitto.port)
    ingest = start_ingest(broker_port=mosquitto.port, influx_url=influxdb.url,
                          database=database, log=tmp_path / "ingest.log")
    cfg = write_gateway_config(tmp_path / "gw.yaml", port=mosquitto.port,
                               state_dir=tmp_path / "state")
    agent = start_agent(cfg, tmp_path / "agent.log")
    try:
        time.sleep(3)
        mosquitto.stop()
        time.sleep(3)
        agent.kill9()
        mosquitto.start()
        agent = start_agent(cfg, tmp_path / "agent2.log")
        time.sleep(5)
        agent.terminate()
        wait_for(lambda: witness.client.is_connected(), 20, "witness reconnect")
        time.sleep(2)
        counts = witness.assert_gap_free()
        assert counts["gw-e2e-01"] > 10
        _settle(witness, influxdb, database, "telemetry", "oil_temp_C")
        _settle(witness, influxdb, database, "shot", "shot_count")
    finally:
        agent.kill9()
        ingest.terminate()
        witness.close()


def test_two_ingest_workers_on_shared_subscription(
    tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB, database: str
) -> None:
    witness = Witness(port=mosquitto.port)
    ingests = [
        start_ingest(broker_port=mosquitto.port, influx_url=influxdb.url, database=database,
                     log=tmp_path / f"ingest{i}.log", client_id=f"ingest-{i}")
        for i in (1, 2)
    ]
    cfgs = [
        write_gateway_config(tmp_path / f"gw{i}.yaml", port=mosquitto.port,
                             state_dir=tmp_path / f"state{i}", gateway_id=f"gw-e2e-0{i}")
        for i in (1, 2)
    ]
    agents = [start_agent(c, tmp_path / f"agent{i}.log") for i, c in enumerate(cfgs)]
    try:
        time.sleep(6)
        for a in agents:
            a.terminate()
        counts = witness.assert_gap_free()
        assert set(counts) == {"gw-e2e-01", "gw-e2e-02"}
        _settle(witness, influxdb, database, "telemetry", "oil_temp_C")
        _settle(witness, influxdb, database, "features", "vib_rms_g")
        # Both workers took a share of the stream (each logs its counters on stop).
        shares = []
        for ing in ingests:
            ing.terminate()
            found = re.findall(r"stopped: IngestStats\(messages=(\d+)", ing.tail(400))
            assert found, ing.tail()
            shares.append(int(found[-1]))
        assert all(n > 0 for n in shares), shares
    finally:
        for a in agents:
            a.kill9()
        for ing in ingests:
            ing.terminate()
        witness.close()


def test_broker_restart_while_ingest_down_loses_nothing(
    tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB, database: str
) -> None:
    """The worst order after a broker restart: the gateway is back before any ingest.

    The broker restores the ingest's session but not its shared subscription, so data the
    gateway published now would be acknowledged and delivered to nobody. The gateway's
    ingest gate holds it in the outbox until an ingest heartbeat proves a subscriber.
    """
    witness = Witness(port=mosquitto.port)
    ingest = start_ingest(broker_port=mosquitto.port, influx_url=influxdb.url,
                          database=database, log=tmp_path / "ingest.log")
    cfg = write_gateway_config(tmp_path / "gw.yaml", port=mosquitto.port,
                               state_dir=tmp_path / "state")
    agent = start_agent(cfg, tmp_path / "agent.log")
    try:
        time.sleep(3)
        ingest.terminate()
        mosquitto.stop()
        mosquitto.start()
        time.sleep(5)  # the agent reconnects and keeps producing; no ingest subscribed
        assert "holding" in agent.tail(50) or agent.alive()
        ingest = start_ingest(broker_port=mosquitto.port, influx_url=influxdb.url,
                              database=database, log=tmp_path / "ingest2.log")
        time.sleep(4)
        agent.terminate()
        wait_for(lambda: witness.client.is_connected(), 20, "witness reconnect")
        time.sleep(1)
        witness.assert_gap_free()
        _settle(witness, influxdb, database, "telemetry", "oil_temp_C")
        _settle(witness, influxdb, database, "features", "vib_rms_g")
    finally:
        agent.kill9()
        ingest.terminate()
        witness.close()
