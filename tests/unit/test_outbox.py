"""The durable outbox: ordering, seq persistence, acks, full policies, crash safety."""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import pytest

from harness.wait import pause
from renkei.core.wire import MachineKind, MachinePayload, encode, machine_topic
from renkei.edge.transport.outbox import (
    Outbox,
    OutboxError,
    OutboxFullError,
    OutboxItem,
    OutboxSettings,
)

REPO = Path(__file__).resolve().parents[2]
TOPIC = machine_topic(firm="acme", site="s1", area="a1", line="l1", machine="m1", kind="telemetry")


def _settings(tmp_path: Path, **kw: object) -> OutboxSettings:
    return OutboxSettings(path=tmp_path / "outbox.sqlite3", **kw)


def _wire(seq: int) -> bytes:
    """A real v1 telemetry payload carrying ``seq``."""
    return encode(
        MachinePayload(
            v=1,
            gw="gw-01",
            seq=seq,
            sent_ms=1_700_000_000_000,
            kind=MachineKind.TELEMETRY,
            ts_ms=[1_700_000_000_000 + 100 * i for i in range(10)],
            fields={"oil_temp_C": [41.0 + i / 10 for i in range(10)]},
        )
    )


def _fixed(size: int) -> bytes:
    return b"x" * size


# ------------------------------------------------------------------ basics


def test_seqs_are_consecutive_and_peek_returns_id_order(tmp_path: Path) -> None:
    with Outbox(settings=_settings(tmp_path)) as ob:
        seqs = [ob.enqueue(TOPIC, _wire) for _ in range(5)]
        assert seqs == [0, 1, 2, 3, 4]
        recs = ob.peek(-1, 10)
        assert [r.id for r in recs] == seqs
        assert [orjson.loads(r.payload)["seq"] for r in recs] == seqs  # payload built with seq
        assert all(r.topic == TOPIC and r.qos == 1 and not r.retain for r in recs)
        assert [r.id for r in ob.peek(1, 2)] == [2, 3]
        assert ob.peek(4, 10) == []
        assert ob.last_id() == 4


