"""Request and response bodies of the takeover endpoints
(:mod:`renkei.cloud.api.routers.takeovers`).

The class names are the OpenAPI component names and the field names the JSON keys: renaming
either changes the published API.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from renkei.cloud.registry import AssignmentStatus, TakeoverStatus, VolumeUnit

__all__ = [
    "Id",
    "TakeoverAssignmentPublic",
    "TakeoverCreate",
    "TakeoverJobIn",
    "TakeoverJobPublic",
    "TakeoverListItem",
    "TakeoverPublic",
    "UnmetPublic",
]

Id = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.\-]{1,64}$")]


class TakeoverJobIn(BaseModel):
    """One job to take over.

    Attributes:
        job_id: unique within the request.
        part_id: the part it makes (the customer's part number).
        mold_id: a mold of the requesting firm; one mold per job (a mold is in one place).
        resin: resin code if it differs from the mold's (e.g. ``PA66-GF30``).
        weekly_volume: parts (or shots, see ``volume_unit``) per week, > 0.
        volume_unit: ``parts`` (default) or ``shots`` (× the mold's cavities).
        due_date: last day parts are needed (inclusive); default the whole window.
        required_certifications: the customer's demands on the producing site
            (e.g. ``["IATF16949"]``).
    """

    model_config = ConfigDict(extra="forbid")
    job_id: Id
    part_id: Annotated[str, Field(min_length=1, max_length=200)]
    mold_id: Id
    resin: Annotated[str, Field(min_length=1, max_length=32)] | None = None
    weekly_volume: Annotated[int, Field(gt=0, le=1_000_000_000)]
    volume_unit: VolumeUnit = VolumeUnit.PARTS
    due_date: date | None = None
    required_certifications: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=64)]], Field(max_length=32)
    ] = []


class TakeoverCreate(BaseModel):
    """A takeover request.

    Attributes:
        id: the request id; default generated (``tko-YYYYMMDD-xxxxxxxx``).
        disruption_id: the firm's confirmed disruption this request answers.
        origin_site_id: where the molds are; default the disruption's site (required
            without ``disruption_id``).
        window_start, window_end: the days ``[start, end)`` to cover (end exclusive,
            at most 366 days).
        zone_radius_km: partner sites within this distance of the origin site are
            excluded; default the disruption's radius, else ``ApiSettings.zone_radius_km``.
        jobs: 1..500 jobs.
    """

    model_config = ConfigDict(extra="forbid")
    id: Id | None = None
    disruption_id: int | None = None
    origin_site_id: Id | None = None
    window_start: date
    window_end: date
    zone_radius_km: Annotated[float, Field(ge=0, le=1000)] | None = None
    jobs: Annotated[list[TakeoverJobIn], Field(min_length=1, max_length=500)]


class UnmetPublic(BaseModel):
    """Uncovered parts of a job and why: ``no_compatible_machine`` | ``no_capacity`` |
    ``not_shared`` | ``only_inside_zone`` (see :mod:`renkei.cloud.planner.result`)."""

    parts: int
    reason: str


class TakeoverJobPublic(BaseModel):
    """A job's coverage: ``needed_parts`` over the window, ``covered_parts`` by proposed
    and accepted assignments, ``accepted_parts`` by accepted ones only."""

    job_id: str
    part_id: str
    mold_id: str
    needed_parts: int
    covered_parts: int
    accepted_parts: int
    unmet: list[UnmetPublic]


class TakeoverAssignmentPublic(BaseModel):
    """Part of a job on one partner machine (``hours`` machine hours in the window,
    ``transport_km`` great-circle km the mold travels).

    ``machine_id`` is ``null`` unless the partner shares machine detail with the
    requester (or is the requester). ``status``: ``proposed`` | ``accepted`` |
    ``declined`` | ``withdrawn``; ``revision``: the plan revision that proposed it.
    """

    id: int
    job_id: str
    partner_firm_id: str
    partner_firm_name: str
    site_id: str
    machine_id: str | None
    hours: float
    parts: int
    transport_km: float
    status: AssignmentStatus
    revision: int


class TakeoverPublic(BaseModel):
    """A takeover request with its plan (``summary``: see
    :func:`renkei.cloud.takeover.service.refresh_summary`)."""

    id: str
    firm_id: str
    status: TakeoverStatus
    revision: int
    window_start: date
    window_end: date
    origin_site_id: str
    disruption_id: int | None
    summary: dict[str, Any]
    jobs: list[TakeoverJobPublic]
    assignments: list[TakeoverAssignmentPublic]


class TakeoverListItem(BaseModel):
    """A request without its jobs and assignments."""

    model_config = ConfigDict(from_attributes=True)
    id: str
    firm_id: str
    status: TakeoverStatus
    revision: int
    window_start: date
    window_end: date
    origin_site_id: str
    disruption_id: int | None
    created_at: datetime
    summary: dict[str, Any]
