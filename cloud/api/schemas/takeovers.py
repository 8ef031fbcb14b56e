"""Request and response bodies of the takeover endpoints
(:mod:`renkei.cloud.api.routers.takeovers`).

The class names are the OpenAPI component names and the field names the JSON keys: renaming
either changes the published API.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from renkei.cloud.api.schemas.common import CreatedAt, WindowEnd, WindowStart
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

Id = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9_.\-]{1,64}$",
        description="Identifier: 1-64 characters of A-Z a-z 0-9 `_` `.` `-`.",
    ),
]


_STATUS = "`open` (partners may answer; re-planning possible) or `closed` (unanswered "
"proposals withdrawn)."
_REVISION = "Plan revision: 1 = first plan; +1 for every re-plan (a decline or `replan`)."
_SUMMARY = (
    "Latest plan statistics: `needed_parts`, `covered_parts`, `accepted_parts`, "
    "`unmet_parts` (parts), `coverage` (covered / needed, 0..1), `unmet_parts_by_reason`, "
    "`transport_km` (km), `partner_firms`, `assignments` (count per status), `plan` "
    "(`revision`, `planned_at`, `time_s` (s), `exact`, `planner_calls`, `shared_machines`, "
    "`skipped_machines`)."
)


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
    job_id: Id = Field(description="Job id, unique within the request.", examples=["j1"])
    part_id: Annotated[str, Field(min_length=1, max_length=200)] = Field(
        description="The part it makes (the customer's part number, 1-200 characters).",
        examples=["BRK-1042"],
    )
    mold_id: Id = Field(
        description="A mold of the requesting firm; one mold per job (a mold is in one place).",
        examples=["acme-p1"],
    )
    resin: Annotated[str, Field(min_length=1, max_length=32)] | None = Field(
        default=None,
        description="Resin code if it differs from the mold's; default the mold's resin.",
        examples=["PA66-GF30"],
    )
    weekly_volume: Annotated[int, Field(gt=0, le=1_000_000_000)] = Field(
        description="Volume needed per week (7 days) in `volume_unit`, > 0.", examples=[12000]
    )
    volume_unit: VolumeUnit = Field(
        default=VolumeUnit.PARTS,
        description="`parts` (default) or `shots` (each shot makes the mold's `cavities` parts).",
    )
    due_date: date | None = Field(
        default=None,
        description="Last day parts are needed (inclusive), not before `window_start`; "
        "default the whole window.",
    )
    required_certifications: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=64)]], Field(max_length=32)
    ] = Field(
        default=[],
        description="Certifications the producing site must hold (the customer's demands; at "
        "most 32).",
        examples=[["IATF16949"]],
    )


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
    id: Id | None = Field(
        default=None,
        description="Request id; default generated (`tko-YYYYMMDD-xxxxxxxx`). 409 if it exists.",
    )
    disruption_id: int | None = Field(
        default=None, description="The firm's confirmed disruption this request answers."
    )
    origin_site_id: Id | None = Field(
        default=None,
        description="Site of the firm where the molds are; default the disruption's site "
        "(required without `disruption_id`).",
    )
    window_start: WindowStart
    window_end: WindowEnd
    zone_radius_km: Annotated[float, Field(ge=0, le=1000)] | None = Field(
        default=None,
        description="Partner sites within this distance of the origin site are excluded (km, "
        "0-1000); default the disruption's radius, else the API's `zone_radius_km` setting.",
    )
    jobs: Annotated[list[TakeoverJobIn], Field(min_length=1, max_length=500)] = Field(
        description="The jobs to take over (1-500)."
    )
    drill: bool = Field(
        default=False,
        description="A disaster drill: planned and shown with every reason, but no partner "
        "is offered or told anything and no hours are held or booked; turn it into a real "
        "request with POST .../promote.",
    )


class UnmetPublic(BaseModel):
    """Uncovered parts of a job and why: ``no_compatible_machine`` | ``no_capacity`` |
    ``not_shared`` | ``only_inside_zone`` (see :mod:`renkei.cloud.planner.result`)."""

    parts: int = Field(description="Parts of the job no assignment covers.")
    reason: str = Field(
        description="Why: `no_compatible_machine` (no machine passes every compatibility "
        "rule), `no_capacity` (compatible eligible machines are fully used), `not_shared` "
        "(compatible machines are at firms not sharing with the requester) or "
        "`only_inside_zone` (every compatible machine is stopped or inside a disrupted zone)."
    )
    explanation: UnmetExplanationPublic | None = Field(
        default=None,
        description="The rule and the numbers that failed for the nearest candidates the "
        "requester may see; null for plans stored before explanations existed.",
    )


class TakeoverJobPublic(BaseModel):
    """A job's coverage: ``needed_parts`` over the window, ``covered_parts`` by proposed
    and accepted assignments, ``accepted_parts`` by accepted ones only."""

    job_id: str = Field(description="Job id within the request.")
    part_id: str = Field(description="The part it makes.")
    mold_id: str = Field(description="The requester's mold.")
    needed_parts: int = Field(
        description="Parts due over the job's days: ceil(weekly parts x days / 7), days = "
        "[window_start, min(window_end, due_date + 1 day))."
    )
    covered_parts: int = Field(description="Parts covered by proposed and accepted assignments.")
    accepted_parts: int = Field(description="Parts covered by accepted assignments only.")
    unmet: list[UnmetPublic] = Field(description="Uncovered parts and why; empty if covered.")


class TakeoverAssignmentPublic(BaseModel):
    """Part of a job on one partner machine (``hours`` machine hours in the window,
    ``transport_km`` great-circle km the mold travels).

    ``machine_id`` is ``null`` unless the partner shares machine detail with the
    requester (or is the requester). ``status``: ``proposed`` | ``accepted`` |
    ``declined`` | ``withdrawn``; ``revision``: the plan revision that proposed it.
    """

    id: int = Field(description="The assignment's id.")
    job_id: str = Field(description="The job it covers part of.")
    partner_firm_id: str = Field(description="The firm asked to produce.")
    partner_firm_name: str = Field(description="That firm's name.")
    site_id: str = Field(description="The partner's site.")
    machine_id: str | None = Field(
        description="The partner's machine; null unless the partner shares machine detail "
        "with the requester (or is the requester)."
    )
    hours: float = Field(description="Machine hours within the window (h).")
    parts: int = Field(description="Parts to produce.")
    transport_km: float = Field(
        description="Great-circle distance the mold travels to the partner's site (km)."
    )
    status: AssignmentStatus = Field(
        description="`proposed` (awaiting the partner), `accepted`, `declined` or `withdrawn` "
        "(replaced by a later revision, or the request closed, before an answer)."
    )
    revision: int = Field(description="The plan revision that proposed it.")


class TakeoverPublic(BaseModel):
    """A takeover request with its plan (``summary``: see
    :func:`renkei.cloud.takeover.service.refresh_summary`)."""

    id: str = Field(description="The request id.")
    firm_id: str = Field(description="The requesting (disrupted) firm.")
    status: TakeoverStatus = Field(description=_STATUS)
    revision: int = Field(description=_REVISION)
    window_start: WindowStart
    window_end: WindowEnd
    origin_site_id: str = Field(description="The firm's site where the molds are.")
    disruption_id: int | None = Field(description="The disruption it answers, if any.")
    summary: dict[str, Any] = Field(description=_SUMMARY)
    jobs: list[TakeoverJobPublic] = Field(description="Every job with its coverage.")
    assignments: list[TakeoverAssignmentPublic] = Field(
        description="Every assignment of every revision, with its status."
    )
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
    id: str = Field(description="The request id.")
    firm_id: str = Field(description="The requesting firm.")
    status: TakeoverStatus = Field(description=_STATUS)
    revision: int = Field(description=_REVISION)
    window_start: WindowStart
    window_end: WindowEnd
    origin_site_id: str = Field(description="The firm's site where the molds are.")
    disruption_id: int | None = Field(description="The disruption it answers, if any.")
    created_at: CreatedAt
    summary: dict[str, Any] = Field(description=_SUMMARY)
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
