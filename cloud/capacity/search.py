"""Partner capacity search: spare hours of firms that share with the caller, filtered.

Runs on the in-memory :class:`~renkei.cloud.capacity.index.CapacityIndex` (vectorised over
the machines of the owners that share with the caller) and applies each owner's
:class:`~renkei.cloud.capacity.policy.SharedView`.

Privacy rules (``../shared/DOMAIN.md``: a firm decides what it shares, with whom, at what
granularity; a partner must not learn one machine's utilisation unless allowed):

1. **Default deny.** Only owners whose live grants give the caller a view appear (the
   caller's own firm never does), and only machines of the capability classes their view
   allows.
2. **Disclosure unit.** Without ``machine_detail`` the smallest unit whose hours are ever
   returned is the *class group*: all of one owner's machines of one capability class
   that the view allows. Every filter (process, clamp force, tie bars, mold height, shot
   capacity, resin, certification, region) only decides whether a group is *included*:
   it is when at least one of its machines satisfies all filters together, and then its
   hours are the sum over **all** machines of the group. ``min_spare_h`` applies to the
   group's total. So two searches with different filters return either the same number
   for a group or nothing, and cannot be subtracted to isolate one machine's hours; what
   fine filters can reveal is only whether *some* machine of a class fits (which is what
   matchmaking is for). With ``machine_detail`` (the owner opened per-machine hours and
   attributes) filters and ``min_spare_h`` apply per machine and only matching machines
   are summed and listed.
3. **Time unit.** For an owner sharing at ``week`` granularity, the owner's hours are
   summed over whole ISO weeks: every week that intersects the requested window
   ``[start, end)`` counts with all its days inside the horizon (today .. today +
   horizon), so shifting ``start``/``end`` by a day cannot reveal daily hours. Points are
   then one per ISO week (``period_start`` = Monday, ``days`` = days counted). At ``day``
   granularity the window is used as given with one point per day.
4. **Content.** Spare hours, class ids, firm name and region, and with machine detail
   the machine ids, names, sites and compatibility attributes. Never bookings, order
   references, customers, telemetry or process settings (the index does not hold them).
5. **Audit.** The router writes one audit event per owner in the response
   (:func:`OwnerHit.audit_detail`).

Only the ``limit`` owners with the most spare hours are returned (and audited);
``total_spare_h`` is the sum over the returned owners.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from datetime import date, timedelta
from typing import Any

import numpy as np
import orjson

from renkei.cloud.capacity import iso_week_monday
from renkei.cloud.capacity.index import CapacityIndex, IntArray, normalize_label
from renkei.cloud.capacity.policy import SharedView
from renkei.cloud.capacity.views import ViewCache, ViewSet

__all__ = [
    "OwnerHit",
    "SearchQuery",
    "SearchResult",
    "ViewCache",
    "ViewSet",
    "class_order",
    "search",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class SearchQuery:
    """Filters of a capacity search (units in the names; ``None`` = no filter).

    Attributes:
        process: machine process (``injection_molding``, ``press``, ``machining``).
        min_clamp_force_kN, max_clamp_force_kN: clamp force range (kN), inclusive.
        min_tie_bar_h_mm, min_tie_bar_v_mm: clear distance between tie bars at least (mm).
        min_mold_height_mm: the machine's *maximum* mold height is at least this (mm).
        max_mold_height_mm: the machine's *minimum* mold height is at most this (mm).
        min_shot_capacity_g: shot capacity at least (g).
        resin, certification: the machine's site processes this resin / holds this
            certification (matched ignoring case, spaces, ``-`` and ``_``).
        region: the machine's site is in this region.
        start, end: site-local window ``[start, end)``.
        min_spare_h: minimum spare hours over the window per disclosure unit (h).
        limit: most owners returned.
    """

    process: str | None = None
    min_clamp_force_kN: float | None = None
    max_clamp_force_kN: float | None = None
    min_tie_bar_h_mm: float | None = None
    min_tie_bar_v_mm: float | None = None
    min_mold_height_mm: float | None = None
    max_mold_height_mm: float | None = None
    min_shot_capacity_g: float | None = None
    resin: str | None = None
    certification: str | None = None
    region: str | None = None
    start: date
    end: date
    min_spare_h: float = 0.0
    limit: int = 50

    def filters(self) -> dict[str, Any]:
        """The filters given (JSON-ready), for the audit log."""
        out: dict[str, Any] = {}
        for f in fields(self):
            name, value = f.name, getattr(self, f.name)
            if name in ("start", "end"):
                out[name] = value.isoformat()
            elif (
                value is not None and name != "limit" and not (name == "min_spare_h" and not value)
            ):
                out[name] = value
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class OwnerHit:
    """One owner firm in a search response, with what was disclosed of it."""

    firm_id: str
    view: SharedView
    classes: tuple[str, ...]
    machine_ids: tuple[str, ...]

    def audit_detail(self, query: SearchQuery) -> dict[str, Any]:
        """The audit ``detail``: classes, machine ids (with detail), granularity, query."""
        detail: dict[str, Any] = {
            "classes": list(self.classes),
            "granularity": self.view.granularity.value,
            "machine_detail": self.view.machine_detail,
            "grant_ids": list(self.view.grant_ids),
            "query": query.filters(),
        }
        if self.view.machine_detail:
            detail["machine_ids"] = list(self.machine_ids)
        return detail


@dataclass(slots=True)
class SearchResult:
    """The response body (``payload``, exact keys of the API) and the owners in it."""

    payload: dict[str, Any]
    hits: list[OwnerHit] = field(default_factory=list)


def _site_mask(index: CapacityIndex, rows: IntArray, test: Any) -> np.ndarray[Any, Any]:
    """``test(site_position)`` evaluated once per distinct site of ``rows``."""
    sites, inverse = np.unique(index.m_site[rows], return_inverse=True)
    per_site = np.fromiter((bool(test(int(s))) for s in sites), np.bool_, len(sites))
    return per_site[inverse]


def _filter(index: CapacityIndex, rows: IntArray, q: SearchQuery) -> np.ndarray[Any, Any]:
    """Which machine rows satisfy every filter of ``q`` (NaN attributes never do)."""
    ok = np.ones(len(rows), dtype=np.bool_)
    if q.process is not None:
        if q.process not in index.processes:
            return np.zeros(len(rows), dtype=np.bool_)
        proc = index.processes.index(q.process)
        ok &= index.class_process[index.m_class[rows]] == proc
    bounds = (
        ("clamp_force_kN", q.min_clamp_force_kN, np.greater_equal),
        ("clamp_force_kN", q.max_clamp_force_kN, np.less_equal),
        ("tie_bar_h_mm", q.min_tie_bar_h_mm, np.greater_equal),
        ("tie_bar_v_mm", q.min_tie_bar_v_mm, np.greater_equal),
        ("max_mold_height_mm", q.min_mold_height_mm, np.greater_equal),
        ("min_mold_height_mm", q.max_mold_height_mm, np.less_equal),
        ("shot_capacity_g", q.min_shot_capacity_g, np.greater_equal),
    )
    for attr, value, op in bounds:
        if value is not None:
            ok &= op(index.attrs[attr][rows], value)
    if q.resin is not None and len(rows):
        resin = normalize_label(q.resin)
        key = f"|{resin}|"
        ok &= _site_mask(index, rows, lambda s: key in index.site_resins_norm[s])
    if q.certification is not None and len(rows):
        cert = normalize_label(q.certification)
        key_c = f"|{cert}|"
        ok &= _site_mask(index, rows, lambda s: key_c in index.site_certs_norm[s])
    if q.region is not None and len(rows):
        region = q.region
        ok &= _site_mask(index, rows, lambda s: index.site_regions[s] == region)
    return ok


def class_order(class_id: str) -> tuple[str, int, str]:
    """Sort key of class ids: process, then the band's lower bound (500 before 1000 kN)."""
    process, _, band = class_id.partition(":")
    digits = re.match(r"\d+", band)
    return process, int(digits[0]) if digits else 0, band


