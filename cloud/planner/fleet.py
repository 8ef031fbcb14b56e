"""The candidate machines, indexed once: arrays, sites, eligibility, spare hours.

Sites are derived from the machines: a ``site_id`` must always come with the same firm
(else :class:`PlannerInputError`); its position is taken from its first machine (sites
are points; machines of one site that disagree by a few metres do not matter).

Spare hours come from a mapping ``machine_id -> hours in the horizon``; a machine without
an entry has 0 spare hours (it still counts for the unmet reasons: compatible but full).
Entries for unknown machine ids are ignored (the registry may send its whole table).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from renkei.cloud.planner.compat_matrix import MachineArrays, Vocabulary, machine_arrays
from renkei.cloud.planner.eligibility import MachineStatus, machine_status
from renkei.cloud.planner.errors import PlannerInputError
from renkei.cloud.planner.types import MachineSpec, PlanContext

__all__ = ["Fleet", "build_fleet"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Fleet:
    """Machine-side data, aligned by machine index (and site index for ``site_*``)."""

    machines: tuple[MachineSpec, ...]
    arrays: MachineArrays
    status: MachineStatus
    capacity_h: NDArray[np.float64]
    machine_site: NDArray[np.intp]
    site_ids: tuple[str, ...]
    site_firm_ids: tuple[str, ...]
    site_lat_deg: NDArray[np.float64]
    site_lon_deg: NDArray[np.float64]


def build_fleet(
    machines: Sequence[MachineSpec],
    spare_hours: Mapping[str, float],
    context: PlanContext,
    vocab: Vocabulary,
) -> Fleet:
    """Index ``machines`` (see module docstring).

    Raises:
        PlannerInputError: duplicate ``machine_id``, a site under two firms, or a spare
            hours figure that is negative or not finite.
    """
    site_index: dict[str, int] = {}
    site_firm: list[str] = []
    lat: list[float] = []
    lon: list[float] = []
    machine_site = np.empty(len(machines), dtype=np.intp)
    cap = np.zeros(len(machines), dtype=np.float64)
    seen: set[str] = set()
    for i, m in enumerate(machines):
        if m.machine_id in seen:
            raise PlannerInputError(f"duplicate machine_id {m.machine_id!r}")
        seen.add(m.machine_id)
        s = site_index.get(m.site_id)
        if s is None:
            s = site_index[m.site_id] = len(site_firm)
            site_firm.append(m.firm_id)
            lat.append(m.site_lat_deg)
            lon.append(m.site_lon_deg)
        elif site_firm[s] != m.firm_id:
            raise PlannerInputError(
                f"site {m.site_id!r} belongs to {site_firm[s]!r} and {m.firm_id!r}"
            )
        machine_site[i] = s
        h = spare_hours.get(m.machine_id, 0.0)
        if not (math.isfinite(h) and h >= 0):
            raise PlannerInputError(f"spare hours of {m.machine_id!r} must be >= 0, got {h!r}")
        cap[i] = h
    return Fleet(
        machines=tuple(machines),
        arrays=machine_arrays(machines, vocab),
        status=machine_status(machines, context),
        capacity_h=cap,
        machine_site=machine_site,
        site_ids=tuple(site_index),
        site_firm_ids=tuple(site_firm),
        site_lat_deg=np.array(lat, dtype=np.float64),
        site_lon_deg=np.array(lon, dtype=np.float64),
    )
