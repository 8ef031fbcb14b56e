"""Durable store-and-forward outbox: the reason a gateway never loses a reading.

Every message a gateway sends is written here *before* it is published and deleted only
*after* the broker acknowledged it (QoS 1 PUBACK). The store is one SQLite file in WAL mode
with ``synchronous=FULL``: a call to :meth:`Outbox.enqueue` that returned has been fsynced to
the write-ahead log, so it survives ``kill -9`` and power loss; a call interrupted by a
crash leaves no trace (the transaction never committed, its sequence number is not used).

Sequence numbers and ids
    Each accepted message gets the gateway's next sequence number ``seq`` (0-based,
    strictly increasing, never reused -- it is stored in the same transaction as the row,
    so it survives restarts). ``seq`` *is* the row id: :meth:`Outbox.peek` pages in seq
    order with ``after_id=-1`` for the start. ``make_payload(seq)`` builds the payload
    inside the transaction, so the ``seq`` in the payload always matches the row.

Size limit and the full policy (``OutboxSettings.when_full``)
    ``max_bytes`` bounds the *logical* backlog: payload plus topic bytes of the messages
    on disk (the file itself is larger by SQLite's per-row and per-page overhead, about
    5-10 % for kilobyte payloads; the bench reports real disk bytes per buffered hour).
    When a new message does not fit:

    - ``drop_oldest`` (default) deletes the oldest messages, in seq order, until it fits:
      live data beats a stale backlog, and a long outage keeps the most recent
      ``max_bytes`` of history.
    - ``reject_new`` refuses the new message (:class:`OutboxFullError`): the backlog that
      is already buffered is kept intact, and the caller decides what to do.

    Either way the loss is never silent: each dropped or refused message is added to the
    persisted ``dropped_total`` (also in :class:`OutboxStats`, and the gateway's health
    message) and logged as a rate-limited warning with counts. A refused message still
    consumes its sequence number, so the cloud sees a ``seq`` gap exactly where data was
    lost under either policy.

Threads
    One writer thread (the agent, calling ``enqueue``) and one publisher thread (``peek``,
    ``get``, ``ack``) may use one :class:`Outbox` concurrently. Each thread gets its own
    SQLite connection; WAL lets the publisher read while the writer commits, and writes
    (enqueue, ack) serialise on SQLite's write lock with a busy timeout. Writes use
    ``BEGIN IMMEDIATE`` so two writers never deadlock on a lock upgrade.

Disk
    The file grows to the peak backlog and then reuses its free pages (no VACUUM, which
    would briefly need twice the space); the WAL is checkpointed automatically and
    truncated to ``journal_size_limit`` after checkpoints.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Final, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "Outbox",
    "OutboxError",
    "OutboxFullError",
    "OutboxItem",
    "OutboxRecord",
    "OutboxSettings",
    "OutboxStats",
]

log = logging.getLogger(__name__)

SCHEMA_VERSION: Final = 1
#: Largest MQTT payload (the protocol's remaining-length limit minus headroom), bytes.
MAX_MQTT_PAYLOAD: Final = 268_435_455 - 65_535 - 16
#: Rows deleted per ``DELETE ... IN (...)`` statement (below SQLite's variable limit).
_ACK_CHUNK: Final = 500
#: At most one "messages dropped" warning per this many seconds (counts are aggregated).
_DROP_LOG_INTERVAL_S: Final = 10.0

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS meta (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    schema_version INTEGER NOT NULL,
    next_seq INTEGER NOT NULL,
    enqueued_total INTEGER NOT NULL,
    dropped_total INTEGER NOT NULL,
    dropped_bytes_total INTEGER NOT NULL,
    backlog_msgs INTEGER NOT NULL,
    backlog_bytes INTEGER NOT NULL
);
INSERT OR IGNORE INTO meta VALUES (1, 1, 0, 0, 0, 0, 0, 0);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    qos INTEGER NOT NULL,
    retain INTEGER NOT NULL,
    size INTEGER NOT NULL
);
CREATE TRIGGER IF NOT EXISTS outbox_ins AFTER INSERT ON outbox BEGIN
    UPDATE meta SET backlog_msgs = backlog_msgs + 1, backlog_bytes = backlog_bytes + NEW.size;
END;
CREATE TRIGGER IF NOT EXISTS outbox_del AFTER DELETE ON outbox BEGIN
    UPDATE meta SET backlog_msgs = backlog_msgs - 1, backlog_bytes = backlog_bytes - OLD.size;
END;
"""


class OutboxError(RuntimeError):
    """The outbox database cannot be opened, read or written.

    The message names the file and the fix (for example: move a corrupt file aside).
    """


