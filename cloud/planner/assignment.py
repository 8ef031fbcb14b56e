"""A plan in index form, and its lexicographic objective.

``job_option[j]`` is the option (job, site) job ``j``'s mold goes to, ``-1`` if it stays
unplaced; ``pair_hours[p]`` the hours on each eligible pair (non-zero only on pairs of the
job's option). Both refer to an :class:`~renkei.cloud.planner.candidates.Options`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from renkei.cloud.planner.candidates import Options

__all__ = ["Assignment", "Score", "score"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Assignment:
    """Index form of a plan (see module docstring)."""

    job_option: NDArray[np.intp]
    pair_hours: NDArray[np.float64]

    def covered_hours(self, opts: Options, n_jobs: int) -> NDArray[np.float64]:
        """Hours covered per job."""
        out = np.bincount(opts.pair_job, weights=self.pair_hours, minlength=n_jobs)
        return out.astype(np.float64, copy=False)

    def used_hours(self, opts: Options, n_machines: int) -> NDArray[np.float64]:
        """Hours planned per machine."""
        out = np.bincount(opts.pair_machine, weights=self.pair_hours, minlength=n_machines)
        return out.astype(np.float64, copy=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Score:
    """The three objectives: weighted covered hours, transport km, partner firms."""

    covered: float
    distance_km: float
    partners: int

    def better_than(self, other: Score, *, rel_tol: float = 1e-6, km_tol: float = 1e-6) -> bool:
        """Lexicographically better: more coverage, else less distance, else fewer partners.

        Coverage within ``rel_tol`` (relative) and distance within ``km_tol`` count as equal.
        """
        eps = rel_tol * max(1.0, abs(other.covered))
        if self.covered > other.covered + eps:
            return True
        if self.covered < other.covered - eps:
            return False
        if self.distance_km < other.distance_km - km_tol:
            return True
        if self.distance_km > other.distance_km + km_tol:
            return False
        return self.partners < other.partners


def score(
    opts: Options,
    a: Assignment,
    *,
    jobs: NDArray[np.intp],
    job_weight: NDArray[np.float64],
    option_firm: NDArray[np.intp],
    free_firms: NDArray[np.bool_] | None = None,
) -> Score:
    """The :class:`Score` of the jobs ``jobs`` under ``a``.

    Args:
        opts: the options ``a`` refers to.
        a: the assignment.
        jobs: the job indices to score.
        job_weight: priority per job.
        option_firm: partner-firm index per option, ``-1`` for the requester's own sites.
        free_firms: firms not counted (already used by jobs outside ``jobs``).
    """
    n_jobs = len(job_weight)
    cov = a.covered_hours(opts, n_jobs)[jobs]
    opt = a.job_option[jobs]
    placed = (opt >= 0) & (cov > 0)
    firms = option_firm[opt[placed]]
    firms = firms[firms >= 0]
    if free_firms is not None and len(firms):
        firms = firms[~free_firms[firms]]
    return Score(
        covered=float(job_weight[jobs] @ cov),
        distance_km=float(opts.option_distance_km[opt[placed]].sum()),
        partners=len(np.unique(firms)),
    )
