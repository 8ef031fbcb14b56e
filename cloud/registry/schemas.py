"""Pydantic schemas of the registry: ``XCreate`` (input), ``XUpdate`` (partial), ``XPublic``.

Units are in the field names. Validation errors name the field and the expected range, and
the API returns them as 422 with details.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from renkei.cloud.registry.models import Process

__all__ = [
    "FirmCreate",
    "FirmPublic",
    "LineCreate",
    "LinePublic",
    "MachineCreate",
    "MachineOee",
    "MachinePublic",
    "MachineUpdate",
    "MoldCreate",
    "MoldMount",
    "MoldPublic",
    "OeeSection",
    "RegistryDocument",
    "SiteCreate",
    "SitePublic",
]

Id = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9_.\-]{1,64}$",
        description="Identifier: 1-64 characters of A-Z a-z 0-9 `_` `.` `-`, unique across "
        "the platform.",
    ),
]
Positive = Annotated[float, Field(gt=0)]
Name = Annotated[
    str, Field(min_length=1, max_length=200, description="Display name (1-200 characters).")
]
Region = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        description="Region name (1-64 characters), e.g. `kansai`; supporters and capacity "
        "search filter by it.",
        examples=["kansai"],
    ),
]
_IN = ConfigDict(extra="forbid")
_OUT = ConfigDict(from_attributes=True)

# Descriptions shared by the create, update and public schemas of a machine.
_IMM = " Injection molding: required."
_D_CLAMP = "Clamp force (kN), > 0." + _IMM
_D_TIE_H = (
    "Horizontal clear distance between the tie bars (mm), > 0; a mold's width must fit." + _IMM
)
_D_TIE_V = (
    "Vertical clear distance between the tie bars (mm), > 0; a mold's height must fit." + _IMM
)
_D_MIN_H = "Thinnest mold the machine closes on (mm), > 0, <= max_mold_height_mm." + _IMM
_D_MAX_H = "Thickest mold (mold thickness) the machine takes (mm), > 0." + _IMM
_D_SHOT = "Largest shot weight the machine injects (g), > 0." + _IMM
_D_RING = "Locating ring diameter of the platen (mm), > 0." + _IMM
_D_TONNAGE = "Press force (kN), > 0. Press: required."
_D_BED_W = "Bed (bolster) width (mm), > 0; a die's width must fit. Press: required."
_D_BED_D = "Bed (bolster) depth (mm), > 0; a die's height must fit. Press: required."
_D_AXES = "Number of controlled axes (2-9). Machining: required."
_D_ENV = "Work envelope (travel) along {} (mm), > 0. Machining: required."


class FirmCreate(BaseModel):
    """A firm (legal entity) using Renkei."""

    model_config = _IN
    id: Id = Field(description="The firm's id, e.g. `acme`.", examples=["acme"])
    name: Name = Field(
        description="The firm's name (1-200 characters).", examples=["Acme Plastics"]
    )
    region: Region = Field(description="The firm's region (1-64 characters), e.g. `kansai`.")
    bpnl: Annotated[str, Field(pattern=r"^BPNL[0-9A-Z]{12}$")] | None = Field(
        default=None,
        description="Catena-X Business Partner Number of the legal entity (`BPNL` + 12 "
        "characters A-Z 0-9); needed for the DCM capacity export.",
        examples=["BPNL000000000001"],
    )


class FirmPublic(FirmCreate):
    """A stored firm."""

    model_config = _OUT


class SiteCreate(BaseModel):
    """A plant of a firm, with its location and what it can process."""

    model_config = _IN
    id: Id = Field(description="The site's id.", examples=["acme-s1"])
    firm_id: Id = Field(description="The owning firm (must be the path's firm).")
    name: Name = Field(description="The site's name (1-200 characters).")
    address: str = Field(default="", description="Postal address (free text).")
    latitude_deg: Annotated[float, Field(ge=-90, le=90)] = Field(
        description="Latitude (degrees, WGS 84, -90..90); used for transport distances and "
        "disrupted zones.",
        examples=[34.68],
    )
    longitude_deg: Annotated[float, Field(ge=-180, le=180)] = Field(
        description="Longitude (degrees, WGS 84, -180..180).", examples=[135.6]
    )
    prefecture: str = Field(default="", description="Prefecture (free text), e.g. `Osaka`.")
    region: Region = Field(
        description="Region of the site (1-64 characters); capacity search filters by it."
    )
    resins: list[Annotated[str, Field(min_length=1, max_length=32)]] = Field(
        default=[],
        description="Resin codes the site can dry and process (1-32 characters each).",
        examples=[["PP", "ABS", "PA66-GF30"]],
    )
    certifications: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default=[],
        description="Quality certifications of the site (1-64 characters each).",
        examples=[["ISO9001", "IATF16949"]],
    )


class SitePublic(SiteCreate):
    """A stored site."""

    model_config = _OUT


class LineCreate(BaseModel):
    """A production line (ISA-95 line) of a site."""

    model_config = _IN
    id: Id = Field(description="The line's id.", examples=["acme-l1"])
    site_id: Id = Field(description="The site of the firm the line belongs to.")
    name: Name = Field(description="The line's name (1-200 characters).")
    area: str = Field(default="", description="Area or hall within the site (free text).")


class LinePublic(LineCreate):
    """A stored line."""

    model_config = _OUT


class _MachineFields(BaseModel):
    name: Name = Field(description="The machine's name (1-200 characters).")
    process: Process = Field(
        description="`injection_molding`, `press` or `machining`; decides which attributes "
        "are required."
    )
    clamp_force_kN: Positive | None = Field(default=None, description=_D_CLAMP)
    tie_bar_h_mm: Positive | None = Field(default=None, description=_D_TIE_H)
    tie_bar_v_mm: Positive | None = Field(default=None, description=_D_TIE_V)
    min_mold_height_mm: Positive | None = Field(default=None, description=_D_MIN_H)
    max_mold_height_mm: Positive | None = Field(default=None, description=_D_MAX_H)
    shot_capacity_g: Positive | None = Field(default=None, description=_D_SHOT)
    locating_ring_mm: Positive | None = Field(default=None, description=_D_RING)
    tonnage_kN: Positive | None = Field(default=None, description=_D_TONNAGE)
    bed_width_mm: Positive | None = Field(default=None, description=_D_BED_W)
    bed_depth_mm: Positive | None = Field(default=None, description=_D_BED_D)
    axes: Annotated[int, Field(ge=2, le=9)] | None = Field(default=None, description=_D_AXES)
    envelope_x_mm: Positive | None = Field(default=None, description=_D_ENV.format("X"))
    envelope_y_mm: Positive | None = Field(default=None, description=_D_ENV.format("Y"))
    envelope_z_mm: Positive | None = Field(default=None, description=_D_ENV.format("Z"))


_REQUIRED_BY_PROCESS: dict[Process, tuple[str, ...]] = {
    Process.INJECTION_MOLDING: (
        "clamp_force_kN",
        "tie_bar_h_mm",
        "tie_bar_v_mm",
        "min_mold_height_mm",
        "max_mold_height_mm",
        "shot_capacity_g",
        "locating_ring_mm",
    ),
    Process.PRESS: ("tonnage_kN", "bed_width_mm", "bed_depth_mm"),
    Process.MACHINING: ("axes", "envelope_x_mm", "envelope_y_mm", "envelope_z_mm"),
}


class MachineCreate(_MachineFields):
    """A machine; the attributes its process needs are required (e.g. clamp force)."""

    model_config = _IN
    id: Id = Field(description="The machine's id.", examples=["acme-m1"])
    firm_id: Id = Field(description="The owning firm (must be the path's firm).")
    line_id: Id = Field(description="The firm's line the machine stands on.")

    @model_validator(mode="after")
    def _process_attributes(self) -> MachineCreate:
        missing = [f for f in _REQUIRED_BY_PROCESS[self.process] if getattr(self, f) is None]
        if missing:
            raise ValueError(f"a {self.process.value} machine needs {', '.join(missing)}")
        lo, hi = self.min_mold_height_mm, self.max_mold_height_mm
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f"min_mold_height_mm {lo} > max_mold_height_mm {hi}")
        return self


class MachineUpdate(BaseModel):
    """Partial update; only the given fields change."""

    model_config = _IN
    name: Annotated[str, Field(min_length=1, max_length=200)] | None = Field(
        default=None, description="New name (1-200 characters)."
    )
    clamp_force_kN: Positive | None = Field(default=None, description=_D_CLAMP)
    tie_bar_h_mm: Positive | None = Field(default=None, description=_D_TIE_H)
    tie_bar_v_mm: Positive | None = Field(default=None, description=_D_TIE_V)
    min_mold_height_mm: Positive | None = Field(default=None, description=_D_MIN_H)
    max_mold_height_mm: Positive | None = Field(default=None, description=_D_MAX_H)
    shot_capacity_g: Positive | None = Field(default=None, description=_D_SHOT)
    locating_ring_mm: Positive | None = Field(default=None, description=_D_RING)


class MachinePublic(_MachineFields):
    """A stored machine; attributes its process does not use are ``null``."""

    model_config = _OUT
    id: str = Field(description="The machine's id.")
    firm_id: str = Field(description="The owning firm.")
    line_id: str = Field(description="The line the machine stands on.")
    mounted_mold_id: str | None = Field(
        default=None,
        description="The firm's mold mounted on the machine now (`MoldPublic.id`), or null "
        "when none is; set with PUT/DELETE `.../machines/{machine_id}/mold`.",
    )


class MoldMount(BaseModel):
    """Which of the firm's molds to mount on a machine."""

    model_config = _IN
    mold_id: Id = Field(
        description="One of the firm's molds (`MoldPublic.id`), not mounted on another "
        "machine (409 otherwise; unmount it there first).",
        examples=["acme-p1"],
    )


