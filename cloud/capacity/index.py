"""The in-memory capacity index: every machine's attributes and spare hours, for search.

Partner search (:mod:`renkei.cloud.capacity.search`) and regional aggregates must look at the whole
registry (10,000 firms / 100,000 machines) within milliseconds, which rules out reading
machines and bookings from the database per request (≈ 2–3 s at that size). The index
keeps what they need in numpy arrays:

- per machine row: firm, site, capability class, calendar, availability ratio, the
  compatibility attributes (kN, mm, g; ``NaN`` = not applicable) and a row of *booked
  hours* per day (``float32``) in an append-only store;
- per calendar: scheduled hours per day (a few distinct calendars serve all machines);
- per firm: name, region, and its live machine rows (CSR layout ``by_firm``/``firm_ptr``).

Spare hours are computed on the fly for the rows a request selects, with the formula of
:mod:`renkei.cloud.capacity.spare`: ``max(0, available - booked - available × (1 - ratio))``.

Columns are site-local days from :attr:`CapacityIndex.start` (today in
``settings.timezone`` when built) for ``settings.horizon_days`` + 7 days, so an index
built yesterday still covers today's horizon; spare hours of a date do not depend on
the day the index was built.

Freshness (what a search sees):

- Every commit of a session that adds, changes or deletes a firm, site, line, machine or
  booking is recorded in the engine's :class:`ChangeLog` (SQLAlchemy ``after_flush`` /
  ``after_commit`` listeners, :func:`install_listeners`). The next request patches the
  index *per firm*: the firm's rows are re-read (a few indexed queries, milliseconds)
  and replace its old rows. So registry and booking changes are visible at once.
- Bulk DML statements on those tables (``session.execute(insert(Machine), rows)``) and
  changes of more than :data:`PATCH_MAX_FIRMS` firms at once trigger a full rebuild.
- Writes that bypass this process's sessions (another API worker, the CLI) are picked up
  by the periodic full rebuild every ``settings.capacity_cache_s`` seconds, which also
  refreshes measured availability and compacts rows of replaced firms.
- Full rebuilds of large indexes (more than :data:`SYNC_REBUILD_MAX_MACHINES` machines)
  that are only due to age or a new day run in a background thread while requests keep
  using the previous index; the first build, and rebuilds forced by changes, are done
  in the request.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from functools import lru_cache
from itertools import chain
from typing import Any, Final
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
from sqlalchemy import Engine, String, event, select, type_coerce
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import ORMExecuteState, Session

from renkei.cloud.api.deps import AppState
from renkei.cloud.capacity import ShiftCalendar, available_hours_matrix, capability_class
from renkei.cloud.capacity.service import availability_cache
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
    "ATTRIBUTES",
    "CHANGED_FIRMS",
    "PATCH_MAX_FIRMS",
    "SLACK_DAYS",
    "SYNC_REBUILD_MAX_MACHINES",
    "CapacityIndex",
    "CapacityIndexService",
    "ChangeLog",
    "ChangeSet",
    "change_log",
    "index_service",
    "install_listeners",
    "normalize_label",
]

logger = logging.getLogger("renkei.cloud.api.capacity")

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: Machine attributes kept per row (units in the names); NaN where not applicable.
ATTRIBUTES: Final = (
    "clamp_force_kN",
    "tie_bar_h_mm",
    "tie_bar_v_mm",
    "min_mold_height_mm",
    "max_mold_height_mm",
    "shot_capacity_g",
    "locating_ring_mm",
)
#: Extra days the index covers beyond the horizon (so yesterday's index still serves).
SLACK_DAYS: Final = 7
#: A commit touching more firms than this is applied by a full rebuild, not a patch.
PATCH_MAX_FIRMS: Final = 200
#: Age- or day-triggered rebuilds of larger indexes run in the background.
SYNC_REBUILD_MAX_MACHINES: Final = 20_000

_CAPACITY_TABLES: Final = frozenset({"firm", "site", "line", "machine", "capacity_booking"})
_GRANT_TABLES: Final = frozenset({"sharing_grant", "partner_group", "partner_group_member"})
_PENDING: Final = "renkei_capacity_changes"
#: Execution option naming the firms a bulk statement on a capacity table touches (all
#: its rows are theirs), e.g. ``session.execute(delete(CapacityBooking).where(...),
#: execution_options={CHANGED_FIRMS: ("acme",)})``; without it such a statement forces a
#: full rebuild. The registry's bulk import sets it for the importing firm.
CHANGED_FIRMS: Final = CHANGED_FIRMS_OPTION
_SERVICE_KEY: Final = "capacity_index"
_NORMALIZE = re.compile(r"[\s\-_]+")


def normalize_label(value: str) -> str:
    """Resin/certification label for matching: case-folded, without spaces, ``-``, ``_``.

    ``"IATF 16949"`` and ``"iatf16949"`` match, as do ``"PA66-GF30"`` and ``"pa66gf30"``.
    """
    return _NORMALIZE.sub("", value).casefold()


# ---------------------------------------------------------------------- change tracking


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
        self._lock = threading.Lock()
        self._entries: deque[tuple[int, ChangeSet]] = deque(maxlen=keep)
        self.version = 0
        self.grants_version = 0

    def record(self, changes: ChangeSet) -> None:
        """Append one commit's changes."""
        with self._lock:
            if changes.capacity:
                self.version += 1
                self._entries.append((self.version, changes))
            if changes.grants:
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


