"""Takeover planning: which partner machines take over a disrupted firm's jobs.

Pure logic, no database: the registry converts its rows into the input types and calls
:func:`plan_takeover`. See ``DOMAIN.md`` ("Can mold M run on machine X?") for the rules.

- Inputs: :class:`MachineSpec`, :class:`MoldSpec`, :class:`Job`, :class:`PlanContext`
  (with :class:`DisruptionZone`, :class:`CompatRules`, :class:`SearchSettings`,
  :class:`SolverSettings`) and a ``machine_id -> spare hours`` mapping.
- :func:`check_compat`: one mold on one machine, with the failed rules and their numbers.
- :func:`plan_takeover` -> :class:`TakeoverPlan` (allocations, per-job coverage, unmet
  reasons, partners, statistics).
"""

from renkei.cloud.planner.compat import (
    RULE_CODES,
    CompatResult,
    RuleCode,
    RuleFailure,
    check_compat,
)
from renkei.cloud.planner.demand import hours_for_parts, needed_parts, parts_per_hour
from renkei.cloud.planner.errors import PlannerInputError
from renkei.cloud.planner.geo import haversine_km
from renkei.cloud.planner.milp import StageResult
from renkei.cloud.planner.plan import plan_takeover
from renkei.cloud.planner.result import (
    UNMET_REASONS,
    Allocation,
    CompatibleMachines,
    JobOutcome,
    NearMiss,
    PlanStats,
    TakeoverPlan,
    Unmet,
    UnmetReason,
)
from renkei.cloud.planner.types import (
    CompatRules,
    DisruptionZone,
    Job,
    MachineSpec,
    MoldSpec,
    PlanContext,
    Process,
    SearchSettings,
    SolverSettings,
)

__all__ = [
    "RULE_CODES",
    "UNMET_REASONS",
    "Allocation",
    "CompatResult",
    "CompatRules",
    "CompatibleMachines",
    "DisruptionZone",
    "Job",
    "JobOutcome",
    "MachineSpec",
    "MoldSpec",
    "NearMiss",
    "PlanContext",
    "PlanStats",
    "PlannerInputError",
    "Process",
    "RuleCode",
    "RuleFailure",
    "SearchSettings",
    "SolverSettings",
    "StageResult",
    "TakeoverPlan",
    "Unmet",
    "UnmetReason",
    "check_compat",
    "haversine_km",
    "hours_for_parts",
    "needed_parts",
    "parts_per_hour",
    "plan_takeover",
]
