"""Why a job's volume stays unmet: one reason per job, plus the facts behind it.

Precedence and meaning of the reasons: see :mod:`renkei.cloud.planner.result`. Computed only for
jobs with unmet volume, with the same vectorised rule masks as the pre-filter and the
scalar :func:`~renkei.cloud.planner.compat.check_compat` for the near-miss messages.
"""

from __future__ import annotations

from collections.abc import Sequence, Set
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from renkei.cloud.planner.compat import RULE_CODES, RuleCode, check_compat
from renkei.cloud.planner.compat_matrix import DemandArrays, rule_failure_masks
from renkei.cloud.planner.explain import Explanation, nearest_candidates
from renkei.cloud.planner.fleet import Fleet
from renkei.cloud.planner.geo import haversine_km_array
from renkei.cloud.planner.result import CompatibleMachines, NearMiss, Unmet, UnmetReason
from renkei.cloud.planner.shortfall import Shortfall, capacity_shortfall, sharing_shortfall
from renkei.cloud.planner.types import CompatRules, MoldSpec, PlanContext

__all__ = ["UnmetRows", "explain_unmet"]

#: Spare hours below this count as none left (solver tolerance).
_EPS_H = 1e-6
_NEAR_MISSES = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class UnmetRows:
    """The jobs to explain, one row each.

    Attributes:
        job_index: the job's index in the plan.
        molds, certifications: the job's mold and required certifications.
        demands: the same as arrays (rows aligned).
        lat_deg, lon_deg: where each mold is.
        parts, hours: the unmet volume.
        covered_hours: the hours the plan covers for the job.
        compatible: ``compatible[row, machine]`` from the pre-filter.
    """

    job_index: NDArray[np.intp]
    molds: Sequence[MoldSpec]
    certifications: Sequence[Set[str]]
    demands: DemandArrays
    lat_deg: NDArray[np.float64]
    lon_deg: NDArray[np.float64]
    parts: Sequence[int]
    hours: Sequence[float]
    covered_hours: NDArray[np.float64]
    compatible: NDArray[np.bool_]


def explain_unmet(
    rows: UnmetRows,
    *,
    fleet: Fleet,
    residual_h: NDArray[np.float64],
    rules: CompatRules,
    requester_firm_id: str,
    context: PlanContext,
) -> list[Unmet]:
    """One :class:`Unmet` per row, each with its :class:`~renkei.cloud.planner.explain.Explanation`.

    Args:
        rows: the jobs with unmet volume.
        fleet: the indexed machines.
        residual_h: spare hours per machine left after the plan.
        rules: the compatibility tunables (for the rule masks and messages).
        requester_firm_id: for the messages.
        context: the plan's context (origin site and zones, for the explanations).
    """
    st = fleet.status
    eligible = st.eligible
    not_shared = ~st.stopped & ~st.shared
    n_sites = max(len(fleet.site_ids), 1)
    masks = rule_failure_masks(rows.demands, fleet.arrays, rules)
    n_fail = sum(
        (m.astype(np.int32) for m in masks.values()),
        np.zeros(rows.compatible.shape, dtype=np.int32),
    )
    at_origin = np.array([m.site_id == context.origin_site_id for m in fleet.machines], np.bool_)
    out: list[Unmet] = []
    for r in range(len(rows.job_index)):
        comp = rows.compatible[r]
        elig = comp & eligible
        counts = CompatibleMachines(
            eligible=int(elig.sum()),
            eligible_with_spare=int((elig & (fleet.capacity_h > 0)).sum()),
            not_shared=int((comp & not_shared).sum()),
            stopped=int((comp & st.stopped).sum()),
        )
        reason: UnmetReason
        facts: list[Shortfall] = []
        if not comp.any():
            reason = "no_compatible_machine"
            detail = "no machine passes every compatibility rule"
        elif counts.eligible > 0:
            reason = "no_capacity"
            left = elig & (residual_h > _EPS_H)
            site_cap = np.bincount(
                fleet.machine_site[elig], weights=fleet.capacity_h[elig], minlength=n_sites
            )
            detail = (
                f"{counts.eligible} compatible eligible machines at "
                f"{int((site_cap > 0).sum())} sites with {site_cap.sum():.1f} h spare before "
                f"planning, {residual_h[left].sum():.1f} h left after it; the mold goes to one "
                f"site (largest spare before planning: {site_cap.max():.1f} h, needed "
                f"{rows.hours[r] + rows.covered_hours[r]:.1f} h)"
            )
            facts.append(
                capacity_shortfall(
                    needed_h=float(rows.hours[r]),
                    best_site_h=float(residual_h[left].sum()),
                    sites=int((site_cap > 0).sum()),
                )
            )
        elif counts.not_shared > 0:
            reason = "not_shared"
            firms = {fleet.machines[k].firm_id for k in np.flatnonzero(comp & not_shared)}
            detail = (
                f"{counts.not_shared} compatible machines at {len(firms)} firms that do not "
                f"share with {requester_firm_id}"
            )
            facts.append(sharing_shortfall(machines=counts.not_shared, firms=len(firms)))
        else:
            reason = "only_inside_zone"
            detail = (
                f"all {counts.stopped} compatible machines are stopped or inside the disrupted zone"
            )
        rule_counts: dict[RuleCode, int] = {}
        for code in RULE_CODES:
            n = int(masks[code][r].sum())
            if n:
                rule_counts[code] = n
        pool = st.shared & ~masks["process"][r] & ~elig & ~at_origin
        site = fleet.machine_site
        dist = haversine_km_array(
            rows.lat_deg[r], rows.lon_deg[r], fleet.site_lat_deg[site], fleet.site_lon_deg[site]
        )
        candidates = nearest_candidates(
            mold=rows.molds[r],
            certifications=rows.certifications[r],
            fleet=fleet,
            pool=pool,
            n_fail=n_fail[r],
            distance_km=dist,
            rules=rules,
            context=context,
        )
        if not candidates and not facts:
            facts.append(Shortfall(rule="sharing", quantity="no_candidate", comparison="none"))
        out.append(
            Unmet(
                reason=reason,
                parts=int(rows.parts[r]),
                hours=float(rows.hours[r]),
                detail=detail,
                compatible=counts,
                rule_failure_counts=rule_counts,
                near_misses=_near_misses(rows, r, fleet, masks["process"][r], n_fail[r], rules),
                explanation=Explanation(
                    reason=reason, shortfalls=tuple(facts), candidates=candidates
                ),
            )
        )
    return out


def _near_misses(
    rows: UnmetRows,
    r: int,
    fleet: Fleet,
    process_fail: NDArray[np.bool_],
    n_fail: NDArray[np.int32],
    rules: CompatRules,
) -> tuple[NearMiss, ...]:
    cand = np.flatnonzero(~fleet.status.stopped & ~process_fail & (n_fail > 0))
    if len(cand) == 0:
        return ()
    site = fleet.machine_site[cand]
    dist = haversine_km_array(
        rows.lat_deg[r], rows.lon_deg[r], fleet.site_lat_deg[site], fleet.site_lon_deg[site]
    )
    pick = np.lexsort((dist, n_fail[cand]))[:_NEAR_MISSES]
    out: list[NearMiss] = []
    for i in pick:
        m = fleet.machines[int(cand[i])]
        res = check_compat(
            mold=rows.molds[r],
            machine=m,
            required_certifications=rows.certifications[r],
            rules=rules,
        )
        out.append(
            NearMiss(
                machine_id=m.machine_id,
                firm_id=m.firm_id,
                site_id=m.site_id,
                distance_km=float(dist[i]),
                failures=res.failures,
            )
        )
    return tuple(out)
