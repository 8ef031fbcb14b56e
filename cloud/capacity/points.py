"""The ``capacity`` points of a spare-capacity computation (line protocol).

The measurement (:data:`renkei.core.influx.contract.CAPACITY`, documented in
``dashboards/README.md``) is written by the capacity publisher
(:mod:`renkei.cloud.capacity.publish`); its formatting lives next to its producer because
it reads a :class:`renkei.cloud.capacity.spare.SpareCapacity`, which the core contract
cannot import.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from renkei.cloud.capacity.calendar import day_start_utc
from renkei.cloud.capacity.spare import SpareCapacity
from renkei.core.influx.contract import CAPACITY
from renkei.core.influx.lineproto import FieldValue, format_point

__all__ = ["capacity_points"]


def capacity_points(
    spare: SpareCapacity,
    *,
    machine_tags: Mapping[str, Mapping[str, str]],
    timezone: str = "Asia/Tokyo",
) -> bytes:
    """``capacity`` points of a :func:`renkei.cloud.capacity.compute_spare` result.

    One point per machine and site-local day, stamped at the day's local midnight (UTC
    epoch ms), tags from ``machine_tags[machine]`` (``firm``, ``site``, ``area``,
    ``line``, ``machine``), fields ``available_h``, ``booked_h``, ``downtime_h``,
    ``spare_h`` and ``availability_ratio`` (all floats, hours), ``ratio_measured`` (0/1).
    Writing the same horizon again overwrites the points (same series and times).

    Raises:
        KeyError: a machine of ``spare`` has no entry in ``machine_tags``.
    """
    lines: list[bytes] = []
    for day_index, day in enumerate(spare.dates):
        start: datetime = day_start_utc(timezone, day)
        time_ms = int(start.astimezone(UTC).timestamp() * 1000)
        for row, machine in enumerate(spare.machines):
            tags = {**machine_tags[machine], "machine": machine}
            fields: dict[str, FieldValue] = {
                "available_h": float(spare.available_h[row, day_index]),
                "booked_h": float(spare.booked_h[row, day_index]),
                "downtime_h": float(spare.downtime_h[row, day_index]),
                "spare_h": float(spare.spare_h[row, day_index]),
                "availability_ratio": float(spare.availability_ratio[row]),
                "ratio_measured": int(bool(spare.ratio_measured[row])),
            }
            lines.append(format_point(CAPACITY, tags, fields, time_ms))
    return b"".join(lines)
