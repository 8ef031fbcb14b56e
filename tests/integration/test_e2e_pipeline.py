"""End to end: gateway agent → real Mosquitto → ingest → real InfluxDB.

Each test asserts zero loss (gap-free per-gateway sequence numbers seen by a witness
subscriber) and the exact number of points in InfluxDB (no loss, no duplicates).
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import pytest

from harness.services import REPO, InfluxDB, Mosquitto, ServiceError
from harness.wait import WaitTimeout, pause, wait_for
from harness.witness import Witness
from tests.datasets import require_data_dir
from tests.e2e import Rig, pipeline_rig

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
    pause(0.5, "stable: nothing more arrives and nothing is duplicated later")
    assert influx.count_points(db, kind, field) == witness.expected_points(kind, field)
    return expected


def _gaps(witness: Witness) -> str:
    """The sequence numbers the witness misses so far, per gateway ("" when none)."""
    missing = {
        gw: sorted(set(range(max(seqs) + 1)) - seqs)[:20] for gw, seqs in witness.seqs().items()
    }
    return ", ".join(f"{gw} misses {m}" for gw, m in missing.items() if m)


def _stream(rig: Rig, messages: int = 20, timeout_s: float = 60) -> None:
    """Wait until the witness holds ``messages`` more gateway messages than now with no gap
    in any sequence: the pipeline flows (again) and any outbox backlog is delivered."""

    def count() -> int:
        return sum(len(s) for s in rig.witness.seqs().values())

    target = count() + messages

    def flowing() -> bool:
        return count() >= target and not _gaps(rig.witness)

    wait_for(
        flowing,
        timeout_s,
        lambda: f"{messages} more gateway messages without gaps ({_gaps(rig.witness)})",
        interval_s=0.2,
    )


def _finish(rig: Rig, *fields: tuple[str, str], timeout_s: float = 60) -> dict[str, int]:
    """Stop the agents cleanly, then assert zero loss and exact counts for ``fields``."""
    for agent in rig.agents:
        agent.terminate()
    wait_for(rig.witness.client.is_connected, 20, "witness connected")
    seen = -1

    def delivered() -> bool:  # the broker's queue for the witness is empty: nothing new
        nonlocal seen
        before, seen = seen, len(rig.witness.messages)
        return seen == before and not _gaps(rig.witness)

    with contextlib.suppress(WaitTimeout):  # the assertion below names what is missing
        wait_for(delivered, 20, "the witness to receive what the broker queued", interval_s=1.0)
    counts = rig.witness.assert_gap_free()
    for kind, field in fields:
        _settle(rig.witness, rig.influx, rig.database, kind, field, timeout_s)
    return counts


SIM_FIELDS = (("telemetry", "oil_temp_C"), ("features", "vib_rms_g"), ("anomaly", "score"))


def test_full_replay_of_real_dataset_file(
    tmp_path: Path,
    mosquitto: Mosquitto,
    influxdb: InfluxDB,
    database: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SKAB valve1/1.csv replayed completely: one telemetry point per CSV row, exactly.

    The replay keeps the recording's 2020 timestamps, so the ingest runs with its admission
    window off (``RENKEI_MAX_PAST_S=0``), as a user replaying history must.
    """
    monkeypatch.setenv("RENKEI_MAX_PAST_S", "0")
    csv = require_data_dir() / "skab" / "data" / "valve1" / "1.csv"
    n_rows = sum(1 for _ in csv.open()) - 1
    gateway = {
        "gateway_id": "gw-skab-e2e",
        "machines": [
            {
                "id": "pump-1",
                "area": "utilities",
                "line": "water-loop",
                "source": {
                    "type": "replay",
                    "preset": "skab",
                    "path": str(csv),
                    "speed": 500,
                    "timestamps": "keep",
                },
                "window_s": 10,
                "model": {"dir": str(REPO / "models" / "artifacts" / "skab-pump-t2")},
            }
        ],
    }
    with pipeline_rig(tmp_path, mosquitto, influxdb, database, gateways=[gateway]) as rig:
        agent = rig.agents[0]
        wait_for(lambda: not agent.alive(), 120, f"agent to finish the replay\n{agent.tail()}")
        assert agent.proc.returncode == 0, agent.tail()
        counts = _finish(rig, ("anomaly", "score"), ("features", "current_A_mean"))
        assert counts["gw-skab-e2e"] > 0
        assert _settle(rig.witness, influxdb, database, "telemetry", "current_A") == n_rows