def _empty(q: SearchQuery) -> SearchResult:
    return SearchResult(
        {
            "start": q.start.isoformat(),
            "end": q.end.isoformat(),
            "total_spare_h": 0.0,
            "results": [],
        }
    )


def _points(meta: list[tuple[str, int]], values: list[float]) -> orjson.Fragment:
    """``[{"period_start", "days", "spare_h"}, ...]`` as ready JSON (no dicts allocated)."""
    parts = [
        f'{{"period_start":"{p}","days":{d},"spare_h":{v!r}}}'
        for (p, d), v in zip(meta, values, strict=True)
    ]
    return orjson.Fragment("[" + ",".join(parts) + "]")


def search(
    index: CapacityIndex,
    views: ViewSet | dict[str, SharedView],
    q: SearchQuery,
    *,
    viewer_firm_id: str,
    today: date,
    horizon_days: int,
) -> SearchResult:
    """Run a capacity search (see the module docstring for the rules).

    Args:
        index: the current capacity index.
        views: the caller's views (:class:`ViewCache`), or owner firm id -> view.
        q: filters and window; ``today <= q.start < q.end <= today + horizon_days``.
        viewer_firm_id: the caller's firm (excluded from the results).
        today: site-local today (first day of the horizon).
        horizon_days: horizon length (days).

    Returns:
        The response body (for :func:`orjson.dumps`; ``points`` are
        :class:`orjson.Fragment`) and the owners in it (for the audit log).

    Raises:
        ValueError: the window is outside the horizon or empty.
    """
    horizon_end = today + timedelta(days=horizon_days)
    if not (today <= q.start < q.end <= horizon_end):
        raise ValueError(f"window [{q.start}, {q.end}) outside [{today}, {horizon_end})")
    view_set = views if isinstance(views, ViewSet) else ViewSet(views)
    own = view_set.owners(index, viewer_firm_id)
    n_o, n_c = len(own.firm_ids), len(index.class_ids)
    if not n_o:
        return _empty(q)
    rows, owner = index.rows_of(own.positions)
    if len(rows):
        allowed = own.allowed[owner, index.m_class[rows]]
        rows, owner = rows[allowed], owner[allowed]
    if not len(rows):
        return _empty(q)
    # Filters decide membership: per machine (detail) or per class group (rule 2).
    ok = _filter(index, rows, q)
    group = owner * n_c + index.m_class[rows]
    group_hit = np.zeros(n_o * n_c, dtype=np.bool_)
    group_hit[group[ok]] = True
    keep = np.where(own.detail[owner], ok, group_hit[group])
    rows, owner, group = rows[keep], owner[keep], group[keep]
    if not len(rows):
        return _empty(q)
    # Rows in class-group order (owner, class): later steps work on contiguous runs.
    order = np.argsort(group, kind="stable")
    rows, owner, group = rows[order], owner[order], group[order]
    # Windows in index columns: as given (day) or whole ISO weeks (week, rule 3).
    col_today = index.column(today)
    col_end = col_today + horizon_days
    day_lo, day_hi = index.column(q.start), index.column(q.end)
    wk_lo = max(col_today, index.column(iso_week_monday(q.start)))
    wk_hi = min(col_end, index.column(iso_week_monday(q.end - timedelta(days=1))) + 7)
    lo, hi = min(day_lo, wk_lo), max(day_hi, wk_hi)
    spare = index.spare(rows, lo, hi)
    row_week = own.week[owner]
    machine_total = np.where(
        row_week,
        spare[:, wk_lo - lo : wk_hi - lo].sum(axis=1),
        spare[:, day_lo - lo : day_hi - lo].sum(axis=1),
    )
    if q.min_spare_h > 0:
        starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
        run = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(rows)]))
        group_total = np.add.reduceat(machine_total, starts)[run]
        # Compared as shown (rounded to 1e-3 h), so a total displayed as 288.0 passes 288.
        enough = np.where(
            own.detail[owner],
            np.round(machine_total, 3) >= q.min_spare_h,
            np.round(group_total, 3) >= q.min_spare_h,
        )
        rows, owner, group = rows[enough], owner[enough], group[enough]
        spare, machine_total = spare[enough], machine_total[enough]
        if not len(rows):
            return _empty(q)
    # Totals per class group and owner (1-D); choose the owners to return.
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    ends = np.r_[starts[1:], len(rows)]
    g_owner = owner[starts]
    g_class = index.m_class[rows[starts]]
    g_count = ends - starts
    g_total = np.add.reduceat(machine_total, starts)
    o_total = np.bincount(g_owner, weights=g_total, minlength=n_o)
    present = np.unique(g_owner).tolist()
    present.sort(key=lambda o: (-o_total[o], own.firm_ids[o]))
    chosen = present[: q.limit]
    # Per-period sums (2-D) only for the chosen owners' groups.
    g_chosen = np.flatnonzero(np.isin(g_owner, chosen))
    lengths = g_count[g_chosen]
    sel_ends = np.cumsum(lengths)
    sel = np.repeat(starts[g_chosen] - (sel_ends - lengths), lengths) + np.arange(int(sel_ends[-1]))
    g_spare = np.add.reduceat(spare[sel], sel_ends - lengths, axis=0)
    day_points = np.round(g_spare[:, day_lo - lo : day_hi - lo], 3).tolist()
    g_cum = np.zeros((len(g_chosen), hi - lo + 1))
    np.cumsum(g_spare, axis=1, out=g_cum[:, 1:])
    mondays = [c for c in range(wk_lo + 1, wk_hi) if (index.start + timedelta(c)).weekday() == 0]
    bounds = [wk_lo, *mondays, wk_hi]
    seg_lo = np.asarray(bounds[:-1]) - lo
    seg_hi = np.asarray(bounds[1:]) - lo
    week_points = np.round(g_cum[:, seg_hi] - g_cum[:, seg_lo], 3).tolist()
    week_meta = [
        (iso_week_monday(index.start + timedelta(days=int(a) + lo)).isoformat(), int(b - a))
        for a, b in zip(seg_lo, seg_hi, strict=True)
    ]
    day_meta = [((q.start + timedelta(days=j)).isoformat(), 1) for j in range(day_hi - day_lo)]
    groups_of: dict[int, list[int]] = {}
    for local, gi in enumerate(g_chosen.tolist()):
        groups_of.setdefault(int(g_owner[gi]), []).append(local)
    row_start = starts.tolist()
    row_end = ends.tolist()
    g_total_l = g_total.tolist()
    g_count_l = g_count.tolist()
    g_class_l = g_class.tolist()
    results: list[dict[str, Any]] = []
    hits: list[OwnerHit] = []
    total = 0.0
    for o in chosen:
        view = own.views[o]
        pos = int(own.positions[o])
        is_week = bool(own.week[o])
        locals_ = sorted(
            groups_of[o], key=lambda j: class_order(index.class_ids[g_class_l[g_chosen[j]]])
        )
        classes: list[dict[str, Any]] = []
        class_ids: list[str] = []
        machines: list[dict[str, Any]] = []
        for j in locals_:
            gi = int(g_chosen[j])
            cls = index.class_ids[g_class_l[gi]]
            class_ids.append(cls)
            points = (
                _points(week_meta, week_points[j]) if is_week else _points(day_meta, day_points[j])
            )
            classes.append(
                {
                    "capability_class": cls,
                    "machines": g_count_l[gi],
                    "spare_h_total": round(g_total_l[gi], 3),
                    "points": points,
                }
            )
            if view.machine_detail:
                for r in range(row_start[gi], row_end[gi]):
                    machines.append(_machine(index, int(rows[r]), cls, float(machine_total[r])))
        machines.sort(key=lambda m: (-m["spare_h_total"], m["machine_id"]))
        owner_total = round(float(o_total[o]), 3)
        total += owner_total
        results.append(
            {
                "firm_id": own.firm_ids[o],
                "firm_name": index.firm_names[pos],
                "region": index.firm_regions[pos],
                "granularity": view.granularity.value,
                "machine_detail": view.machine_detail,
                "spare_h_total": owner_total,
                "classes": classes,
                "machines": machines,
            }
        )
        hits.append(
            OwnerHit(
                firm_id=own.firm_ids[o],
                view=view,
                classes=tuple(class_ids),
                machine_ids=tuple(m["machine_id"] for m in machines),
            )
        )
    payload = {
        "start": q.start.isoformat(),
        "end": q.end.isoformat(),
        "total_spare_h": round(total, 3),
        "results": results,
    }
    return SearchResult(payload, hits)


def _machine(index: CapacityIndex, row: int, cls: str, total: float) -> dict[str, Any]:
    site = int(index.m_site[row])
    out: dict[str, Any] = {
        "machine_id": index.machine_ids[row],
        "name": index.machine_names[row],
        "capability_class": cls,
        "site_id": index.site_ids[site],
        "region": index.site_regions[site],
    }
    for attr, values in index.attrs.items():
        value = float(values[row])
        out[attr] = None if value != value else value  # NaN -> null
    out["resins"] = list(index.site_resins[site])
    out["certifications"] = list(index.site_certs[site])
    out["spare_h_total"] = round(total, 3)
    return out