class OutboxFullError(OutboxError):
    """``when_full="reject_new"`` refused messages because the outbox is full.

    Attributes:
        accepted: seqs of the messages of the same call that *were* stored (a batch is
            accepted in order up to the first message that does not fit).
        rejected: seqs consumed by the refused messages (counted in ``dropped_total``).
    """

    def __init__(self, message: str, *, accepted: list[int], rejected: list[int]) -> None:
        super().__init__(message)
        self.accepted = accepted
        self.rejected = rejected


class OutboxSettings(BaseModel):
    """Configuration of the on-disk outbox (frozen)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: Path
    """SQLite file; its directory is created if missing. Keep it on persistent storage."""
    max_bytes: Annotated[int, Field(ge=4096)] = 256 * 1024 * 1024
    """Largest backlog, bytes of payload + topic (see the module docstring)."""
    when_full: Literal["drop_oldest", "reject_new"] = "drop_oldest"
    """``drop_oldest``: delete the oldest messages until the new one fits (live data beats
    stale backlog). ``reject_new``: refuse the new message with :class:`OutboxFullError`."""
    drain_rate_msgs_per_s: Annotated[float, Field(gt=0)] = 200.0
    """Rate, messages/s, at which the publisher drains a backlog after an outage."""
    max_inflight: Annotated[int, Field(ge=1, le=65_000)] = 100
    """Most outbox messages published but not yet acknowledged (PUBACK) at once."""
    busy_timeout_s: Annotated[float, Field(gt=0)] = 10.0
    """How long a write waits for the other thread's write lock before failing."""
    journal_size_limit_bytes: Annotated[int, Field(ge=0)] = 16 * 1024 * 1024
    """Size the WAL file is truncated to after a checkpoint."""


@dataclass(frozen=True, slots=True)
class OutboxRecord:
    """One buffered message. ``id`` is its per-gateway sequence number (``seq``)."""

    id: int
    topic: str
    payload: bytes
    qos: int
    retain: bool

    @property
    def seq(self) -> int:
        """The message's sequence number (same as :attr:`id`)."""
        return self.id


@dataclass(frozen=True, slots=True)
class OutboxStats:
    """Counters of the outbox, all persisted in the database file."""

    backlog_msgs: int
    """Messages on disk not yet acknowledged."""
    backlog_bytes: int
    """Payload + topic bytes of those messages."""
    dropped_total: int
    """Messages deleted or refused by the full policy since the file was created."""
    enqueued_total: int
    """Messages accepted into the outbox since the file was created."""
    dropped_bytes_total: int = 0
    """Payload + topic bytes of the dropped messages."""
    next_seq: int = 0
    """The seq the next accepted message will get."""


class OutboxItem(NamedTuple):
    """One message for :meth:`Outbox.enqueue_many`."""

    topic: str
    make_payload: Callable[[int], bytes]
    qos: int = 1
    retain: bool = False


class _DropLog:
    """Aggregates drops and logs at most one warning per interval."""

    def __init__(self, path: Path, interval_s: float) -> None:
        self._path = path
        self._interval_s = interval_s
        self._lock = threading.Lock()
        self._last = -float("inf")
        self._msgs = 0
        self._bytes = 0
        self._since = time.monotonic()

    def add(self, msgs: int, nbytes: int, *, policy: str, dropped_total: int) -> None:
        with self._lock:
            self._msgs += msgs
            self._bytes += nbytes
            now = time.monotonic()
            if now - self._last < self._interval_s:
                return
            self._emit(now, policy, dropped_total)

    def flush(self, *, policy: str, dropped_total: int) -> None:
        with self._lock:
            if self._msgs:
                self._emit(time.monotonic(), policy, dropped_total)

    def _emit(self, now: float, policy: str, dropped_total: int) -> None:
        log.warning(
            "outbox %s full (%s): lost %d messages (%d bytes) in the last %.0f s; dropped_total=%d",
            self._path,
            policy,
            self._msgs,
            self._bytes,
            now - self._since,
            dropped_total,
        )
        self._last = now
        self._since = now
        self._msgs = 0
        self._bytes = 0


def _validate_item(topic: str, qos: int) -> int:
    """Check an MQTT topic name and QoS; return the topic's UTF-8 length, bytes."""
    if not topic:
        raise ValueError("MQTT topic must not be empty")
    if "+" in topic or "#" in topic or "\x00" in topic:
        raise ValueError(f"MQTT topic {topic!r} must not contain '+', '#' or NUL")
    n = len(topic.encode("utf-8"))
    if n > 65_535:
        raise ValueError(f"MQTT topic is {n} bytes; the limit is 65535")
    if qos not in (0, 1, 2):
        raise ValueError(f"QoS must be 0, 1 or 2, got {qos!r}")
    return n


