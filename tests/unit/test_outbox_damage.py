"""Storage damage made visible: boot epoch, torn WAL after kill -9, quarantine of corrupt pages.

Real SQLite files damaged the way storage damages them: a process killed with SIGKILL
before any checkpoint (so every commit lives only in the ``-wal`` file), then the WAL cut
at frame boundaries or its header overwritten; database pages overwritten with garbage.
"""

from __future__ import annotations

import logging
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import renkei.edge.transport.outbox
from renkei.edge.transport.outbox import Outbox, OutboxSettings

REPO = Path(__file__).resolve().parents[2]
TOPIC = "renkei/v1/acme/s1/a1/l1/m1/telemetry"
N = 45
WAL_HEADER = 32
PAGE = 4096
FRAME = 24 + PAGE
#: Transactions of an open before the first message: the schema, then the epoch marks.
OPEN_COMMITS = 2


def _settings(tmp_path: Path) -> OutboxSettings:
    return OutboxSettings(path=tmp_path / "outbox.sqlite3")


_CHILD = f"""
import os, signal, sys
sys.path.insert(0, {str(REPO)!r})
from pathlib import Path
from renkei.edge.transport.outbox import Outbox, OutboxSettings
ob = Outbox(settings=OutboxSettings(path=Path(sys.argv[1])))
for _ in range(int(sys.argv[2])):
    ob.enqueue({TOPIC!r}, lambda seq: b"m%d" % seq + b"." * 1500)
ob.ack(range(int(sys.argv[3])))  # delivered (PUBACK) before the crash
os.kill(os.getpid(), signal.SIGKILL)  # no close, no checkpoint: the WAL holds everything
"""


def _commit_and_kill(path: Path, n: int, acked: int = 0) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), str(n), str(acked)],
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()


def _wal(path: Path) -> Path:
    return path.with_name(path.name + "-wal")


def _commit_frames(wal: Path) -> list[int]:
    """End offsets of the WAL frames that end a transaction (commit frames)."""
    data = wal.read_bytes()
    ends = []
    for off in range(WAL_HEADER, len(data) - FRAME + 1, FRAME):
        if int.from_bytes(data[off + 4 : off + 8], "big"):  # db size after commit
            ends.append(off + FRAME)
    return ends