# ---------------------------------------------------------------------- the index


class _BookedStore:
    """Append-only rows of booked hours per day (``float32``), shared by index versions.

    Rows are only ever appended (under the service lock), never overwritten, so an index
    object a request is reading stays consistent while a newer one is being made.
    """

    def __init__(self, rows: int, days: int) -> None:
        self.data = np.zeros((max(rows, 1024), days), dtype=np.float32)
        self.used = 0

    def append(self, block: npt.NDArray[np.float32]) -> IntArray | None:
        """Store ``block`` (k × days); its row numbers, or ``None`` when full."""
        k = block.shape[0]
        if self.used + k > self.data.shape[0]:
            return None
        self.data[self.used : self.used + k] = block
        rows = np.arange(self.used, self.used + k, dtype=np.int64)
        self.used += k
        return rows


@dataclass(frozen=True, eq=False, kw_only=True)
class CapacityIndex:
    """One immutable version of the index (see the module docstring).

    Row arrays are indexed by machine row; rows of replaced firms stay in the arrays with
    ``m_live`` false until the next full rebuild. ``by_firm[firm_ptr[f]:firm_ptr[f+1]]``
    are the live rows of firm position ``f``.

    Attributes:
        start: site-local date of column 0; days: number of columns.
        version: the :class:`ChangeLog` version it reflects.
        built_at, full_built_at: ``time.monotonic()`` of the last change and of the last
            full build.
        cal_hours: scheduled hours (h) per calendar row and day, shape (calendars, days).
    """

    start: date
    days: int
    version: int
    built_at: float
    full_built_at: float
    cal_hours: FloatArray
    cal_keys: Mapping[str, int]
    firm_ids: list[str]
    firm_names: list[str]
    firm_regions: list[str]
    firm_pos: Mapping[str, int]
    site_ids: list[str]
    site_firm: list[int]
    site_regions: list[str]
    site_resins: list[tuple[str, ...]]
    site_certs: list[tuple[str, ...]]
    site_resins_norm: list[str]
    """Normalised labels joined as ``|a|b|`` (strings and tuples of strings are not
    tracked by Python's cyclic GC, which keeps full collections short)."""
    site_certs_norm: list[str]
    site_pos: Mapping[str, int]
    class_ids: list[str]
    class_pos: Mapping[str, int]
    class_process: IntArray
    processes: list[str]
    machine_ids: list[str]
    machine_names: list[str]
    m_line: list[str]
    m_live: BoolArray
    m_firm: IntArray
    m_site: IntArray
    m_class: IntArray
    m_cal: IntArray
    m_row: IntArray
    m_ratio: FloatArray
    m_measured: BoolArray
    attrs: Mapping[str, FloatArray]
    by_firm: IntArray
    firm_ptr: IntArray
    store: _BookedStore = field(repr=False)

    @property
    def live_machines(self) -> int:
        """Number of machines in the index."""
        return int(self.by_firm.shape[0])

    def column(self, day: date) -> int:
        """Column of site-local date ``day`` (may be outside ``0..days``)."""
        return (day - self.start).days

    def rows_of(self, firm_positions: IntArray) -> tuple[IntArray, IntArray]:
        """Live machine rows of the given firm positions, and the position index of each.

        Returns:
            ``(rows, owner)`` where ``owner[i]`` indexes ``firm_positions``.
        """
        lo = self.firm_ptr[firm_positions]
        lengths = self.firm_ptr[firm_positions + 1] - lo
        total = int(lengths.sum())
        if total == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        owner = np.repeat(np.arange(len(firm_positions), dtype=np.int64), lengths)
        ends = np.cumsum(lengths)
        offsets = np.arange(total, dtype=np.int64) - np.repeat(ends - lengths, lengths)
        return self.by_firm[np.repeat(lo, lengths) + offsets], owner

    def spare(self, rows: IntArray, lo: int, hi: int) -> FloatArray:
        """Spare hours of machine ``rows`` on day columns ``[lo, hi)``, shape (rows, hi-lo).

        ``max(0, available - booked - available × (1 - ratio))`` per row and day (hours).

        Raises:
            IndexError: columns outside ``0..days``.
        """
        if lo < 0 or hi > self.days or lo > hi:
            raise IndexError(f"columns [{lo}, {hi}) outside the index's 0..{self.days}")
        # available - booked - available * (1 - ratio) == available * ratio - booked
        spare = self.cal_hours[:, lo:hi][self.m_cal[rows]]
        spare *= self.m_ratio[rows][:, None]
        spare -= self.store.data[self.m_row[rows], lo:hi]
        np.maximum(spare, 0.0, out=spare)
        return spare

    def stats(self) -> dict[str, Any]:
        """Sizes for logs and the benchmark."""
        return {
            "machines": self.live_machines,
            "rows": len(self.machine_ids),
            "firms": len(self.firm_ids),
            "calendars": int(self.cal_hours.shape[0]),
            "classes": len(self.class_ids),
            "days": self.days,
            "booked_store_MB": round(self.store.data.nbytes / 1e6, 1),
        }