class Outbox:
    """Durable FIFO of MQTT messages (see the module docstring).

    Args:
        settings: the outbox configuration.

    Raises:
        OutboxError: the file cannot be created or opened, is not an outbox database
            (corrupt or foreign), or was written by a newer schema. The message names the
            path and the fix.
    """

    def __init__(self, *, settings: OutboxSettings) -> None:
        self.settings = settings
        self.path = settings.path
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self._closed = False
        self._drops = _DropLog(self.path, _DROP_LOG_INTERVAL_S)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutboxError(
                f"cannot create the outbox directory {self.path.parent}: {exc}. Fix: create "
                f"it and make it writable by the agent's user, or set outbox.path elsewhere"
            ) from exc
        conn = self._conn()
        with self._errors("initialise"):
            conn.executescript(f"BEGIN IMMEDIATE; {_SCHEMA} COMMIT;")
            row = conn.execute("SELECT schema_version FROM meta").fetchone()
        if row is None or row[0] != SCHEMA_VERSION:
            found = None if row is None else row[0]
            raise OutboxError(
                f"outbox {self.path} has schema version {found}; this agent reads version "
                f"{SCHEMA_VERSION}. Fix: run the agent version that wrote it until its "
                f"backlog is empty, or move the file aside (a new outbox starts at seq 0)"
            )

    # ------------------------------------------------------------------ connections

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        if self._closed:
            raise OutboxError(f"outbox {self.path} is closed")
        with self._errors("open"):
            conn = sqlite3.connect(
                self.path,
                timeout=self.settings.busy_timeout_s,
                isolation_level=None,
                check_same_thread=False,
            )
            try:
                mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise OutboxError(
                        f"outbox {self.path}: SQLite refused WAL mode (got {mode!r}). Fix: "
                        f"put the outbox on a local filesystem that supports shared memory "
                        f"(not NFS/SMB)"
                    )
                conn.execute("PRAGMA synchronous=FULL")
                conn.execute(f"PRAGMA busy_timeout={int(self.settings.busy_timeout_s * 1000)}")
                conn.execute(f"PRAGMA journal_size_limit={self.settings.journal_size_limit_bytes}")
                conn.execute("PRAGMA foreign_keys=OFF")
            except BaseException:
                conn.close()
                raise
        with self._conns_lock:
            self._conns.append(conn)
        self._local.conn = conn
        return conn

    @contextmanager
    def _errors(self, op: str) -> Iterator[None]:
        """Turn sqlite3 errors into :class:`OutboxError` naming the file and the fix."""
        try:
            yield
        except sqlite3.Error as exc:
            raise OutboxError(_explain(self.path, op, exc)) from exc

    @contextmanager
    def _write(self, op: str) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` ... ``COMMIT`` transaction; rolled back on any error."""
        conn = self._conn()
        with self._errors(op):
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # ------------------------------------------------------------------ writing

    def enqueue(
        self,
        topic: str,
        make_payload: Callable[[int], bytes],
        *,
        qos: int = 1,
        retain: bool = False,
    ) -> int:
        """Store one message durably and return its seq.

        ``make_payload(seq)`` is called inside the transaction with the message's sequence
        number and must return the payload bytes. When this returns, the message is
        fsynced to disk.

        Raises:
            OutboxFullError: ``when_full="reject_new"`` and the message does not fit (its
                seq is consumed and counted in ``dropped_total``).
            ValueError: invalid topic or QoS, or a payload larger than ``max_bytes``;
                nothing is stored.
            OutboxError: the database failed (disk full, corruption, busy timeout).
            Exception: whatever ``make_payload`` raises; nothing is stored.
        """
        return self.enqueue_many([OutboxItem(topic, make_payload, qos, retain)])[0]

    def enqueue_many(
        self, items: Iterable[OutboxItem | tuple[str, Callable[[int], bytes]]]
    ) -> list[int]:
        """Store several messages in one transaction (one fsync); return their seqs in order.

        ``items`` are :class:`OutboxItem` or plain ``(topic, make_payload)`` pairs (QoS 1,
        not retained). Seqs are consecutive. Under ``reject_new`` the batch is stored in
        order up to the first message that does not fit; that one and the rest are refused.

        Raises:
            OutboxFullError: some messages were refused (``.accepted`` / ``.rejected``
                list the seqs; the accepted ones are stored).
            ValueError: an invalid topic or QoS, or a payload larger than ``max_bytes``;
                nothing from the batch is stored.
            OutboxError: the database failed; nothing from the batch is stored.
        """
        batch = [it if isinstance(it, OutboxItem) else OutboxItem(*it) for it in items]
        sizes = [_validate_item(it.topic, it.qos) for it in batch]
        if not batch:
            return []
        s = self.settings
        accepted: list[int] = []
        rejected: list[int] = []
        dropped_msgs = dropped_bytes = 0
        with self._write("enqueue") as conn:
            next_seq, backlog_bytes, enq_total, drop_total, drop_bytes_total = conn.execute(
                "SELECT next_seq, backlog_bytes, enqueued_total, dropped_total, "
                "dropped_bytes_total FROM meta"
            ).fetchone()
            rows: list[tuple[int, str, bytes, int, int, int]] = []
            pending = 0  # bytes in ``rows``, not yet inserted
            for item, topic_len in zip(batch, sizes, strict=True):
                seq = next_seq
                next_seq += 1
                payload = bytes(item.make_payload(seq))
                size = len(payload) + topic_len
                if size > s.max_bytes or len(payload) > MAX_MQTT_PAYLOAD:
                    raise ValueError(
                        f"message for {item.topic!r} is {size} bytes; larger than the "
                        f"outbox max_bytes={s.max_bytes} or the MQTT payload limit"
                    )
                if rejected:
                    rejected.append(seq)
                    dropped_msgs += 1
                    dropped_bytes += size
                    continue
                excess = backlog_bytes + pending + size - s.max_bytes
                if excess > 0:
                    if s.when_full == "reject_new":
                        rejected.append(seq)
                        dropped_msgs += 1
                        dropped_bytes += size
                        continue
                    if rows:  # make room on disk first, in order
                        conn.executemany("INSERT INTO outbox VALUES (?,?,?,?,?,?)", rows)
                        backlog_bytes += pending
                        rows, pending = [], 0
                    n, freed = self._drop_oldest(conn, excess)
                    backlog_bytes -= freed
                    dropped_msgs += n
                    dropped_bytes += freed
                rows.append((seq, item.topic, payload, item.qos, int(item.retain), size))
                pending += size
                accepted.append(seq)
            if rows:
                conn.executemany("INSERT INTO outbox VALUES (?,?,?,?,?,?)", rows)
            drop_total += dropped_msgs
            conn.execute(
                "UPDATE meta SET next_seq = ?, enqueued_total = ?, dropped_total = ?, "
                "dropped_bytes_total = ?",
                (next_seq, enq_total + len(accepted), drop_total, drop_bytes_total + dropped_bytes),
            )
        if dropped_msgs:
            self._drops.add(
                dropped_msgs, dropped_bytes, policy=s.when_full, dropped_total=drop_total
            )
        if rejected:
            raise OutboxFullError(
                f"outbox {self.path} is full (max_bytes={s.max_bytes}, reject_new): refused "
                f"{len(rejected)} message(s), seqs {rejected[0]}..{rejected[-1]}",
                accepted=accepted,
                rejected=rejected,
            )
        return accepted

    @staticmethod
    def _drop_oldest(conn: sqlite3.Connection, excess: int) -> tuple[int, int]:
        """Delete the oldest rows until at least ``excess`` bytes are freed."""
        freed = 0
        count = 0
        cutoff = None
        cur = conn.execute("SELECT id, size FROM outbox ORDER BY id")
        while freed < excess:
            chunk = cur.fetchmany(256)
            if not chunk:
                break
            for row_id, size in chunk:
                freed += size
                count += 1
                cutoff = row_id
                if freed >= excess:
                    break
        cur.close()
        if cutoff is not None:
            conn.execute("DELETE FROM outbox WHERE id <= ?", (cutoff,))
        return count, freed

    def ack(self, ids: Iterable[int]) -> int:
        """Delete acknowledged messages (one transaction); return how many were deleted.

        Ids that are no longer present (already acknowledged or dropped) are ignored.

        Raises:
            OutboxError: the database failed; nothing is deleted.
        """
        id_list = list(ids)
        if not id_list:
            return 0
        deleted = 0
        with self._write("ack") as conn:
            for i in range(0, len(id_list), _ACK_CHUNK):
                chunk = id_list[i : i + _ACK_CHUNK]
                marks = ",".join("?" * len(chunk))
                cur = conn.execute(f"DELETE FROM outbox WHERE id IN ({marks})", chunk)
                deleted += cur.rowcount
        return deleted

    # ------------------------------------------------------------------ reading

    def peek(self, after_id: int, limit: int) -> list[OutboxRecord]:
        """Up to ``limit`` messages with ``id > after_id``, in id (seq) order.

        Use ``after_id=-1`` to start at the oldest message.

        Raises:
            OutboxError: the database failed.
        """
        if limit <= 0:
            return []
        with self._errors("peek"):
            rows = (
                self._conn()
                .execute(
                    "SELECT id, topic, payload, qos, retain FROM outbox WHERE id > ? "
                    "ORDER BY id LIMIT ?",
                    (after_id, limit),
                )
                .fetchall()
            )
        return [OutboxRecord(r[0], r[1], bytes(r[2]), r[3], bool(r[4])) for r in rows]

    def get(self, ids: Iterable[int]) -> list[OutboxRecord]:
        """The messages among ``ids`` that are still buffered, in id order.

        Raises:
            OutboxError: the database failed.
        """
        id_list = list(ids)
        out: list[OutboxRecord] = []
        with self._errors("get"):
            conn = self._conn()
            for i in range(0, len(id_list), _ACK_CHUNK):
                chunk = id_list[i : i + _ACK_CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = conn.execute(
                    f"SELECT id, topic, payload, qos, retain FROM outbox WHERE id IN ({marks})",
                    chunk,
                ).fetchall()
                out.extend(OutboxRecord(r[0], r[1], bytes(r[2]), r[3], bool(r[4])) for r in rows)
        out.sort(key=lambda r: r.id)
        return out

    def last_id(self) -> int:
        """The id (seq) of the most recently accepted message, ``-1`` if none ever was.

        Raises:
            OutboxError: the database failed.
        """
        with self._errors("read"):
            row = self._conn().execute("SELECT next_seq FROM meta").fetchone()
        return int(row[0]) - 1

    def stats(self) -> OutboxStats:
        """Current counters (one consistent read).

        Raises:
            OutboxError: the database failed.
        """
        with self._errors("stats"):
            row = (
                self._conn()
                .execute(
                    "SELECT backlog_msgs, backlog_bytes, dropped_total, enqueued_total, "
                    "dropped_bytes_total, next_seq FROM meta"
                )
                .fetchone()
            )
        return OutboxStats(
            backlog_msgs=row[0],
            backlog_bytes=row[1],
            dropped_total=row[2],
            enqueued_total=row[3],
            dropped_bytes_total=row[4],
            next_seq=row[5],
        )

    def disk_bytes(self) -> int:
        """Bytes the outbox uses on disk now (database + WAL + shared-memory index)."""
        total = 0
        for suffix in ("", "-wal", "-shm"):
            p = self.path.with_name(self.path.name + suffix)
            if p.exists():
                total += p.stat().st_size
        return total

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Close every connection (all threads must have stopped using the outbox)."""
        if self._closed:
            return
        self._closed = True
        self._drops.flush(
            policy=self.settings.when_full, dropped_total=self._dropped_total_or_zero()
        )
        with self._conns_lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            conn.close()
        self._local = threading.local()

    def _dropped_total_or_zero(self) -> int:
        with self._conns_lock:
            conn = self._conns[0] if self._conns else None
        if conn is None:
            return 0
        try:
            return int(conn.execute("SELECT dropped_total FROM meta").fetchone()[0])
        except sqlite3.Error:
            return 0  # only used for a log line while closing

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _explain(path: Path, op: str, exc: sqlite3.Error) -> str:
    text = str(exc)
    low = text.lower()
    if (
        "not a database" in low
        or "malformed" in low
        or "corrupt" in low
        or (isinstance(exc, sqlite3.DatabaseError) and "encrypted" in low)
    ):
        return (
            f"outbox {path} is corrupt or not an outbox database ({text}) during {op}. Fix: "
            f"stop the agent, move it aside (mv {path} {path}.corrupt, and its -wal/-shm "
            f"files), optionally salvage rows with `sqlite3 {path}.corrupt .recover`, then "
            f"restart; a new empty outbox is created (seq restarts at 0)"
        )
    if "unable to open" in low or "readonly" in low or "permission" in low:
        return (
            f"cannot open outbox {path} for writing ({text}) during {op}. Fix: check that "
            f"the directory exists and that the file, its -wal/-shm files and the directory "
            f"are writable by the agent's user"
        )
    if "disk is full" in low or "disk i/o" in low:
        return (
            f"outbox {path}: {text} during {op}. Fix: free space on the filesystem or lower "
            f"outbox.max_bytes; check the storage device for errors"
        )
    if "locked" in low or "busy" in low:
        return (
            f"outbox {path} stayed locked ({text}) during {op}. Fix: make sure only one "
            f"agent uses this file; raise outbox.busy_timeout_s on slow storage"
        )
    return f"outbox {path}: {op} failed: {text}"