def test_seq_survives_reopen_and_is_never_reused(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    with Outbox(settings=s) as ob:
        assert ob.last_id() == -1
        for _ in range(3):
            ob.enqueue(TOPIC, _wire)
        ob.ack([0, 1, 2])  # empty table: a naive rowid would restart at 1
    with Outbox(settings=s) as ob:
        assert ob.enqueue(TOPIC, _wire) == 3
        st = ob.stats()
        assert (st.enqueued_total, st.backlog_msgs, st.next_seq) == (4, 1, 4)


def test_ack_deletes_given_ids_only_and_ignores_unknown(tmp_path: Path) -> None:
    with Outbox(settings=_settings(tmp_path)) as ob:
        ob.enqueue_many([OutboxItem(TOPIC, _wire) for _ in range(1200)])
        acked = list(range(0, 1200, 2)) + [5000, -3]
        assert ob.ack(acked) == 600  # spans several DELETE chunks, one transaction
        assert ob.ack([0, 2]) == 0
        assert [r.id for r in ob.peek(-1, 5)] == [1, 3, 5, 7, 9]
        st = ob.stats()
        assert st.backlog_msgs == 600
        assert st.backlog_bytes == sum(len(r.payload) + len(TOPIC) for r in ob.peek(-1, 10_000))
        assert [r.id for r in ob.get([9, 4, 7, 100_000])] == [7, 9]


def test_enqueue_many_is_one_transaction(tmp_path: Path) -> None:
    def boom(seq: int) -> bytes:
        raise RuntimeError("sensor driver failed")

    with Outbox(settings=_settings(tmp_path)) as ob:
        ob.enqueue(TOPIC, _wire)
        with pytest.raises(RuntimeError, match="sensor driver"):
            ob.enqueue_many([(TOPIC, _wire), (TOPIC, _wire), (TOPIC, boom)])
        assert [r.id for r in ob.peek(-1, 10)] == [0]
        assert ob.enqueue_many([(TOPIC, _wire), OutboxItem(TOPIC, _wire, 2, True)]) == [1, 2]
        last = ob.peek(1, 1)[0]
        assert (last.qos, last.retain) == (2, True)
        assert ob.stats().enqueued_total == 3


def test_any_bytes_and_retain_round_trip(tmp_path: Path) -> None:
    raw = bytes(range(256)) * 3 + b"\x00"
    with Outbox(settings=_settings(tmp_path)) as ob:
        ob.enqueue("a/ü/b", lambda s: raw, qos=0, retain=True)
        ob.enqueue("a/b", lambda s: b"")
        r0, r1 = ob.peek(-1, 2)
        assert (r0.topic, r0.payload, r0.qos, r0.retain) == ("a/ü/b", raw, 0, True)
        assert r1.payload == b""
        assert ob.stats().backlog_bytes == len(raw) + len("a/ü/b".encode()) + len("a/b")


@pytest.mark.parametrize(
    ("topic", "qos"), [("", 1), ("a/+/b", 1), ("a/#", 1), ("a\x00b", 1), ("a/b", 3)]
)
def test_invalid_topic_or_qos_is_refused(tmp_path: Path, topic: str, qos: int) -> None:
    with Outbox(settings=_settings(tmp_path)) as ob:
        with pytest.raises(ValueError, match="topic|QoS"):
            ob.enqueue(topic, _wire, qos=qos)
        assert ob.stats().next_seq == 0


# ------------------------------------------------------------------ full policies


def test_drop_oldest_deletes_exactly_enough_oldest_messages(tmp_path: Path) -> None:
    # Each message is 1000 bytes of topic + payload; 4096 holds four.
    with Outbox(settings=_settings(tmp_path, max_bytes=4096)) as ob:
        for _ in range(10):
            ob.enqueue("t/x", lambda s: _fixed(997))
        st = ob.stats()
        assert (st.backlog_msgs, st.backlog_bytes, st.dropped_total) == (4, 4000, 6)
        assert st.dropped_bytes_total == 6000
        assert [r.id for r in ob.peek(-1, 10)] == [6, 7, 8, 9]
        # 2500 more bytes: excess 2404 -> the three oldest (3000 bytes) go, not four.
        assert ob.enqueue("t/x", lambda s: _fixed(2497)) == 10
        assert [r.id for r in ob.peek(-1, 10)] == [9, 10]
        st = ob.stats()
        assert (st.backlog_msgs, st.backlog_bytes, st.dropped_total, st.enqueued_total) == (
            2,
            3500,
            9,
            11,
        )
        # Exactly the bytes of one message over the limit: exactly one goes.
        ob.enqueue("t/x", lambda s: _fixed(997))  # 4500 bytes: drops seq 9 (500 B short)
        assert [r.id for r in ob.peek(-1, 10)] == [10, 11]
        ob.enqueue("t/x", lambda s: _fixed(597))  # 3500 + 600 = 4100: excess 4 -> seq 10
        assert [r.id for r in ob.peek(-1, 10)] == [11, 12]
        ob.enqueue("t/x", lambda s: _fixed(2493))  # 1600 + 2496 = 4096: fits, no drop
        ob.enqueue("t/x", lambda s: _fixed(997))  # excess exactly 1000 = seq 11's size
        assert [r.id for r in ob.peek(-1, 10)] == [12, 13, 14]
        assert ob.stats().dropped_total == 12


def test_drop_oldest_within_one_batch_keeps_the_newest(tmp_path: Path) -> None:
    with Outbox(settings=_settings(tmp_path, max_bytes=4096)) as ob:
        seqs = ob.enqueue_many([("t/x", lambda s: _fixed(997)) for _ in range(7)])
        assert seqs == list(range(7))
        assert [r.id for r in ob.peek(-1, 10)] == [3, 4, 5, 6]
        assert ob.stats().dropped_total == 3


def test_drop_count_survives_reopen(tmp_path: Path) -> None:
    s = _settings(tmp_path, max_bytes=4096)
    with Outbox(settings=s) as ob:
        for _ in range(6):
            ob.enqueue("t/x", lambda s: _fixed(997))
    with Outbox(settings=s) as ob:
        assert ob.stats().dropped_total == 2


def test_reject_new_refuses_counts_and_consumes_the_seq(tmp_path: Path) -> None:
    with Outbox(settings=_settings(tmp_path, max_bytes=4096, when_full="reject_new")) as ob:
        for _ in range(4):
            ob.enqueue("t/x", lambda s: _fixed(997))
        with pytest.raises(OutboxFullError, match="full") as info:
            ob.enqueue("t/x", lambda s: _fixed(997))
        assert (info.value.accepted, info.value.rejected) == ([], [4])
        assert [r.id for r in ob.peek(-1, 10)] == [0, 1, 2, 3]  # the backlog is intact
        ob.ack([0, 1])
        with pytest.raises(OutboxFullError) as info:
            ob.enqueue_many([("t/x", lambda s: _fixed(997)) for _ in range(3)])
        assert (info.value.accepted, info.value.rejected) == ([5, 6], [7])
        st = ob.stats()
        assert (st.backlog_msgs, st.dropped_total, st.enqueued_total, st.next_seq) == (4, 2, 6, 8)
        assert [r.id for r in ob.peek(-1, 10)] == [2, 3, 5, 6]  # gaps 4 and 7 show the loss


def test_message_larger_than_max_bytes_is_a_value_error(tmp_path: Path) -> None:
    with Outbox(settings=_settings(tmp_path, max_bytes=4096)) as ob:
        ob.enqueue("t/x", lambda s: _fixed(997))
        with pytest.raises(ValueError, match="max_bytes"):
            ob.enqueue("t/x", lambda s: _fixed(5000))
        st = ob.stats()
        assert (st.backlog_msgs, st.dropped_total, st.next_seq) == (1, 0, 1)


def test_drops_are_logged_with_counts_and_rate_limited(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="renkei.edge.transport.outbox")
    with Outbox(settings=_settings(tmp_path, max_bytes=4096)) as ob:
        for _ in range(20):
            ob.enqueue("t/x", lambda s: _fixed(997))
        during = [r for r in caplog.records if r.name == "renkei.edge.transport.outbox"]
        assert len(during) == 1  # 16 drops, one warning in the interval
        assert "lost 1 messages" in during[0].getMessage()
    after = [r.getMessage() for r in caplog.records if r.name == "renkei.edge.transport.outbox"]
    assert len(after) == 2
    assert "lost 15 messages (15000 bytes)" in after[1]  # the rest, flushed at close
    assert "dropped_total=16" in after[1]


# ------------------------------------------------------------------ bad files


def test_foreign_file_is_quarantined_and_a_fresh_outbox_starts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    s = _settings(tmp_path)
    junk = b"this is not sqlite " * 500
    s.path.write_bytes(junk)
    with (
        caplog.at_level(logging.ERROR, logger="renkei.edge.transport.outbox"),
        Outbox(settings=s) as ob,
    ):
        assert ob.enqueue(TOPIC, _wire) == 0
        st = ob.stats()
        assert (st.quarantined_total, st.lost_total, st.backlog_msgs) == (1, 0, 1)
        incidents = ob.take_incidents()
    assert [i.kind for i in incidents] == ["quarantined"]
    kept = tmp_path / "outbox.sqlite3.quarantined-e1"
    assert kept.read_bytes() == junk  # kept for forensics, untouched
    assert str(kept) in caplog.text and "started a fresh one" in caplog.text


def test_unopenable_path_raises_outbox_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    s = OutboxSettings(path=blocker / "sub" / "outbox.sqlite3")
    with pytest.raises(OutboxError, match=str(blocker)):
        Outbox(settings=s)


def test_foreign_schema_version_is_refused(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    Outbox(settings=s).close()
    with sqlite3.connect(s.path) as conn:
        conn.execute("UPDATE meta SET schema_version = 99")
    with pytest.raises(OutboxError, match="schema version 99"):
        Outbox(settings=s)


# ------------------------------------------------------------------ crashes

_CHILD_PRELUDE = f"""
import os, signal, sys
sys.path.insert(0, {str(REPO)!r})
from pathlib import Path
from renkei.edge.transport.outbox import Outbox, OutboxSettings
ob = Outbox(settings=OutboxSettings(path=Path(sys.argv[1])))
"""


def _child(code: str, path: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", _CHILD_PRELUDE + code, str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_kill_inside_a_transaction_leaves_committed_rows_and_no_trace(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    code = """
for _ in range(5):
    ob.enqueue("t/x", lambda seq: b"ok%d" % seq)
def die(seq):
    os.kill(os.getpid(), signal.SIGKILL)  # power loss in the middle of the transaction
    return b""
ob.enqueue_many([("t/x", lambda seq: b"pending"), ("t/x", die)])
"""
    proc = _child(code, s.path)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, err.decode()
    with Outbox(settings=s) as ob:
        assert [r.payload for r in ob.peek(-1, 10)] == [b"ok%d" % i for i in range(5)]
        assert ob.enqueue("t/x", lambda seq: b"next") == 5  # the lost transaction's seqs reused


def test_close_without_commit_is_rolled_back(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    with Outbox(settings=s) as ob:
        ob.enqueue("t/x", lambda seq: b"a")
    conn = sqlite3.connect(s.path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO outbox VALUES (1, 't/x', x'00', 1, 0, 4)")
    conn.execute("UPDATE meta SET next_seq = 2")
    conn.close()  # no COMMIT
    with Outbox(settings=s) as ob:
        assert [r.id for r in ob.peek(-1, 10)] == [0]
        assert ob.stats().next_seq == 1


@pytest.mark.timeout(60)
def test_sigkill_of_a_busy_writer_loses_no_committed_message(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    code = """
while True:
    seq = ob.enqueue("t/x", lambda seq: b"m%d" % seq)
    sys.stdout.write("%d\\n" % seq)
    sys.stdout.flush()
"""
    proc = _child(code, s.path)
    assert proc.stdout is not None
    reported: list[int] = []
    deadline = time.monotonic() + 15
    while len(reported) < 300 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        reported.append(int(line))
    proc.send_signal(signal.SIGKILL)
    rest, err = proc.communicate(timeout=10)
    reported += [int(x) for x in rest.split()]
    assert len(reported) >= 300, err.decode()
    with Outbox(settings=s) as ob:
        ids = [r.id for r in ob.peek(-1, 100_000)]
        payloads = {r.id: r.payload for r in ob.peek(-1, 100_000)}
    assert set(reported) <= set(ids)  # every acknowledged enqueue is on disk
    assert ids == list(range(len(ids)))  # no holes, no duplicates
    assert len(ids) - len(reported) <= 1  # at most the one committed before the kill
    assert all(payloads[i] == b"m%d" % i for i in ids)


# ------------------------------------------------------------------ threads


def test_writer_and_publisher_threads_share_the_outbox(tmp_path: Path) -> None:
    n = 400
    errors: list[BaseException] = []
    with Outbox(settings=_settings(tmp_path)) as ob:

        def writer() -> None:
            try:
                for i in range(0, n, 4):
                    if i % 8:
                        ob.enqueue_many([(TOPIC, _wire)] * 4)
                    else:
                        for _ in range(4):
                            ob.enqueue(TOPIC, _wire)
            except BaseException as exc:  # re-raised in the main thread below
                errors.append(exc)

        seen: list[int] = []

        def publisher() -> None:
            try:
                cursor = -1
                deadline = time.monotonic() + 20
                while len(seen) < n and time.monotonic() < deadline:
                    recs = ob.peek(cursor, 50)
                    if recs:
                        cursor = recs[-1].id
                        seen.extend(r.id for r in recs)
                        ob.ack(r.id for r in recs)
                    else:
                        pause(0.001, "nothing to publish yet")
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=writer), threading.Thread(target=publisher)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert not errors, errors
        assert seen == list(range(n))
        st = ob.stats()
        assert (st.backlog_msgs, st.backlog_bytes, st.enqueued_total) == (0, 0, n)


def test_closed_outbox_refuses_new_threads(tmp_path: Path) -> None:
    ob = Outbox(settings=_settings(tmp_path))
    ob.close()
    ob.close()  # idempotent
    with pytest.raises(OutboxError, match="closed"):
        ob.stats()


def test_disk_bytes_counts_database_and_wal(tmp_path: Path) -> None:
    with Outbox(settings=_settings(tmp_path)) as ob:
        before = ob.disk_bytes()
        ob.enqueue_many([(TOPIC, _wire)] * 200)
        assert ob.disk_bytes() > before + 200 * 300
    assert os.path.exists(tmp_path / "outbox.sqlite3")