def test_epoch_starts_at_one_and_grows_on_every_open(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    for expected in (1, 2, 3):
        with Outbox(settings=s) as ob:
            assert ob.epoch == expected
            assert ob.stats().epoch == expected
    with sqlite3.connect(s.path) as conn:  # also kept in the database
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 3


def test_clean_restart_and_process_crash_skip_no_seq(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    with Outbox(settings=s) as ob:
        ob.enqueue_many([(TOPIC, lambda q: b"x")] * 10)
    with Outbox(settings=s) as ob:
        assert ob.enqueue(TOPIC, lambda q: b"x") == 10
    _commit_and_kill(s.path, 5)  # intact WAL: nothing lost, nothing skipped
    with Outbox(settings=s) as ob:
        st = ob.stats()
        assert (st.next_seq, st.lost_total, st.gap_total, st.backlog_msgs) == (16, 0, 0, 16)
        assert ob.take_incidents() == []


@pytest.mark.parametrize("keep_commits", [0, 1, 19, 44])
def test_torn_wal_after_kill_counts_the_lost_tail_and_never_reuses_seqs(
    tmp_path: Path, keep_commits: int, caplog: pytest.LogCaptureFixture
) -> None:
    s = _settings(tmp_path)
    _commit_and_kill(s.path, N)
    wal = _wal(s.path)
    ends = _commit_frames(wal)
    assert len(ends) == OPEN_COMMITS + N
    with wal.open("r+b") as f:  # cut in the middle of the frame after the kept commits
        f.truncate(ends[OPEN_COMMITS - 1 + keep_commits] + FRAME // 2)
    with (
        caplog.at_level(logging.ERROR, logger="renkei.edge.transport.outbox"),
        Outbox(settings=s) as ob,
    ):
        st = ob.stats()
        survivors = [r.id for r in ob.peek(-1, 1000)]
        assert survivors == list(range(keep_commits))
        assert (st.next_seq, st.lost_total, st.gap_total, st.dropped_total) == (
            N,
            N - keep_commits,
            0,
            0,
        )
        assert ob.enqueue(TOPIC, lambda q: b"after") == N  # never reused
        assert [i.kind for i in ob.take_incidents()] == ["lost"]
        assert ob.epoch == 2
    assert f"seqs {keep_commits}..{N - 1} were committed, not known to be acknowledged" in (
        caplog.text
    )


def test_messages_acknowledged_before_the_tear_are_not_counted_as_lost(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    _commit_and_kill(s.path, N, acked=30)
    wal = _wal(s.path)
    ends = _commit_frames(wal)
    assert len(ends) == OPEN_COMMITS + N + 1  # ... and one commit deleting seqs 0..29
    with wal.open("r+b") as f:  # the tear takes the acks and seqs 19..44
        f.truncate(ends[OPEN_COMMITS - 1 + 19] + 100)
    with Outbox(settings=s) as ob:
        st = ob.stats()
        # 0..18 come back (the broker has them: a duplicate re-send, harmless downstream);
        # 19..29 were delivered; 30..44 were not and are gone
        assert [r.id for r in ob.peek(-1, 100)] == list(range(19))
        assert (st.next_seq, st.lost_total, st.gap_total) == (N, 15, 0)


def test_bad_wal_header_loses_everything_visibly(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    _commit_and_kill(s.path, N)
    with _wal(s.path).open("r+b") as f:
        f.write(b"\0" * WAL_HEADER)
    with Outbox(settings=s) as ob:
        st = ob.stats()
        assert (st.backlog_msgs, st.next_seq, st.lost_total, st.gap_total) == (0, N, N, 0)
        assert ob.enqueue(TOPIC, lambda q: b"after") == N


def test_power_loss_skips_the_reserved_block_as_a_counted_gap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = _settings(tmp_path)
    _commit_and_kill(s.path, N)
    wal = _wal(s.path)
    with wal.open("r+b") as f:
        f.truncate(_commit_frames(wal)[OPEN_COMMITS - 1 + 19] + 10)
    # after a power loss the boot id differs and the unsynced hint may be stale or gone
    monkeypatch.setattr(renkei.edge.transport.outbox, "boot_id", lambda: "another-boot")
    s.path.with_name(s.path.name + ".hint").unlink()
    with Outbox(settings=s) as ob:
        st = ob.stats()
        reserved = 1 + renkei.edge.transport.outbox._SEQ_BLOCK  # reserved at the first commit
        assert (st.backlog_msgs, st.next_seq) == (19, reserved)
        assert (st.lost_total, st.gap_total) == (0, reserved - 19)  # bounded: <= one block
        assert ob.enqueue(TOPIC, lambda q: b"after") == reserved
        assert [i.kind for i in ob.take_incidents()] == ["gap"]


def test_power_loss_with_the_hint_kept_counts_lost_exactly_and_the_rest_as_gap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = _settings(tmp_path)
    _commit_and_kill(s.path, N)
    wal = _wal(s.path)
    with wal.open("r+b") as f:
        f.truncate(_commit_frames(wal)[OPEN_COMMITS - 1 + 19] + 10)
    monkeypatch.setattr(renkei.edge.transport.outbox, "boot_id", lambda: "another-boot")
    with Outbox(settings=s) as ob:
        st = ob.stats()
        reserved = 1 + renkei.edge.transport.outbox._SEQ_BLOCK
        assert (st.lost_total, st.gap_total, st.next_seq) == (N - 19, reserved - N, reserved)


def _corrupt_outbox_pages(path: Path) -> None:
    """Overwrite every page after the schema, meta and outbox-root pages with garbage."""
    with sqlite3.connect(path) as conn:
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name='outbox'").fetchone()[0]
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
    assert pages > root + 5
    with path.open("r+b") as f:
        for page in range(root + 1, pages + 1):
            f.seek((page - 1) * PAGE)
            f.write(b"\xa5" * PAGE)


def _filled(tmp_path: Path, n: int) -> OutboxSettings:
    s = _settings(tmp_path)
    with Outbox(settings=s) as ob:
        ob.enqueue_many([(TOPIC, lambda q: b"p%d" % q + b"-" * 2000)] * n)
        ob.ack(range(10))
    return s


def test_corrupt_page_found_on_open_is_quarantined_and_counted(tmp_path: Path) -> None:
    s = _filled(tmp_path, 60)
    _corrupt_outbox_pages(s.path)
    with Outbox(settings=s) as ob:
        st = ob.stats()
        assert (st.quarantined_total, st.lost_total, st.backlog_msgs, st.next_seq) == (1, 50, 0, 60)
        assert st.enqueued_total == 60  # carried over from the quarantined file
        assert ob.enqueue(TOPIC, lambda q: b"fresh") == 60
        assert [r.id for r in ob.peek(-1, 10)] == [60]
    kept = tmp_path / "outbox.sqlite3.quarantined-e2"
    assert kept.exists()
    with sqlite3.connect(kept) as conn:  # kept as it was, for forensics
        assert conn.execute("SELECT backlog_msgs FROM meta").fetchone()[0] == 50


def test_corrupt_page_found_at_run_time_is_quarantined_and_work_continues(
    tmp_path: Path,
) -> None:
    s = _filled(tmp_path, 60)
    with Outbox(settings=s) as ob:
        assert ob.epoch == 2
        _corrupt_outbox_pages(s.path)
        with sqlite3.connect(s.path) as other:  # another writer: the page cache is stale
            other.execute("PRAGMA user_version = 77")
        assert ob.peek(-1, 100) == []  # SQLITE_CORRUPT -> quarantined, fresh database
        st = ob.stats()
        assert (st.quarantined_total, st.lost_total, st.epoch) == (1, 50, 3)
        assert ob.enqueue(TOPIC, lambda q: b"fresh") == 60
        assert ob.ack([60]) == 1
        assert [i.kind for i in ob.take_incidents()] == ["quarantined"]
    assert (tmp_path / "outbox.sqlite3.quarantined-e3").exists()
    with Outbox(settings=s) as ob:  # the counters and the epoch survive the recreation
        st = ob.stats()
        assert (st.epoch, st.quarantined_total, st.lost_total, st.next_seq) == (4, 1, 50, 61)
