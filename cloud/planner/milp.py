"""The takeover MILP, solved lexicographically with ``scipy.optimize.milp`` (HiGHS).

Sets: jobs ``j`` (hours needed ``h_j``, priority ``w_j``), machines ``m`` (spare hours
``cap_m``), options ``q = (j, s)`` (job ``j``'s mold goes to site ``s``, ``d_q`` km away),
eligible pairs ``p = (j, m)`` with ``m`` at an option's site, partner firms ``f`` (the
requester's own sites are not partners).

Variables:

- ``x_p >= 0`` continuous: hours of job ``j`` on machine ``m`` (``<= min(cap_m, h_j)``);
- ``s_j >= 0`` continuous: unmet hours of job ``j``;
- ``u_q ∈ {0, 1}``: job ``j``'s mold is shipped to site ``s``;
- ``z_f ∈ {0, 1}``: partner firm ``f`` is used (stage 3 only).

Constraints:

- machine capacity: ``Σ_{p ∋ m} x_p <= cap_m``;
- job demand: ``Σ_{p ∋ j} x_p + s_j = h_j``;
- one mold, one place: ``Σ_{p ∈ q} x_p <= M_q · u_q`` with ``M_q = min(h_j, Σ_{m ∈ q}
  cap_m)`` (one row per option rather than per pair; ``M_q`` never exceeds what the site
  can absorb) and ``Σ_{q ∋ j} u_q <= 1``;
- partner count (stage 3): ``u_q <= z_{f(q)}``.

Objectives, lexicographic — each stage fixes the previous optimum and optimises the next
(weights would need coefficients below HiGHS' tolerances to keep the order strict, and a
relative MIP gap on the sum would stop before the minor objectives are optimised):

1. minimise weighted unmet hours ``Σ w_j s_j`` (= maximise covered hours; hours are
   proportional to volume, and machine-hours are the one unit comparable across parts);
2. with ``Σ w s <= best + coverage_tolerance × covered``: minimise ``Σ d_q u_q`` km;
3. with ``Σ d u <= best + distance_tolerance_km``: minimise ``Σ z_f``.

The coverage bound of stage 2 is written on the ``J`` slack variables rather than as a
dense row over every ``x_p``: HiGHS propagates it into per-job bounds (with everything
covered it fixes ``s = 0``), which made stage 2 ~2.5× faster on 60-job groups.

HiGHS cannot be warm-started through scipy; a stage that finds no feasible solution in
its time keeps the previous stage's plan (reported in :class:`StageResult`), and if the
first finds none the result is "nothing planned" (always feasible). Solved MILPs are
small (groups of jobs, see :mod:`renkei.cloud.planner.lns`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_array, csr_array

from renkei.cloud.planner.types import SolverSettings

__all__ = ["StageResult", "TakeoverProblem", "TakeoverSolution", "solve_takeover"]

F64 = NDArray[np.float64]
Idx = NDArray[np.intp]
Bool = NDArray[np.bool_]
StageName = Literal["coverage", "distance", "partners"]


@dataclass(frozen=True, slots=True, kw_only=True)
class TakeoverProblem:
    """Index-based problem data (see module docstring for the model).

    Attributes:
        job_hours, job_weight: ``h_j`` (hours needed) and ``w_j`` per job.
        machine_capacity_h: ``cap_m`` per (local) machine index.
        pair_job, pair_machine, pair_option: per pair, its job, machine and option index.
        option_job, option_distance_km: per option, its job and ``d_q``.
        option_firm: per option, the partner-firm index, or ``-1`` for the requester's own
            sites (not counted).
        n_firms: number of partner-firm indices.
    """

    job_hours: F64
    job_weight: F64
    machine_capacity_h: F64
    pair_job: Idx
    pair_machine: Idx
    pair_option: Idx
    option_job: Idx
    option_distance_km: F64
    option_firm: Idx
    n_firms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class StageResult:
    """One lexicographic stage as HiGHS reported it.

    Attributes:
        name: ``coverage``, ``distance`` or ``partners``.
        status: ``scipy.optimize.milp`` status (0 optimal, 1 time/iteration limit,
            2 infeasible, 3 unbounded, 4 other).
        message: HiGHS' message.
        objective: the stage objective of the adopted solution (hours, km, firms), or
            ``None`` if the stage found no solution.
        mip_gap: relative gap HiGHS reported (0 when proven optimal).
        time_s: wall time of the solve.
        adopted: the stage's solution replaced the previous one.
    """

    name: StageName
    status: int
    message: str
    objective: float | None
    mip_gap: float | None
    time_s: float
    adopted: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class TakeoverSolution:
    """Hours per pair and the options used, after the last adopted stage.

    ``pair_hours`` is clean: non-negative, zero outside used options, within every
    machine's capacity and every job's hours (tiny solver excesses are scaled away).
    """

    pair_hours: F64
    option_used: Bool
    stages: tuple[StageResult, ...]
    n_variables: int
    n_constraints: int


def _rows(p: TakeoverProblem, *, with_firms: bool) -> tuple[csr_array, F64, F64]:
    """The constraint matrix ``lb <= A v <= ub`` over ``v = [x, s, u, z]``."""
    P, Q, J, K = len(p.pair_job), len(p.option_job), len(p.job_hours), len(p.machine_capacity_h)
    nvar = P + J + Q + p.n_firms
    ar_p, ar_q, ar_j = np.arange(P), np.arange(Q), np.arange(J)
    col_u = P + J + ar_q
    m_q = np.minimum(
        p.job_hours[p.option_job],
        np.bincount(p.pair_option, weights=p.machine_capacity_h[p.pair_machine], minlength=Q),
    )
    r_cap, r_dem, r_link, r_one = 0, K, K + J, K + J + Q
    rows = [
        r_cap + p.pair_machine,
        r_dem + p.pair_job,
        r_dem + ar_j,
        r_link + p.pair_option,
        r_link + ar_q,
        r_one + p.option_job,
    ]
    cols = [ar_p, ar_p, P + ar_j, ar_p, col_u, col_u]
    vals = [np.ones(P), np.ones(P), np.ones(J), np.ones(P), -m_q, np.ones(Q)]
    lbs = [np.full(K, -np.inf), p.job_hours, np.full(Q, -np.inf), np.full(J, -np.inf)]
    ubs = [p.machine_capacity_h, p.job_hours, np.zeros(Q), np.ones(J)]
    n_rows = K + J + Q + J
    if with_firms:
        partner = np.flatnonzero(p.option_firm >= 0)
        r_firm = n_rows + np.arange(len(partner))
        rows += [r_firm, r_firm]
        cols += [col_u[partner], P + J + Q + p.option_firm[partner]]
        vals += [np.ones(len(partner)), -np.ones(len(partner))]
        lbs.append(np.full(len(partner), -np.inf))
        ubs.append(np.zeros(len(partner)))
        n_rows += len(partner)
    a = coo_array(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n_rows, nvar),
    ).tocsr()
    return a, np.concatenate(lbs).astype(np.float64), np.concatenate(ubs).astype(np.float64)


def _clean(p: TakeoverProblem, v: F64) -> tuple[F64, Bool]:
    """Round ``u``, clip ``x`` to ``[0, ...]``, enforce capacity and demand exactly."""
    P, Q, J = len(p.pair_job), len(p.option_job), len(p.job_hours)
    used = v[P + J : P + J + Q] > 0.5
    hours = np.clip(v[:P], 0.0, None)
    hours[~used[p.pair_option]] = 0.0
    hours[hours < 1e-7] = 0.0
    for groups, limit in ((p.pair_machine, p.machine_capacity_h), (p.pair_job, p.job_hours)):
        total = np.bincount(groups, weights=hours, minlength=len(limit))
        scale = np.ones_like(total)
        over = total > limit
        scale[over] = limit[over] / total[over]
        hours *= scale[groups]
    return hours, used


def solve_takeover(
    p: TakeoverProblem, settings: SolverSettings, *, time_limit_s: float
) -> TakeoverSolution:
    """Solve the three stages (see module docstring) within ``time_limit_s`` in total.

    Args:
        p: the problem; may be empty (no pairs), then nothing is solved.
        settings: HiGHS gap and the stage tolerances.
        time_limit_s: wall-clock limit for all stages together (each stage gets what the
            previous ones left, at least 10 ms).

    Returns:
        The :class:`TakeoverSolution` of the last stage that found a solution; all zeros
        if even the coverage stage found none in time (zero hours is always feasible).
    """
    P, Q, J, F = len(p.pair_job), len(p.option_job), len(p.job_hours), p.n_firms
    nvar = P + J + Q + F
    if P == 0:
        return TakeoverSolution(
            pair_hours=np.zeros(0),
            option_used=np.zeros(Q, dtype=np.bool_),
            stages=(),
            n_variables=0,
            n_constraints=0,
        )
    deadline = time.perf_counter() + time_limit_s
    a_base, lb_base, ub_base = _rows(p, with_firms=False)
    x_ub = np.minimum(p.machine_capacity_h[p.pair_machine], p.job_hours[p.pair_job])
    bounds = Bounds(np.zeros(nvar), np.concatenate([x_ub, p.job_hours, np.ones(Q + F)]))
    integrality = np.concatenate([np.zeros(P + J), np.ones(Q + F)])
    d = p.option_distance_km
    base = LinearConstraint(a_base, lb_base, ub_base)
    # Objective rows over v = [x, s, u, z].
    c_unmet = np.concatenate([np.zeros(P), p.job_weight, np.zeros(Q + F)])
    c_dist = np.concatenate([np.zeros(P + J), d, np.zeros(F)])
    c_firms = np.concatenate([np.zeros(P + J + Q), np.ones(F)])
    stages: list[StageResult] = []
    best: F64 | None = None
    n_cons = a_base.shape[0]

    def used(v: F64) -> Bool:
        out: Bool = v[P + J : P + J + Q] > 0.5
        return out

    def run(
        name: StageName, c: F64, cons: list[LinearConstraint], value: Callable[[F64], float]
    ) -> None:
        nonlocal best
        options: dict[str, Any] = {
            "time_limit": max(0.01, deadline - time.perf_counter()),
            "mip_rel_gap": settings.mip_rel_gap,
            "presolve": True,
            "disp": False,
        }
        t0 = time.perf_counter()
        res = milp(c, constraints=cons, integrality=integrality, bounds=bounds, options=options)
        dt = time.perf_counter() - t0
        ok = res.x is not None and res.status in (0, 1)
        if ok:
            best = np.asarray(res.x, dtype=np.float64)
        gap = getattr(res, "mip_gap", None)
        stages.append(
            StageResult(
                name=name,
                status=int(res.status),
                message=str(res.message),
                objective=value(best) if ok and best is not None else None,
                mip_gap=None if gap is None else float(gap),
                time_s=dt,
                adopted=ok,
            )
        )

    def covered(v: F64) -> float:
        return float(p.job_weight @ p.job_hours - c_unmet @ v)

    def partners(v: F64) -> float:
        firms = p.option_firm[used(v) & (p.option_firm >= 0)]
        return float(len(np.unique(firms)))

    # Stage 1: maximise weighted covered hours = minimise weighted unmet hours s.
    run("coverage", c_unmet, [base], covered)
    if best is None:
        return TakeoverSolution(
            pair_hours=np.zeros(P),
            option_used=np.zeros(Q, dtype=np.bool_),
            stages=tuple(stages),
            n_variables=nvar,
            n_constraints=n_cons,
        )
    if covered(best) > 1e-9:
        # Stage 2: keep the unmet hours (within tolerance), minimise transport km. The
        # bound is on the few s variables (not on all x), which HiGHS propagates into
        # per-job bounds; with everything covered it fixes s = 0 outright.
        total = float(p.job_weight @ p.job_hours)
        unmet = float(c_unmet @ best)
        slack = settings.coverage_tolerance * max(1.0, total - unmet) + 1e-9
        keep_cov = LinearConstraint(c_unmet[None, :], -np.inf, unmet + slack)
        run("distance", c_dist, [base, keep_cov], lambda v: float(d @ used(v)))
        dist = float(d @ used(best))
        n_cons += 1
        if F > 0 and np.any(p.option_firm >= 0):
            # Stage 3: keep the distance, minimise partner firms.
            a_firm, lb_firm, ub_firm = _rows(p, with_firms=True)
            keep_dist = LinearConstraint(
                c_dist[None, :], -np.inf, dist + settings.distance_tolerance_km
            )
            run(
                "partners",
                c_firms,
                [LinearConstraint(a_firm, lb_firm, ub_firm), keep_cov, keep_dist],
                partners,
            )
            n_cons = a_firm.shape[0] + 2
    hours, chosen = _clean(p, best)
    return TakeoverSolution(
        pair_hours=hours,
        option_used=chosen,
        stages=tuple(stages),
        n_variables=nvar,
        n_constraints=int(n_cons),
    )