@lru_cache(maxsize=8192)
def _class_of(process: str, clamp: float | None, tonnage: float | None, axes: int | None) -> str:
    try:
        return capability_class(process, clamp_force_kN=clamp, tonnage_kN=tonnage, axes=axes).id
    except ValueError:
        return process


@dataclass(slots=True)
class _Batch:
    """Rows read from the registry for some firms (or all)."""

    firms: list[Any]
    """(id, name, region)"""
    sites: list[Any]
    """(id, firm_id, region, resins, certifications, calendar)"""
    machines: list[Any]
    """(id, firm_id, name, process, *ATTRIBUTES, tonnage_kN, axes, line_id, site_id)"""
    bookings: list[Any]
    """(machine_id, start, end, hours_per_day)"""


def _load(session: Session, firms: Sequence[str] | None, start: date, end: date) -> _Batch:
    """Read firms, sites, machines and bookings overlapping ``[start, end)``."""
    f_stmt = select(Firm.id, Firm.name, Firm.region)
    s_stmt = select(
        Site.id, Site.firm_id, Site.region, Site.resins, Site.certifications, Site.calendar
    )
    m_stmt = select(
        Machine.id,
        Machine.firm_id,
        Machine.name,
        type_coerce(Machine.process, String),
        Machine.clamp_force_kN,
        Machine.tie_bar_h_mm,
        Machine.tie_bar_v_mm,
        Machine.min_mold_height_mm,
        Machine.max_mold_height_mm,
        Machine.shot_capacity_g,
        Machine.locating_ring_mm,
        Machine.tonnage_kN,
        Machine.axes,
        Machine.line_id,
        Line.site_id,
    ).join(Line, Machine.line_id == Line.id)
    b_stmt = (
        select(
            CapacityBooking.machine_id,
            type_coerce(CapacityBooking.start, String),
            type_coerce(CapacityBooking.end, String),
            CapacityBooking.hours_per_day,
        )
        .where(CapacityBooking.end >= start)
        .where(CapacityBooking.start < end)
        .where(CapacityBooking.hours_per_day > 0)
    )
    if firms is not None:
        ids = list(firms)
        f_stmt = f_stmt.where(Firm.id.in_(ids))
        s_stmt = s_stmt.where(Site.firm_id.in_(ids))
        m_stmt = m_stmt.where(Machine.firm_id.in_(ids))
        b_stmt = b_stmt.where(
            CapacityBooking.machine_id.in_(select(Machine.id).where(Machine.firm_id.in_(ids)))
        )
    conn = session.connection()  # Core execution: no ORM result processing
    return _Batch(
        firms=[tuple(r) for r in conn.execute(f_stmt)],
        sites=[tuple(r) for r in conn.execute(s_stmt)],
        machines=[tuple(r) for r in conn.execute(m_stmt)],
        bookings=[tuple(r) for r in conn.execute(b_stmt)],
    )