class OeeSection(BaseModel):
    """The registry part of a gateway's per-machine ``oee:`` section (edge config)."""

    mold: str | None = Field(
        description="Registry id of the mounted mold (gateway `oee.mold`), null when none is."
    )
    ideal_cycle_time_s: float | None = Field(
        description="Ideal cycle time of the mounted mold (its `cycle_time_s`), s per shot, "
        "> 0 (gateway `oee.ideal_cycle_time_s`); null when no mold is mounted (the gateway "
        "then falls back to the machine's own expected cycle time or basis `unknown`)."
    )


class MachineOee(BaseModel):
    """A machine's OEE parameters held in the registry, for its gateway config."""

    machine_id: str = Field(description="The machine's id (`MachinePublic.id`).")
    mounted_mold_id: str | None = Field(
        description="The mold mounted on the machine now (`MoldPublic.id`), or null."
    )
    ideal_cycle_time_s: float | None = Field(
        description="The mounted mold's `cycle_time_s` (s per shot, > 0), or null when no "
        "mold is mounted."
    )
    oee: OeeSection = Field(
        description="The same as a gateway config's `oee:` keys (`mold`, "
        "`ideal_cycle_time_s`), to merge into the machine's section."
    )


class MoldCreate(BaseModel):
    """A mold (injection-molding tool or press die) of a firm."""

    model_config = _IN
    id: Id = Field(description="The mold's id.", examples=["acme-p1"])
    firm_id: Id = Field(description="The owning firm (must be the path's firm).")
    name: Name = Field(description="The mold's name (1-200 characters).")
    width_mm: Positive = Field(
        description="Width (mm), > 0; must fit the horizontal tie-bar clearance.", examples=[450]
    )
    height_mm: Positive = Field(
        description="Height (mm), > 0; must fit the vertical tie-bar clearance.", examples=[400]
    )
    thickness_mm: Positive = Field(
        description="Thickness (mold height in the machine's terms, mm), > 0; must be within "
        "the machine's min..max mold height.",
        examples=[350],
    )
    weight_kg: Positive = Field(description="Weight (kg), > 0.", examples=[800])
    required_clamp_force_kN: Positive = Field(
        description="Clamp force the mold needs (kN), > 0 (about projected area x cavity "
        "pressure).",
        examples=[1200],
    )
    shot_weight_g: Positive = Field(
        description="Weight of one shot including runners (g), > 0.", examples=[180]
    )
    resin: Annotated[str, Field(min_length=1, max_length=32)] = Field(
        description="Resin code it runs (1-32 characters); the partner site must process it.",
        examples=["PP"],
    )
    cavities: Annotated[int, Field(ge=1, le=256)] = Field(
        description="Parts per shot (1-256).", examples=[4]
    )
    locating_ring_mm: Positive = Field(
        description="Locating ring diameter (mm), > 0.", examples=[100]
    )
    cycle_time_s: Positive = Field(
        description="Cycle time of one shot (s), > 0; parts/h = 3600 / cycle_time_s x cavities.",
        examples=[32],
    )
    shot_count: Annotated[int, Field(ge=0)] = Field(
        default=0, description="Shots made so far (shots, >= 0)."
    )
    maintenance_interval_shots: Annotated[int, Field(ge=1)] = Field(
        default=100_000, description="Shots between maintenances (shots, >= 1)."
    )


class MoldPublic(MoldCreate):
    """A stored mold."""

    model_config = _OUT


class RegistryDocument(BaseModel):
    """The whole registry of one or more firms, for bulk JSON import/export."""

    model_config = _IN
    version: int = Field(default=1, description="Format version of the document (1).")
    firms: list[FirmCreate] = Field(default=[], description="Firm rows.")
    sites: list[SiteCreate] = Field(default=[], description="Site rows.")
    lines: list[LineCreate] = Field(default=[], description="Line rows.")
    machines: list[MachineCreate] = Field(default=[], description="Machine rows.")
    molds: list[MoldCreate] = Field(default=[], description="Mold rows.")
