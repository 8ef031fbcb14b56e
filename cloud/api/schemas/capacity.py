"""Response bodies of the capacity endpoints (:mod:`renkei.cloud.api.routers.capacity`).

The class names are the OpenAPI component names and the field names the JSON keys: renaming
either changes the published API. Hours are hours (h); dates are site-local
(``settings.timezone``, default Asia/Tokyo).
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, Field

__all__ = [
    "ClassCapacity",
    "ClassPoint",
    "MachineCapacity",
    "OwnCapacity",
    "PeriodHours",
    "SearchClass",
    "SearchFirm",
    "SearchMachine",
    "SearchPoint",
    "SearchResponse",
]


class PeriodHours(BaseModel):
    """One machine's hours in one period (a day, or the days of one ISO week inside the
    requested range); all values in hours (h), rounded to 3 decimals."""

    period_start: date = Field(
        description="The day (granularity `day`) or the Monday of the ISO week (granularity "
        "`week`; for a first partial week this Monday may be before `start`), YYYY-MM-DD, "
        "site-local date."
    )
    days: int = Field(
        description="Number of days of the requested range inside this period (1 for a day; "
        "1-7 for a week)."
    )
    available_h: float = Field(
        description="Scheduled hours from the site's shift calendar over the period's days (h)."
    )
    booked_h: float = Field(
        description="Hours reserved by the firm's own bookings over the period's days (h)."
    )
    downtime_h: float = Field(
        description="Expected downtime `available_h x (1 - availability_ratio)` (h)."
    )
    spare_h: float = Field(
        description="Spare hours: per day max(0, available - booked - expected downtime), "
        "summed over the period (h)."
    )


class MachineCapacity(BaseModel):
    """Capacity of one of the firm's machines over the requested range."""

    machine_id: str = Field(description="The machine's id (`MachinePublic.id`).")
    name: str = Field(description="The machine's display name.")
    capability_class: str = Field(
        description="Capability class id: process and force band, e.g. "
        "`injection_molding:1000-2000kN` (lower bound inclusive, upper exclusive, kN)."
    )
    site_id: str = Field(description="The site the machine's line belongs to.")
    availability_ratio: float = Field(
        description="Fraction 0..1 of scheduled time the machine is expected to run; "
        "measured from telemetry when `ratio_measured`, else the configured default."
    )
    ratio_measured: bool = Field(
        description="True if `availability_ratio` was measured from telemetry, false if it is "
        "the configured default."
    )
    spare_h_total: float = Field(
        description="Spare hours over all reported periods (h), rounded to 3 decimals."
    )
    points: list[PeriodHours] = Field(description="One entry per period, oldest first.")


class ClassPoint(BaseModel):
    """One capability class in one period (Catena-X DCM terms: maximum = available hours,
    actual = spare hours), hours (h)."""

    period_start: date = Field(
        description="The day (granularity `day`) or the Monday of the ISO week (granularity "
        "`week`), YYYY-MM-DD, site-local date."
    )
    days: int = Field(description="Number of days of the requested range inside this period.")
    maximum_h: float = Field(
        description="Available (scheduled) hours of the class's machines in the period (h)."
    )
    actual_h: float = Field(
        description="Spare hours of the class's machines in the period (h); "
        "0 <= actual_h <= maximum_h."
    )


class ClassCapacity(BaseModel):
    """The firm's machines of one capability class, rolled up per period."""

    capability_class: str = Field(
        description="Capability class id, e.g. `injection_molding:1000-2000kN`.",
        examples=["injection_molding:1000-2000kN"],
    )
    machines: list[str] = Field(description="Ids of the firm's machines in this class.")
    points: list[ClassPoint] = Field(description="One entry per period, oldest first.")


class OwnCapacity(BaseModel):
    """``GET /firms/{firm_id}/capacity``: the firm's own capacity per machine and class."""

    firm_id: str = Field(description="The firm the capacity belongs to.")
    start: date = Field(description="First day of the range (inclusive), site-local date.")
    days: int = Field(
        description="Length of the range in days; the range is [start, start + days) "
        "(end exclusive)."
    )
    granularity: Literal["day", "week"] = Field(
        description="`day`: one point per date; `week`: one point per ISO week (Monday to "
        "Sunday; a first partial week counts from `start`, a trailing week not covered up "
        "to its Sunday is left out)."
    )
    machines: list[MachineCapacity] = Field(description="Every machine of the firm, by id.")
    classes: list[ClassCapacity] = Field(description="Roll-up per capability class.")


