"""Input types of the takeover planner (pure data, no database).

The registry converts its ORM rows into these frozen, keyword-only dataclasses. Every
constructor validates its own fields and raises
:class:`~renkei.cloud.planner.errors.PlannerInputError` (also a ``ValueError``) on a bad value;
cross-object checks (unknown mold ids, duplicate ids) happen in
:func:`renkei.cloud.planner.plan_takeover`.

Units are in the field names: ``_kN`` kilonewton, ``_mm`` millimetre, ``_g`` gram, ``_kg``
kilogram, ``_s`` second, ``_deg`` decimal degrees (WGS 84), ``_km`` kilometre.

Which fields a machine needs depends on its process (see ``DOMAIN.md``, "Can mold M run on
machine X?"):

- ``injection_molding`` (the main case): ``clamp_force_kN``, ``tie_bar_h_mm``,
  ``tie_bar_v_mm``, ``min_mold_height_mm``, ``max_mold_height_mm``, ``shot_capacity_g``,
  ``locating_ring_mm``; optional ``max_mold_weight_kg``.
- ``press``: ``tonnage_kN``, ``bed_width_mm``, ``bed_depth_mm`` and the die (shut) height
  range in ``min_mold_height_mm`` / ``max_mold_height_mm``; optional ``max_mold_weight_kg``.
- ``machining``: ``axes`` and the work envelope ``envelope_x_mm`` / ``_y_mm`` / ``_z_mm``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from renkei.cloud.planner.errors import PlannerInputError

__all__ = [
    "CompatRules",
    "DisruptionZone",
    "Job",
    "MachineSpec",
    "MoldSpec",
    "PlanContext",
    "Process",
    "SearchSettings",
    "SolverSettings",
]

#: The production process of a machine, and the process a mold / die / fixture is made for.
Process = Literal["injection_molding", "press", "machining"]
PROCESSES: tuple[Process, ...] = ("injection_molding", "press", "machining")


def _positive(name: str, value: float | None, *, required: bool, allow_zero: bool = False) -> None:
    if value is None:
        if required:
            raise PlannerInputError(f"{name} is required")
        return
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise PlannerInputError(f"{name} must be finite and {bound}, got {value!r}")


def _lat_lon(prefix: str, lat_deg: float, lon_deg: float) -> None:
    if not (math.isfinite(lat_deg) and -90.0 <= lat_deg <= 90.0):
        raise PlannerInputError(f"{prefix}lat_deg must be in [-90, 90], got {lat_deg!r}")
    if not (math.isfinite(lon_deg) and -180.0 <= lon_deg <= 180.0):
        raise PlannerInputError(f"{prefix}lon_deg must be in [-180, 180], got {lon_deg!r}")


def _nonempty(name: str, value: str) -> None:
    if not value:
        raise PlannerInputError(f"{name} must not be empty")


def _process(value: str) -> None:
    if value not in PROCESSES:
        raise PlannerInputError(f"process must be one of {PROCESSES}, got {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class MachineSpec:
    """One candidate machine, with the site facts the compatibility rules need.

    Attributes:
        machine_id, firm_id, site_id: registry ids; a site belongs to exactly one firm.
        site_lat_deg, site_lon_deg: the site's position (WGS 84 degrees).
        process: what the machine does (see module docstring for the required fields).
        resins: resin codes the *site* can process (dryers, material handling), e.g.
            ``{"PP", "ABS", "PA66-GF30"}``; compared exactly (case-sensitive).
        certifications: certifications valid for this machine's site/line, e.g.
            ``{"IATF16949", "ISO9001"}``; compared exactly.
        disrupted: the machine is down (disaster, breakdown); never planned on.
        clamp_force_kN: injection molding: maximum clamp force.
        tie_bar_h_mm, tie_bar_v_mm: injection molding: clear distance between the tie bars,
            horizontal and vertical (the mold must pass between them).
        min_mold_height_mm, max_mold_height_mm: injection molding: the mold thickness range
            the platens accept (daylight); press: the die (shut) height range.
        shot_capacity_g: injection molding: maximum shot weight of the injection unit, in
            grams of the resins actually run (the registry converts from the catalogue's
            polystyrene figure with the resin density if needed).
        locating_ring_mm: injection molding: diameter of the platen's locating-ring bore.
        max_mold_weight_kg: optional platen / crane limit; ``None`` = not checked.
        tonnage_kN, bed_width_mm, bed_depth_mm: press: nominal force and bolster size.
        axes, envelope_x_mm, envelope_y_mm, envelope_z_mm: machining: number of axes and
            the work envelope.

    Raises:
        PlannerInputError: a required field of the process is missing, a size/force is not
            finite and positive, ``min_mold_height_mm > max_mold_height_mm``, or the
            position is outside the WGS 84 range.
    """

    machine_id: str
    firm_id: str
    site_id: str
    site_lat_deg: float
    site_lon_deg: float
    process: Process = "injection_molding"
    resins: frozenset[str] = frozenset()
    certifications: frozenset[str] = frozenset()
    disrupted: bool = False
    clamp_force_kN: float | None = None
    tie_bar_h_mm: float | None = None
    tie_bar_v_mm: float | None = None
    min_mold_height_mm: float | None = None
    max_mold_height_mm: float | None = None
    shot_capacity_g: float | None = None
    locating_ring_mm: float | None = None
    max_mold_weight_kg: float | None = None
    tonnage_kN: float | None = None
    bed_width_mm: float | None = None
    bed_depth_mm: float | None = None
    axes: int | None = None
    envelope_x_mm: float | None = None
    envelope_y_mm: float | None = None
    envelope_z_mm: float | None = None

    def __post_init__(self) -> None:
        _nonempty("machine_id", self.machine_id)
        _nonempty("firm_id", self.firm_id)
        _nonempty("site_id", self.site_id)
        _process(self.process)
        _lat_lon("site_", self.site_lat_deg, self.site_lon_deg)
        object.__setattr__(self, "resins", frozenset(self.resins))
        object.__setattr__(self, "certifications", frozenset(self.certifications))
        imm = self.process == "injection_molding"
        press = self.process == "press"
        mach = self.process == "machining"
        _positive("clamp_force_kN", self.clamp_force_kN, required=imm)
        _positive("tie_bar_h_mm", self.tie_bar_h_mm, required=imm)
        _positive("tie_bar_v_mm", self.tie_bar_v_mm, required=imm)
        _positive("min_mold_height_mm", self.min_mold_height_mm, required=imm or press)
        _positive("max_mold_height_mm", self.max_mold_height_mm, required=imm or press)
        _positive("shot_capacity_g", self.shot_capacity_g, required=imm)
        _positive("locating_ring_mm", self.locating_ring_mm, required=imm)
        _positive("max_mold_weight_kg", self.max_mold_weight_kg, required=False)
        _positive("tonnage_kN", self.tonnage_kN, required=press)
        _positive("bed_width_mm", self.bed_width_mm, required=press)
        _positive("bed_depth_mm", self.bed_depth_mm, required=press)
        _positive("axes", self.axes, required=mach)
        _positive("envelope_x_mm", self.envelope_x_mm, required=mach)
        _positive("envelope_y_mm", self.envelope_y_mm, required=mach)
        _positive("envelope_z_mm", self.envelope_z_mm, required=mach)
        lo, hi = self.min_mold_height_mm, self.max_mold_height_mm
        if lo is not None and hi is not None and lo > hi:
            raise PlannerInputError(
                f"min_mold_height_mm {lo} > max_mold_height_mm {hi} on {self.machine_id}"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class MoldSpec:
    """A mold (or press die, or machining fixture) owned by the disrupted firm.

    Attributes:
        mold_id, owner_firm_id: registry ids.
        process: the process the tool is made for; only machines of the same process can
            run it.
        width_mm, height_mm: outside size across the platen (injection molding: must pass
            between the tie bars; press: must fit the bolster; machining: the workpiece
            envelope in X / Y).
        thickness_mm: mold thickness (injection molding: within the machine's daylight
            range), die shut height (press), or workpiece height Z (machining).
        weight_kg: mold weight (checked only against a machine's ``max_mold_weight_kg``).
        required_clamp_force_kN: injection molding: ≈ projected area × cavity pressure;
            press: required tonnage; machining: ``0``.
        cycle_time_s: seconds per shot (per cycle).
        cavities: parts per shot (≥ 1).
        shot_weight_g: injection molding: total shot weight (all cavities + runner).
        resin: injection molding: resin code, e.g. ``"PA66-GF30"``.
        locating_ring_mm: injection molding: locating-ring diameter of the mold.
        required_axes: machining: minimum number of axes; ``None`` = not checked.
        location_lat_deg, location_lon_deg: where the mold is now, if not at the plan's
            origin site (both or neither).

    Raises:
        PlannerInputError: a size, weight, time or count is not finite and positive
            (``required_clamp_force_kN`` may be 0), an injection-molding field is missing,
            or only one of the location coordinates is given.
    """

    mold_id: str
    owner_firm_id: str
    width_mm: float
    height_mm: float
    thickness_mm: float
    weight_kg: float
    required_clamp_force_kN: float
    cycle_time_s: float
    cavities: int = 1
    process: Process = "injection_molding"
    shot_weight_g: float | None = None
    resin: str | None = None
    locating_ring_mm: float | None = None
    required_axes: int | None = None
    location_lat_deg: float | None = None
    location_lon_deg: float | None = None

    def __post_init__(self) -> None:
        _nonempty("mold_id", self.mold_id)
        _nonempty("owner_firm_id", self.owner_firm_id)
        _process(self.process)
        imm = self.process == "injection_molding"
        for name in ("width_mm", "height_mm", "thickness_mm", "weight_kg", "cycle_time_s"):
            _positive(name, getattr(self, name), required=True)
        _positive(
            "required_clamp_force_kN", self.required_clamp_force_kN, required=True, allow_zero=True
        )
        if not isinstance(self.cavities, int) or self.cavities < 1:
            raise PlannerInputError(f"cavities must be an int >= 1, got {self.cavities!r}")
        _positive("shot_weight_g", self.shot_weight_g, required=imm)
        _positive("locating_ring_mm", self.locating_ring_mm, required=imm)
        _positive("required_axes", self.required_axes, required=False)
        if imm and not self.resin:
            raise PlannerInputError(f"resin is required for injection mold {self.mold_id}")
        if (self.location_lat_deg is None) != (self.location_lon_deg is None):
            raise PlannerInputError("give both location_lat_deg and location_lon_deg, or neither")
        if self.location_lat_deg is not None and self.location_lon_deg is not None:
            _lat_lon("location_", self.location_lat_deg, self.location_lon_deg)


@dataclass(frozen=True, slots=True, kw_only=True)
class Job:
    """A recurring order the disrupted firm must keep supplying.

    The volume needed in the plan's horizon is ``weekly_volume_parts`` pro-rated over the
    days the job's window ``[window_start, window_end)`` overlaps the horizon (see
    :func:`renkei.cloud.planner.demand.needed_parts`), and the machine hours are
    ``parts / cavities × cycle_time_s / 3600`` (fractional shots; see
    :func:`renkei.cloud.planner.demand.hours_for_parts`).

    Attributes:
        job_id, part_id, mold_id: registry ids; ``mold_id`` must name a given mold.
        weekly_volume_parts: parts per week the customer calls off.
        window_start, window_end: the job's delivery window, end exclusive (e.g. the due
            date + 1 day).
        required_certifications: certifications the customer demands of the producing
            line (e.g. ``{"IATF16949"}`` for automotive).
        priority: weight of this job's covered hours in the coverage objective (default
            1.0: every machine hour counts the same).

    Raises:
        PlannerInputError: negative volume, ``window_end <= window_start``, or a priority
            that is not finite and positive.
    """

    job_id: str
    part_id: str
    mold_id: str
    weekly_volume_parts: int
    window_start: date
    window_end: date
    required_certifications: frozenset[str] = frozenset()
    priority: float = 1.0

    def __post_init__(self) -> None:
        _nonempty("job_id", self.job_id)
        _nonempty("mold_id", self.mold_id)
        if not isinstance(self.weekly_volume_parts, int) or self.weekly_volume_parts < 0:
            raise PlannerInputError(
                f"weekly_volume_parts must be an int >= 0, got {self.weekly_volume_parts!r}"
            )
        if self.window_end <= self.window_start:
            raise PlannerInputError(f"job {self.job_id}: window_end must be after window_start")
        _positive("priority", self.priority, required=True)
        object.__setattr__(self, "required_certifications", frozenset(self.required_certifications))


@dataclass(frozen=True, slots=True, kw_only=True)
class CompatRules:
    """Tunables of the compatibility rules (``DOMAIN.md``, "Can mold M run on machine X?").

    Attributes:
        clamp_margin: required clamp force / tonnage is multiplied by ``1 + clamp_margin``
            (DOMAIN.md: ~10–20 %; default 0.10). The machine passes when its force is
            ``>=`` that figure.
        shot_min_fraction, shot_max_fraction: the mold's shot weight must lie within
            ``[min, max] × shot_capacity_g`` (DOMAIN.md: ~20–80 %), both ends inclusive.
            Below the minimum the resin stays too long in the barrel and degrades; above
            the maximum the screw cannot meter a stable shot.
        allow_mold_rotation: if ``False`` (default) the mold must fit as drawn
            (``width <= tie_bar_h`` and ``height <= tie_bar_v``); if ``True`` it may also
            be mounted turned by 90°. The default is conservative: turning a mold moves
            its ejector pattern, water and hot-runner connections, which not every shop
            can re-plumb. The same flag applies to press bolsters and machining envelopes.
        allow_locating_ring_adapter: if ``False`` (default) the mold's locating ring must
            equal the platen bore within ``locating_ring_tolerance_mm``; if ``True`` a
            smaller ring is also accepted (an adapter sleeve fills the larger bore).
        locating_ring_tolerance_mm: tolerance of the equality (default 0.1 mm; standard
            rings differ by ≥ 1.6 mm, e.g. 100 vs 101.6).

    Raises:
        PlannerInputError: a negative margin, fractions outside ``0 <= min <= max``, or a
            negative tolerance.
    """

    clamp_margin: float = 0.10
    shot_min_fraction: float = 0.20
    shot_max_fraction: float = 0.80
    allow_mold_rotation: bool = False
    allow_locating_ring_adapter: bool = False
    locating_ring_tolerance_mm: float = 0.1

    def __post_init__(self) -> None:
        _positive("clamp_margin", self.clamp_margin, required=True, allow_zero=True)
        _positive("shot_min_fraction", self.shot_min_fraction, required=True, allow_zero=True)
        _positive("shot_max_fraction", self.shot_max_fraction, required=True)
        if self.shot_min_fraction > self.shot_max_fraction:
            raise PlannerInputError("shot_min_fraction must be <= shot_max_fraction")
        _positive(
            "locating_ring_tolerance_mm",
            self.locating_ring_tolerance_mm,
            required=True,
            allow_zero=True,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class DisruptionZone:
    """A circle on the ground inside which every site is considered stopped.

    A site is inside when its great-circle (haversine) distance to the centre is
    ``<= radius_km`` (boundary inclusive).

    Raises:
        PlannerInputError: position outside WGS 84 range or a negative radius.
    """

    center_lat_deg: float
    center_lon_deg: float
    radius_km: float

    def __post_init__(self) -> None:
        _lat_lon("center_", self.center_lat_deg, self.center_lon_deg)
        _positive("radius_km", self.radius_km, required=True, allow_zero=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class SearchSettings:
    """Which sites each job may be moved to *by the MILP* (keeps each MILP small).

    For each job, eligible sites (compatible machine, outside the zone, sharing, spare
    hours > 0) are sorted by distance from the mold; the MILP offers the nearest sites
    until their combined compatible spare hours reach ``capacity_factor × hours needed``,
    but always at least ``min_sites`` and never more than ``max_sites`` (``None`` = no
    cap). Capacity of a site is counted without regard to other jobs, hence the factor
    > 1. The greedy start and the final repair look at *every* eligible site, and a job's
    current site is always offered, so the limit only bounds how far the MILP looks for
    improvements; it never loses volume.

    Raises:
        PlannerInputError: ``min_sites < 1``, ``max_sites < 1`` or a factor <= 0.
    """

    min_sites: int = 4
    max_sites: int | None = 40
    capacity_factor: float = 3.0

    def __post_init__(self) -> None:
        if self.min_sites < 1:
            raise PlannerInputError("min_sites must be >= 1")
        if self.max_sites is not None and self.max_sites < 1:
            raise PlannerInputError("max_sites must be >= 1 or None")
        _positive("capacity_factor", self.capacity_factor, required=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class SolverSettings:
    """Optimisation budget and HiGHS settings (``scipy.optimize.milp`` options).

    Attributes:
        time_budget_s: wall-clock budget of the MILP neighbourhood search after the greedy
            start (:mod:`renkei.cloud.planner.lns`); no new neighbourhood starts after it, and a
            running one is cut at it (its HiGHS stages get the remaining time).
        exact_max_jobs: with at most this many jobs to place, one MILP covers them all:
            the plan is the exact lexicographic optimum over the searched options (unless
            a stage hits the time budget, see ``PlanStats.exact``).
        neighbourhood_jobs: jobs freed per MILP in the neighbourhood search (larger
            problems). Small groups solve in tens of milliseconds; 40+ jobs can take
            seconds per MILP, so fewer groups fit in the budget.
        max_passes: optional cap on passes over the improvement seeds (for reproducible
            results independent of machine speed); ``None`` = until no improvement.
        mip_rel_gap: relative MIP gap at which HiGHS stops each stage.
        coverage_tolerance: relative slack when stage 1's coverage is fixed for the later
            stages (``covered >= (1 - tol) × best``), absorbing solver tolerances.
        distance_tolerance_km: absolute slack when stage 2's distance is fixed for stage 3.

    Raises:
        PlannerInputError: a non-positive budget or neighbourhood, or a negative
            gap/tolerance.
    """

    time_budget_s: float = 3.0
    exact_max_jobs: int = 60
    neighbourhood_jobs: int = 12
    max_passes: int | None = None
    mip_rel_gap: float = 1e-6
    coverage_tolerance: float = 1e-6
    distance_tolerance_km: float = 1e-3

    def __post_init__(self) -> None:
        _positive("time_budget_s", self.time_budget_s, required=True)
        if self.neighbourhood_jobs < 1 or self.exact_max_jobs < 0:
            raise PlannerInputError("neighbourhood_jobs must be >= 1, exact_max_jobs >= 0")
        if self.max_passes is not None and self.max_passes < 1:
            raise PlannerInputError("max_passes must be >= 1 or None")
        _positive("mip_rel_gap", self.mip_rel_gap, required=True, allow_zero=True)
        _positive("coverage_tolerance", self.coverage_tolerance, required=True, allow_zero=True)
        _positive(
            "distance_tolerance_km", self.distance_tolerance_km, required=True, allow_zero=True
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanContext:
    """Who asks, who shares, what is stopped, and the planning horizon.

    Attributes:
        requester_firm_id: the disrupted firm whose jobs are to be taken over.
        sharing_firm_ids: firms whose sharing policy grants the requester access to their
            spare capacity. The requester itself is always allowed and need not be listed.
        origin_site_id, origin_lat_deg, origin_lon_deg: the requester's disrupted site,
            where the molds are (unless a mold carries its own location). This site is
            never planned on, whatever the other fields say. The requester's *other* sites
            outside every zone are eligible (its own spare capacity is the first help).
        horizon_start, horizon_end: the planning horizon ``[start, end)``; spare hours are
            per machine over this horizon; job volumes are pro-rated to it.
        zones: disrupted areas; machines whose site lies inside any of them are excluded.
        disrupted_site_ids: further sites known to be stopped (excluded).
        rules, search, solver: tunables (see their classes).

    Raises:
        PlannerInputError: ``horizon_end <= horizon_start`` or a bad origin position.
    """

    requester_firm_id: str
    origin_site_id: str
    origin_lat_deg: float
    origin_lon_deg: float
    horizon_start: date
    horizon_end: date
    sharing_firm_ids: frozenset[str] = frozenset()
    zones: tuple[DisruptionZone, ...] = ()
    disrupted_site_ids: frozenset[str] = frozenset()
    rules: CompatRules = field(default_factory=CompatRules)
    search: SearchSettings = field(default_factory=SearchSettings)
    solver: SolverSettings = field(default_factory=SolverSettings)

    def __post_init__(self) -> None:
        _nonempty("requester_firm_id", self.requester_firm_id)
        _lat_lon("origin_", self.origin_lat_deg, self.origin_lon_deg)
        if self.horizon_end <= self.horizon_start:
            raise PlannerInputError("horizon_end must be after horizon_start")
        object.__setattr__(self, "sharing_firm_ids", frozenset(self.sharing_firm_ids))
        object.__setattr__(self, "disrupted_site_ids", frozenset(self.disrupted_site_ids))
        object.__setattr__(self, "zones", tuple(self.zones))