def _joined(labels: Iterable[str]) -> str:
    """``|a|b|`` of the normalised labels (test membership with ``f"|{x}|" in s``)."""
    return "|" + "".join(f"{normalize_label(x)}|" for x in labels)


def _as_list(value: Any) -> list[str]:
    if isinstance(value, str):  # JSON text from a driver that does not decode it
        value = json.loads(value)
    return [str(v) for v in value or []]


_EPOCH_ORDINAL: Final = date(1970, 1, 1).toordinal()


def _ordinals(values: list[Any]) -> IntArray:
    """Proleptic ordinals of ISO date strings (SQLite) or ``date`` objects (PostgreSQL)."""
    if values and isinstance(values[0], date):
        return np.fromiter((v.toordinal() for v in values), np.int64, len(values))
    days = np.array(values, dtype="datetime64[D]").astype(np.int64)
    return days + _EPOCH_ORDINAL


def _booked_block(
    bookings: list[tuple[str, Any, Any, float]],
    local: Mapping[str, int],
    n: int,
    start: date,
    days: int,
) -> npt.NDArray[np.float32]:
    """Booked hours per machine (``local`` row) and day column, summed (vectorised)."""
    out = np.zeros((n, days), dtype=np.float64)
    if not bookings or n == 0:
        return out.astype(np.float32)
    # Column lists by comprehension: zip(*rows) is ~40x slower for 10^5 rows.
    rows = np.fromiter((local.get(b[0], -1) for b in bookings), np.int64, len(bookings))
    origin = start.toordinal()
    first = _ordinals([b[1] for b in bookings]) - origin
    last = _ordinals([b[2] for b in bookings]) - origin
    h = np.fromiter((b[3] for b in bookings), np.float64, len(bookings))
    s = np.clip(first, 0, None)
    e = np.clip(last, None, days - 1)
    keep = (rows >= 0) & (s <= e) & (h > 0)
    r, s, e, h = rows[keep], s[keep], e[keep], h[keep]
    lengths = e - s + 1
    total = int(lengths.sum())
    if total:
        ends_c = np.cumsum(lengths)
        day = (
            np.arange(total, dtype=np.int64)
            - np.repeat(ends_c - lengths, lengths)
            + np.repeat(s, lengths)
        )
        flat = np.repeat(r, lengths) * days + day
        sums = np.bincount(flat, weights=np.repeat(h, lengths), minlength=n * days)
        out = sums.astype(np.float64, copy=False).reshape(n, days)
    return out.astype(np.float32)


@dataclass(slots=True)
class _Inputs:
    """What a build needs besides the registry rows."""

    start: date
    days: int
    default_calendar: ShiftCalendar
    default_ratio: float
    ratios: Mapping[tuple[str, str], float]


