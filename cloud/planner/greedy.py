"""Greedy placement: each job to the nearest site that can take all of it.

Placing one job, given the machines' remaining spare hours: go through the job's options
nearest first and take the first whose compatible machines have at least the job's hours
left; if none has, take the one with the most hours left (partial cover; the nearest on
ties). At the site the hours go to the machines with the most hours left first (fewest
machines per job).

- :func:`greedy_assignment`: the start plan. Jobs are placed most-constrained first
  (fewest eligible options, then most hours).
- :func:`greedy_repair`: after the MILP search, every job with unmet volume is lifted
  out and placed again over *all* its options; kept if it gains hours. Afterwards no job
  with unmet volume can gain by moving alone to any eligible site, which is what the
  ``no_capacity`` reason states.

Linear in the options scanned: ~10 ms for 500 jobs against 5,000 machines.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from renkei.cloud.planner.assignment import Assignment
from renkei.cloud.planner.candidates import Options

__all__ = ["greedy_assignment", "greedy_repair"]

_EPS_H = 1e-9


class _Placer:
    """Mutable residual hours and the single-job placement rule."""

    def __init__(self, opts: Options, residual_h: NDArray[np.float64]) -> None:
        self.residual = residual_h.astype(np.float64).tolist()
        self.pm = opts.pair_machine.tolist()
        self.ps = opts.option_pair_start.tolist()
        self.js = opts.job_start.tolist()

    def place(self, j: int, h: float) -> tuple[int, dict[int, float]]:
        """Best option for ``h`` hours of job ``j`` and the hours per pair (not applied)."""
        residual, pm, ps = self.residual, self.pm, self.ps
        best, best_cap = -1, 0.0
        for q in range(self.js[j], self.js[j + 1]):
            c = sum(residual[pm[p]] for p in range(ps[q], ps[q + 1]))
            if c >= h - _EPS_H:
                best = q
                break
            if c > best_cap + _EPS_H:
                best, best_cap = q, c
        hours: dict[int, float] = {}
        if best < 0:
            return best, hours
        need = h
        for p in sorted(range(ps[best], ps[best + 1]), key=lambda p: -residual[pm[p]]):
            take = min(need, residual[pm[p]])
            if take <= 0:
                break
            hours[p] = take
            need -= take
            if need <= _EPS_H:
                break
        return best, hours

    def apply(self, hours: dict[int, float], sign: float) -> None:
        """Take (``sign=1``) or give back (``sign=-1``) the hours on their machines."""
        for p, x in hours.items():
            self.residual[self.pm[p]] -= sign * x


def greedy_assignment(
    opts: Options, *, job_hours: NDArray[np.float64], capacity_h: NDArray[np.float64]
) -> Assignment:
    """The start plan (see module docstring).

    Args:
        opts: all eligible options, nearest first per job.
        job_hours: hours each job needs.
        capacity_h: spare hours per machine.

    Returns:
        A feasible :class:`Assignment`.
    """
    placer = _Placer(opts, capacity_h)
    hours = np.zeros(len(opts.pair_job), dtype=np.float64)
    job_option = np.full(len(job_hours), -1, dtype=np.intp)
    n_opts = np.diff(opts.job_start)
    for j in np.lexsort((-job_hours, n_opts)).tolist():
        h = float(job_hours[j])
        if h <= 0 or n_opts[j] == 0:
            continue
        q, got = placer.place(j, h)
        if got:
            placer.apply(got, 1.0)
            hours[list(got)] = list(got.values())
            job_option[j] = q
    return Assignment(job_option=job_option, pair_hours=hours)


def greedy_repair(
    opts: Options,
    a: Assignment,
    *,
    job_hours: NDArray[np.float64],
    capacity_h: NDArray[np.float64],
) -> tuple[Assignment, int]:
    """Move jobs with unmet volume to any site where they gain hours (module docstring).

    Args:
        opts: all eligible options.
        a: a feasible assignment.
        job_hours: hours each job needs.
        capacity_h: spare hours per machine.

    Returns:
        The repaired assignment (never less coverage for any job) and the number of jobs
        moved.
    """
    n_jobs = len(job_hours)
    used = a.used_hours(opts, len(capacity_h))
    placer = _Placer(opts, np.maximum(capacity_h - used, 0.0))
    hours = a.pair_hours.copy()
    job_option = a.job_option.copy()
    cov = a.covered_hours(opts, n_jobs)
    unmet = job_hours - cov
    moved = 0
    for j in np.argsort(-unmet, kind="stable").tolist():
        if unmet[j] <= 1e-6 or opts.job_start[j] == opts.job_start[j + 1]:
            continue
        lo, hi = (
            int(opts.option_pair_start[opts.job_start[j]]),
            int(opts.option_pair_start[opts.job_start[j + 1]]),
        )
        own = {p: float(hours[p]) for p in range(lo, hi) if hours[p] > 0}
        placer.apply(own, -1.0)
        q, got = placer.place(j, float(job_hours[j]))
        if sum(got.values()) > cov[j] + 1e-6:
            placer.apply(got, 1.0)
            hours[lo:hi] = 0.0
            hours[list(got)] = list(got.values())
            job_option[j] = q
            moved += 1
        else:
            placer.apply(own, 1.0)
    return Assignment(job_option=job_option, pair_hours=hours), moved
