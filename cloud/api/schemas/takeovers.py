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
    "CandidatePublic",
    "Id",
    "LocalizedText",
    "ShortfallPublic",
    "TakeoverAssignmentPublic",
    "TakeoverCreate",
    "TakeoverJobIn",
    "TakeoverJobPublic",
    "TakeoverListItem",
    "TakeoverPromote",
    "TakeoverPublic",
    "UnmetExplanationPublic",
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
    drill: bool = Field(
        default=False,
        description="A disaster drill: planned and shown with every reason, but no partner "
        "is offered or told anything and no hours are held or booked; turn it into a real "
        "request with POST .../promote.",
    )


class UnmetPublic(BaseModel):
    """Uncovered parts of a job and why: ``no_compatible_machine`` | ``no_capacity`` |
    ``not_shared`` | ``only_inside_zone`` (see :mod:`renkei.cloud.planner.result`)."""

    parts: int
    reason: str
    explanation: UnmetExplanationPublic | None = Field(
        default=None,
        description="The rule and the numbers that failed for the nearest candidates the "
        "requester may see; null for plans stored before explanations existed.",
    )


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
    drill: bool = Field(
        description="A disaster drill: its assignments have status ``drill`` and were "
        "never offered to the partners."
    )
    promoted_to: str | None = Field(
        description="For a drill turned into a real request: that request's id; else null."
    )


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
    drill: bool = Field(description="A disaster drill (never offered to partners).")
    promoted_to: str | None = Field(
        description="For a drill turned into a real request: that request's id; else null."
    )


class TakeoverPromote(BaseModel):
    """Turn a drill into a real request (planned anew on current data)."""

    model_config = ConfigDict(extra="forbid")
    id: Id | None = Field(
        default=None,
        description="Id of the new real request; default generated (``tko-YYYYMMDD-xxxxxxxx``).",
    )


class LocalizedText(BaseModel):
    """One sentence in each language the web page offers."""

    en: str = Field(description="English.")
    ja: str = Field(description="Japanese.")


class ShortfallPublic(BaseModel):
    """One failed quantity: what the job required, what the machine offered
    (:mod:`renkei.cloud.planner.shortfall`)."""

    rule: str = Field(
        description="The rule: ``clamp_force``, ``tie_bar``, ``mold_height``, "
        "``shot_weight``, ``locating_ring``, ``resin``, ``certifications``, "
        "``mold_weight``, ``tonnage``, ``bed``, ``axes``, ``envelope``, ``process``, "
        "``zone``, ``capacity`` or ``sharing``."
    )
    quantity: str = Field(
        description="What is compared, e.g. ``tie_bar_h`` (mold width vs horizontal "
        "tie-bar spacing), ``max_mold_height``, ``max_shot_weight``, ``zone_radius``, "
        "``spare_hours``, ``not_shared_machines``."
    )
    comparison: str = Field(
        description="How ``offered`` must relate to ``required`` to pass: ``at_least`` "
        "(offered >= required, inclusive), ``at_most`` (offered <= required, inclusive), "
        "``equal`` (within the rule's tolerance), ``more_than`` (offered > required, "
        "exclusive), ``includes`` (the site must have ``items``), ``none`` (no figures)."
    )
    required: float | None = Field(
        description="The job's figure in ``unit`` (clamp force incl. margin, mold width, "
        "zone radius, hours needed ...); null if the rule has none."
    )
    offered: float | None = Field(
        description="The machine's (or site's) figure in ``unit``; null if the rule has "
        "none or the owner does not share machine detail with the requester."
    )
    unit: str = Field(
        description="``kN``, ``mm``, ``g``, ``kg``, ``axes``, ``km``, ``h`` or empty."
    )
    items: list[str] = Field(description="What is missing for ``includes``: resin, certifications.")
    extras: dict[str, float] = Field(
        description="Figures of the job and the rules for the sentence: ``margin_pct`` "
        "(clamp margin, %), ``mold_value`` (the mold's own kN), ``fraction_pct`` (shot "
        "capacity fraction, %), ``tolerance_mm``, ``sites``, ``machines``, ``firms``."
    )
    text: LocalizedText = Field(description="The shortfall as a phrase.")


class CandidatePublic(BaseModel):
    """A machine that nearly takes the job: its own firm's, or a partner's that shares
    with the requester (never a machine the requester was not granted)."""

    firm_id: str = Field(description="The machine's firm.")
    firm_name: str = Field(description="The firm's name.")
    site_id: str = Field(description="The machine's site.")
    machine_id: str | None = Field(
        description="Null unless the firm shares machine detail with the requester (or "
        "is the requester)."
    )
    machine_class: str | None = Field(
        description="Capability class id, e.g. ``injection_molding:1000-2000kN``."
    )
    distance_km: float = Field(description="Great-circle km from the mold to the site.")
    shortfalls: list[ShortfallPublic] = Field(description="Every failed quantity (>= 1).")
    text: LocalizedText = Field(description="The candidate and its shortfalls as a sentence.")


class UnmetExplanationPublic(BaseModel):
    """Why volume is unmet, with numbers. Candidates: up to 3, at most one per site,
    ranked by fewest failed rules, then smallest summed relative shortfall, then distance
    (:mod:`renkei.cloud.planner.explain`)."""

    shortfalls: list[ShortfallPublic] = Field(
        description="Job-level facts: ``capacity`` (hours needed vs left), ``sharing`` "
        "(counts of compatible machines at firms that do not share, ``no_candidate``)."
    )
    candidates: list[CandidatePublic] = Field(description="The nearest candidates (0..3).")
    text: LocalizedText = Field(description="The whole explanation as one paragraph.")


for _model in (UnmetPublic, TakeoverJobPublic, TakeoverPublic):
    _model.model_rebuild()
