"""The producer of the ``capacity`` measurement: spare hours of every registry machine,
per site-local day, written to InfluxDB for the capacity dashboard.

``renkei cloud capacity-publish`` (:mod:`renkei.cloud.cli`) runs :func:`publish_capacity` once,
or every ``--every`` seconds until SIGINT/SIGTERM (:func:`run_periodic`).

What one run does:

1. reads every machine of the registry with its line, area, site and site calendar;
2. groups the machines by firm and site time zone (the site calendar's ``timezone``, or
   the API's ``RENKEI_API_TIMEZONE`` for sites without a calendar); per group, ``start``
   is today in that zone;
3. computes the spare capacity of each group with :func:`renkei.cloud.capacity.service.
   spare_for` over ``days`` days from ``start`` -- the very function the API's capacity
   endpoints and the takeover planner use: site calendars (else the API's default
   calendar), the firm's bookings, and the availability ratio measured from the
   ``features`` telemetry in InfluxDB (else ``RENKEI_API_DEFAULT_AVAILABILITY_RATIO``);
4. writes :func:`renkei.cloud.capacity.points.capacity_points` of it (one point per machine and
   day, stamped at the day's local 00:00; tags ``firm``, ``site``, ``area``, ``line``,
   ``machine`` = registry ids, ``area`` left out when the line has none; fields in hours)
   in batches of at most ``batch_lines`` lines.

Rewriting the same horizon overwrites the same points (same series, same times), so runs
are idempotent and a booking or calendar change shows up at the next run. Days that
leave the horizon keep their last values (history). Points of machines deleted from the
registry, or written under tags that have changed since (a line moved to another area,
say), are not deleted: InfluxDB's v1 API cannot delete on InfluxDB 2.x.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Final
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from renkei.cloud._exceptions import StoreRejected
from renkei.cloud.capacity.calendar import ShiftCalendar
from renkei.cloud.capacity.context import CapacityContext, CapacitySettings
from renkei.cloud.capacity.points import capacity_points
from renkei.cloud.capacity.service import spare_for
from renkei.cloud.registry import Line, Machine, Site
from renkei.cloud.store import TimeSeriesStore
from renkei.core.errors import RenkeiError
from renkei.core.influx.lineproto import escape_key

__all__ = [
    "BATCH_LINES",
    "PublishReport",
    "publish_capacity",
    "publisher_state",
    "run_periodic",
]

log = logging.getLogger("renkei.cloud.capacity.publish")

#: Most line-protocol lines per InfluxDB write request.
BATCH_LINES: Final = 5000


@dataclass(frozen=True, slots=True)
class PublishReport:
    """What one :func:`publish_capacity` run did.

    Attributes:
        firms: firms with at least one machine written.
        machines: machines written.
        points: ``capacity`` points written (machines × days).
        days: horizon length, days.
        skipped_machines: machines left out because a tag value cannot be written as line
            protocol (e.g. an area with a backslash); each is logged.
        rejected_firms: firms whose points InfluxDB refused (HTTP 4xx); each is logged.
        duration_s: wall time of the run, seconds.
    """

    firms: int
    machines: int
    points: int
    days: int
    skipped_machines: tuple[str, ...] = ()
    rejected_firms: tuple[str, ...] = ()
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether every machine's points were written."""
        return not self.skipped_machines and not self.rejected_firms


@dataclass(frozen=True, slots=True)
class _MachineRow:
    firm: str
    site: str
    area: str
    line: str
    machine: str
    timezone: str

    def tags(self) -> dict[str, str]:
        tags = {"firm": self.firm, "site": self.site, "line": self.line}
        if self.area:
            tags["area"] = self.area
        return tags


def publisher_state(
    settings: CapacitySettings,
    *,
    engine: Engine,
    clock: Callable[[], datetime] | None = None,
) -> CapacityContext:
    """The :class:`~renkei.cloud.capacity.context.CapacityContext` :func:`publish_capacity` needs.

    Args:
        settings: what capacity reads (the API's: ``ApiSettings.capacity()``: calendar
            defaults, default availability ratio and the InfluxDB of the measured
            availability).
        engine: the registry engine.
        clock: current UTC time (default: the system clock).
    """
    return CapacityContext.create(settings, engine=engine, clock=clock)


def _machines(session: Session, default_timezone: str) -> list[_MachineRow]:
    rows = session.execute(
        select(Machine.id, Machine.firm_id, Line.id, Line.area, Site.id, Site.calendar)
        .join(Line, Machine.line_id == Line.id)
        .join(Site, Line.site_id == Site.id)
        .order_by(Machine.firm_id, Machine.id)
    ).all()
    zones: dict[str, str] = {}
    out: list[_MachineRow] = []
    for machine, firm, line, area, site, calendar in rows:
        if site not in zones:
            zones[site] = (
                ShiftCalendar.model_validate(calendar).timezone if calendar else default_timezone
            )
        out.append(
            _MachineRow(
                firm=firm,
                site=site,
                area=area or "",
                line=line,
                machine=machine,
                timezone=zones[site],
            )
        )
    return out


