"""Options: for each job, the eligible sites its mold could go to, nearest first.

A mold goes to one site, so every decision is about (job, site) *options*. This module
groups the eligible (job, machine) pairs into options, sorts each job's options by the
great-circle distance from the mold (ties: site index, so the order is deterministic) and
marks the ones the MILP may consider (:class:`~renkei.cloud.planner.types.SearchSettings`): the
nearest sites until their compatible spare hours reach ``capacity_factor × hours
needed``, at least ``min_sites``, at most ``max_sites``. The greedy start
(:mod:`renkei.cloud.planner.greedy`) looks at *all* options; a job's current option is always
offered to the MILP too, so the search limit never makes a plan worse.

Everything is vectorised: one ``np.unique`` over (job, site) keys, one ``np.lexsort``,
grouped ranks and cumulative sums.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from renkei.cloud.planner.geo import haversine_km_array
from renkei.cloud.planner.types import SearchSettings

__all__ = ["Options", "build_options"]

F64 = NDArray[np.float64]
Idx = NDArray[np.intp]


@dataclass(frozen=True, slots=True, kw_only=True)
class Options:
    """All eligible options and their pairs, in CSR-like layout.

    Attributes:
        option_job, option_site: job / site index of each option; sorted by job, then
            distance, then site.
        option_distance_km: haversine km from the job's mold location to the site.
        option_searched: the option passes the search rule (offered to the MILP).
        job_start: options of job ``j`` are ``job_start[j]:job_start[j + 1]``.
        pair_job, pair_machine: the eligible pairs, grouped by option.
        option_pair_start: pairs of option ``q`` are ``option_pair_start[q]:...[q + 1]``.
    """

    option_job: Idx
    option_site: Idx
    option_distance_km: F64
    option_searched: NDArray[np.bool_]
    job_start: Idx
    pair_job: Idx
    pair_machine: Idx
    option_pair_start: Idx

    @property
    def pair_option(self) -> Idx:
        """The option of each pair."""
        counts = np.diff(self.option_pair_start)
        out: Idx = np.repeat(np.arange(len(counts), dtype=np.intp), counts)
        return out


def build_options(
    *,
    n_jobs: int,
    pair_job: Idx,
    pair_machine: Idx,
    machine_site: Idx,
    machine_capacity_h: F64,
    site_lat_deg: F64,
    site_lon_deg: F64,
    job_lat_deg: F64,
    job_lon_deg: F64,
    job_hours: F64,
    settings: SearchSettings,
) -> Options:
    """Group eligible pairs into options, sort them, apply the search rule.

    Args:
        n_jobs: number of jobs (for ``job_start``).
        pair_job, pair_machine: eligible compatible pairs (job index, machine index).
        machine_site: site index of each machine.
        machine_capacity_h: spare hours of each machine in the horizon.
        site_lat_deg, site_lon_deg: site positions.
        job_lat_deg, job_lon_deg: where each job's mold is.
        job_hours: machine hours each job needs.
        settings: the search limits.
    """
    n_sites = max(len(site_lat_deg), 1)
    key = pair_job.astype(np.int64) * n_sites + machine_site[pair_machine]
    okeys, inv = np.unique(key, return_inverse=True)
    inv = inv.reshape(-1)
    o_job = (okeys // n_sites).astype(np.intp)
    o_site = (okeys % n_sites).astype(np.intp)
    o_cap = np.bincount(inv, weights=machine_capacity_h[pair_machine], minlength=len(okeys)).astype(
        np.float64
    )
    o_dist = haversine_km_array(
        job_lat_deg[o_job], job_lon_deg[o_job], site_lat_deg[o_site], site_lon_deg[o_site]
    )
    order = np.lexsort((o_site, o_dist, o_job))
    sj = o_job[order]
    n = len(order)
    ar = np.arange(n)
    first = np.ones(n, dtype=np.bool_)
    first[1:] = sj[1:] != sj[:-1]
    grp = np.maximum.accumulate(np.where(first, ar, 0)) if n else ar
    rank = ar - grp
    cap_sorted = o_cap[order]
    before = np.cumsum(cap_sorted) - cap_sorted  # capacity of all earlier options ...
    if n:
        before -= before[grp]  # ... of the same job
    searched = (rank < settings.min_sites) | (before < settings.capacity_factor * job_hours[sj])
    if settings.max_sites is not None:
        searched &= rank < settings.max_sites
    new_index = np.empty(len(okeys), dtype=np.intp)
    new_index[order] = ar
    p_opt = new_index[inv]
    p_order = np.argsort(p_opt, kind="stable")
    return Options(
        option_job=sj,
        option_site=o_site[order],
        option_distance_km=o_dist[order],
        option_searched=searched,
        job_start=np.searchsorted(sj, np.arange(n_jobs + 1)).astype(np.intp),
        pair_job=pair_job[p_order],
        pair_machine=pair_machine[p_order],
        option_pair_start=np.searchsorted(p_opt[p_order], np.arange(n + 1)).astype(np.intp),
    )