def test_broker_restart_mid_stream(
    tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB, database: str
) -> None:
    with pipeline_rig(tmp_path, mosquitto, influxdb, database) as rig:
        _stream(rig)
        mosquitto.stop()
        pause(4, "the outage: the gateway buffers to its outbox meanwhile")
        mosquitto.start()
        _stream(rig)
        _finish(rig, *SIM_FIELDS)


def test_kill9_ingest_mid_stream(
    tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB, database: str
) -> None:
    with pipeline_rig(tmp_path, mosquitto, influxdb, database) as rig:
        _stream(rig)
        rig.ingests[0].kill9()
        pause(3, "the broker queues for the ingest's persistent session meanwhile")
        rig.start_ingest()
        pause(3, "the restarted ingest takes the queue and the live stream together")
        _finish(rig, *SIM_FIELDS)


def test_influxdb_down_30s(
    tmp_path: Path, mosquitto: Mosquitto, influxdb_own: InfluxDB, database: str
) -> None:
    with pipeline_rig(tmp_path, mosquitto, influxdb_own, database) as rig:
        _stream(rig)
        influxdb_own.stop()
        pause(30, "the outage: the ingest holds and retries its batches")
        influxdb_own.start()
        pause(3, "the ingest writes again while the gateway streams")
        assert rig.ingests[0].alive(), rig.ingests[0].tail()
        _finish(rig, *SIM_FIELDS, timeout_s=90)


def test_kill9_agent_then_restart(
    tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB, database: str
) -> None:
    """The outbox survives kill -9: with the broker down, messages pile up on disk; the agent
    is killed, the broker returns, a restarted agent delivers the backlog (same seq line)."""
    with pipeline_rig(tmp_path, mosquitto, influxdb, database) as rig:
        _stream(rig)
        mosquitto.stop()
        pause(3, "the outage: messages pile up in the outbox on disk")
        rig.agents[0].kill9()
        mosquitto.start()
        rig.start_agent()
        _stream(rig)
        counts = _finish(rig, *SIM_FIELDS, ("shot", "shot_count"))
        assert counts["gw-e2e-01"] > 10


def test_two_ingest_workers_on_shared_subscription(
    tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB, database: str
) -> None:
    gateways = [{"gateway_id": "gw-e2e-01"}, {"gateway_id": "gw-e2e-02"}]
    with pipeline_rig(
        tmp_path,
        mosquitto,
        influxdb,
        database,
        gateways=gateways,
        ingest_ids=("ingest-1", "ingest-2"),
    ) as rig:
        # run until both gateways have published a few messages (bounded: slow machines
        # need longer to start two agents and two workers than a fixed sleep allows)
        wait_for(
            lambda: all(len(rig.witness.seqs().get(g["gateway_id"], ())) >= 5 for g in gateways),
            60,
            "both gateways publishing",
        )
        counts = _finish(rig, *SIM_FIELDS)
        assert set(counts) == {"gw-e2e-01", "gw-e2e-02"}
        # Both workers took a share of the stream (each logs its counters on stop).
        shares = []
        for ing in rig.ingests:
            ing.terminate()
            found = re.findall(r"stopped: IngestStats\(messages=(\d+)", ing.tail(400))
            assert found, ing.tail()
            shares.append(int(found[-1]))
        assert all(n > 0 for n in shares), shares


def test_broker_restart_while_ingest_down_loses_nothing(
    tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB, database: str
) -> None:
    """The worst order after a broker restart: the gateway is back before any ingest.

    The broker restores the ingest's session but not its shared subscription, so data the
    gateway published now would be acknowledged and delivered to nobody. The gateway's
    ingest gate holds it in the outbox until an ingest heartbeat proves a subscriber.
    (With ``wait_for_ingest: null`` this test fails: the data is lost.)
    """
    with pipeline_rig(tmp_path, mosquitto, influxdb, database) as rig:
        _stream(rig)
        rig.ingests[0].terminate()
        mosquitto.stop()
        mosquitto.start()
        pause(5, "the agent reconnects and keeps producing; no ingest subscribed")
        assert rig.agents[0].alive(), rig.agents[0].tail()
        rig.start_ingest()
        pause(4, "the ingest takes what the gateway held back and the live stream")
        _finish(rig, *SIM_FIELDS)
