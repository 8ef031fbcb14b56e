"""Registry rows -> takeover-planner inputs (pure functions, no database access).

- :func:`machine_spec`: a :class:`~renkei.cloud.registry.Machine` on its
  :class:`~renkei.cloud.registry.Site` -> :class:`~renkei.cloud.planner.MachineSpec` (site position,
  resins and certifications come from the site). A machine whose capability class the
  owner does not share with the requester is passed *masked*
  (:func:`masked_id`): under a firm and site id that are not in
  ``PlanContext.sharing_firm_ids``, so the planner never plans on it but still counts it
  for the ``not_shared`` reason.
- :func:`mold_spec`: a :class:`~renkei.cloud.registry.Mold` ->
:class:`~renkei.cloud.planner.MoldSpec`
  located at the request's origin site (the molds are where the disaster struck), with
  the job's resin if it overrides the mold's.
- :func:`weekly_parts` / :func:`needed_parts`: a job's volume in parts (shots × cavities)
  and the parts due in the request window (up to the due date).
- :func:`planner_job` with :func:`exact_horizon`: a :class:`~renkei.cloud.planner.Job` that asks
  the planner for exactly ``parts`` parts. The planner's horizon only pro-rates weekly
  volumes (spare hours are given as totals), so a job window and horizon of exactly one
  week with ``weekly_volume_parts = parts`` makes the planner plan that many parts. Plans
  and re-plans therefore both work on exact remaining volumes.
- :func:`zone`: a disrupted zone around a site; :func:`window_overlap_days` and
  :func:`prorated_hours`: hours of another request's assignment that fall in this window.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from typing import Protocol

from renkei.cloud.planner import DisruptionZone, Job, MachineSpec, MoldSpec
from renkei.cloud.planner import needed_parts as _planner_needed_parts
from renkei.cloud.registry import Machine, Mold, Site, TakeoverJob, VolumeUnit

__all__ = [
    "MASK_SUFFIX",
    "exact_horizon",
    "job_window",
    "machine_spec",
    "masked_id",
    "mold_spec",
    "needed_parts",
    "new_job",
    "planner_job",
    "prorated_hours",
    "weekly_parts",
    "window_overlap_days",
    "zone",
]

MASK_SUFFIX = "~not-shared"
"""Appended to the firm and site ids of machines the requester may not plan on."""

_WEEK = timedelta(days=7)


def masked_id(value: str) -> str:
    """The id under which a not-shared machine's firm or site is given to the planner."""
    return value + MASK_SUFFIX


def machine_spec(machine: Machine, site: Site, *, masked: bool = False) -> MachineSpec:
    """The planner's view of one registry machine.

    Args:
        machine: the registry row; site: its site (``machine.line.site``).
        masked: the owner does not share this machine's class with the requester: the
            firm and site ids get :data:`MASK_SUFFIX` (see the module docstring).

    Raises:
        renkei.cloud.planner.PlannerInputError: a field the machine's process needs is missing
            (e.g. a press without a die-height range), or the site position is invalid.
    """
    firm_id = masked_id(machine.firm_id) if masked else machine.firm_id
    site_id = masked_id(site.id) if masked else site.id
    return MachineSpec(
        machine_id=machine.id,
        firm_id=firm_id,
        site_id=site_id,
        site_lat_deg=site.latitude_deg,
        site_lon_deg=site.longitude_deg,
        process=machine.process.value,
        resins=frozenset(site.resins or ()),
        certifications=frozenset(site.certifications or ()),
        clamp_force_kN=machine.clamp_force_kN,
        tie_bar_h_mm=machine.tie_bar_h_mm,
        tie_bar_v_mm=machine.tie_bar_v_mm,
        min_mold_height_mm=machine.min_mold_height_mm,
        max_mold_height_mm=machine.max_mold_height_mm,
        shot_capacity_g=machine.shot_capacity_g,
        locating_ring_mm=machine.locating_ring_mm,
        tonnage_kN=machine.tonnage_kN,
        bed_width_mm=machine.bed_width_mm,
        bed_depth_mm=machine.bed_depth_mm,
        axes=machine.axes,
        envelope_x_mm=machine.envelope_x_mm,
        envelope_y_mm=machine.envelope_y_mm,
        envelope_z_mm=machine.envelope_z_mm,
    )


def mold_spec(mold: Mold, *, origin: Site, resin: str | None = None) -> MoldSpec:
    """The planner's view of a registry mold (an injection mold), located at ``origin``.

    Args:
        resin: the job's resin if it differs from the mold's (``None`` = the mold's).

    Raises:
        renkei.cloud.planner.PlannerInputError: a size, time or count is not positive.
    """
    return MoldSpec(
        mold_id=mold.id,
        owner_firm_id=mold.firm_id,
        process="injection_molding",
        width_mm=mold.width_mm,
        height_mm=mold.height_mm,
        thickness_mm=mold.thickness_mm,
        weight_kg=mold.weight_kg,
        required_clamp_force_kN=mold.required_clamp_force_kN,
        cycle_time_s=mold.cycle_time_s,
        cavities=mold.cavities,
        shot_weight_g=mold.shot_weight_g,
        resin=resin or mold.resin,
        locating_ring_mm=mold.locating_ring_mm,
        location_lat_deg=origin.latitude_deg,
        location_lon_deg=origin.longitude_deg,
    )


