"""Which committed changes the capacity index must apply: the ORM change log.

Every commit of a session that adds, changes or deletes a firm, site, line, machine or
booking is recorded in the engine's :class:`ChangeLog` by SQLAlchemy session listeners
(``after_flush`` / ``do_orm_execute`` / ``after_commit``, :func:`install_listeners`, installed
on import). Bulk DML statements on those tables force a full rebuild unless they name the
firms they touch (:data:`CHANGED_FIRMS`). Grants, partner groups and memberships bump
``grants_version`` (the search's view cache).

On PostgreSQL the same listeners also signal other processes: a flush or statement that
changes one of these tables runs ``pg_notify`` in its transaction (delivered on commit;
:mod:`~renkei.cloud.capacity.index.remote` listens).
"""

from __future__ import annotations

import math
import threading
import time
import uuid
import weakref
from collections import deque
from dataclasses import dataclass
from itertools import chain
from typing import Any, Final

from sqlalchemy import Engine, event, text
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import ORMExecuteState, Session

from renkei.cloud.registry import (
    CHANGED_FIRMS_OPTION,
    CapacityBooking,
    Firm,
    Line,
    Machine,
    PartnerGroup,
    PartnerGroupMember,
    SharingGrant,
    Site,
)

__all__ = [
    "CHANGED_FIRMS",
    "CHANNEL",
    "ChangeLog",
    "ChangeSet",
    "change_log",
    "install_listeners",
    "notify_payload",
]

_CAPACITY_TABLES: Final = frozenset({"firm", "site", "line", "machine", "capacity_booking"})
_GRANT_TABLES: Final = frozenset({"sharing_grant", "partner_group", "partner_group_member"})
_PENDING: Final = "renkei_capacity_changes"
#: Execution option naming the firms a bulk statement on a capacity table touches (all
#: its rows are theirs), e.g. ``session.execute(delete(CapacityBooking).where(...),
#: execution_options={CHANGED_FIRMS: ("acme",)})``; without it such a statement forces a
#: full rebuild. The registry's bulk import sets it for the importing firm.
CHANGED_FIRMS: Final = CHANGED_FIRMS_OPTION


@dataclass(frozen=True, slots=True)
class ChangeSet:
    """What one or more commits changed, as far as capacity and sharing are concerned.

    Attributes:
        firms: firms whose registry rows or bookings changed.
        sites: sites whose lines changed (their firm is looked up when applying).
        full: a change that cannot be attributed (bulk DML): rebuild everything.
        grants: sharing grants, groups or memberships changed.
    """

    firms: frozenset[str] = frozenset()
    sites: frozenset[str] = frozenset()
    full: bool = False
    grants: bool = False

    def __or__(self, other: ChangeSet) -> ChangeSet:
        return ChangeSet(
            self.firms | other.firms,
            self.sites | other.sites,
            self.full or other.full,
            self.grants or other.grants,
        )

    @property
    def capacity(self) -> bool:
        """Whether capacity inputs (registry rows, calendars, bookings) changed."""
        return self.full or bool(self.firms) or bool(self.sites)


class ChangeLog:
    """Numbered record of committed changes of one engine (see the module docstring).

    ``version`` counts commits that changed capacity inputs, ``grants_version`` commits
    that changed sharing grants or groups. The last ``keep`` capacity changes are kept so
    an index at an older version can be patched; older ones force a full rebuild.
    """

    def __init__(self, keep: int = 4096) -> None:
        self.origin = uuid.uuid4().hex
        """Random token naming this log's engine in cross-process notifications."""
        self._lock = threading.Lock()
        self._entries: deque[tuple[int, ChangeSet]] = deque(maxlen=keep)
        self.version = 0
        self.grants_version = 0
        self.remote_at = -math.inf
        """``time.monotonic()`` of the last change committed by another process (see
        :meth:`record_remote`); an index fully built before it is stale."""

    def record(self, changes: ChangeSet) -> None:
        """Append one commit's changes."""
        with self._lock:
            if changes.capacity:
                self.version += 1
                self._entries.append((self.version, changes))
            if changes.grants:
                self.grants_version += 1

    def record_remote(self) -> None:
        """Another process committed a change of unknown extent: every index built before
        now is stale, and so is every sharing view (``grants_version``)."""
        with self._lock:
            self.remote_at = time.monotonic()
            self.grants_version += 1

    def since(self, version: int) -> ChangeSet | None:
        """Union of the changes after ``version``; ``None`` if they are no longer all kept."""
        with self._lock:
            if version >= self.version:
                return ChangeSet()
            if not self._entries or self._entries[0][0] > version + 1:
                return None
            out = ChangeSet()
            for v, c in self._entries:
                if v > version:
                    out = out | c
            return out


