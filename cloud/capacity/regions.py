"""Regional view for supporters (municipality, chamber of commerce): k-anonymous aggregates.

Served by ``GET /regions`` and ``GET /regions/{region}`` (the API layer, which also writes
the audit events below from :attr:`RegionShown.contributors`).

Who is counted: the *contributing firms* of region R are the firms whose registered
region (``Firm.region``) is R and that admit the viewer through a live ``supporters``
grant (:func:`renkei.cloud.capacity.policy.supporter_firm_ids`): a supporter's region is the region
of its own firm record, and a grant to that region or to ``*`` admits it. An admin views each
region R as a supporter of R would.

What is shown per region: contributing firms, how many are up and how many disrupted (a
firm is disrupted when it has a *confirmed* disruption whose window covers now; suspected
ones do not count), and per process (the capability class prefix: ``injection_molding``,
``press``, ``machining``) the number of firms and machines and the spare hours per ISO
week over the horizon (today .. today + ``horizon_days``; partial first/last weeks carry
their ``days``).

k-anonymity (k = the API's ``supporter_min_firms``, default 3): a region with fewer than k
contributing firms is reported as ``{"region": R, "suppressed": true}``, and a process
with fewer than k contributing firms as ``{"process": P, "suppressed": true}``, without
numbers. Every contributing firm of a region shown gets one audit event
(``regional.aggregate``).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
from pydantic import BaseModel, Field
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from renkei.cloud.capacity.context import CapacityContext
from renkei.cloud.capacity.index import CapacityIndex
from renkei.cloud.capacity.policy import supporter_firm_ids
from renkei.cloud.capacity.weeks import iso_week_label, iso_week_monday
from renkei.cloud.registry import Disruption, DisruptionStatus

__all__ = ["ProcessCell", "RegionShown", "RegionView", "WeekSpare", "regional_views"]


class WeekSpare(BaseModel):
    """Spare hours of one process in one ISO week (sum over contributing firms)."""

    week: str = Field(description="ISO week label, e.g. `2026-W48`.")
    period_start: date = Field(
        description="Monday of the week (may be before the horizon's `start`)."
    )
    days: int = Field(description="Days of the horizon in this week (1-7).")
    spare_h: float = Field(
        description="Spare hours of the process's machines of all contributing firms over "
        "those days (h)."
    )


class ProcessCell(BaseModel):
    """One process of a region; numbers are absent when ``suppressed``."""

    process: str = Field(
        description="Process (capability class prefix): `injection_molding`, `press` or "
        "`machining`."
    )
    suppressed: bool = Field(
        description="True when fewer than k contributing firms have this process; then no "
        "numbers are given."
    )
    firms: int | None = Field(default=None, description="Contributing firms with this process.")
    machines: int | None = Field(default=None, description="Their machines of this process.")
    spare_h_total: float | None = Field(
        default=None, description="Spare hours over the horizon [start, end) (h)."
    )
    weeks: list[WeekSpare] | None = Field(
        default=None,
        description="Spare hours per ISO week (only in `GET /regions/{region}`).",
    )


class RegionView(BaseModel):
    """One region; numbers are absent when ``suppressed``."""

    region: str = Field(description="Region name.")
    suppressed: bool = Field(
        description="True when fewer than k firms contribute to the caller; then no numbers "
        "are given."
    )
    k: int | None = Field(default=None, description="The k-anonymity threshold applied.")
    firms: int | None = Field(
        default=None,
        description="Contributing firms: of this region and granting the caller's region "
        "(or `*`) to supporters.",
    )
    firms_up: int | None = Field(
        default=None, description="Contributing firms without a current confirmed disruption."
    )
    firms_disrupted: int | None = Field(
        default=None,
        description="Contributing firms with a confirmed disruption covering now "
        "(start <= now < end); suspected ones do not count.",
    )
    start: date | None = Field(
        default=None, description="First day of the horizon (inclusive; today, site-local)."
    )
    end: date | None = Field(
        default=None, description="End of the horizon (exclusive; today + horizon days)."
    )
    processes: list[ProcessCell] | None = Field(default=None, description="One cell per process.")


@dataclass(frozen=True, slots=True)
class RegionShown:
    """One region as shown to the viewer, and who contributed to it."""

    view: RegionView
    contributors: dict[str, list[str]]
    """Contributing firm -> processes shown that include it (for the audit log)."""


def _disrupted(session: Session, now: datetime) -> set[str]:
    stmt = (
        select(Disruption.firm_id)
        .where(Disruption.status == DisruptionStatus.CONFIRMED)
        .where(Disruption.start <= now)
        .where(or_(Disruption.end.is_(None), Disruption.end > now))
    )
    return set(session.scalars(stmt))


def _weeks(start: date, days: int) -> list[tuple[int, int]]:
    """Column ranges of the ISO weeks in ``[start, start + days)``."""
    bounds = [0] + [j for j in range(1, days) if (start + timedelta(j)).weekday() == 0] + [days]
    return [(a, b) for a, b in itertools.pairwise(bounds) if b > a]


def _region(
    index: CapacityIndex,
    region: str,
    firms: list[str],
    disrupted: set[str],
    *,
    k: int,
    today: date,
    horizon_days: int,
    with_weeks: bool,
) -> RegionShown:
    if len(firms) < k:
        return RegionShown(RegionView(region=region, suppressed=True), {})
    positions = np.asarray([index.firm_pos[f] for f in firms], dtype=np.int64)
    rows, owner = index.rows_of(positions)
    lo = index.column(today)
    spare = index.spare(rows, lo, lo + horizon_days)
    proc = index.class_process[index.m_class[rows]]
    weeks = _weeks(today, horizon_days)
    contributors: dict[str, list[str]] = {f: [] for f in firms}
    cells: list[ProcessCell] = []
    for p in sorted(set(proc.tolist()), key=lambda p: index.processes[p]):
        name = index.processes[p]
        mask = proc == p
        members = sorted({firms[o] for o in owner[mask].tolist()})
        if len(members) < k:
            cells.append(ProcessCell(process=name, suppressed=True))
            continue
        sums = spare[mask].sum(axis=0)
        cell = ProcessCell(
            process=name,
            suppressed=False,
            firms=len(members),
            machines=int(mask.sum()),
            spare_h_total=round(float(sums.sum()), 3),
        )
        if with_weeks:
            cell.weeks = [
                WeekSpare(
                    week=iso_week_label(today + timedelta(a)),
                    period_start=iso_week_monday(today + timedelta(a)),
                    days=b - a,
                    spare_h=round(float(sums[a:b].sum()), 3),
                )
                for a, b in weeks
            ]
        cells.append(cell)
        for f in members:
            contributors[f].append(name)
    down = sum(f in disrupted for f in firms)
    view = RegionView(
        region=region,
        suppressed=False,
        k=k,
        firms=len(firms),
        firms_up=len(firms) - down,
        firms_disrupted=down,
        start=today,
        end=today + timedelta(days=horizon_days),
        processes=cells,
    )
    return RegionShown(view, contributors)


def regional_views(
    ctx: CapacityContext,
    session: Session,
    *,
    viewer_region: str | None,
    k: int,
    now: datetime,
    only: str | None,
    with_weeks: bool,
) -> list[RegionShown]:
    """The regions a viewer of ``viewer_region`` may see, k-anonymous (module docstring).

    Args:
        ctx: the capacity index, horizon and time zone.
        session: an open registry session (grants, disruptions).
        viewer_region: the viewer firm's region; ``None`` = an admin, who sees each region
            R as a supporter of R would.
        k: the k-anonymity threshold (>= 2).
        now: the current instant (aware).
        only: just this region (reported as suppressed when no firm contributes), or all
            regions with at least one contributing firm.
        with_weeks: add the per-ISO-week spare hours of each process.
    """
    settings = ctx.settings
    index = ctx.index.current(now=now)
    today = now.astimezone(ZoneInfo(settings.timezone)).date()
    by_region: dict[str, list[str]] = {}
    for fid, region in zip(index.firm_ids, index.firm_regions, strict=True):
        if only is None or region == only:
            by_region.setdefault(region, []).append(fid)
    admitted_any = (
        supporter_firm_ids(session, region=viewer_region, now=now)
        if viewer_region is not None
        else None
    )
    disrupted = _disrupted(session, now)
    shown: list[RegionShown] = []
    for region in sorted(by_region):
        admitted = (
            admitted_any
            if admitted_any is not None
            else supporter_firm_ids(session, region=region, now=now)
        )
        firms = sorted(f for f in by_region[region] if f in admitted)
        if not firms and only is None:
            continue
        shown.append(
            _region(
                index,
                region,
                firms,
                disrupted,
                k=k,
                today=today,
                horizon_days=settings.horizon_days,
                with_weeks=with_weeks,
            )
        )
    if only is not None and not shown:
        shown.append(RegionShown(RegionView(region=only, suppressed=True), {}))
    return shown