class SearchPoint(BaseModel):
    """Spare hours of one class group of a partner in one period."""

    period_start: date = Field(
        description="The day (owner shares at `day` granularity) or the Monday of the ISO "
        "week (`week` granularity), YYYY-MM-DD, site-local date."
    )
    days: int = Field(
        description="Days counted in this period (at `week` granularity every day of the "
        "ISO week inside the horizon, even outside [start, end))."
    )
    spare_h: float = Field(description="Spare hours in the period (h).")


class SearchClass(BaseModel):
    """One capability class group of a partner firm that matched the search."""

    capability_class: str = Field(
        description="Capability class id, e.g. `injection_molding:1000-2000kN`."
    )
    machines: int = Field(
        description="Number of the partner's machines summed in this group (without "
        "machine detail: all machines of the class the grant allows; with machine detail: "
        "the matching ones)."
    )
    spare_h_total: float = Field(description="Spare hours of the group over the window (h).")
    points: list[SearchPoint] = Field(
        description="One entry per period at the owner's shared granularity, oldest first."
    )


class SearchMachine(BaseModel):
    """One partner machine; present only when the partner shares machine detail with the
    caller. Attributes the machine's process does not have are ``null``."""

    machine_id: str = Field(description="The partner machine's id.")
    name: str = Field(description="The partner machine's display name.")
    capability_class: str = Field(description="Capability class id of the machine.")
    site_id: str = Field(description="Id of the partner site the machine stands at.")
    region: str = Field(description="Region of that site (e.g. `kansai`).")
    clamp_force_kN: float | None = Field(description="Clamp force (kN); injection molding.")
    tie_bar_h_mm: float | None = Field(
        description="Horizontal clear distance between tie bars (mm); injection molding."
    )
    tie_bar_v_mm: float | None = Field(
        description="Vertical clear distance between tie bars (mm); injection molding."
    )
    min_mold_height_mm: float | None = Field(
        description="Thinnest mold the machine closes on (mm); injection molding."
    )
    max_mold_height_mm: float | None = Field(
        description="Thickest mold the machine takes (mm); injection molding."
    )
    shot_capacity_g: float | None = Field(description="Largest shot weight (g); injection molding.")
    locating_ring_mm: float | None = Field(
        description="Locating ring diameter (mm); injection molding."
    )
    resins: list[str] = Field(description="Resins the machine's site processes.")
    certifications: list[str] = Field(description="Certifications of the machine's site.")
    spare_h_total: float = Field(description="The machine's spare hours over the window (h).")


class SearchFirm(BaseModel):
    """One partner firm whose sharing policy opens capacity to the caller."""

    firm_id: str = Field(description="The partner firm's id.")
    firm_name: str = Field(description="The partner firm's name.")
    region: str = Field(description="The partner firm's registered region.")
    granularity: Literal["day", "week"] = Field(
        description="Finest time unit the partner shares with the caller: `day` (one point "
        "per date of [start, end)) or `week` (one point per whole ISO week)."
    )
    machine_detail: bool = Field(
        description="Whether the partner shares per-machine detail with the caller "
        "(then `machines` lists the matching machines)."
    )
    spare_h_total: float = Field(
        description="Spare hours of the firm's matching groups over the window (h)."
    )
    classes: list[SearchClass] = Field(
        description="Matching capability class groups, by process then force band."
    )
    machines: list[SearchMachine] = Field(
        description="Matching machines, most spare hours first; empty unless the firm "
        "shares machine detail with the caller."
    )


class SearchResponse(BaseModel):
    """``GET /capacity/search``: partner firms with spare capacity, most spare hours first."""

    start: date = Field(description="First day of the search window (inclusive), site-local.")
    end: date = Field(description="End of the search window (exclusive), site-local.")
    total_spare_h: float = Field(description="Sum of `spare_h_total` over the returned firms (h).")
    results: list[SearchFirm] = Field(description="At most `limit` firms, most spare hours first.")
