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
    "MachinePublic",
    "MachineUpdate",
    "MoldCreate",
    "MoldPublic",
    "RegistryDocument",
    "SiteCreate",
    "SitePublic",
]

Id = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.\-]{1,64}$")]
Positive = Annotated[float, Field(gt=0)]
_IN = ConfigDict(extra="forbid")
_OUT = ConfigDict(from_attributes=True)


class FirmCreate(BaseModel):
    model_config = _IN
    id: Id
    name: Annotated[str, Field(min_length=1, max_length=200)]
    region: Annotated[str, Field(min_length=1, max_length=64)]
    bpnl: Annotated[str, Field(pattern=r"^BPNL[0-9A-Z]{12}$")] | None = None
    """Catena-X Business Partner Number of the legal entity (``BPNL`` + 12 characters)."""


class FirmPublic(FirmCreate):
    model_config = _OUT


class SiteCreate(BaseModel):
    model_config = _IN
    id: Id
    firm_id: Id
    name: Annotated[str, Field(min_length=1, max_length=200)]
    address: str = ""
    latitude_deg: Annotated[float, Field(ge=-90, le=90)]
    longitude_deg: Annotated[float, Field(ge=-180, le=180)]
    prefecture: str = ""
    region: Annotated[str, Field(min_length=1, max_length=64)]
    resins: list[Annotated[str, Field(min_length=1, max_length=32)]] = []
    certifications: list[Annotated[str, Field(min_length=1, max_length=64)]] = []


class SitePublic(SiteCreate):
    model_config = _OUT


class LineCreate(BaseModel):
    model_config = _IN
    id: Id
    site_id: Id
    name: Annotated[str, Field(min_length=1, max_length=200)]
    area: str = ""


class LinePublic(LineCreate):
    model_config = _OUT


class _MachineFields(BaseModel):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    process: Process
    clamp_force_kN: Positive | None = None
    tie_bar_h_mm: Positive | None = None
    tie_bar_v_mm: Positive | None = None
    min_mold_height_mm: Positive | None = None
    max_mold_height_mm: Positive | None = None
    shot_capacity_g: Positive | None = None
    locating_ring_mm: Positive | None = None
    tonnage_kN: Positive | None = None
    bed_width_mm: Positive | None = None
    bed_depth_mm: Positive | None = None
    axes: Annotated[int, Field(ge=2, le=9)] | None = None
    envelope_x_mm: Positive | None = None
    envelope_y_mm: Positive | None = None
    envelope_z_mm: Positive | None = None


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
    id: Id
    firm_id: Id
    line_id: Id

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
    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    clamp_force_kN: Positive | None = None
    tie_bar_h_mm: Positive | None = None
    tie_bar_v_mm: Positive | None = None
    min_mold_height_mm: Positive | None = None
    max_mold_height_mm: Positive | None = None
    shot_capacity_g: Positive | None = None
    locating_ring_mm: Positive | None = None


class MachinePublic(_MachineFields):
    model_config = _OUT
    id: str
    firm_id: str
    line_id: str


class MoldCreate(BaseModel):
    model_config = _IN
    id: Id
    firm_id: Id
    name: Annotated[str, Field(min_length=1, max_length=200)]
    width_mm: Positive
    height_mm: Positive
    thickness_mm: Positive
    weight_kg: Positive
    required_clamp_force_kN: Positive
    shot_weight_g: Positive
    resin: Annotated[str, Field(min_length=1, max_length=32)]
    cavities: Annotated[int, Field(ge=1, le=256)]
    locating_ring_mm: Positive
    cycle_time_s: Positive
    shot_count: Annotated[int, Field(ge=0)] = 0
    maintenance_interval_shots: Annotated[int, Field(ge=1)] = 100_000


class MoldPublic(MoldCreate):
    model_config = _OUT


class RegistryDocument(BaseModel):
    """The whole registry of one or more firms, for bulk JSON import/export."""

    model_config = _IN
    version: int = 1
    firms: list[FirmCreate] = []
    sites: list[SiteCreate] = []
    lines: list[LineCreate] = []
    machines: list[MachineCreate] = []
    molds: list[MoldCreate] = []
