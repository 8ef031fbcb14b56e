"""Durable store-and-forward outbox: the reason a gateway never loses a reading.

Every message a gateway sends is written here *before* it is published and deleted only
*after* it was confirmed: by the ingest's end-to-end ack once its points are in the store
(``mqtt.ack: ingest``, the default; see :mod:`renkei.edge.transport.publisher`), or by the broker's
QoS 1 PUBACK (``mqtt.ack: broker``). The store is one SQLite file in WAL mode
with ``synchronous=FULL``: a call to :meth:`Outbox.enqueue` that returned has been fsynced to
the write-ahead log, so it survives ``kill -9`` and power loss; a call interrupted by a
process crash leaves no trace (the transaction never committed, its sequence number is not
used). Storage that breaks that promise (a torn WAL, a corrupt page) cannot go unnoticed:
see "Damage" below.

Why this module is long: :class:`Outbox` is one SQLite store whose every method shares
one connection, one lock and one recovery path -- a write can hit a full disk (drop the
oldest, give back the reserve, retry) or a corrupt page (quarantine and continue with the
seqs going on) in the middle of a transaction, so opening, writing, acknowledging and
recovering cannot be separated without splitting that path. What is not the store lives
beside it: settings, records, stats and errors (:mod:`~renkei.edge.transport.outbox_types`),
the schema and SQLite error classification (:mod:`~renkei.edge.transport.outbox_sqlite`),
and the guard file and disk reserve (:mod:`~renkei.edge.transport.outbox_guard`).

Sequence numbers and ids
    Each accepted message gets the gateway's next sequence number ``seq`` (0-based,
    strictly increasing, never reused -- it is stored in the same transaction as the row,
    and a side file keeps a reserved high-water mark, so it survives restarts and even a
    lost database tail). ``seq`` *is* the row id: :meth:`Outbox.peek` pages in seq order
    with ``after_id=-1`` for the start. ``make_payload(seq)`` builds the payload inside the
    transaction, so the ``seq`` in the payload always matches the row.

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

Disk full (``SQLITE_FULL``)
    The same policy applies when the *filesystem* fills up before ``max_bytes``:
    ``drop_oldest`` deletes the oldest messages (counted in ``dropped_total``) until the
    new batch fits in the file's free pages, and retries; ``reject_new``, or a batch that
    cannot fit even then, is refused and counted (:class:`OutboxFullError`). The agent
    keeps running. A preallocated ``<db>.reserve`` file (``disk_reserve_bytes``, 8 MiB)
    is given back on ``SQLITE_FULL``: deletions need WAL space too, so acknowledged
    messages can always be deleted (on a full disk in small checkpointed transactions),
    also after a restart. The WAL is kept below half of the reserve (``wal_autocheckpoint``)
    so a checkpoint always fits. The reserve is taken back once there is room; new data
    under ``reject_new`` never uses it. ``OutboxStats.disk_full`` and an incident report it.

Damage (boot epoch, quarantine, counted loss)
    ``<db>.guard`` (see :mod:`renkei.edge.transport.outbox_guard`) holds the boot
    :attr:`Outbox.epoch` (Sparkplug B's bdSeq idea: +1 on every open and every quarantine, also
    copied into the database's ``user_version``), a reserved seq high-water mark (raised 1024 seqs
    at a time and fsynced *before* those seqs are used: the cost is one extra fsync per 1024
    messages), and the loss counters. On open:

    - ``PRAGMA quick_check`` runs (O(file size): see ``bench/bench_outbox.py``). A damaged
      database -- or one that turns out corrupt at run time (``SQLITE_CORRUPT`` /
      ``SQLITE_NOTADB`` in any call) -- is *quarantined*: it and its ``-wal``/``-shm`` are
      renamed to ``<db>.quarantined-e<epoch>[.<n>]`` (kept for forensics, e.g.
      ``sqlite3 <file> .recover``), a fresh database is started with the seqs going on, its
      readable backlog is added to ``lost_total`` and ``quarantined_total`` is counted.
    - If the database lost committed transactions (a torn or truncated WAL), the next seq
      continues where the previous session ended and the missing range is counted
      **exactly** in ``lost_total`` when that end is known: after a clean stop, or after a
      process crash on the same boot (``<db>.hint``, rewritten without fsync after every
      commit, survives in the page cache). After a possible power loss it is not known:
      the seqs up to the reserved mark are skipped and counted in ``gap_total`` (each was
      either lost or never used: an upper bound, at most 1024 + one batch per power loss).

    Every incident is logged at ERROR and kept for :meth:`Outbox.take_incidents` (the agent
    sends them as events and in its health message). Seqs are never reused.

Threads
    One writer thread (the agent, calling ``enqueue``) and one publisher thread (``peek``,
    ``get``, ``ack``) may use one :class:`Outbox` concurrently. They share one SQLite
    connection under a lock (so a quarantine can swap the database under both safely);
    SQLite writes serialise anyway, and reads are short. Writes use ``BEGIN IMMEDIATE``.

Disk
    The file grows to the peak backlog and then reuses its free pages (no VACUUM, which
    would briefly need twice the space); the WAL is checkpointed automatically and
    truncated to ``journal_size_limit`` after checkpoints.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Final, TypeVar

from renkei.edge.transport.outbox_guard import (
    DiskReserve,
    GuardFile,
    GuardState,
    boot_id,
    is_enospc,
    sibling,
)
from renkei.edge.transport.outbox_sqlite import (
    SCHEMA,
    SCHEMA_VERSION,
    OldMeta,
    explain,
    is_corrupt,
    is_full,
)
from renkei.edge.transport.outbox_types import (
    MAX_INFLIGHT,
    IncidentKind,
    OutboxError,
    OutboxFullError,
    OutboxIncident,
    OutboxItem,
    OutboxLimits,
    OutboxRecord,
    OutboxSettings,
    OutboxStats,
)

__all__ = [
    "MAX_INFLIGHT",
    "Outbox",
    "OutboxError",
    "OutboxFullError",
    "OutboxIncident",
    "OutboxItem",
    "OutboxLimits",
    "OutboxRecord",
    "OutboxSettings",
    "OutboxStats",
]

log = logging.getLogger(__name__)

#: Largest MQTT payload (the protocol's remaining-length limit minus headroom), bytes.
MAX_MQTT_PAYLOAD: Final = 268_435_455 - 65_535 - 16
#: Rows deleted per ``DELETE ... IN (...)`` statement (below SQLite's variable limit).
_ACK_CHUNK: Final = 500
#: Rows deleted per transaction when the filesystem is full (small WAL footprint).
_ACK_CHUNK_FULL: Final = 16
#: At most one "messages dropped" warning per this many seconds (counts are aggregated).
_DROP_LOG_INTERVAL_S: Final = 10.0
#: At most one "filesystem is full" incident per this many seconds.
_FULL_LOG_INTERVAL_S: Final = 60.0
#: Seqs reserved per fsync of the guard file (the bound on an unverifiable gap).
_SEQ_BLOCK: Final = 1024
#: Rounds of "drop the oldest, retry" on a full filesystem before refusing the batch.
_FULL_ATTEMPTS: Final = 24
#: SQLite's default page size, bytes (the outbox never changes it).
_PAGE_GUESS: Final = 4096

_T = TypeVar("_T")


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
        OutboxError: the file cannot be created or opened, was written by a newer schema,
            stays damaged after a quarantine, or its guard file cannot be written. The
            message names the path and the fix.
    """

    def __init__(self, *, settings: OutboxSettings) -> None:
        self.settings = settings
        self.path = settings.path
        self._lock = threading.RLock()
        self._db: sqlite3.Connection | None = None
        self._closed = False
        self._drops = _DropLog(self.path, _DROP_LOG_INTERVAL_S)
        self._incidents: list[OutboxIncident] = []
        self._guard = GuardFile(self.path)
        self._reserve = DiskReserve(self.path, settings.disk_reserve_bytes)
        self._pressure = False
        """The reserve was given back because the filesystem is full."""
        self._pressure_logged = -float("inf")
        self._pending_drop = (0, 0)
        """Refused messages and bytes counted while even the counter update did not fit."""
        self._next_seq = 0
        self._last_batch_bytes = 0
        self._state = GuardState()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutboxError(
                f"cannot create the outbox directory {self.path.parent}: {exc}. Fix: create "
                f"it and make it writable by the agent's user, or set outbox.path elsewhere"
            ) from exc
        with self._lock:
            try:
                self._open()
            except BaseException:
                self._close_db()
                self._guard.close()
                raise

    # ------------------------------------------------------------------ opening

    def _open(self) -> None:
        prev = self._guard.load()
        self._state = replace(prev) if prev is not None else GuardState()
        st = self._state
        old: OldMeta | None = None
        quarantined = False
        for attempt in range(2):
            try:
                conn = self._conn()
                self._check_integrity(conn)
                self._init_schema(conn)
                break
            except sqlite3.DatabaseError as exc:
                if not is_corrupt(exc) or attempt:
                    raise OutboxError(explain(self.path, "open", exc)) from exc
                old = self._quarantine(f"integrity check on open: {exc}")
                quarantined = True
        conn = self._conn()
        with self._errors("open"):
            db_next, db_backlog = conn.execute("SELECT next_seq, backlog_msgs FROM meta").fetchone()
            db_epoch = int(conn.execute("PRAGMA user_version").fetchone()[0])
        st.epoch = max(st.epoch, db_epoch) + 1
        hint = self._guard.read_hint()
        valid = hint is not None and prev is not None and hint[0] == prev.epoch
        hint_next = hint[1] if hint is not None and valid else None
        hint_oldest = hint[2] if hint is not None and valid else 0
        me = boot_id()
        known: int | None  # exact next seq of the previous session, when it can be known
        acked_below = hint_oldest  # every seq below was acknowledged or dropped
        if prev is None:
            known = db_next  # first open (or side files deleted): nothing to compare with
        elif prev.clean:
            known, acked_below = prev.committed, prev.oldest
        elif prev.boot_id and prev.boot_id == me and hint_next is not None:
            known = hint_next  # a process crash: the page cache kept the hint
        else:
            known = None  # power loss or kernel crash possible
        if quarantined:
            # The fresh file knows nothing; the damaged one's counters, when readable, say
            # where its data reached (else its backlog is unknown: see the incident).
            if old is not None:
                db_next = old.next_seq
            elif known is not None:
                db_next = known
            else:
                db_next = max(hint_next or 0, st.reserved)
        lost_from = max(db_next, acked_below)
        if known is not None:
            nxt = max(db_next, known)
            lost = max(0, nxt - lost_from)
            gap = 0
        else:
            floor = max(db_next, hint_next or 0)
            nxt = max(floor, st.reserved)
            lost = max(0, floor - lost_from)
            gap = nxt - floor
        if lost:
            st.lost_total += lost
            self._incident(
                "lost",
                lost,
                f"outbox {self.path} lost its tail: seqs {lost_from}..{lost_from + lost - 1} "
                f"were committed, not known to be acknowledged, and are gone (torn or "
                f"truncated WAL after a crash or power loss)",
            )
        if gap:
            st.gap_total += gap
            self._incident(
                "gap",
                gap,
                f"outbox {self.path}: unclean stop without proof of what was committed "
                f"(power loss or kernel crash); seqs {nxt - gap}..{nxt - 1} are skipped "
                f"and may include lost messages",
            )
        self._next_seq = nxt
        st.reserved = max(st.reserved, nxt)
        st.clean = False
        st.boot_id = me
        try:
            self._retry_full(lambda: self._write_open_marks(conn, nxt, st.epoch))
        except sqlite3.Error as exc:  # the guard file has them; the next commit sets next_seq
            if not is_full(exc):
                raise OutboxError(explain(self.path, "open", exc)) from exc
            log.warning("outbox %s: filesystem full; epoch not copied into the database", self.path)
        self._save_guard()
        self._write_hint()
        if not self._reserve.ensure():
            self._pressure = True
            log.warning(
                "outbox %s: no room for the %d-byte disk reserve; the filesystem is full",
                self.path,
                self._reserve.size,
            )
        log.info(
            "outbox %s opened: epoch %d, next seq %d, backlog %d",
            self.path,
            st.epoch,
            nxt,
            0 if quarantined else db_backlog,
        )

    def _write_open_marks(self, conn: sqlite3.Connection, nxt: int, epoch: int) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("UPDATE meta SET next_seq = max(next_seq, ?)", (nxt,))
            conn.execute(f"PRAGMA user_version = {int(epoch)}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _check_integrity(self, conn: sqlite3.Connection) -> None:
        """``PRAGMA quick_check`` (O(file size), no index cross-check; see the bench)."""
        rows = conn.execute("PRAGMA quick_check").fetchall()
        if rows != [("ok",)]:
            detail = "; ".join(str(r[0]) for r in rows[:3])
            raise sqlite3.DatabaseError(f"database disk image is malformed ({detail})")

    def _init_schema(self, conn: sqlite3.Connection) -> None:
        self._retry_full(lambda: conn.executescript(f"BEGIN IMMEDIATE; {SCHEMA} COMMIT;"))
        row = conn.execute("SELECT schema_version FROM meta").fetchone()
        if row is None or row[0] != SCHEMA_VERSION:
            found = None if row is None else row[0]
            raise OutboxError(
                f"outbox {self.path} has schema version {found}; this agent reads version "
                f"{SCHEMA_VERSION}. Fix: run the agent version that wrote it until its "
                f"backlog is empty, or move the file aside (a new outbox starts at seq 0)"
            )

    def _retry_full(self, fn: Callable[[], object]) -> None:
        """Run a small write; on a full filesystem give back the reserve and retry once."""
        try:
            fn()
        except sqlite3.Error as exc:
            conn = self._db
            if conn is not None and conn.in_transaction:
                conn.execute("ROLLBACK")
            if not is_full(exc) or not self._release_reserve():
                raise
            fn()

    # ------------------------------------------------------------------ damage

    def _incident(self, kind: IncidentKind, count: int, message: str) -> None:
        log.error("%s", message)
        self._incidents.append(OutboxIncident(kind, count, message))

    def _quarantine(self, reason: str) -> OldMeta | None:
        """Move the damaged database (and its -wal/-shm) aside; return its counters if
        they are still readable. The caller opens a fresh database."""
        old = self._read_old_meta()
        self._close_db()
        st = self._state
        n = 1
        while True:
            target = sibling(
                self.path, f".quarantined-e{st.epoch + 1}" + (f".{n}" if n > 1 else "")
            )
            if not any(sibling(target, s).exists() for s in ("", "-wal", "-shm")):
                break
            n += 1
        for suffix in ("", "-wal", "-shm"):
            src = sibling(self.path, suffix)
            if src.exists():
                os.replace(src, sibling(target, suffix))
        st.quarantined_total += 1
        if old is not None:
            st.carried_enqueued += old.enqueued_total
            st.carried_dropped += old.dropped_total
            st.carried_dropped_bytes += old.dropped_bytes_total
            st.lost_total += old.backlog_msgs
            what = f"its {old.backlog_msgs} unacknowledged messages are counted in lost_total"
        else:
            what = "its backlog is unreadable (not counted in lost_total)"
        self._incident(
            "quarantined",
            0 if old is None else old.backlog_msgs,
            f"outbox {self.path} is damaged ({reason}); moved it aside to {target} for "
            f"forensics (`sqlite3 {target} .recover`) and started a fresh one; {what}",
        )
        return old

    def _read_old_meta(self) -> OldMeta | None:
        try:
            conn = sqlite3.connect(self.path, isolation_level=None)
            try:
                row = conn.execute(
                    "SELECT next_seq, backlog_msgs, enqueued_total, dropped_total, "
                    "dropped_bytes_total FROM meta"
                ).fetchone()
            finally:
                conn.close()
        except sqlite3.Error:
            return None
        return None if row is None else OldMeta(*(int(v) for v in row))

    def _quarantine_now(self, op: str, exc: sqlite3.Error) -> None:
        """Run-time corruption: quarantine, open a fresh database, keep the seqs going."""
        self._quarantine(f"{op}: {exc}")
        st = self._state
        st.epoch += 1
        try:
            conn = self._conn()
            self._init_schema(conn)
            self._retry_full(lambda: self._write_open_marks(conn, self._next_seq, st.epoch))
        except sqlite3.Error as exc2:
            raise OutboxError(explain(self.path, "re-create after quarantine", exc2)) from exc2
        self._save_guard()
        self._write_hint()

    # ------------------------------------------------------------------ disk space

    def _release_reserve(self) -> bool:
        """Give the reserve back to the filesystem; ``True`` if there was one."""
        self._enter_pressure()
        return self._reserve.release()

    def _enter_pressure(self) -> bool:
        """Note (once per episode) that the filesystem is full; returns ``False``."""
        if not self._pressure:
            self._pressure = True
            now = time.monotonic()
            if now - self._pressure_logged < _FULL_LOG_INTERVAL_S:
                return False
            self._pressure_logged = now
            self._incident(
                "disk_full",
                0,
                f"outbox {self.path}: the filesystem is full; applying the "
                f"{self.settings.when_full} policy (the {self._reserve.size}-byte reserve "
                f"keeps deletions possible)",
            )
        return False

    def _checkpoint(self) -> None:
        conn = self._db
        if conn is None:
            return
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        except sqlite3.Error as exc:
            log.debug("outbox %s: checkpoint failed: %s", self.path, exc)

    def _relieve(self) -> None:
        """Under disk pressure: shrink the WAL, take the reserve back if there is room,
        and leave pressure mode once the filesystem has a reserve's worth free again."""
        self._checkpoint()
        try:
            if not self._reserve.ensure():
                return
            free = shutil.disk_usage(self.path.parent).free
            conn = self._conn()
            page = int(conn.execute("PRAGMA page_size").fetchone()[0])
            free += int(conn.execute("PRAGMA freelist_count").fetchone()[0]) * page
        except (OSError, sqlite3.Error) as exc:
            log.warning("outbox %s: cannot re-create the disk reserve: %s", self.path, exc)
            return
        if free >= 2 * self._reserve.size:  # free in the filesystem and inside the file
            self._pressure = False
            log.warning("outbox %s: disk space is back; the reserve is restored", self.path)

    def _save_guard(self) -> None:
        try:
            try:
                self._guard.save(self._state)
            except OSError as exc:
                if not is_enospc(exc) or not self._release_reserve():
                    raise
                self._guard.save(self._state)
        except OSError as exc:
            raise OutboxError(
                f"outbox {self.path}: cannot write its guard file {self._guard.path} ({exc}). "
                f"Fix: free space on the filesystem and check that the directory is "
                f"writable by the agent's user"
            ) from exc

    # ------------------------------------------------------------------ connections

    def _conn(self) -> sqlite3.Connection:
        if self._closed:
            raise OutboxError(f"outbox {self.path} is closed")
        conn = self._db
        if conn is not None:
            return conn
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
            if self.settings.disk_reserve_bytes:
                # Keep the WAL below half of the reserve, so that on a full filesystem the
                # released reserve always lets a checkpoint move the WAL into the file.
                pages = self.settings.disk_reserve_bytes // _PAGE_GUESS // 2
                conn.execute(f"PRAGMA wal_autocheckpoint={min(1000, max(8, pages))}")
        except BaseException:
            conn.close()
            raise
        self._db = conn
        return conn

    def _close_db(self) -> None:
        conn, self._db = self._db, None
        if conn is not None:
            with contextlib.suppress(sqlite3.Error):
                conn.close()

    @contextmanager
    def _errors(self, op: str) -> Iterator[None]:
        """Turn sqlite3 errors into :class:`OutboxError` naming the file and the fix."""
        try:
            yield
        except sqlite3.Error as exc:
            raise OutboxError(explain(self.path, op, exc)) from exc

    def _run(
        self, op: str, fn: Callable[[sqlite3.Connection], _T], *, full_retry: bool = True
    ) -> _T:
        """Run ``fn`` under the lock; quarantine and retry once on corruption, give the
        reserve back and retry on a full filesystem; other errors -> :class:`OutboxError`."""
        with self._lock:
            for attempt in range(3):
                conn = self._conn()
                try:
                    result = fn(conn)
                except sqlite3.Error as exc:
                    if conn.in_transaction:
                        with contextlib.suppress(sqlite3.Error):
                            conn.execute("ROLLBACK")
                    if is_corrupt(exc) and attempt == 0:
                        self._quarantine_now(op, exc)
                        continue
                    if is_full(exc) and full_retry and attempt < 2:
                        self._release_reserve()
                        self._checkpoint()
                        continue
                    raise OutboxError(explain(self.path, op, exc)) from exc
                if self._pressure and op in ("ack", "enqueue"):
                    self._relieve()
                return result
            raise AssertionError("unreachable")

    @staticmethod
    def _tx(conn: sqlite3.Connection, body: Callable[[], _T]) -> _T:
        """One ``BEGIN IMMEDIATE`` ... ``COMMIT`` transaction; rolled back on any error."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = body()
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    # ------------------------------------------------------------------ properties

    @property
    def epoch(self) -> int:
        """Boot epoch (>= 1): +1 on every open and every quarantine, persisted in the guard
        file and the database (see "Damage" in the module docstring)."""
        return self._state.epoch

    def take_incidents(self) -> list[OutboxIncident]:
        """Damage and disk-full incidents since the last call (each already logged at
        ERROR); the agent turns them into events."""
        with self._lock:
            out, self._incidents = self._incidents, []
        return out

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
            OutboxFullError: the message was refused (``reject_new`` and it does not fit,
                or the filesystem is full and dropping cannot make room); its seq is
                consumed and counted in ``dropped_total``.
            ValueError: invalid topic or QoS, or a payload larger than ``max_bytes``;
                nothing is stored.
            OutboxError: the database failed (I/O error, busy timeout, unwritable guard).
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
        When the filesystem is full (``SQLITE_FULL``) the full policy applies too (see
        "Disk full" in the module docstring).

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
        with self._lock:
            self._conn()
            for attempt in range(_FULL_ATTEMPTS):
                try:
                    return self._run(
                        "enqueue", lambda c: self._enqueue_tx(c, batch, sizes), full_retry=False
                    )
                except OutboxError as exc:
                    cause = exc.__cause__
                    if isinstance(exc, OutboxFullError) or not (
                        isinstance(cause, sqlite3.Error) and is_full(cause)
                    ):
                        raise
                    if not self._make_room(attempt):
                        break
            return self._refuse(batch, sizes)

    def _enqueue_tx(
        self, conn: sqlite3.Connection, batch: list[OutboxItem], sizes: list[int]
    ) -> list[int]:
        s = self.settings
        accepted: list[int] = []
        rejected: list[int] = []
        dropped_msgs, dropped_bytes = self._pending_drop

        def body() -> tuple[int, int]:
            nonlocal dropped_msgs, dropped_bytes
            next_seq, backlog_bytes, enq_total, drop_total, drop_bytes_total = conn.execute(
                "SELECT next_seq, backlog_bytes, enqueued_total, dropped_total, "
                "dropped_bytes_total FROM meta"
            ).fetchone()
            next_seq = max(next_seq, self._next_seq)
            rows: list[tuple[int, str, bytes, int, int, int]] = []
            pending = 0  # bytes in ``rows``, not yet inserted
            for item, topic_len in zip(batch, sizes, strict=True):
                seq = next_seq
                next_seq += 1
                payload = bytes(item.make_payload(seq))
                size = len(payload) + topic_len
                self._last_batch_bytes += size
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
            self._reserve_seqs(next_seq)
            return next_seq, drop_total

        self._last_batch_bytes = 0
        next_seq, drop_total = self._tx(conn, body)
        new_drops = dropped_msgs - self._pending_drop[0]
        self._pending_drop = (0, 0)
        self._next_seq = next_seq
        self._write_hint()
        if dropped_msgs:
            self._drops.add(new_drops, dropped_bytes, policy=s.when_full, dropped_total=drop_total)
        if rejected:
            raise OutboxFullError(
                f"outbox {self.path} is full (max_bytes={s.max_bytes}, reject_new): refused "
                f"{len(rejected)} message(s), seqs {rejected[0]}..{rejected[-1]}",
                accepted=accepted,
                rejected=rejected,
            )
        return accepted

    def _oldest(self) -> int:
        """The lowest unacknowledged seq (``next_seq`` when the outbox is empty)."""
        try:
            row = self._conn().execute("SELECT min(id) FROM outbox").fetchone()
        except (sqlite3.Error, OutboxError):
            return 0  # unknown: assume nothing was acknowledged (an upper bound on loss)
        return self._next_seq if row[0] is None else int(row[0])

    def _write_hint(self) -> None:
        self._guard.write_hint(self._state.epoch, self._next_seq, self._oldest())

    def _reserve_seqs(self, next_seq: int) -> None:
        """Make the reserved high-water mark durable before seqs below it are committed."""
        st = self._state
        if next_seq <= st.reserved:
            return
        old = st.reserved
        st.reserved = next_seq + _SEQ_BLOCK
        try:
            self._save_guard()
        except OutboxError:
            st.reserved = old
            raise

    def _make_room(self, attempt: int) -> bool:
        """The filesystem is full: give back the reserve, shrink the WAL and, under
        ``drop_oldest``, delete the oldest messages when the file has no free pages left.
        ``False`` when nothing more can help (then the batch is refused)."""
        reject = self.settings.when_full == "reject_new"
        # reject_new keeps the reserve for deletions: new data never uses it
        released = self._enter_pressure() if reject else self._release_reserve()
        self._checkpoint()
        conn = self._conn()
        need = 2 * max(self._last_batch_bytes, 4096) + 16 * 4096
        try:
            page = int(conn.execute("PRAGMA page_size").fetchone()[0])
            free = int(conn.execute("PRAGMA freelist_count").fetchone()[0]) * page
        except sqlite3.Error:
            return False
        if free >= need:
            # The file has room; what was missing is room for the WAL: retry once with the
            # space the reserve and the checkpoint gave back.
            return released or attempt == 0
        if reject:
            return False
        need <<= min(attempt, 10)

        def body() -> tuple[int, int]:
            n, freed = self._drop_oldest(conn, need)
            if n:
                conn.execute(
                    "UPDATE meta SET dropped_total = dropped_total + ?, "
                    "dropped_bytes_total = dropped_bytes_total + ?",
                    (n, freed),
                )
            return n, freed

        try:
            n, freed = self._tx(conn, body)
        except sqlite3.Error as exc:
            if is_full(exc):
                return False
            raise OutboxError(explain(self.path, "drop for space", exc)) from exc
        if n == 0:
            return False
        self._drops.add(
            n, freed, policy="drop_oldest, disk full", dropped_total=self._dropped_total()
        )
        self._checkpoint()
        return True

    def _refuse(self, batch: list[OutboxItem], sizes: list[int]) -> list[int]:
        """The filesystem is full and nothing can be dropped to fit the batch: consume its
        seqs, count it in ``dropped_total`` and raise :class:`OutboxFullError`."""
        first = self._next_seq
        seqs = list(range(first, first + len(batch)))
        nbytes = 0
        for item, topic_len, seq in zip(batch, sizes, seqs, strict=True):
            with contextlib.suppress(Exception):
                nbytes += len(item.make_payload(seq)) + topic_len
        self._next_seq = first + len(batch)
        msgs, pbytes = self._pending_drop
        self._pending_drop = (msgs + len(batch), pbytes + nbytes)
        conn = self._conn()

        self._persist_pending(lambda: self._tx(conn, lambda: self._write_pending(conn)))
        self._drops.add(
            len(batch),
            nbytes,
            policy=f"{self.settings.when_full}, disk full",
            dropped_total=self._dropped_total(),
        )
        raise OutboxFullError(
            f"outbox {self.path}: the filesystem is full; refused {len(batch)} message(s), "
            f"seqs {seqs[0]}..{seqs[-1]}",
            accepted=[],
            rejected=seqs,
        )

    def _write_pending(self, conn: sqlite3.Connection) -> None:
        m, b = self._pending_drop
        conn.execute(
            "UPDATE meta SET next_seq = max(next_seq, ?), dropped_total = dropped_total + ?, "
            "dropped_bytes_total = dropped_bytes_total + ?",
            (self._next_seq, m, b),
        )
        self._reserve_seqs(self._next_seq)

    def _persist_pending(self, write: Callable[[], object]) -> None:
        """Write the refused-message counters; on a full filesystem borrow the reserve
        for this one small transaction and take it back at once."""
        for attempt in range(2):
            try:
                write()
            except (sqlite3.Error, OutboxError) as exc:
                if attempt or not (isinstance(exc, sqlite3.Error) and is_full(exc)):
                    log.debug("outbox %s: refused messages counted in memory: %s", self.path, exc)
                    return
                self._release_reserve()
                self._checkpoint()
                continue
            self._pending_drop = (0, 0)
            self._write_hint()
            if attempt:
                self._relieve()
            return

    def _dropped_total(self) -> int:
        try:
            row = self._conn().execute("SELECT dropped_total FROM meta").fetchone()
        except (sqlite3.Error, OutboxError):
            return self._state.carried_dropped
        return int(row[0]) + self._pending_drop[0] + self._state.carried_dropped

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

        Ids that are no longer present (already acknowledged, dropped, or lost with a
        quarantined database) are ignored. Works on a full filesystem: the reserve is
        given back so the WAL can take the deletion.

        Raises:
            OutboxError: the database failed; nothing is deleted.
        """
        id_list = list(ids)
        if not id_list:
            return 0

        def delete(conn: sqlite3.Connection, chunk: list[int]) -> int:
            marks = ",".join("?" * len(chunk))
            return int(conn.execute(f"DELETE FROM outbox WHERE id IN ({marks})", chunk).rowcount)

        def run(conn: sqlite3.Connection) -> int:
            def body() -> int:
                return sum(
                    delete(conn, id_list[i : i + _ACK_CHUNK])
                    for i in range(0, len(id_list), _ACK_CHUNK)
                )

            return self._tx(conn, body)

        with self._lock:
            try:
                deleted = self._run("ack", run, full_retry=False)
                self._write_hint()
                return deleted
            except OutboxError as exc:
                cause = exc.__cause__
                if not (isinstance(cause, sqlite3.Error) and is_full(cause)):
                    raise
            # Full filesystem: the WAL cannot take one big deletion. Give back the reserve
            # and delete in small transactions, each checkpointed in place (deleting never
            # grows the database file).
            self._release_reserve()
            self._checkpoint()
            deleted = 0
            for i in range(0, len(id_list), _ACK_CHUNK_FULL):
                chunk = id_list[i : i + _ACK_CHUNK_FULL]

                def small(conn: sqlite3.Connection, chunk: list[int] = chunk) -> int:
                    return self._tx(conn, lambda: delete(conn, chunk))

                deleted += self._run("ack", small)
                self._checkpoint()
            self._write_hint()
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

        def run(conn: sqlite3.Connection) -> list[OutboxRecord]:
            rows = conn.execute(
                "SELECT id, topic, payload, qos, retain FROM outbox WHERE id > ? "
                "ORDER BY id LIMIT ?",
                (after_id, limit),
            ).fetchall()
            return [OutboxRecord(r[0], r[1], bytes(r[2]), r[3], bool(r[4])) for r in rows]

        return self._run("peek", run)

    def get(self, ids: Iterable[int]) -> list[OutboxRecord]:
        """The messages among ``ids`` that are still buffered, in id order.

        Raises:
            OutboxError: the database failed.
        """
        id_list = list(ids)

        def run(conn: sqlite3.Connection) -> list[OutboxRecord]:
            out: list[OutboxRecord] = []
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

        return self._run("get", run)

    def last_id(self) -> int:
        """The id (seq) of the most recently accepted message, ``-1`` if none ever was.

        Raises:
            OutboxError: the outbox is closed.
        """
        with self._lock:
            self._conn()
            return self._next_seq - 1

    def stats(self) -> OutboxStats:
        """Current counters (one consistent read).

        Raises:
            OutboxError: the database failed.
        """

        def run(conn: sqlite3.Connection) -> OutboxStats:
            row = conn.execute(
                "SELECT backlog_msgs, backlog_bytes, dropped_total, enqueued_total, "
                "dropped_bytes_total FROM meta"
            ).fetchone()
            st = self._state
            pm, pb = self._pending_drop
            return OutboxStats(
                backlog_msgs=row[0],
                backlog_bytes=row[1],
                dropped_total=row[2] + pm + st.carried_dropped,
                enqueued_total=row[3] + st.carried_enqueued,
                dropped_bytes_total=row[4] + pb + st.carried_dropped_bytes,
                next_seq=self._next_seq,
                epoch=st.epoch,
                lost_total=st.lost_total,
                gap_total=st.gap_total,
                quarantined_total=st.quarantined_total,
                disk_full=self._pressure,
            )

        return self._run("stats", run)

    def disk_bytes(self) -> int:
        """Bytes the outbox uses on disk now (database + WAL + shared-memory index)."""
        total = 0
        for suffix in ("", "-wal", "-shm"):
            p = sibling(self.path, suffix)
            if p.exists():
                total += p.stat().st_size
        return total

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Close the database and mark a clean stop in the guard file (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._drops.flush(policy=self.settings.when_full, dropped_total=self._dropped_total())
            if self._pending_drop[0]:
                with contextlib.suppress(OutboxError, sqlite3.Error):
                    conn = self._conn()
                    self._persist_pending(lambda: self._tx(conn, lambda: self._write_pending(conn)))
            oldest = self._oldest()
            self._closed = True
            if self._pending_drop[0]:
                log.error(
                    "outbox %s: %d refused messages could not be counted on disk (full)",
                    self.path,
                    self._pending_drop[0],
                )
            st = self._state
            st.clean = True
            st.committed = self._next_seq
            st.oldest = oldest
            try:
                self._guard.save(st)
            except OSError as exc:  # the next open treats the stop as unclean
                log.warning("outbox %s: clean stop not recorded: %s", self.path, exc)
            self._close_db()
            self._guard.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
