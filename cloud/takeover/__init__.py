"""Takeover requests: a disrupted firm's jobs planned onto partners' machines.

- :mod:`.convert`: registry rows -> :mod:`renkei.cloud.planner` inputs (pure).
- :mod:`.fleet`: loading machines, sharing, zones and spare hours for a request.
- :mod:`.service`: planning and re-planning it, and its summary.

The HTTP side is in the API layer above (``cloud/api/routers/takeovers.py`` for the
disrupted firm, ``cloud/api/routers/assignments.py`` for the partners); this package does
not import it.
"""

from renkei.cloud.takeover.fleet import Fleet, load_fleet
from renkei.cloud.takeover.service import (
    LIVE,
    Demand,
    Outcome,
    Placement,
    PlanRun,
    plan_demands,
    plan_initial,
    refresh_summary,
    replan,
)

__all__ = [
    "LIVE",
    "Demand",
    "Fleet",
    "Outcome",
    "Placement",
    "PlanRun",
    "load_fleet",
    "plan_demands",
    "plan_initial",
    "refresh_summary",
    "replan",
]
