"""Periodic reconciliation of operator counts into InfluxDB (``renkei cloud oee-sync``).

Why a writer process does it: the API's InfluxDB user is read-only in the compose stack
(least privilege, ``deploy/influxdb/init-v1.sh``), so the API's immediate attempt to write
an entry (:func:`renkei.cloud.oee.entries.sync`) answers ``pending``; and even where the
API can write, a gateway's buffered backlog arriving after an entry was applied is not
masked, and a deletion whose revert failed leaves rows masked. One run of
:class:`OeeReconciler`, made with the writer (ingest) credentials, repairs all three. Per
firm of the registry (every query names the firm; another firm's rows are never read or
written):

1. **apply** every entry whose interval ends within the lookback window
   (``now - lookback_s``, default 72 h) or that was recorded/corrected since the previous
   run (:func:`~renkei.cloud.oee.operator.apply_interval`, idempotent: late gateway rows
   get masked, rows already masked are left alone);
2. **scan** the window, plus the intervals of entries changed or deleted since the
   previous run (from the audit log, incl. a corrected entry's previous interval), in
   spans of at most one day: masked gateway rows no current entry of their machine covers
   get their own values back; operator points outside every entry are deleted; an entry
   whose interval holds operator points of more than one series, off its own minute grid
   (an earlier version of it, other tags) or not all of them is reverted and applied
   afresh. The operator points of an entry this process already wrote as it is now are
   not rewritten unless a late row was masked or they are found stale.

A run is idempotent: a second run right after the first changes nothing (its report says
0 rows masked/restored). "Since the previous run" is kept in memory (the first run of a
process uses the window's start), with a margin for transactions committing late.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from sqlalchemy import or_, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from renkei.cloud._exceptions import StoreRejected, StoreUnavailable
from renkei.cloud.disruption import as_utc
from renkei.cloud.oee.entries import interval_of
from renkei.cloud.oee.operator import (
    STEP_MS,
    OperatorInterval,
    apply_interval,
    delete_operator_points,
    masked_rows,
    operator_points,
    restore_rows,
    revert_interval,
)
from renkei.cloud.registry import AuditEvent, Firm, OperatorCount, session_scope
from renkei.cloud.registry.oee_counts import MAX_INTERVAL_S
from renkei.cloud.store.influx import InfluxSettings

__all__ = ["DEFAULT_LOOKBACK_S", "OeeReconciler", "ReconcileReport"]

log = logging.getLogger(__name__)

DEFAULT_LOOKBACK_S: Final = 72 * 3600
"""Default lookback window, s: entries ending within it are re-applied every run."""
_MARGIN: Final = timedelta(minutes=2)
_DAY_MS: Final = MAX_INTERVAL_S * 1000
_ACTIONS: Final = ("operator_counts.create", "operator_counts.replace", "operator_counts.delete")
#: Most entries (and audit events) one firm's run looks at.
_MAX_ENTRIES: Final = 10_000

Span = tuple[str | None, int, int]
"""(machine or None = all of the firm's machines, start ms, end ms)."""
_Key = tuple[str, int, int]


def _key(iv: OperatorInterval) -> _Key:
    return (iv.machine, iv.start_ms, iv.end_ms)


@dataclass(slots=True)
class _Scan:
    """What one firm's scans found: the entries applied this run, the operator point times
    and series seen inside each entry, the entries to rebuild."""

    applied: dict[_Key, OperatorInterval] = field(default_factory=dict)
    times: defaultdict[_Key, set[int]] = field(default_factory=lambda: defaultdict(set))
    series: defaultdict[_Key, set[tuple[tuple[str, str], ...]]] = field(
        default_factory=lambda: defaultdict(set)
    )
    stale: dict[_Key, OperatorInterval] = field(default_factory=dict)


@dataclass(slots=True, kw_only=True)
class ReconcileReport:
    """What one run did (counts over all firms)."""

    entries: int = 0
    """Entries applied."""
    rows_masked: int = 0
    """Gateway rows newly masked (late rows, entries the API could not write)."""
    rows_restored: int = 0
    """Masked gateway rows no entry covers any more, given their own values back."""
    gaps_cleared: int = 0
    """Stretches of stray operator points deleted."""
    rebuilt: int = 0
    """Entries reverted and applied afresh (stale operator points inside them)."""
    failed_firms: list[str] = field(default_factory=list)
    """Firms InfluxDB failed for (logged; the next run tries again)."""

    @property
    def ok(self) -> bool:
        return not self.failed_firms


def _ms(t: datetime) -> int:
    return int(as_utc(t).timestamp() * 1000)


def _chunks(start_ms: int, end_ms: int) -> Iterator[tuple[int, int]]:
    for a in range(start_ms, end_ms, _DAY_MS):
        yield a, min(a + _DAY_MS, end_ms)


def _covering(intervals: list[OperatorInterval], t_ms: int) -> OperatorInterval | None:
    for iv in intervals:
        if iv.start_ms <= t_ms < iv.end_ms:
            return iv
    return None


def _gaps(intervals: list[OperatorInterval], start_ms: int, end_ms: int) -> list[tuple[int, int]]:
    """``[start_ms, end_ms)`` minus the (non-overlapping) ``intervals``."""
    out: list[tuple[int, int]] = []
    at = start_ms
    for iv in sorted(intervals, key=lambda i: i.start_ms):
        if iv.start_ms > at:
            out.append((at, min(iv.start_ms, end_ms)))
        at = max(at, iv.end_ms)
        if at >= end_ms:
            break
    if at < end_ms:
        out.append((at, end_ms))
    return [(a, b) for a, b in out if b > a]


class OeeReconciler:
    """Brings InfluxDB's ``oee`` in line with the registry's operator counts, one
    :meth:`run` at a time (see the module docstring).

    Args:
        engine: the registry.
        influx: InfluxDB with a user that may write (the ingest's).
        lookback_s: the window, s (> 0): entries ending within it are applied every run
            and its masked rows are checked.
        clock: current UTC time (default: the system clock).
    """

    def __init__(
        self,
        *,
        engine: Engine,
        influx: InfluxSettings,
        lookback_s: float = DEFAULT_LOOKBACK_S,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if not lookback_s > 0:
            raise ValueError(f"lookback_s must be > 0, got {lookback_s}")
        self._engine = engine
        self._influx = influx
        self._lookback = timedelta(seconds=lookback_s)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._since: datetime | None = None
        #: entry id -> (start ms, end ms, good, reject) as last applied (in full)
        self._written: dict[int, tuple[int, int, int, int]] = {}

    def run(self) -> ReconcileReport:
        """One reconciliation of every firm.

        InfluxDB failing for a firm is logged and reported (``failed_firms``); the other
        firms go on, and the next run retries (``since`` only advances after a clean run).

        Raises:
            sqlalchemy.exc.SQLAlchemyError: the registry failed.
        """
        now = as_utc(self._clock())
        window_start = now - self._lookback
        since = (self._since or window_start) - _MARGIN
        report = ReconcileReport()
        written: dict[int, tuple[int, int, int, int]] = {}
        with session_scope(self._engine) as session:
            firms = list(session.scalars(select(Firm.id).order_by(Firm.id)))
            for firm in firms:
                try:
                    self._firm(session, firm, window_start, now, since, written, report)
                except (StoreUnavailable, StoreRejected) as exc:
                    log.error("oee-sync: firm %s: InfluxDB: %s", firm, exc)
                    report.failed_firms.append(firm)
        self._written = written
        if report.ok:
            self._since = now
        log.info(
            "oee-sync: %d entries applied, %d rows masked, %d restored, %d stray stretches "
            "cleared, %d rebuilt, %d firms failed",
            report.entries,
            report.rows_masked,
            report.rows_restored,
            report.gaps_cleared,
            report.rebuilt,
            len(report.failed_firms),
        )
        return report

    def _firm(
        self,
        session: Session,
        firm: str,
        window_start: datetime,
        now: datetime,
        since: datetime,
        written: dict[int, tuple[int, int, int, int]],
        report: ReconcileReport,
    ) -> None:
        entries = session.scalars(
            select(OperatorCount)
            .where(
                OperatorCount.firm_id == firm,
                or_(OperatorCount.end > window_start, OperatorCount.recorded_at >= since),
            )
            .order_by(OperatorCount.machine_id, OperatorCount.start)
            .limit(_MAX_ENTRIES)
        ).all()
        now_ms = _ms(now) + 1
        spans: list[Span] = [(None, _ms(window_start), now_ms)]
        scan = _Scan()
        for row in entries:
            iv = interval_of(session, row)
            # entries this process wrote as they are: mask late rows; points checked below
            mark = (iv.start_ms, iv.end_ms, iv.good, iv.reject)
            full = self._written.get(row.id) != mark
            result = apply_interval(self._influx, iv, points="always" if full else "when_masking")
            written[row.id] = mark
            report.rows_masked += result.rows
            report.entries += 1
            scan.applied[_key(iv)] = iv
            if iv.start_ms < spans[0][1] or iv.end_ms > now_ms:
                spans.append((iv.machine, iv.start_ms, iv.end_ms))
        spans.extend(self._changed_spans(session, firm, since))
        for machine, start_ms, end_ms in spans:
            for a, b in _chunks(start_ms, end_ms):
                self._scan(session, firm, machine, a, b, scan, report)
        for key, iv in scan.applied.items():
            expected = set(range(iv.start_ms, iv.end_ms, STEP_MS))
            if scan.times[key] != expected or len(scan.series[key]) > 1:
                scan.stale[key] = iv
        for iv in scan.stale.values():
            revert_interval(self._influx, iv)
            apply_interval(self._influx, iv)
            report.rebuilt += 1

    def _changed_spans(self, session: Session, firm: str, since: datetime) -> list[Span]:
        """Intervals of the firm's entries created, corrected or deleted since ``since``,
        and a corrected entry's interval before the correction."""
        events = session.scalars(
            select(AuditEvent)
            .where(
                AuditEvent.owner_firm_id == firm,
                AuditEvent.action.in_(_ACTIONS),
                AuditEvent.at >= since,
            )
            .order_by(AuditEvent.id)
            .limit(_MAX_ENTRIES)
        ).all()
        found: list[AuditEvent] = list(events)
        for ev in events:
            if ev.action == "operator_counts.replace":
                before = session.scalars(
                    select(AuditEvent)
                    .where(
                        AuditEvent.owner_firm_id == firm,
                        AuditEvent.resource == ev.resource,
                        AuditEvent.id < ev.id,
                    )
                    .order_by(AuditEvent.id.desc())
                    .limit(1)
                ).first()
                if before is not None:
                    found.append(before)
        out: list[Span] = []
        for ev in found:
            try:
                machine = str(ev.detail["machine_id"])
                start = _ms(datetime.fromisoformat(ev.detail["start"]))
                end = _ms(datetime.fromisoformat(ev.detail["end"]))
            except (KeyError, TypeError, ValueError):
                log.warning("oee-sync: audit event %d without an interval: skipped", ev.id)
                continue
            out.append((machine, start, end))
        return out

    def _scan(
        self,
        session: Session,
        firm: str,
        machine: str | None,
        start_ms: int,
        end_ms: int,
        scan: _Scan,
        report: ReconcileReport,
    ) -> None:
        """Restore uncovered masked rows and delete stray operator points in ``[start_ms,
        end_ms)`` (at most one day) of ``firm``; note the operator points each entry has
        (``scan``: entries with stale ones are rebuilt after all spans)."""
        stmt = select(OperatorCount).where(
            OperatorCount.firm_id == firm,
            OperatorCount.start < datetime.fromtimestamp(end_ms / 1000, UTC),
            OperatorCount.end > datetime.fromtimestamp(start_ms / 1000, UTC),
        )
        if machine is not None:
            stmt = stmt.where(OperatorCount.machine_id == machine)
        cover: dict[str, list[OperatorInterval]] = defaultdict(list)
        for row in session.scalars(stmt.limit(_MAX_ENTRIES)):
            cover[row.machine_id].append(interval_of(session, row))

        rows = masked_rows(
            self._influx, firm=firm, machine=machine, start_ms=start_ms, end_ms=end_ms
        )
        stray = [r for r in rows if _covering(cover[r[0].get("machine", "")], r[1]) is None]
        report.rows_restored += restore_rows(self._influx, stray)

        points = operator_points(
            self._influx, firm=firm, machine=machine, start_ms=start_ms, end_ms=end_ms
        )
        orphans: dict[str, list[int]] = defaultdict(list)
        for tags, t_ms in points:
            m = tags.get("machine", "")
            iv = _covering(cover[m], t_ms)
            if iv is None:
                orphans[m].append(t_ms)
                continue
            key = _key(iv)
            scan.times[key].add(t_ms)
            scan.series[key].add(tuple(sorted(tags.items())))
            if (t_ms - iv.start_ms) % STEP_MS or len(scan.series[key]) > 1:
                scan.stale[key] = iv
        for m, times in sorted(orphans.items()):
            for a, b in _gaps(cover[m], start_ms, end_ms):
                if not any(a <= t < b for t in times):
                    continue
                delete_operator_points(self._influx, firm=firm, machine=m, start_ms=a, end_ms=b)
                report.gaps_cleared += 1