def _empty(inputs: _Inputs, version: int, store_rows: int) -> CapacityIndex:
    now = time.monotonic()
    default_row = available_hours_matrix([inputs.default_calendar], inputs.start, inputs.days)
    return CapacityIndex(
        start=inputs.start,
        days=inputs.days,
        version=version,
        built_at=now,
        full_built_at=now,
        cal_hours=default_row,
        cal_keys={"": 0},
        firm_ids=[],
        firm_names=[],
        firm_regions=[],
        firm_pos={},
        site_ids=[],
        site_firm=[],
        site_regions=[],
        site_resins=[],
        site_certs=[],
        site_resins_norm=[],
        site_certs_norm=[],
        site_pos={},
        class_ids=[],
        class_pos={},
        class_process=np.zeros(0, np.int64),
        processes=[],
        machine_ids=[],
        machine_names=[],
        m_line=[],
        m_live=np.zeros(0, np.bool_),
        m_firm=np.zeros(0, np.int64),
        m_site=np.zeros(0, np.int64),
        m_class=np.zeros(0, np.int64),
        m_cal=np.zeros(0, np.int64),
        m_row=np.zeros(0, np.int64),
        m_ratio=np.zeros(0, np.float64),
        m_measured=np.zeros(0, np.bool_),
        attrs={a: np.zeros(0, np.float64) for a in ATTRIBUTES},
        by_firm=np.zeros(0, np.int64),
        firm_ptr=np.zeros(1, np.int64),
        store=_BookedStore(store_rows, inputs.days),
    )


