"""Which machines may be planned on at all: not stopped, and shared with the requester.

A machine is **stopped** when any of these holds:

- ``MachineSpec.disrupted`` is set;
- its site is the requester's disrupted site (``PlanContext.origin_site_id``) — always;
- its site is in ``PlanContext.disrupted_site_ids``;
- its site lies inside a :class:`~renkei.cloud.planner.types.DisruptionZone` (haversine distance
  to the centre ``<= radius_km``).

A machine is **shared** when its firm is the requester itself (the requester's other
sites outside the zone are its own first reserve) or is in ``PlanContext.sharing_firm_ids``
(the firm's sharing policy grants the requester).

Eligible = not stopped and shared. Compatibility is separate (:mod:`compat_matrix`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from renkei.cloud.planner.geo import haversine_km_array
from renkei.cloud.planner.types import MachineSpec, PlanContext

__all__ = ["MachineStatus", "machine_status"]

Bool = NDArray[np.bool_]


@dataclass(frozen=True, slots=True, kw_only=True)
class MachineStatus:
    """Per-machine flags (arrays aligned with the machine list)."""

    stopped: Bool
    inside_zone: Bool
    shared: Bool

    @property
    def eligible(self) -> Bool:
        """Not stopped and shared with the requester."""
        out: Bool = ~self.stopped & self.shared
        return out


def machine_status(machines: Sequence[MachineSpec], context: PlanContext) -> MachineStatus:
    """Flag every machine as stopped / inside a zone / shared (see module docstring)."""
    n = len(machines)
    lat = np.array([m.site_lat_deg for m in machines], dtype=np.float64)
    lon = np.array([m.site_lon_deg for m in machines], dtype=np.float64)
    inside = np.zeros(n, dtype=np.bool_)
    for z in context.zones:
        inside |= haversine_km_array(z.center_lat_deg, z.center_lon_deg, lat, lon) <= z.radius_km
    bad_sites = context.disrupted_site_ids | {context.origin_site_id}
    flagged = np.array([m.disrupted or m.site_id in bad_sites for m in machines], dtype=np.bool_)
    allowed = context.sharing_firm_ids | {context.requester_firm_id}
    shared = np.array([m.firm_id in allowed for m in machines], dtype=np.bool_)
    return MachineStatus(stopped=flagged | inside, inside_zone=inside, shared=shared)
