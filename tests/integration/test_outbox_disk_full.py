"""The outbox on a genuinely full filesystem (a 2 MiB tmpfs): the full policy applies and is
counted, acknowledged messages can always be deleted, and a restart on the full disk works.

Before the fix, ``SQLITE_FULL`` escaped as ``OutboxError ... disk is full during enqueue``
(the agent exited 1, ``dropped_total`` stayed 0) and a restart died again in ``ack``.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from renkei.edge.transport.outbox import Outbox, OutboxFullError, OutboxSettings

TOPIC = "renkei/v1/acme/s1/a1/l1/m1/telemetry"
RESERVE = 256 * 1024
BATCHES = 800
PER_BATCH = 3


def _payload(seq: int) -> bytes:
    return b"%08d" % seq + b"." * 992


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs, unmounted at teardown. Skips where mounting is not permitted."""
    mnt = tmp_path / "fs"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("a genuinely full filesystem needs `mount -t tmpfs` (root/CAP_SYS_ADMIN)")
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
        check=False,
    )
    if r.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True, check=False)


def _fill(path: Path) -> int:
    """Write ``path`` until the filesystem says ENOSPC; return the bytes written."""
    written = 0
    with path.open("wb", buffering=0) as f:
        try:
            while True:
                written += f.write(b"\0" * 4096)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
    return written


def _enqueue_batches(ob: Outbox, n: int) -> list[int]:
    """Enqueue ``n`` batches; return the refused seqs (never an OutboxError)."""
    refused: list[int] = []
    for _ in range(n):
        try:
            ob.enqueue_many([(TOPIC, _payload)] * PER_BATCH)
        except OutboxFullError as exc:
            refused += exc.rejected
    return refused


def _ids(ob: Outbox) -> list[int]:
    return [r.id for r in ob.peek(-1, 100_000)]


def test_drop_oldest_on_a_full_disk_is_counted_and_acks_survive_a_restart(
    small_fs: Path,
) -> None:
    s = OutboxSettings(path=small_fs / "outbox.sqlite3", disk_reserve_bytes=RESERVE)
    ob = Outbox(settings=s)
    assert (small_fs / "outbox.sqlite3.reserve").stat().st_size == RESERVE
    refused = _enqueue_batches(ob, BATCHES)  # 2.4 MB of payload into 2 MiB
    issued = BATCHES * PER_BATCH
    st = ob.stats()
    ids = _ids(ob)
    assert st.next_seq == issued
    assert ids == sorted(set(range(ids[0], issued)) - set(refused))  # the newest survive
    assert st.dropped_total == issued - len(ids) > issued // 3  # every missing seq counted
    assert st.backlog_msgs == len(ids)
    assert "disk_full" in [i.kind for i in ob.take_incidents()]
    # Something else takes the rest of the filesystem; acknowledged messages still go.
    _fill(small_fs / "hog")
    half = ids[: len(ids) // 2]
    assert ob.ack(half) == len(half)
    refused2 = _enqueue_batches(ob, 20)  # keeps running on a full disk
    ob.close()
    # Restart on the still-full disk: opens, reads, deletes.
    with Outbox(settings=s) as ob2:
        survivors = _ids(ob2)
        new = sorted(set(range(issued, issued + 20 * PER_BATCH)) - set(refused2))
        assert survivors[-len(new) :] == new if new else True
        st2 = ob2.stats()
        assert st2.next_seq == issued + 20 * PER_BATCH
        assert st2.dropped_total == st2.next_seq - len(half) - len(survivors)
        assert ob2.ack(survivors) == len(survivors)
        assert ob2.stats().backlog_msgs == 0
        (small_fs / "hog").unlink()
        assert ob2.enqueue(TOPIC, _payload) == st2.next_seq
        assert ob2.stats().disk_full is False  # the reserve is back
    assert (small_fs / "outbox.sqlite3.reserve").stat().st_size == RESERVE


def test_reject_new_on_a_full_disk_refuses_counts_and_keeps_the_backlog(
    small_fs: Path,
) -> None:
    s = OutboxSettings(
        path=small_fs / "outbox.sqlite3", disk_reserve_bytes=RESERVE, when_full="reject_new"
    )
    with Outbox(settings=s) as ob:
        refused = _enqueue_batches(ob, BATCHES)
        ids = _ids(ob)
        st = ob.stats()
        issued = BATCHES * PER_BATCH
        # nothing buffered is deleted: each seq was either stored or refused, and counted
        assert sorted(ids + refused) == list(range(issued))
        assert ids[: issued // 3] == list(range(issued // 3))
        assert st.dropped_total == len(refused) > issued // 3
        # the reserve was not handed to new data: deletions keep their room
        assert (small_fs / "outbox.sqlite3.reserve").stat().st_size == RESERVE
        _fill(small_fs / "hog")
        assert ob.ack(ids) == len(ids)  # deleting still works
        with pytest.raises(OutboxFullError):  # new data never takes the reserve
            ob.enqueue(TOPIC, _payload)
        (small_fs / "hog").unlink()
        assert ob.enqueue(TOPIC, _payload) == issued + 1  # room again
        assert ob.stats().dropped_total == len(refused) + 1
