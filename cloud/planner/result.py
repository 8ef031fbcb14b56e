"""Output types of the takeover planner.

Unmet reasons (exactly one per job with unmet volume), decided by *where the job's
compatible machines are* — the constraint that binds — in this precedence:

1. ``no_compatible_machine``: no machine in the input passes every compatibility rule,
   wherever it is. ``rule_failure_counts`` / ``near_misses`` say which rules failed.
2. ``no_capacity``: compatible, eligible machines exist, but their spare hours are used up
   (by this or other jobs), or the job does not fit one site (a mold can be at one site
   only). The plan guarantees that no eligible site has more hours left for the job than
   it already gets (:func:`renkei.cloud.planner.greedy.greedy_repair`).
3. ``not_shared``: no compatible machine is eligible; some stand outside every zone, not
   stopped, at firms that do not share with the requester. Ask them to grant sharing.
4. ``only_inside_zone``: every compatible machine is stopped (disrupted flag, disrupted
   site, the requester's own disrupted site) or inside a disrupted zone.

Rationale: the reason names the first thing that would have to change. If an eligible
machine exists, sharing and the zone are not what blocks the job, capacity is; sharing is
actionable (ask a firm), the zone is not (wait), hence ``not_shared`` before
``only_inside_zone``. ``compatible`` counts machines in every category so that the other
facts stay visible (e.g. ``no_capacity`` with 3 compatible machines at non-sharing firms).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from renkei.cloud.planner.compat import RuleCode, RuleFailure
from renkei.cloud.planner.explain import Explanation
from renkei.cloud.planner.milp import StageResult

__all__ = [
    "Allocation",
    "CompatibleMachines",
    "JobOutcome",
    "NearMiss",
    "PlanStats",
    "TakeoverPlan",
    "Unmet",
    "UnmetReason",
]

UnmetReason = Literal["no_compatible_machine", "no_capacity", "not_shared", "only_inside_zone"]
#: Reasons in precedence order.
UNMET_REASONS: tuple[UnmetReason, ...] = (
    "no_compatible_machine",
    "no_capacity",
    "not_shared",
    "only_inside_zone",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Allocation:
    """Hours of one job on one partner machine.

    Attributes:
        hours: machine hours in the horizon.
        parts: whole parts these hours make (``hours × cavities × 3600 / cycle_time_s``,
            rounded so that a job's allocations sum to its covered parts).
        distance_km: great-circle km the mold travels to this site.
    """

    job_id: str
    part_id: str
    mold_id: str
    machine_id: str
    firm_id: str
    site_id: str
    hours: float
    parts: int
    distance_km: float


@dataclass(frozen=True, slots=True, kw_only=True)
class CompatibleMachines:
    """Where a job's compatible machines are (counts of machines).

    Attributes:
        eligible: compatible, not stopped, shared with the requester.
        eligible_with_spare: of those, machines with spare hours > 0 before planning.
        not_shared: compatible, not stopped, at firms that do not share.
        stopped: compatible but stopped or inside a disrupted zone.
    """

    eligible: int
    eligible_with_spare: int
    not_shared: int
    stopped: int


@dataclass(frozen=True, slots=True, kw_only=True)
class NearMiss:
    """A machine (not stopped) that fails few rules for a job, with the failures."""

    machine_id: str
    firm_id: str
    site_id: str
    distance_km: float
    failures: tuple[RuleFailure, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Unmet:
    """Why part of a job's volume is not covered (see module docstring for ``reason``).

    Attributes:
        parts, hours: the unmet volume and the machine hours it would take.
        detail: one human-readable sentence with the figures.
        compatible: where the compatible machines are.
        rule_failure_counts: per rule code, how many of the input machines fail it
            (a machine failing two rules counts under both).
        near_misses: up to three non-stopped machines of the right process failing the
            fewest rules (nearest first on ties), *any* firm's (for diagnostics; not
            for the requester's eyes — use ``explanation``).
        explanation: the failed rules with their numbers for the nearest candidates the
            requester may see (:mod:`renkei.cloud.planner.explain`).
    """

    reason: UnmetReason
    parts: int
    hours: float
    detail: str
    compatible: CompatibleMachines
    rule_failure_counts: Mapping[RuleCode, int] = field(default_factory=dict)
    near_misses: tuple[NearMiss, ...] = ()
    explanation: Explanation | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class JobOutcome:
    """Coverage of one job.

    Attributes:
        needed_parts, needed_hours: volume due in the horizon and its machine hours.
        covered_parts, covered_hours: what the plan covers.
        site_id, firm_id, distance_km: where the mold goes (``None`` if nowhere).
        unmet: the reason for the uncovered rest, ``None`` if fully covered.
    """

    job_id: str
    part_id: str
    mold_id: str
    needed_parts: int
    needed_hours: float
    covered_parts: int
    covered_hours: float
    site_id: str | None
    firm_id: str | None
    distance_km: float | None
    unmet: Unmet | None

    @property
    def unmet_parts(self) -> int:
        """Parts not covered."""
        return self.needed_parts - self.covered_parts


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanStats:
    """Problem sizes, timings and what the optimiser did.

    Attributes:
        jobs, machines: input sizes.
        compatible_pairs: (job, machine) pairs passing every compatibility rule.
        eligible_pairs: of those, on eligible machines with spare hours (jobs with hours).
        options, searched_options: eligible (job, site) options / those the search rule
            offers to the MILP.
        greedy_covered_hours, greedy_transport_km: the greedy start's figures.
        neighbourhoods, accepted, passes: MILP neighbourhood search (:mod:`lns`).
        exact: one MILP covered all jobs and no stage hit the time limit: the plan is the
            exact lexicographic optimum over the searched options.
        max_variables, max_constraints: largest MILP.
        stage_timeouts: HiGHS stages stopped by the time budget.
        repaired_jobs: jobs :func:`~renkei.cloud.planner.greedy.greedy_repair` moved afterwards.
        build_time_s: validation, compatibility, eligibility, options, results, reasons.
        greedy_time_s: the greedy start.
        search_time_s: the neighbourhood search (wall), of which ``milp_time_s`` in HiGHS.
        first_stages: stage reports of the first MILP.
    """

    jobs: int
    machines: int
    compatible_pairs: int
    eligible_pairs: int
    options: int
    searched_options: int
    greedy_covered_hours: float
    greedy_transport_km: float
    neighbourhoods: int
    accepted: int
    passes: int
    exact: bool
    max_variables: int
    max_constraints: int
    stage_timeouts: int
    repaired_jobs: int
    build_time_s: float
    greedy_time_s: float
    search_time_s: float
    milp_time_s: float
    first_stages: tuple[StageResult, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class TakeoverPlan:
    """The plan: allocations, per-job coverage and reasons, partners, statistics.

    Attributes:
        allocations: job × machine hours, ordered by job then machine id.
        jobs: one outcome per input job, in input order.
        partner_firm_ids: firms (other than the requester) that receive molds, sorted.
        transport_km: total great-circle km of mold moves (one move per placed job).
        stats: sizes and timings.
    """

    allocations: tuple[Allocation, ...]
    jobs: tuple[JobOutcome, ...]
    partner_firm_ids: tuple[str, ...]
    transport_km: float
    stats: PlanStats

    @property
    def needed_hours(self) -> float:
        """Machine hours all jobs need in the horizon."""
        return sum(j.needed_hours for j in self.jobs)

    @property
    def covered_hours(self) -> float:
        """Machine hours the plan covers."""
        return sum(j.covered_hours for j in self.jobs)

    @property
    def coverage(self) -> float:
        """Covered / needed hours (1.0 when nothing is needed)."""
        need = self.needed_hours
        return 1.0 if need <= 0 else self.covered_hours / need

    def unmet_parts_by_reason(self) -> dict[UnmetReason, int]:
        """Unmet parts summed per reason (only reasons that occur)."""
        out: dict[UnmetReason, int] = {}
        for j in self.jobs:
            if j.unmet is not None:
                out[j.unmet.reason] = out.get(j.unmet.reason, 0) + j.unmet.parts
        return out