def weekly_parts(weekly_volume: int, unit: VolumeUnit | str, cavities: int) -> int:
    """Parts per week: ``weekly_volume`` parts, or shots × ``cavities`` parts per shot."""
    if VolumeUnit(unit) is VolumeUnit.SHOTS:
        return weekly_volume * cavities
    return weekly_volume


def job_window(window_start: date, window_end: date, due_date: date | None) -> tuple[date, date]:
    """The days ``[start, end)`` a job needs parts: the request window, cut after
    ``due_date`` (inclusive) if given."""
    if due_date is None:
        return window_start, window_end
    return window_start, min(window_end, due_date + timedelta(days=1))


def needed_parts(
    weekly: int, *, window_start: date, window_end: date, due_date: date | None = None
) -> int:
    """Parts due in the window: ``ceil(weekly × days / 7)`` over the job's days
    (:func:`job_window`, :func:`renkei.cloud.planner.needed_parts`); 0 if it has none."""
    start, end = job_window(window_start, window_end, due_date)
    if end <= start:
        return 0
    probe = Job(
        job_id="probe",
        part_id="probe",
        mold_id="probe",
        weekly_volume_parts=weekly,
        window_start=start,
        window_end=end,
    )
    return _planner_needed_parts(probe, horizon_start=start, horizon_end=end)


class JobFields(Protocol):
    """What a new job row is made from: a request body's job or a drill's stored job."""

    @property
    def job_id(self) -> str: ...
    @property
    def part_id(self) -> str: ...
    @property
    def mold_id(self) -> str: ...
    @property
    def resin(self) -> str | None: ...
    @property
    def weekly_volume(self) -> int: ...
    @property
    def volume_unit(self) -> VolumeUnit | str: ...
    @property
    def due_date(self) -> date | None: ...
    @property
    def required_certifications(self) -> Sequence[str]: ...


def new_job(j: JobFields, *, mold: Mold, window_start: date, window_end: date) -> TakeoverJob:
    """A takeover job row for ``j`` (not yet covered): its parts due in the request's
    window ``[window_start, window_end)`` from the weekly volume and the mold's cavities."""
    weekly = weekly_parts(j.weekly_volume, j.volume_unit, mold.cavities)
    return TakeoverJob(
        job_id=j.job_id,
        part_id=j.part_id,
        mold_id=j.mold_id,
        resin=j.resin,
        weekly_volume=j.weekly_volume,
        volume_unit=j.volume_unit,
        due_date=j.due_date,
        required_certifications=list(j.required_certifications),
        needed_parts=needed_parts(
            weekly, window_start=window_start, window_end=window_end, due_date=j.due_date
        ),
        covered_parts=0,
        unmet=[],
    )


def exact_horizon(start: date) -> tuple[date, date]:
    """The one-week planner horizon used with :func:`planner_job` (module docstring)."""
    return start, start + _WEEK


def planner_job(
    *,
    job_id: str,
    part_id: str,
    mold_id: str,
    parts: int,
    required_certifications: Iterable[str],
    horizon_start: date,
) -> Job:
    """A planner job needing exactly ``parts`` parts in the horizon
    :func:`exact_horizon(horizon_start) <exact_horizon>`."""
    start, end = exact_horizon(horizon_start)
    return Job(
        job_id=job_id,
        part_id=part_id,
        mold_id=mold_id,
        weekly_volume_parts=parts,
        window_start=start,
        window_end=end,
        required_certifications=frozenset(required_certifications),
    )


def zone(site: Site, radius_km: float) -> DisruptionZone:
    """The disrupted circle of ``radius_km`` around ``site``."""
    return DisruptionZone(
        center_lat_deg=site.latitude_deg, center_lon_deg=site.longitude_deg, radius_km=radius_km
    )


def window_overlap_days(a: tuple[date, date], b: tuple[date, date]) -> int:
    """Days two half-open date windows ``[start, end)`` share (>= 0)."""
    return max(0, (min(a[1], b[1]) - max(a[0], b[0])).days)


def prorated_hours(hours: float, *, of: tuple[date, date], within: tuple[date, date]) -> float:
    """The part of ``hours`` spread evenly over window ``of`` that falls in ``within``."""
    days = (of[1] - of[0]).days
    if days <= 0:
        return 0.0
    return hours * window_overlap_days(of, within) / days
