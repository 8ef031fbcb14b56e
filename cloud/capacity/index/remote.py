"""Changes made by other processes, on PostgreSQL: ``NOTIFY`` on commit, ``LISTEN`` here.

Several ``renkei cloud api`` processes (and the CLI) write one registry. Each keeps its own
capacity index, patched at once for commits of its own sessions
(:mod:`~renkei.cloud.capacity.index.changelog`). So that a change made through one is seen
by all within a second, not after ``capacity_cache_s``:

- **Sending** (:mod:`~renkei.cloud.capacity.index.changelog`): a session that flushes a
  change of a capacity or sharing table (the ones the change log watches) runs
  ``SELECT pg_notify('renkei_registry', payload)`` in its transaction. PostgreSQL delivers
  a notification only when (and if) that transaction commits, once per transaction for an
  identical payload, so a rolled-back change never signals and a committed one always
  does (no window between commit and signal).
- **Payload**: ``"changed <origin>"``, where ``origin`` is a random token of the sending
  engine (:attr:`ChangeLog.origin`). It names no firm, row or value: any database user
  may listen on a channel, and a listener needs only "something changed".
- **Receiving**: :func:`follow_remote_changes` starts one daemon thread per engine holding
  its own connection (not one of the pool) in ``LISTEN renkei_registry``. A notification of
  another origin calls :meth:`ChangeLog.record_remote`: every index built before it is stale
  and so are the sharing views. The next request rebuilds the index as an expired one is
  (:mod:`~renkei.cloud.capacity.index`): in the request up to
  ``SYNC_REBUILD_MAX_MACHINES`` machines (visible within a second), in the background above
  (visible once the rebuild is done, ≈ 2–3 s at 100,000 machines; searches meanwhile use
  the previous index). Its own engine's notifications are skipped (those commits are
  already patched in exactly). After a lost connection it reconnects every
  :data:`RETRY_S` seconds and, once back, marks everything stale too (notifications sent
  meanwhile are lost).
- **SQLite** has no notifications: each process sees others' writes after
  ``capacity_cache_s`` (the periodic rebuild), as before; nothing here runs.
"""

from __future__ import annotations

import logging
import threading
import weakref
from typing import Any, Final

import psycopg
from sqlalchemy import Engine

from renkei.cloud.capacity.index.changelog import (
    CHANNEL,
    ChangeLog,
    change_log,
    notify_payload,
)

__all__ = [
    "CHANNEL",
    "FIRST_LISTEN_S",
    "RETRY_S",
    "RemoteChanges",
    "follow_remote_changes",
    "stop_following",
]

logger = logging.getLogger("renkei.cloud.capacity")

#: Seconds between reconnection attempts of a listener that lost its connection.
RETRY_S: Final = 1.0
#: Seconds :func:`follow_remote_changes` waits for the listener's first connection.
FIRST_LISTEN_S: Final = 5.0
#: Seconds a listener waits for notifications before checking whether it should stop.
_POLL_S: Final = 0.25
#: libpq TCP keepalives: a silently vanished server is noticed within about a minute.
_KEEPALIVE: Final = {
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}


class RemoteChanges:
    """The listener thread of one engine (see the module docstring).

    Args:
        engine: a PostgreSQL engine (``postgresql+psycopg://``).
        log: the engine's change log (:meth:`ChangeLog.record_remote` per notification).
    """

    def __init__(self, *, engine: Engine, log: ChangeLog) -> None:
        cargs, cparams = engine.dialect.create_connect_args(engine.url)
        self._cargs: list[Any] = list(cargs)
        self._cparams: dict[str, Any] = {**cparams, **_KEEPALIVE}
        self._log = log
        self._own = notify_payload(log)
        self._stop = threading.Event()
        self.listening = threading.Event()
        """Set while the thread holds a connection in ``LISTEN`` (tests wait for it)."""
        self.received = 0
        """Notifications of other origins received (each made the indexes stale)."""
        self._thread = threading.Thread(
            target=self._run, name="renkei-registry-listen", daemon=True
        )

    def start(self) -> None:
        """Start the thread (returns at once; see :attr:`listening`)."""
        self._thread.start()

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the thread and close its connection, waiting up to ``timeout_s`` s for it
        (0: do not wait; it ends within a quarter second by itself)."""
        self._stop.set()
        if timeout_s > 0 and self._thread.is_alive():
            self._thread.join(timeout_s)

    def _run(self) -> None:
        reported = False  # one warning per outage, not one per retry
        while not self._stop.is_set():
            try:
                self._listen()
            except psycopg.Error as exc:  # connection lost or refused: retry
                if self._stop.is_set():
                    break  # closed meanwhile (its database may be gone already)
                if self.listening.is_set():
                    reported = False  # it was up: a new outage
                self.listening.clear()
                if not reported:
                    logger.warning(
                        "registry change feed (LISTEN %s) unavailable: %s; retrying every %.0f s",
                        CHANNEL,
                        str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                        RETRY_S,
                    )
                    reported = True
                self._stop.wait(RETRY_S)
        self.listening.clear()

    def _listen(self) -> None:
        with psycopg.connect(
            *self._cargs, **self._cparams, autocommit=True, connect_timeout=5
        ) as conn:
            conn.execute(f"LISTEN {CHANNEL}")
            # whatever changed while we were not listening (start-up: harmless rebuild)
            self._log.record_remote()
            self.listening.set()
            while not self._stop.is_set():
                for note in conn.notifies(timeout=_POLL_S):
                    if note.payload != self._own:
                        self.received += 1
                        self._log.record_remote()
                    if self._stop.is_set():
                        break


_FOLLOWERS: weakref.WeakKeyDictionary[Engine, RemoteChanges] = weakref.WeakKeyDictionary()
_FOLLOWERS_LOCK = threading.Lock()


def follow_remote_changes(engine: Engine) -> RemoteChanges | None:
    """Start (once per engine) the listener feeding ``change_log(engine)`` with other
    processes' commits; ``None`` for databases without notifications (SQLite).

    Waits up to :data:`FIRST_LISTEN_S` seconds for the listener's first connection, so
    that an index built after this call never misses a notification (if it is not up by
    then, it keeps trying in the background and marks everything stale once connected).
    """
    if engine.dialect.name != "postgresql":
        return None
    with _FOLLOWERS_LOCK:
        follower = _FOLLOWERS.get(engine)
        if follower is None:
            follower = _FOLLOWERS[engine] = RemoteChanges(engine=engine, log=change_log(engine))
            follower.start()
    follower.listening.wait(FIRST_LISTEN_S)
    return follower


def stop_following(engine: Engine, *, timeout_s: float = 5.0) -> None:
    """Stop ``engine``'s listener, if any (before disposing of the engine); waits up to
    ``timeout_s`` s for its thread (0: do not wait)."""
    with _FOLLOWERS_LOCK:
        follower = _FOLLOWERS.pop(engine, None)
    if follower is not None:
        follower.close(timeout_s)
