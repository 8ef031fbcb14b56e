"""``plan_takeover``: which partner machines take over a disrupted firm's jobs.

Pipeline (each step its own module):

1. :mod:`demand` — parts due in the horizon, machine hours per job;
2. :mod:`compat_matrix` — every (job, machine) pair against the DOMAIN.md rules, numpy;
3. :mod:`eligibility` — stopped (disrupted, zone, origin site) and shared machines;
4. :mod:`candidates` — (job, site) options nearest first, and the MILP's search rule;
5. :mod:`greedy` start, improved by :mod:`lns` — groups of jobs re-optimised by the
   lexicographic MILP of :mod:`milp` (coverage, then transport km, then partner count;
   ``scipy.optimize.milp`` / HiGHS); exact in one MILP for up to ``exact_max_jobs``
   jobs; finally :func:`greedy.greedy_repair` moves any job with unmet volume to a site
   where it gains hours;
6. :mod:`reasons` — one reason per job with unmet volume, explained by :mod:`explain`
   (the rule and numbers that failed for the nearest candidates the requester may see).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

from renkei.cloud.planner.assignment import score
from renkei.cloud.planner.candidates import build_options
from renkei.cloud.planner.compat_matrix import Vocabulary, compatible_matrix, demand_arrays
from renkei.cloud.planner.demand import hours_for_parts, needed_parts, parts_per_hour
from renkei.cloud.planner.errors import PlannerInputError
from renkei.cloud.planner.fleet import build_fleet
from renkei.cloud.planner.greedy import greedy_assignment, greedy_repair
from renkei.cloud.planner.lns import improve
from renkei.cloud.planner.reasons import UnmetRows, explain_unmet
from renkei.cloud.planner.result import Allocation, JobOutcome, PlanStats, TakeoverPlan, Unmet
from renkei.cloud.planner.types import Job, MachineSpec, MoldSpec, PlanContext

__all__ = ["plan_takeover"]

#: Parts tolerance when turning solver hours into whole parts (solver round-off).
_PARTS_EPS = 0.01


def _split_parts(raw: NDArray[np.float64], total: int) -> list[int]:
    """Whole parts per allocation summing to ``total`` (largest-remainder rounding)."""
    base = np.floor(raw).astype(np.int64)
    short = total - int(base.sum())
    if short > 0:
        order = np.argsort(-(raw - base), kind="stable")
        base[order[: min(short, len(base))]] += 1
    elif short < 0:  # only by round-off; take from the largest
        order = np.argsort(-base, kind="stable")
        for i in order:
            take = min(int(base[i]), -short)
            base[i] -= take
            short += take
            if short == 0:
                break
    return [int(b) for b in base]


def plan_takeover(
    *,
    jobs: Sequence[Job],
    molds: Iterable[MoldSpec],
    machines: Sequence[MachineSpec],
    spare_hours: Mapping[str, float],
    context: PlanContext,
) -> TakeoverPlan:
    """Plan which partner machines take over the requester's jobs.

    Every job's mold goes to at most one site (a mold cannot be in two places); at that
    site it may run on several compatible machines. Objectives, in strict order:
    (1) maximise covered machine hours (× job priority), (2) minimise the km the molds
    travel (great-circle, from the mold's location to the chosen site), (3) minimise the
    number of partner firms used (the requester's own other sites are not partners).

    How: a greedy start (nearest site that takes the whole job), then MILPs over groups
    of jobs (:mod:`renkei.cloud.planner.lns`) within ``context.solver.time_budget_s``, then a
    repair pass. With at most ``context.solver.exact_max_jobs`` jobs one MILP takes the
    whole problem and the plan is the exact lexicographic optimum over the searched
    options (``stats.exact``); larger plans are never lexicographically worse than the
    greedy start, without an optimality proof.

    Never planned on: machines flagged disrupted, at the requester's origin site, at a
    disrupted site, inside a disruption zone, or at a firm that does not share with the
    requester (see :mod:`renkei.cloud.planner.eligibility`). Compatibility rules: see
    :mod:`renkei.cloud.planner.compat` (DOMAIN.md, "Can mold M run on machine X?").

    Not modelled: set-up / changeover time and transport time (add them to the cycle
    time or subtract them from spare hours); the order of work inside the horizon (a job
    split over two machines of one site runs them one after the other, which the
    horizon must hold); road distance (straight-line km).

    Args:
        jobs: the requester's jobs to take over.
        molds: at least the molds the jobs name (extra molds are ignored).
        machines: candidate machines (any firm, any site, stopped ones included — they
            matter for the unmet reasons).
        spare_hours: ``machine_id -> spare hours`` in the horizon; missing = 0.
        context: requester, sharing, disruption, horizon and tunables.

    Returns:
        The :class:`~renkei.cloud.planner.result.TakeoverPlan`.

    Raises:
        PlannerInputError: duplicate job / mold / machine ids, a job naming an unknown
            mold, two jobs naming the same mold (merge them: one mold is in one place), a
            site under two firms, or negative / non-finite spare hours.

    Sources: DOMAIN.md (rules); ``scipy.optimize.milp`` (HiGHS branch-and-cut) for the
    optimisation; haversine for distances.
    """
    t_start = time.perf_counter()
    mold_by_id: dict[str, MoldSpec] = {}
    for mold in molds:
        if mold.mold_id in mold_by_id:
            raise PlannerInputError(f"duplicate mold_id {mold.mold_id!r}")
        mold_by_id[mold.mold_id] = mold
    seen: set[str] = set()
    mold_job: dict[str, str] = {}
    for job in jobs:
        if job.job_id in seen:
            raise PlannerInputError(f"duplicate job_id {job.job_id!r}")
        seen.add(job.job_id)
        if job.mold_id not in mold_by_id:
            raise PlannerInputError(f"job {job.job_id!r} names unknown mold {job.mold_id!r}")
        if job.mold_id in mold_job:
            raise PlannerInputError(
                f"jobs {mold_job[job.mold_id]!r} and {job.job_id!r} both need mold "
                f"{job.mold_id!r}; merge them into one job (one mold is in one place)"
            )
        mold_job[job.mold_id] = job.job_id
    job_molds = [mold_by_id[j.mold_id] for j in jobs]
    job_certs = [j.required_certifications for j in jobs]
    vocab = Vocabulary.build(machines, job_molds, job_certs)
    fleet = build_fleet(machines, spare_hours, context, vocab)
    n_jobs = len(jobs)

    # 1. Demand.
    need_parts = np.array(
        [
            needed_parts(j, horizon_start=context.horizon_start, horizon_end=context.horizon_end)
            for j in jobs
        ],
        dtype=np.int64,
    )
    rate = np.array([parts_per_hour(m) for m in job_molds], dtype=np.float64)
    need_h = np.array(
        [hours_for_parts(float(p), m) for p, m in zip(need_parts, job_molds)], dtype=np.float64
    )
    weight = np.array([j.priority for j in jobs], dtype=np.float64)
    job_lat = np.array(
        [
            context.origin_lat_deg if m.location_lat_deg is None else m.location_lat_deg
            for m in job_molds
        ],
        dtype=np.float64,
    )
    job_lon = np.array(
        [
            context.origin_lon_deg if m.location_lon_deg is None else m.location_lon_deg
            for m in job_molds
        ],
        dtype=np.float64,
    )

    # 2-3. Compatibility and eligibility.
    demands = demand_arrays(job_molds, job_certs, vocab)
    compatible = compatible_matrix(demands, fleet.arrays, context.rules)
    usable = fleet.status.eligible & (fleet.capacity_h > 0)
    elig_pairs = compatible & usable[None, :] & (need_h > 0)[:, None]
    pair_job, pair_machine = np.nonzero(elig_pairs)

    # 4. Options (job, site), nearest first; the search rule for the MILP.
    opts = build_options(
        n_jobs=n_jobs,
        pair_job=pair_job.astype(np.intp),
        pair_machine=pair_machine.astype(np.intp),
        machine_site=fleet.machine_site,
        machine_capacity_h=fleet.capacity_h,
        site_lat_deg=fleet.site_lat_deg,
        site_lon_deg=fleet.site_lon_deg,
        job_lat_deg=job_lat,
        job_lon_deg=job_lon,
        job_hours=need_h,
        settings=context.search,
    )
    site_firm = [fleet.site_firm_ids[s] for s in range(len(fleet.site_ids))]
    partner_ids = sorted(set(site_firm) - {context.requester_firm_id})
    partner_index = {f: i for i, f in enumerate(partner_ids)}
    site_partner = np.array([partner_index.get(f, -1) for f in site_firm], dtype=np.intp)
    option_firm = (
        site_partner[opts.option_site] if len(site_partner) else np.zeros(0, dtype=np.intp)
    )

    # 5. Greedy start, then MILP neighbourhood search.
    t_greedy = time.perf_counter()
    start = greedy_assignment(opts, job_hours=need_h, capacity_h=fleet.capacity_h)
    t_search = time.perf_counter()
    all_jobs = np.arange(n_jobs, dtype=np.intp)
    start_score = score(opts, start, jobs=all_jobs, job_weight=weight, option_firm=option_firm)
    improved, lns = improve(
        opts,
        start,
        job_hours=need_h,
        job_weight=weight,
        capacity_h=fleet.capacity_h,
        option_firm=option_firm,
        n_firms=len(partner_ids),
        settings=context.solver,
    )
    final, repaired = greedy_repair(opts, improved, job_hours=need_h, capacity_h=fleet.capacity_h)
    t_done = time.perf_counter()

    # Results.
    hours = final.pair_hours
    residual = fleet.capacity_h - final.used_hours(opts, len(fleet.machines))
    by_job: dict[int, list[int]] = {}
    for p in np.flatnonzero(hours > 0).tolist():
        by_job.setdefault(int(opts.pair_job[p]), []).append(p)
    allocations: list[Allocation] = []
    covered_parts = np.zeros(n_jobs, dtype=np.int64)
    covered_h = np.zeros(n_jobs, dtype=np.float64)
    for j, ps in sorted(by_job.items()):
        h = hours[ps]
        covered_h[j] = float(h.sum())
        raw = h * rate[j]
        total = min(int(need_parts[j]), math.floor(float(raw.sum()) + _PARTS_EPS))
        covered_parts[j] = total
        job, mold = jobs[j], job_molds[j]
        dist = float(opts.option_distance_km[final.job_option[j]])
        for p, parts in sorted(
            zip(ps, _split_parts(raw, total)),
            key=lambda t: fleet.machines[int(opts.pair_machine[t[0]])].machine_id,
        ):
            m = fleet.machines[int(opts.pair_machine[p])]
            allocations.append(
                Allocation(
                    job_id=job.job_id,
                    part_id=job.part_id,
                    mold_id=mold.mold_id,
                    machine_id=m.machine_id,
                    firm_id=m.firm_id,
                    site_id=m.site_id,
                    hours=float(hours[p]),
                    parts=parts,
                    distance_km=dist,
                )
            )

    # 6. Reasons for the unmet rest.
    unmet_rows = np.flatnonzero(covered_parts < need_parts)
    unmet_by_job: dict[int, Unmet] = {}
    if len(unmet_rows):
        rows = UnmetRows(
            job_index=unmet_rows,
            molds=[job_molds[j] for j in unmet_rows],
            certifications=[job_certs[j] for j in unmet_rows],
            demands=demands.take(unmet_rows),
            lat_deg=job_lat[unmet_rows],
            lon_deg=job_lon[unmet_rows],
            parts=[int(need_parts[j] - covered_parts[j]) for j in unmet_rows],
            hours=[max(0.0, float(need_h[j] - covered_h[j])) for j in unmet_rows],
            covered_hours=covered_h[unmet_rows],
            compatible=compatible[unmet_rows],
        )
        explained = explain_unmet(
            rows,
            fleet=fleet,
            residual_h=residual,
            rules=context.rules,
            requester_firm_id=context.requester_firm_id,
            context=context,
        )
        unmet_by_job = dict(zip(unmet_rows.tolist(), explained))

    outcomes = []
    for j, job in enumerate(jobs):
        q = int(final.job_option[j])
        placed = q >= 0 and covered_h[j] > 0
        site = int(opts.option_site[q]) if placed else -1
        outcomes.append(
            JobOutcome(
                job_id=job.job_id,
                part_id=job.part_id,
                mold_id=job.mold_id,
                needed_parts=int(need_parts[j]),
                needed_hours=float(need_h[j]),
                covered_parts=int(covered_parts[j]),
                covered_hours=float(covered_h[j]),
                site_id=fleet.site_ids[site] if placed else None,
                firm_id=fleet.site_firm_ids[site] if placed else None,
                distance_km=float(opts.option_distance_km[q]) if placed else None,
                unmet=unmet_by_job.get(j),
            )
        )
    partners = sorted(
        {
            o.firm_id
            for o in outcomes
            if o.firm_id is not None and o.firm_id != context.requester_firm_id
        }
    )
    transport = sum(o.distance_km for o in outcomes if o.distance_km is not None)
    total_s = time.perf_counter() - t_start
    stats = PlanStats(
        jobs=n_jobs,
        machines=len(fleet.machines),
        compatible_pairs=int(compatible.sum()),
        eligible_pairs=len(pair_job),
        options=len(opts.option_job),
        searched_options=int(opts.option_searched.sum()),
        greedy_covered_hours=start_score.covered,
        greedy_transport_km=start_score.distance_km,
        neighbourhoods=lns.neighbourhoods,
        accepted=lns.accepted,
        passes=lns.passes,
        exact=lns.exact,
        max_variables=lns.max_variables,
        max_constraints=lns.max_constraints,
        stage_timeouts=lns.stage_timeouts,
        repaired_jobs=repaired,
        build_time_s=total_s - (t_done - t_greedy),
        greedy_time_s=t_search - t_greedy,
        search_time_s=t_done - t_search,
        milp_time_s=lns.milp_time_s,
        first_stages=lns.first_stages,
    )
    return TakeoverPlan(
        allocations=tuple(allocations),
        jobs=tuple(outcomes),
        partner_firm_ids=tuple(partners),
        transport_km=float(transport),
        stats=stats,
    )