def _apply(
    base: CapacityIndex,
    batch: _Batch,
    replaced: Iterable[str],
    inputs: _Inputs,
    version: int,
) -> CapacityIndex | None:
    """A new index: ``base`` with every row of the ``replaced`` firms replaced by ``batch``.

    Returns ``None`` when the booked store is full (a full rebuild is needed).
    """
    # Firms: update or append.
    firm_ids = list(base.firm_ids)
    firm_names = list(base.firm_names)
    firm_regions = list(base.firm_regions)
    firm_pos = dict(base.firm_pos)
    for fid, name, region in batch.firms:
        pos = firm_pos.get(fid)
        if pos is None:
            firm_pos[fid] = len(firm_ids)
            firm_ids.append(fid)
            firm_names.append(name)
            firm_regions.append(region)
        else:
            firm_names[pos] = name
            firm_regions[pos] = region
    # Calendars.
    cal_keys = dict(base.cal_keys)
    new_cal_rows: list[ShiftCalendar] = []

    def cal_row(raw: Any) -> int:
        if not raw:
            return 0
        data = json.loads(raw) if isinstance(raw, str) else raw
        key = json.dumps(data, sort_keys=True)
        row = cal_keys.get(key)
        if row is None:
            try:
                cal = ShiftCalendar.model_validate(data)
            except ValueError:
                logger.warning("invalid site calendar %s; using the default calendar", key)
                cal = inputs.default_calendar
            row = cal_keys[key] = len(cal_keys)
            new_cal_rows.append(cal)
        return row

    # Sites: always appended (old entries of replaced firms become unused).
    site_ids = list(base.site_ids)
    site_firm = list(base.site_firm)
    site_regions = list(base.site_regions)
    site_resins = list(base.site_resins)
    site_certs = list(base.site_certs)
    site_resins_norm = list(base.site_resins_norm)
    site_certs_norm = list(base.site_certs_norm)
    site_pos = dict(base.site_pos)
    site_cal: dict[int, int] = {}
    for sid, fid, region, resins, certs, calendar in batch.sites:
        pos = len(site_ids)
        site_pos[sid] = pos
        site_ids.append(sid)
        site_firm.append(firm_pos.get(fid, -1))
        site_regions.append(region)
        r_list, c_list = tuple(_as_list(resins)), tuple(_as_list(certs))
        site_resins.append(r_list)
        site_certs.append(c_list)
        site_resins_norm.append(_joined(r_list))
        site_certs_norm.append(_joined(c_list))
        site_cal[pos] = cal_row(calendar)
    # Classes and machines.
    class_ids = list(base.class_ids)
    class_pos = dict(base.class_pos)
    processes = list(base.processes)
    process_pos = {p: i for i, p in enumerate(processes)}
    class_process = list(base.class_process.tolist())
    ms = [m for m in batch.machines if m[1] in firm_pos and m[14] in site_pos]
    k = len(ms)
    new_firm = np.empty(k, np.int64)
    new_site = np.empty(k, np.int64)
    new_class = np.empty(k, np.int64)
    new_cal = np.empty(k, np.int64)
    new_ratio = np.full(k, inputs.default_ratio, np.float64)
    new_measured = np.zeros(k, np.bool_)
    ids: list[str] = []
    names: list[str] = []
    lines: list[str] = []
    for i, m in enumerate(ms):
        mid, fid, name, process, clamp, _, _, _, _, _, _, tonnage, axes, line_id, sid = m
        cls = _class_of(str(process), clamp, tonnage, axes)
        c = class_pos.get(cls)
        if c is None:
            c = class_pos[cls] = len(class_ids)
            class_ids.append(cls)
            proc = cls.split(":", 1)[0]
            if proc not in process_pos:
                process_pos[proc] = len(processes)
                processes.append(proc)
            class_process.append(process_pos[proc])
        ids.append(mid)
        names.append(name)
        lines.append(line_id)
        new_firm[i] = firm_pos[fid]
        s = site_pos[sid]
        new_site[i] = s
        new_class[i] = c
        new_cal[i] = site_cal.get(s, 0)
        ratio = inputs.ratios.get((fid, mid))
        if ratio is not None and np.isfinite(ratio):
            new_ratio[i] = ratio
            new_measured[i] = True
    np.clip(new_ratio, 0.0, 1.0, out=new_ratio)
    new_attrs = {
        a: np.array([m[4 + j] for m in ms], dtype=np.float64).reshape(k)
        for j, a in enumerate(ATTRIBUTES)
    }
    local = {mid: i for i, mid in enumerate(ids)}
    block = _booked_block(batch.bookings, local, k, inputs.start, inputs.days)
    store_rows = base.store.append(block)
    if store_rows is None:
        return None
    # Calendar table.
    cal_hours = base.cal_hours
    if new_cal_rows:
        extra = available_hours_matrix(new_cal_rows, inputs.start, inputs.days)
        cal_hours = np.vstack([cal_hours, extra])
    # Retire the replaced firms' old rows, append the new ones.
    m_live = base.m_live.copy()
    for fid in replaced:
        pos = base.firm_pos.get(fid)
        if pos is not None:
            m_live[base.by_firm[base.firm_ptr[pos] : base.firm_ptr[pos + 1]]] = False
    m_live = np.concatenate([m_live, np.ones(k, np.bool_)])
    m_firm = np.concatenate([base.m_firm, new_firm])
    n_firms = len(firm_ids)
    live = np.flatnonzero(m_live)
    by_firm = live[np.argsort(m_firm[live], kind="stable")]
    firm_ptr = np.searchsorted(m_firm[by_firm], np.arange(n_firms + 1)).astype(np.int64)
    now = time.monotonic()
    return CapacityIndex(
        start=inputs.start,
        days=inputs.days,
        version=version,
        built_at=now,
        full_built_at=base.full_built_at,
        cal_hours=cal_hours,
        cal_keys=cal_keys,
        firm_ids=firm_ids,
        firm_names=firm_names,
        firm_regions=firm_regions,
        firm_pos=firm_pos,
        site_ids=site_ids,
        site_firm=site_firm,
        site_regions=site_regions,
        site_resins=site_resins,
        site_certs=site_certs,
        site_resins_norm=site_resins_norm,
        site_certs_norm=site_certs_norm,
        site_pos=site_pos,
        class_ids=class_ids,
        class_pos=class_pos,
        class_process=np.asarray(class_process, dtype=np.int64),
        processes=processes,
        machine_ids=base.machine_ids + ids,
        machine_names=base.machine_names + names,
        m_line=base.m_line + lines,
        m_live=m_live,
        m_firm=m_firm,
        m_site=np.concatenate([base.m_site, new_site]),
        m_class=np.concatenate([base.m_class, new_class]),
        m_cal=np.concatenate([base.m_cal, new_cal]),
        m_row=np.concatenate([base.m_row, store_rows]),
        m_ratio=np.concatenate([base.m_ratio, new_ratio]),
        m_measured=np.concatenate([base.m_measured, new_measured]),
        attrs={a: np.concatenate([base.attrs[a], new_attrs[a]]) for a in ATTRIBUTES},
        by_firm=by_firm,
        firm_ptr=firm_ptr,
        store=base.store,
    )


