"""Explained unmet volume: the rule and the numbers that failed for the nearest candidates.

An :class:`Explanation` is attached to every :class:`~renkei.cloud.planner.result.Unmet`.
It holds

- job-level :class:`~renkei.cloud.planner.shortfall.Shortfall` records: ``capacity`` (hours
  needed vs hours left on compatible eligible machines) for ``no_capacity``, ``sharing`` (counts of
  compatible machines at firms that do not share) for ``not_shared``, ``no_candidate``
  when no shared machine of the process is a candidate at all;
- up to :data:`MAX_CANDIDATES` :class:`Candidate` machines with every failed quantity.

**Who may be a candidate** (disclosure): only machines the requester may plan on — its own
and those whose owner shares them with it (``MachineStatus.shared``) — of the mold's
process, not at the requester's disrupted origin site, and not already usable (compatible
and eligible). Machines of firms that do not share never appear, not even by count per
firm (only the total counts of the ``sharing`` record, as the ``not_shared`` reason
already tells). Callers that know finer sharing (machine detail) redact further
(:meth:`Candidate.redacted`).

**Which are "nearest"** (bounded): candidates are ranked by (1) the number of failed
rules (a stopped site counts as one rule, ``zone``; a mold too wide and too tall for the
tie bars is one rule), (2) the sum of the relative shortfalls of the failed quantities
(:attr:`Shortfall.relative`: 1,800 kN offered for 4,950 kN needed is 0.64; a missing
resin or certificate counts 1.0), (3) the great-circle km from the mold, (4) the machine
id. At most one candidate per site (its best machine) and :data:`MAX_CANDIDATES` in all.
Only the :data:`PREFILTER` nearest machines with the fewest failed rules (vectorised
counts) are examined one by one, so the cost per unmet job is bounded.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from renkei.cloud.planner.fleet import Fleet
from renkei.cloud.planner.geo import haversine_km
from renkei.cloud.planner.shortfall import (
    Shortfall,
    pair_shortfalls,
    stopped_shortfall,
    zone_shortfall,
)
from renkei.cloud.planner.types import CompatRules, MoldSpec, PlanContext

__all__ = ["MAX_CANDIDATES", "PREFILTER", "Candidate", "Explanation", "nearest_candidates"]

#: Candidates per unmet job.
MAX_CANDIDATES = 3
#: Machines examined one by one per unmet job (after the vectorised ranking).
PREFILTER = 64


@dataclass(frozen=True, slots=True, kw_only=True)
class Candidate:
    """A machine that nearly takes the job, and what fails.

    Attributes:
        machine_id: ``None`` when not disclosed (the owner shares no machine detail).
        firm_id, site_id: where it is.
        distance_km: great-circle km from the mold to the site.
        shortfalls: every failed quantity (rule order).
        machine_class: capability class id (``injection_molding:1000-2000kN``), set by
            callers that know the classes (what sharing discloses without detail).
    """

    machine_id: str | None
    firm_id: str
    site_id: str
    distance_km: float
    shortfalls: tuple[Shortfall, ...]
    machine_class: str | None = None

    @property
    def failed_rules(self) -> int:
        """Number of distinct failed rules."""
        return len({s.rule for s in self.shortfalls})

    def redacted(self) -> Candidate:
        """Without the machine id and the machine's figures."""
        return replace(
            self, machine_id=None, shortfalls=tuple(s.redacted() for s in self.shortfalls)
        )

    def to_json(self) -> dict[str, Any]:
        """``{"machine_id", "firm_id", "site_id", "distance_km", "machine_class",
        "shortfalls": [Shortfall.to_json()]}``."""
        return {
            "machine_id": self.machine_id,
            "firm_id": self.firm_id,
            "site_id": self.site_id,
            "distance_km": round(self.distance_km, 3),
            "machine_class": self.machine_class,
            "shortfalls": [s.to_json() for s in self.shortfalls],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Candidate:
        """Inverse of :meth:`to_json`."""
        mid, cls_id = data.get("machine_id"), data.get("machine_class")
        return cls(
            machine_id=None if mid is None else str(mid),
            firm_id=str(data["firm_id"]),
            site_id=str(data["site_id"]),
            distance_km=float(data["distance_km"]),
            machine_class=None if cls_id is None else str(cls_id),
            shortfalls=tuple(Shortfall.from_json(s) for s in data.get("shortfalls", ())),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Explanation:
    """Why a job's volume is unmet, with figures (module docstring)."""

    reason: str
    shortfalls: tuple[Shortfall, ...] = ()
    candidates: tuple[Candidate, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """``{"reason", "shortfalls": [...], "candidates": [...]}``."""
        return {
            "reason": self.reason,
            "shortfalls": [s.to_json() for s in self.shortfalls],
            "candidates": [c.to_json() for c in self.candidates],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Explanation:
        """Inverse of :meth:`to_json`."""
        return cls(
            reason=str(data["reason"]),
            shortfalls=tuple(Shortfall.from_json(s) for s in data.get("shortfalls", ())),
            candidates=tuple(Candidate.from_json(c) for c in data.get("candidates", ())),
        )


def _zone_of(fleet: Fleet, k: int, context: PlanContext) -> Shortfall:
    """The stopped-site record of machine ``k``: with figures only for the request's own
    zone (centred on its origin site); other stops may be other firms' disruptions."""
    m = fleet.machines[k]
    if m.site_id != context.origin_site_id and not m.disrupted:
        for z in context.zones:
            own = (z.center_lat_deg, z.center_lon_deg) == (
                context.origin_lat_deg,
                context.origin_lon_deg,
            )
            d = haversine_km(z.center_lat_deg, z.center_lon_deg, m.site_lat_deg, m.site_lon_deg)
            if own and d <= z.radius_km and m.site_id not in context.disrupted_site_ids:
                return zone_shortfall(distance_km=d, radius_km=z.radius_km)
    return stopped_shortfall()


def nearest_candidates(
    *,
    mold: MoldSpec,
    certifications: Set[str],
    fleet: Fleet,
    pool: NDArray[np.bool_],
    n_fail: NDArray[np.int32],
    distance_km: NDArray[np.float64],
    rules: CompatRules,
    context: PlanContext,
) -> tuple[Candidate, ...]:
    """The nearest candidates of one job (ranking: module docstring).

    Args:
        pool: machines that may be candidates (shared, same process, not usable, not at
            the origin site), aligned with ``fleet.machines``.
        n_fail: failed compatibility rules per machine (vectorised count).
        distance_km: km from the mold to each machine's site.
    """
    idx = np.flatnonzero(pool)
    if len(idx) == 0:
        return ()
    stopped = fleet.status.stopped[idx]
    total = n_fail[idx] + stopped.astype(np.int32)
    order = np.lexsort((idx, distance_km[idx], total))[:PREFILTER]
    ranked: list[tuple[tuple[int, float, float, str], Candidate]] = []
    for i in order.tolist():
        k = int(idx[i])
        m = fleet.machines[k]
        found = list(
            pair_shortfalls(
                mold=mold, machine=m, required_certifications=certifications, rules=rules
            )
        )
        if bool(stopped[i]):
            found.append(_zone_of(fleet, k, context))
        if not found:  # pragma: no cover - the pool holds no usable machine
            continue
        c = Candidate(
            machine_id=m.machine_id,
            firm_id=m.firm_id,
            site_id=m.site_id,
            distance_km=float(distance_km[k]),
            shortfalls=tuple(found),
        )
        key = (c.failed_rules, sum(s.relative for s in found), c.distance_km, m.machine_id)
        ranked.append((key, c))
    ranked.sort(key=lambda t: t[0])
    out: list[Candidate] = []
    seen: set[str] = set()
    for _, c in ranked:
        if c.site_id in seen:
            continue
        seen.add(c.site_id)
        out.append(c)
        if len(out) == MAX_CANDIDATES:
            break
    return tuple(out)