def _writable(row: _MachineRow) -> bool:
    try:
        for value in (*row.tags().values(), row.machine):
            escape_key(value)
    except ValueError as exc:
        log.warning(
            "capacity: machine %s of %s left out: a tag value cannot be written (%s)",
            row.machine,
            row.firm,
            exc,
        )
        return False
    return True


def _batches(body: bytes, size: int) -> Iterator[bytes]:
    lines = body.splitlines(keepends=True)
    for i in range(0, len(lines), size):
        yield b"".join(lines[i : i + size])


def publish_capacity(
    state: CapacityContext,
    store: TimeSeriesStore,
    *,
    days: int,
    batch_lines: int = BATCH_LINES,
) -> PublishReport:
    """Compute and write the ``capacity`` points of every registry machine (module doc).

    Args:
        state: settings, registry and clock (:func:`publisher_state`).
        store: where the points go.
        days: horizon length in site-local days from today (>= 1).
        batch_lines: most lines per write request.

    Returns:
        What was written; firms InfluxDB refused are listed and logged, the others written.

    Raises:
        ValueError: ``days`` or ``batch_lines`` < 1.
        StoreUnavailable: InfluxDB unreachable, failing or refusing the credentials; the
            run stops at the first such write (points written before it stay).
        sqlalchemy.exc.SQLAlchemyError: the registry cannot be read (e.g. its schema is
            not migrated yet: ``renkei cloud api`` migrates it).
    """
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    if batch_lines < 1:
        raise ValueError(f"batch_lines must be >= 1, got {batch_lines}")
    started = time.monotonic()
    now = state.clock()
    with state.sessions() as session:
        rows = _machines(session, state.settings.timezone)
        skipped: list[str] = []
        groups: dict[tuple[str, str], list[_MachineRow]] = {}
        for row in rows:
            if _writable(row):
                groups.setdefault((row.firm, row.timezone), []).append(row)
            else:
                skipped.append(row.machine)
        firms: set[str] = set()
        rejected: set[str] = set()
        machines = points = 0
        for (firm, zone), group in groups.items():
            start = now.astimezone(ZoneInfo(zone)).date()
            # Fresh caches per group: the availability cache of spare_for keeps one entry
            # per firm and day, which a firm's other time zone must not reuse.
            group_state = state.fresh(clock=lambda: now)
            spare = spare_for(
                group_state,
                session,
                machine_ids=[r.machine for r in group],
                start=start,
                days=days,
            )
            body = capacity_points(
                spare, machine_tags={r.machine: r.tags() for r in group}, timezone=zone
            )
            try:
                for batch in _batches(body, batch_lines):
                    store.write_lines(batch, precision="ms")
            except StoreRejected as exc:
                log.error(
                    "capacity: InfluxDB refused the points of firm %s (%d machines): %s",
                    firm,
                    len(group),
                    exc,
                )
                rejected.add(firm)
                continue
            firms.add(firm)
            machines += len(spare.machines)
            points += len(spare.machines) * spare.days
    report = PublishReport(
        firms=len(firms - rejected),
        machines=machines,
        points=points,
        days=days,
        skipped_machines=tuple(skipped),
        rejected_firms=tuple(sorted(rejected)),
        duration_s=time.monotonic() - started,
    )
    log.info(
        "capacity: %d point(s) of %d machine(s) of %d firm(s) written (%d days) in %.2f s",
        report.points,
        report.machines,
        report.firms,
        days,
        report.duration_s,
    )
    return report


def run_periodic(
    publish: Callable[[], object],
    *,
    every_s: float,
    stop: threading.Event,
    on_error: Callable[[Exception], None] | None = None,
    name: str = "capacity",
) -> int:
    """Call ``publish`` now and then every ``every_s`` seconds until ``stop`` is set.

    Runs start ``every_s`` apart (a run longer than that is followed at once by the
    next). An exception of a run is logged at ERROR (with a traceback unless it is a
    :class:`~renkei.core.errors.RenkeiError` or a database error) and passed to
    ``on_error``, and the next run happens as planned: a periodic producer outlives
    InfluxDB or database outages.

    Args:
        publish: one run (e.g. ``lambda: publish_capacity(state, store, days=84)``).
        every_s: period, seconds (> 0).
        stop: set it (e.g. from a signal handler) to end the loop; a run in progress
            finishes first.
        on_error: called with the exception of a failed run.
        name: what the log lines say ran (``capacity``, ``oee-sync``).

    Returns:
        The number of failed runs.

    Raises:
        ValueError: ``every_s`` <= 0.
    """
    if not every_s > 0:
        raise ValueError(f"every_s must be > 0, got {every_s}")
    failures = 0
    next_run = time.monotonic()
    while not stop.is_set():
        try:
            publish()
        except Exception as exc:  # keep publishing; the next run may succeed
            failures += 1
            log.error(
                "%s: run failed: %s; next run in %.0f s",
                name,
                exc,
                every_s,
                exc_info=not isinstance(exc, RenkeiError | SQLAlchemyError),
            )
            if on_error is not None:
                on_error(exc)
        next_run = max(next_run + every_s, time.monotonic())
        stop.wait(max(0.0, next_run - time.monotonic()))
    return failures
