"""A gateway agent against a real Mosquitto when its outbox fails or was damaged.

- the publisher thread dying on an outbox error is replaced (health says so, data goes on,
  no seq lost); a publisher that keeps dying stops the agent with :class:`AgentError`
  (``renkei edge run`` exits 1 and systemd restarts it) instead of a live process that no
  longer publishes;
- every machine payload carries the outbox's boot epoch; a torn outbox found at start is
  reported in the health message and as events.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from harness.services import Mosquitto
from harness.wait import wait_for
from harness.witness import Witness
from renkei.core.wire import GatewayHealth, decode_machine_payload
from renkei.edge.agent import AgentError, GatewayAgent
from renkei.edge.config import GatewayConfig
from renkei.edge.transport.outbox import OutboxError, OutboxRecord

GW = "gw-fault-1"


def _config(state: Path, port: int) -> GatewayConfig:
    return GatewayConfig.model_validate(
        {
            "gateway_id": GW,
            "firm": "acme",
            "site": "s1",
            "state_dir": str(state),
            "mqtt": {"host": "127.0.0.1", "port": port, "wait_for_ingest": None},
            "publish": {"flush_interval_s": 0.1, "health_interval_s": 0.3},
            "machines": [
                {
                    "id": "imm-1",
                    "area": "molding",
                    "line": "line-1",
                    "source": {
                        "type": "simulated",
                        "seed": 3,
                        "streams": ["slow"],
                        "slow_rate_hz": 10,
                    },
                    "window_s": 1,
                }
            ],
        }
    )


class Running:
    """An agent on a thread; ``error`` holds what :meth:`GatewayAgent.run` raised."""

    def __init__(self, agent: GatewayAgent) -> None:
        self.agent = agent
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.agent.run()
        except BaseException as exc:  # checked by the test
            self.error = exc

    def stop(self) -> None:
        self.agent.stop()
        self.thread.join(30)
        assert not self.thread.is_alive()


@pytest.fixture
def witness(mosquitto: Mosquitto) -> Iterator[Witness]:
    w = Witness(port=mosquitto.port, client_id="witness-faults")
    yield w
    w.close()


def _healths(w: Witness) -> list[GatewayHealth]:
    with w._lock:
        msgs = list(w.messages)
    return [GatewayHealth.model_validate(orjson.loads(p)) for t, p in msgs if t.endswith("/health")]


def _failing_peek(agent: GatewayAgent, times: int) -> Callable[[int, int], list[OutboxRecord]]:
    """Make the outbox's ``peek`` raise ``OutboxError`` the next ``times`` calls."""
    real = agent.outbox.peek
    left = [times]

    def peek(after_id: int, limit: int) -> list[OutboxRecord]:
        if left[0] > 0:
            left[0] -= 1
            raise OutboxError("injected: outbox read failed")
        return real(after_id, limit)

    return peek


def test_a_dead_publisher_is_replaced_and_no_seq_is_lost(
    tmp_path: Path, mosquitto: Mosquitto, witness: Witness, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = GatewayAgent(config=_config(tmp_path / "state", mosquitto.port))
    run = Running(agent)
    wait_for(lambda: len(witness.machine_messages()) >= 5, 20, "first data")
    monkeypatch.setattr(agent.outbox, "peek", _failing_peek(agent, 1))
    wait_for(lambda: agent.stats.publisher_restarts == 1, 20, "publisher restart")
    wait_for(
        lambda: any(h.publisher_restarts == 1 for h in _healths(witness)),
        20,
        "health reporting the restart",
    )
    sent = agent.stats.messages_enqueued
    wait_for(lambda: len(witness.machine_messages()) >= sent + 5, 20, "data after restart")
    run.stop()
    assert run.error is None
    assert agent.stats.publisher_restarts == 1
    received = witness.assert_gap_free()[GW]
    assert received == agent.stats.messages_enqueued  # every seq arrived, none lost
    epochs = {decode_machine_payload(orjson.dumps(p)).epoch for _, p in witness.machine_messages()}
    assert epochs == {1}


def test_a_publisher_that_keeps_dying_stops_the_agent(
    tmp_path: Path, mosquitto: Mosquitto, witness: Witness, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = GatewayAgent(config=_config(tmp_path / "state", mosquitto.port))
    run = Running(agent)
    wait_for(lambda: len(witness.machine_messages()) >= 1, 20, "first data")
    monkeypatch.setattr(agent.outbox, "peek", _failing_peek(agent, 10_000))
    run.thread.join(60)
    assert not run.thread.is_alive()
    assert isinstance(run.error, AgentError)
    assert "the publisher failed 6 times" in str(run.error)
    assert agent.stats.publisher_restarts == 5


def _torn_outbox(state: Path, port: int, *, n: int, keep: int) -> int:
    """Write ``n`` messages to the agent's outbox, then lose all but the first ``keep``
    (the database file put back as it was before the tail was written, as a torn WAL
    does); return the epoch of the session that wrote the tail."""
    from renkei.edge.transport.outbox import Outbox, OutboxSettings

    path = _config(state, port).outbox_path
    s = OutboxSettings(path=path)
    topic = "renkei/v1/acme/s1/molding/line-1/imm-1/event"

    def event(seq: int) -> bytes:
        return orjson.dumps(
            {
                "v": 1,
                "gw": GW,
                "seq": seq,
                "sent_ms": time.time_ns() // 10**6,
                "kind": "event",
                "events": [],
            }
        )

    with Outbox(settings=s) as ob:
        ob.enqueue_many([(topic, event)] * keep)
    before = path.read_bytes()  # checkpointed at close
    with Outbox(settings=s) as ob:
        ob.enqueue_many([(topic, event)] * (n - keep))
        epoch = ob.epoch
    path.write_bytes(before)
    return epoch


def test_lost_outbox_tail_is_reported_in_health_and_events(
    tmp_path: Path, mosquitto: Mosquitto, witness: Witness
) -> None:
    state = tmp_path / "state"
    first_epoch = _torn_outbox(state, mosquitto.port, n=45, keep=19)
    agent = GatewayAgent(config=_config(state, mosquitto.port))
    run = Running(agent)
    wait_for(lambda: any(h.lost_total for h in _healths(witness)), 20, "health with losses")
    wait_for(
        lambda: any(p.get("kind") == "event" for _, p in witness.machine_messages()),
        20,
        "loss event",
    )
    run.stop()
    health = next(h for h in _healths(witness) if h.lost_total)
    assert (health.lost_total, health.gap_total, health.epoch) == (26, 0, first_epoch + 1)
    events: list[dict[str, Any]] = [
        e for _, p in witness.machine_messages() if p.get("kind") == "event" for e in p["events"]
    ]
    lost = [e for e in events if e["code"] == "outbox_lost"]
    assert len(lost) == 1
    assert lost[0]["severity"] == "alarm"
    assert "seqs 19..44" in lost[0]["message"]
    seqs = sorted(p["seq"] for _, p in witness.machine_messages() if p["seq"] >= 45)
    assert seqs and seqs[0] == 45  # numbering goes on after the lost tail: no reuse
    with sqlite3.connect(agent.config.outbox_path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == first_epoch + 1
