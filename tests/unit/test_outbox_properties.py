"""Property tests: any sequence of enqueue / peek / ack / reopen keeps the outbox exact.

A plain in-memory model (an ordered dict plus counters) runs beside a real outbox with a
small ``max_bytes`` under ``drop_oldest``; after every step the two must agree: ids in
order, seqs unique and increasing, acked rows gone, dropped rows exactly the oldest ones,
nothing else lost, payload bytes unchanged.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from renkei.edge.transport.outbox import Outbox, OutboxItem, OutboxSettings

MAX_BYTES = 4096
TOPICS = st.sampled_from(
    ["renkei/v1/a/b/c/d/m/telemetry", "t", "x/ü/y", "renkei/v1/a/b/_gw/g/state"]
)
# Small arbitrary bytes, or large blocks so that the 4 KiB limit is hit often.
PAYLOADS = st.binary(max_size=64) | st.builds(
    lambda n, unit: (unit * n)[:n], st.integers(300, 1500), st.binary(min_size=1, max_size=7)
)


def _const(payload: bytes) -> Callable[[int], bytes]:
    return lambda seq: payload


class OutboxMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="outbox-prop-"))
        self.settings = OutboxSettings(path=self.dir / "o.sqlite3", max_bytes=MAX_BYTES)
        self.ob = Outbox(settings=self.settings)
        self.model: dict[int, tuple[str, bytes, bool]] = {}  # insertion order == id order
        self.next_seq = 0
        self.dropped = 0
        self.enqueued = 0

    @initialize()
    def start_empty(self) -> None:
        assert self.ob.stats().next_seq == 0

    # -------------------------------------------------------------- model helpers

    @staticmethod
    def _size(topic: str, payload: bytes) -> int:
        return len(topic.encode()) + len(payload)

    def _backlog_bytes(self) -> int:
        return sum(self._size(t, p) for t, p, _ in self.model.values())

    def _model_add(self, topic: str, payload: bytes, retain: bool) -> int:
        size = self._size(topic, payload)
        while self._backlog_bytes() + size > MAX_BYTES:
            del self.model[next(iter(self.model))]  # drop_oldest
            self.dropped += 1
        seq = self.next_seq
        self.model[seq] = (topic, payload, retain)
        self.next_seq += 1
        self.enqueued += 1
        return seq

    # -------------------------------------------------------------- rules

    @rule(topic=TOPICS, payload=PAYLOADS, retain=st.booleans())
    def enqueue(self, topic: str, payload: bytes, retain: bool) -> None:
        seen: list[int] = []

        def make(seq: int) -> bytes:
            seen.append(seq)
            return payload

        seq = self.ob.enqueue(topic, make, retain=retain)
        assert seen == [seq]
        assert seq == self._model_add(topic, payload, retain)

    @rule(items=st.lists(st.tuples(TOPICS, PAYLOADS), max_size=6))
    def enqueue_many(self, items: list[tuple[str, bytes]]) -> None:
        seqs = self.ob.enqueue_many([OutboxItem(t, _const(p)) for t, p in items])
        assert seqs == [self._model_add(t, p, False) for t, p in items]

    @rule(data=st.data())
    def ack(self, data: st.DataObject) -> None:
        present = list(self.model)
        ids = data.draw(
            st.lists(st.sampled_from(present) if present else st.integers(-5, 5), max_size=8)
            | st.lists(st.integers(-2, self.next_seq + 3), max_size=4)
        )
        expected = len(set(ids) & set(self.model))
        assert self.ob.ack(ids) == expected
        for i in ids:
            self.model.pop(i, None)

    @rule(after=st.integers(-2, 60), limit=st.integers(0, 8))
    def peek(self, after: int, limit: int) -> None:
        got = self.ob.peek(after, limit)
        want = [i for i in self.model if i > after][:limit]
        assert [r.id for r in got] == want
        for r in got:
            assert (r.topic, r.payload, r.retain) == self.model[r.id]

    @precondition(lambda self: self.next_seq > 0)
    @rule()
    def reopen(self) -> None:
        self.ob.close()
        self.ob = Outbox(settings=self.settings)

    # -------------------------------------------------------------- invariants

    @invariant()
    def matches_model(self) -> None:
        st_ = self.ob.stats()
        assert st_.backlog_msgs == len(self.model)
        assert st_.backlog_bytes == self._backlog_bytes()
        assert st_.dropped_total == self.dropped
        assert st_.enqueued_total == self.enqueued
        assert st_.next_seq == self.next_seq
        assert self.ob.last_id() == self.next_seq - 1
        recs = self.ob.peek(-1, 10_000)
        ids = [r.id for r in recs]
        assert ids == sorted(set(ids)) == list(self.model)
        assert all((r.topic, r.payload, r.retain) == self.model[r.id] for r in recs)

    def teardown(self) -> None:
        self.ob.close()
        shutil.rmtree(self.dir, ignore_errors=True)


TestOutboxStateMachine = OutboxMachine.TestCase
TestOutboxStateMachine.settings = settings(
    max_examples=40,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@settings(max_examples=60, deadline=None)
@given(payload=st.binary(max_size=70_000), qos=st.sampled_from([0, 1, 2]), retain=st.booleans())
def test_any_payload_round_trips(payload: bytes, qos: int, retain: bool) -> None:
    d = Path(tempfile.mkdtemp(prefix="outbox-rt-"))
    try:
        with Outbox(settings=OutboxSettings(path=d / "o.sqlite3")) as ob:
            seq = ob.enqueue("t/ä", lambda s: payload, qos=qos, retain=retain)
            (rec,) = ob.peek(-1, 5)
            assert (rec.id, rec.payload, rec.qos, rec.retain) == (seq, payload, qos, retain)
            assert type(rec.payload) is bytes
    finally:
        shutil.rmtree(d, ignore_errors=True)