# ---------------------------------------------------------------------- the service


class CapacityIndexService:
    """Keeps the app's current :class:`CapacityIndex` (one per app, in ``state.services``).

    :meth:`current` returns an index reflecting every change committed through this
    process's sessions (patching or rebuilding first if needed); see the module docstring
    for the refresh rules. Thread-safe: readers never wait for a background rebuild;
    patches are serialised.
    """

    def __init__(self, state: AppState) -> None:
        self._state = state
        self._log = change_log(state.engine)
        self._lock = threading.Lock()
        self._index: CapacityIndex | None = None
        self._background: threading.Thread | None = None
        self._bg_lock = threading.Lock()
        self.full_builds = 0
        self.patches = 0
        self.last_full_s = 0.0
        self.last_patch_s = 0.0

    @property
    def log(self) -> ChangeLog:
        """The change log of the app's engine."""
        return self._log

    def today(self, now: datetime | None = None) -> date:
        """Today in ``settings.timezone`` by the app clock."""
        instant = now if now is not None else self._state.clock()
        return instant.astimezone(ZoneInfo(self._state.settings.timezone)).date()

    def current(self, *, now: datetime | None = None) -> CapacityIndex:
        """The index, up to date with every change committed in this process.

        Args:
            now: the request's clock reading (default: the app clock).
        """
        today = self.today(now)
        index = self._index
        if index is not None and index.version == self._log.version and self._covers(index, today):
            if not self._stale(index, today):
                return index
            if index.live_machines > SYNC_REBUILD_MAX_MACHINES:
                self._start_background(today)
                return index
        with self._lock:
            index = self._index
            if index is None or not self._covers(index, today):
                index = self._full(today)
            else:
                stale = self._stale(index, today)
                if stale and index.live_machines <= SYNC_REBUILD_MAX_MACHINES:
                    index = self._full(today)
                else:
                    if index.version != self._log.version:
                        index = self._patch(index, self._log.since(index.version), today)
                    if stale:
                        self._start_background(today)
            self._index = index
        return index

    def _covers(self, index: CapacityIndex, today: date) -> bool:
        horizon = self._state.settings.horizon_days
        return index.start <= today and index.column(today) + horizon <= index.days

    def _stale(self, index: CapacityIndex, today: date) -> bool:
        age = time.monotonic() - index.full_built_at
        return age > self._state.settings.capacity_cache_s or index.start != today

    def _inputs(self, start: date, batch: _Batch, *, per_firm: bool) -> _Inputs:
        settings = self._state.settings
        return _Inputs(
            start=start,
            days=settings.horizon_days + SLACK_DAYS,
            default_calendar=settings.default_calendar(),
            default_ratio=settings.default_availability_ratio,
            ratios=self._ratios(batch, per_firm=per_firm),
        )

    def _ratios(self, batch: _Batch, *, per_firm: bool) -> dict[tuple[str, str], float]:
        """Measured ratios of the batch's machines (see :class:`AvailabilityCache`)."""
        cache = availability_cache(self._state)
        if not cache.enabled or not batch.machines:
            return {}
        default = self._state.settings.default_calendar()
        site_cal: dict[str, ShiftCalendar] = {}
        parsed: dict[str, ShiftCalendar] = {}
        for sid, _fid, _region, _resins, _certs, raw in batch.sites:
            cal = default
            if raw:
                key = raw if isinstance(raw, str) else json.dumps(raw, sort_keys=True)
                if key not in parsed:
                    try:
                        parsed[key] = ShiftCalendar.model_validate_json(key)
                    except ValueError:
                        parsed[key] = default
                cal = parsed[key]
            site_cal[sid] = cal
        calendars = {(m[1], m[0]): site_cal.get(m[14], default) for m in batch.machines}
        now = self._state.clock()
        if not per_firm:
            return cache.all_ratios(calendars, now=now)
        by_firm: dict[str, dict[str, ShiftCalendar]] = {}
        for (firm, machine), cal in calendars.items():
            by_firm.setdefault(firm, {})[machine] = cal
        out: dict[tuple[str, str], float] = {}
        for firm, cals in by_firm.items():
            out.update(((firm, m), r) for m, r in cache.firm_ratios(firm, cals, now=now).items())
        return out

    def _full(self, today: date) -> CapacityIndex:
        """Build from scratch (called with the lock held, or in the background)."""
        t0 = time.perf_counter()
        version = self._log.version
        days = self._state.settings.horizon_days + SLACK_DAYS
        with self._state.sessions() as session:
            batch = _load(session, None, today, today + timedelta(days=days))
        inputs = self._inputs(today, batch, per_firm=False)
        store_rows = len(batch.machines) + max(1024, len(batch.machines) // 4)
        base = _empty(inputs, version, store_rows)
        index = _apply(base, batch, (), inputs, version)
        assert index is not None  # the store was sized for the batch
        index = replace(index, full_built_at=index.built_at)
        self.full_builds += 1
        self.last_full_s = time.perf_counter() - t0
        logger.info("capacity index built: %s in %.2f s", index.stats(), self.last_full_s)
        return index

    def _patch(self, index: CapacityIndex, changes: ChangeSet | None, today: date) -> CapacityIndex:
        """Apply ``changes`` firm by firm (lock held); full rebuild when not possible."""
        if changes is None or changes.full:
            return self._full(today)
        t0 = time.perf_counter()
        version = self._log.version
        firms = set(changes.firms)
        with self._state.sessions() as session:
            if changes.sites:
                sites = list(changes.sites)
                for s in sites:
                    pos = index.site_pos.get(s)
                    if pos is not None and index.site_firm[pos] >= 0:
                        firms.add(index.firm_ids[index.site_firm[pos]])
                firms.update(session.scalars(select(Site.firm_id).where(Site.id.in_(sites))))
            if len(firms) > PATCH_MAX_FIRMS:
                return self._full(today)
            ordered = sorted(firms)
            end = index.start + timedelta(days=index.days)
            batch = _load(session, ordered, index.start, end)
        inputs = self._inputs(index.start, batch, per_firm=True)
        patched = _apply(index, batch, ordered, inputs, version)
        if patched is None or len(patched.machine_ids) > 1.5 * max(patched.live_machines, 1000):
            return self._full(today)
        self.patches += 1
        self.last_patch_s = time.perf_counter() - t0
        return patched

    def _start_background(self, today: date) -> None:
        """Start a full rebuild in a daemon thread unless one is running."""
        with self._bg_lock:
            if self._background is not None and self._background.is_alive():
                return
            self._background = threading.Thread(
                target=self._rebuild_in_background,
                args=(today,),
                name="renkei-capacity-index",
                daemon=True,
            )
            self._background.start()

    def _rebuild_in_background(self, today: date) -> None:
        try:
            fresh = self._full(today)
        except Exception:  # thread boundary: log, keep serving the current index
            logger.exception("background rebuild of the capacity index failed")
            return
        with self._lock:
            self._index = fresh  # changes since fresh.version are patched on next use

    def stats(self) -> dict[str, Any]:
        """Index sizes and rebuild timings (seconds)."""
        index = self._index
        return (index.stats() if index else {}) | {
            "full_builds": self.full_builds,
            "last_full_build_s": round(self.last_full_s, 3),
            "patches": self.patches,
            "last_patch_s": round(self.last_patch_s, 4),
        }


_CREATE_LOCK = threading.Lock()


def index_service(state: AppState) -> CapacityIndexService:
    """The app's :class:`CapacityIndexService` (created on first use)."""
    service = state.services.get(_SERVICE_KEY)
    if service is None:
        with _CREATE_LOCK:
            service = state.services.get(_SERVICE_KEY)
            if service is None:
                service = state.services[_SERVICE_KEY] = CapacityIndexService(state)
    assert isinstance(service, CapacityIndexService)
    return service
