"""Volume needed in the planning horizon and the machine hours it takes.

- Parts: ``ceil(weekly_volume_parts × overlap_days / 7)``, where ``overlap_days`` is the
  number of days the job's window ``[window_start, window_end)`` shares with the horizon
  ``[horizon_start, horizon_end)``. Rounded up: a partial part is still owed.
- Hours: ``parts / cavities × cycle_time_s / 3600`` (the brief's formula; fractional
  shots, no set-up time, no scrap allowance — callers wanting those inflate the volume or
  the cycle time).
"""

from __future__ import annotations

import math
from datetime import date

from renkei.cloud.planner.types import Job, MoldSpec

__all__ = ["hours_for_parts", "needed_parts", "parts_per_hour"]


def needed_parts(job: Job, *, horizon_start: date, horizon_end: date) -> int:
    """Parts of ``job`` due within the horizon ``[horizon_start, horizon_end)``.

    Returns:
        ``ceil(weekly_volume_parts × overlap_days / 7)``; 0 if the windows do not overlap.
    """
    start = max(job.window_start, horizon_start)
    end = min(job.window_end, horizon_end)
    days = (end - start).days
    if days <= 0:
        return 0
    # Integer arithmetic: ceil(a / 7) without float error.
    return -(-job.weekly_volume_parts * days // 7)


def parts_per_hour(mold: MoldSpec) -> float:
    """Parts one machine makes per hour with ``mold``: ``cavities × 3600 / cycle_time_s``."""
    return mold.cavities * 3600.0 / mold.cycle_time_s


def hours_for_parts(parts: float, mold: MoldSpec) -> float:
    """Machine hours for ``parts`` with ``mold``: ``parts / cavities × cycle_time_s / 3600``."""
    hours = parts / mold.cavities * mold.cycle_time_s / 3600.0
    return hours if math.isfinite(hours) else 0.0
