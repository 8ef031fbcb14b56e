"""The rebuild/refresh service keeping one context's current capacity index.

Refresh rules (what a search sees) are in :mod:`renkei.cloud.capacity.index`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final
from zoneinfo import ZoneInfo

from sqlalchemy import select

from renkei.cloud.capacity.calendar import ShiftCalendar
from renkei.cloud.capacity.index.arrays import CapacityIndex
from renkei.cloud.capacity.index.build import (
    Batch,
    BuildInputs,
    apply_batch,
    empty_index,
    load_batch,
)
from renkei.cloud.capacity.index.changelog import ChangeLog, ChangeSet, change_log
from renkei.cloud.registry import Site

if TYPE_CHECKING:
    from renkei.cloud.capacity.context import CapacityContext

__all__ = ["PATCH_MAX_FIRMS", "SLACK_DAYS", "SYNC_REBUILD_MAX_MACHINES", "CapacityIndexService"]

logger = logging.getLogger("renkei.cloud.capacity")

#: Extra days the index covers beyond the horizon (so yesterday's index still serves).
SLACK_DAYS: Final = 7
#: A commit touching more firms than this is applied by a full rebuild, not a patch.
PATCH_MAX_FIRMS: Final = 200
#: Age- or day-triggered rebuilds of larger indexes run in the background.
SYNC_REBUILD_MAX_MACHINES: Final = 20_000


class CapacityIndexService:
    """Keeps the current :class:`CapacityIndex` of one context (``CapacityContext.index``).

    :meth:`current` returns an index reflecting every change committed through this
    process's sessions (patching or rebuilding first if needed); see the module docstring
    for the refresh rules. Thread-safe: readers never wait for a background rebuild;
    patches are serialised.
    """

    def __init__(self, ctx: CapacityContext) -> None:
        self._ctx = ctx
        self._log = change_log(ctx.engine)
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
        """The change log of the context's engine."""
        return self._log

    def today(self, now: datetime | None = None) -> date:
        """Today in ``settings.timezone`` by the context's clock."""
        instant = now if now is not None else self._ctx.clock()
        return instant.astimezone(ZoneInfo(self._ctx.settings.timezone)).date()

    def current(self, *, now: datetime | None = None) -> CapacityIndex:
        """The index, up to date with every change committed in this process.

        Args:
            now: the request's clock reading (default: the context's clock).
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
        horizon = self._ctx.settings.horizon_days
        return index.start <= today and index.column(today) + horizon <= index.days

    def _stale(self, index: CapacityIndex, today: date) -> bool:
        age = time.monotonic() - index.full_built_at
        return (
            age > self._ctx.settings.capacity_cache_s
            or index.start != today
            or self._log.remote_at >= index.full_built_at  # another process committed since
        )

    def _inputs(self, start: date, batch: Batch, *, per_firm: bool) -> BuildInputs:
        settings = self._ctx.settings
        return BuildInputs(
            start=start,
            days=settings.horizon_days + SLACK_DAYS,
            default_calendar=settings.default_calendar(),
            default_ratio=settings.default_availability_ratio,
            ratios=self._ratios(batch, per_firm=per_firm),
        )

    def _ratios(self, batch: Batch, *, per_firm: bool) -> dict[tuple[str, str], float]:
        """Measured ratios of the batch's machines (see :class:`AvailabilityCache`)."""
        cache = self._ctx.availability
        if not cache.enabled or not batch.machines:
            return {}
        default = self._ctx.settings.default_calendar()
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
        now = self._ctx.clock()
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
        started = time.monotonic()  # before reading: a later remote change makes it stale
        version = self._log.version
        days = self._ctx.settings.horizon_days + SLACK_DAYS
        with self._ctx.sessions() as session:
            batch = load_batch(session, None, today, today + timedelta(days=days))
        inputs = self._inputs(today, batch, per_firm=False)
        store_rows = len(batch.machines) + max(1024, len(batch.machines) // 4)
        base = empty_index(inputs, version, store_rows)
        index = apply_batch(base, batch, (), inputs, version)
        assert index is not None  # the store was sized for the batch
        index = replace(index, full_built_at=started)
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
        with self._ctx.sessions() as session:
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
            batch = load_batch(session, ordered, index.start, end)
        inputs = self._inputs(index.start, batch, per_firm=True)
        patched = apply_batch(index, batch, ordered, inputs, version)
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