_LOGS: weakref.WeakKeyDictionary[Engine, ChangeLog] = weakref.WeakKeyDictionary()
_LOGS_LOCK = threading.Lock()


def change_log(engine: Engine) -> ChangeLog:
    """The :class:`ChangeLog` of ``engine`` (created on first use)."""
    with _LOGS_LOCK:
        log = _LOGS.get(engine)
        if log is None:
            log = _LOGS[engine] = ChangeLog()
        return log


#: The PostgreSQL notification channel of registry changes (see ``remote``).
CHANNEL: Final = "renkei_registry"
_NOTIFY: Final = text("SELECT pg_notify(:channel, :payload)")


def notify_payload(log: ChangeLog) -> str:
    """The notification an engine with ``log`` sends: no firm, row or value, only which
    engine (so its own listener can skip it)."""
    return f"changed {log.origin}"


def _notify(session: Session) -> None:
    """Signal "registry changed" in the session's transaction (PostgreSQL only).

    PostgreSQL delivers it when the transaction commits (never if it rolls back) and
    merges identical payloads of one transaction into one notification.
    """
    bind = session.bind  # sessions without one bind (none here) do not signal
    engine = getattr(bind, "engine", bind)
    if isinstance(engine, Engine) and engine.dialect.name == "postgresql":
        payload = notify_payload(change_log(engine))
        session.connection().execute(_NOTIFY, {"channel": CHANNEL, "payload": payload})


def _pending(session: Session) -> ChangeSet:
    got = session.info.get(_PENDING)
    return got if isinstance(got, ChangeSet) else ChangeSet()


def _values(obj: Any, attr: str) -> set[str]:
    """Current and pre-flush values of ``attr`` without loading anything."""
    state = sa_inspect(obj)
    out: set[str] = set()
    current = state.dict.get(attr)
    if current is not None:
        out.add(str(current))
    history = state.attrs[attr].history
    out.update(str(v) for v in chain(history.deleted or (), history.unchanged or ()) if v)
    return out


def _after_flush(session: Session, _flush_context: Any) -> None:
    firms: set[str] = set()
    sites: set[str] = set()
    grants = False
    full = False
    for obj in chain(session.new, session.dirty, session.deleted):
        if isinstance(obj, Machine | CapacityBooking):
            got = _values(obj, "firm_id")
            firms |= got
            full = full or not got
        elif isinstance(obj, Site):
            got = _values(obj, "firm_id")
            firms |= got
            sites |= _values(obj, "id")
            full = full or not got
        elif isinstance(obj, Line):
            got = _values(obj, "site_id")
            sites |= got
            full = full or not got
        elif isinstance(obj, Firm):
            firms |= _values(obj, "id")
            grants = True
        elif isinstance(obj, SharingGrant | PartnerGroup | PartnerGroupMember):
            grants = True
    if firms or sites or grants or full:
        change = ChangeSet(frozenset(firms), frozenset(sites), full, grants)
        session.info[_PENDING] = _pending(session) | change
        _notify(session)


def _on_execute(state: ORMExecuteState) -> None:
    if not (state.is_insert or state.is_update or state.is_delete):
        return
    table = getattr(getattr(state.statement, "table", None), "name", None)
    if table in _CAPACITY_TABLES or table in _GRANT_TABLES:
        firms = state.execution_options.get(CHANGED_FIRMS)
        if firms is not None and table in _CAPACITY_TABLES:
            # every row the statement touches is one of these firms' (a firm's own import)
            change = ChangeSet(firms=frozenset(firms), grants=table == "firm")
        else:
            change = ChangeSet(full=table in _CAPACITY_TABLES, grants=True)
        state.session.info[_PENDING] = _pending(state.session) | change
        _notify(state.session)


def _after_commit(session: Session) -> None:
    changes = session.info.pop(_PENDING, None)
    if not isinstance(changes, ChangeSet):
        return
    bind = session.bind
    engine = getattr(bind, "engine", bind)
    if isinstance(engine, Engine):
        change_log(engine).record(changes)
    else:  # sessions without one bind: tell every index
        with _LOGS_LOCK:
            logs = list(_LOGS.values())
        for log in logs:
            log.record(changes)


def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)


_INSTALLED = False


def install_listeners() -> None:
    """Register the session listeners feeding :func:`change_log` (idempotent).

    They apply to every :class:`sqlalchemy.orm.Session` of the process; their cost is one
    pass over the flushed objects.
    """
    global _INSTALLED
    if _INSTALLED:
        return
    event.listen(Session, "after_flush", _after_flush)
    event.listen(Session, "do_orm_execute", _on_execute)
    event.listen(Session, "after_commit", _after_commit)
    event.listen(Session, "after_rollback", _after_rollback)
    _INSTALLED = True


install_listeners()
