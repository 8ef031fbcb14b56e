"""The SQLite side of the outbox: its schema, and what a ``sqlite3`` error means.

Split from :mod:`renkei.edge.transport.outbox` (the store itself): the table layout and
triggers the store creates, the result codes it tells apart (corrupt, not a database,
full), and the operator-facing explanation of an error (what happened, which file, the
fix). SQLite result codes: https://www.sqlite.org/rescode.html.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = ["SCHEMA", "SCHEMA_VERSION", "OldMeta", "explain", "is_corrupt", "is_full"]

SCHEMA_VERSION: Final = 1
_SQLITE_CORRUPT: Final = 11
_SQLITE_FULL: Final = 13
_SQLITE_NOTADB: Final = 26

SCHEMA: Final = """
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


@dataclass(frozen=True, slots=True)
class OldMeta:
    """The counters of a database being quarantined (read before it is renamed)."""

    next_seq: int
    backlog_msgs: int
    enqueued_total: int
    dropped_total: int
    dropped_bytes_total: int


def is_corrupt(exc: sqlite3.Error) -> bool:
    """``SQLITE_CORRUPT`` or ``SQLITE_NOTADB`` (also recognised by the message text)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None and code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
        return True
    low = str(exc).lower()
    return "malformed" in low or "not a database" in low


def is_full(exc: sqlite3.Error) -> bool:
    """``SQLITE_FULL``: the filesystem is full (also recognised by the message text)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None and code & 0xFF == _SQLITE_FULL:
        return True
    return "disk is full" in str(exc).lower()


def explain(path: Path, op: str, exc: sqlite3.Error) -> str:
    """What went wrong with outbox ``path`` during ``op``, and the fix, for the operator."""
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
