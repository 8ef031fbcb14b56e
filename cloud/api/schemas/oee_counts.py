"""Bodies of the operator counts endpoints (:mod:`renkei.cloud.api.routers.oee_counts`).

An entry is what an operator counted for one machine over ``[start, end)``: good and
reject parts. Times without an offset are UTC; responses are UTC ISO-8601.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from renkei.cloud.disruption import as_utc
from renkei.cloud.registry import MAX_INTERVAL_S

__all__ = [
    "OperatorCountCreate",
    "OperatorCountPublic",
    "OperatorCountSaved",
    "utc_in_range",
]

EARLIEST: Final = datetime(2000, 1, 1, tzinfo=UTC)
"""Earliest start/end accepted (and what InfluxDB's time range can hold is far wider)."""
LATEST: Final = datetime(2200, 1, 1, tzinfo=UTC)
"""Latest start/end accepted."""

#: Most parts one entry may hold per count (a day of a fast press is far below).
MAX_PARTS = 10_000_000

Start = Annotated[
    datetime,
    Field(
        description="Start of the counted interval (inclusive), ISO-8601; without an offset "
        "it is UTC. The interval is [start, end).",
        examples=["2026-12-07T00:00:00Z"],
    ),
]
End = Annotated[
    datetime,
    Field(
        description="End of the counted interval (exclusive), ISO-8601; without an offset it "
        f"is UTC. After `start`, at most {MAX_INTERVAL_S // 3600} h after it.",
        examples=["2026-12-07T08:00:00Z"],
    ),
]
Good = Annotated[
    int,
    Field(
        ge=0,
        le=MAX_PARTS,
        description=f"Good parts counted in the interval (integer, 0..{MAX_PARTS} inclusive).",
        examples=[1180],
    ),
]
Reject = Annotated[
    int,
    Field(
        ge=0,
        le=MAX_PARTS,
        description=f"Rejected (scrap, NG) parts counted in the interval (integer, "
        f"0..{MAX_PARTS} inclusive).",
        examples=[20],
    ),
]
ReasonCode = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9_.-]{1,32}$",
        examples=["short_shot"],
    ),
]


def utc_in_range(value: datetime) -> datetime:
    """``value`` in UTC, if between :data:`EARLIEST` and :data:`LATEST` (else ValueError)."""
    try:
        utc = as_utc(value)
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST <= utc <= LATEST:
        raise ValueError(
            f"{value.isoformat()} is outside {EARLIEST.isoformat()} .. {LATEST.isoformat()}"
        )
    return utc


class OperatorCountCreate(BaseModel):
    """Good and reject parts an operator counted for one machine over [start, end)."""

    model_config = ConfigDict(extra="forbid")
    start: Start
    end: End
    good: Good
    reject: Reject
    reject_reason: ReasonCode | None = Field(
        None,
        description="Reject reason code of the shop (1-32 letters, digits, `_ . -`), e.g. "
        "`short_shot`, `flash`, `sink`; null or left out when none.",
    )
    note: str = Field(
        "", max_length=500, description="Free text of the operator (at most 500 characters)."
    )

    @field_validator("start", "end")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return utc_in_range(value)

    @field_validator("end")
    @classmethod
    def _interval(cls, end: datetime, info: ValidationInfo) -> datetime:
        start = info.data.get("start")
        if not isinstance(start, datetime):
            return end  # start itself is wrong and named
        length_s = (end - start).total_seconds()
        if length_s <= 0:
            raise ValueError(f"end {end.isoformat()} must be after start {start.isoformat()}")
        if length_s > MAX_INTERVAL_S:
            raise ValueError(
                f"end - start = {length_s / 3600:g} h exceeds {MAX_INTERVAL_S // 3600} h "
                f"(start {start.isoformat()}, end {end.isoformat()})"
            )
        return end


class OperatorCountPublic(BaseModel):
    """One recorded entry."""

    model_config = ConfigDict(from_attributes=True)
    id: int = Field(description="Entry id (1..2^63-1), used to correct or delete it.")
    machine_id: str = Field(description="The machine (`MachinePublic.id`).")
    start: Start
    end: End
    good: Good
    reject: Reject
    reject_reason: str | None = Field(description="Reject reason code, or null.")
    note: str = Field(description="Free text of the operator.")
    recorded_by: str = Field(
        description="Key id (`CredentialPublic.key_id`) that recorded or last corrected it."
    )
    recorded_at: datetime = Field(description="When it was recorded or corrected (UTC).")

    @field_validator("start", "end", "recorded_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return as_utc(value)


class OperatorCountSaved(BaseModel):
    """A saved entry and whether OEE in InfluxDB already uses it."""

    entry: OperatorCountPublic = Field(description="The entry as stored.")
    oee: Literal["written", "pending", "not_configured", "failed"] = Field(
        description="`written`: OEE quality of the interval now uses the counts (basis "
        "`operator`) in InfluxDB; `pending`: the API's InfluxDB user may not write "
        "(read-only, as in the compose stack): applied by the writer within one cycle "
        "(`renkei cloud oee-sync`, every 60 s there); `not_configured`: the API has no "
        "InfluxDB (`RENKEI_API_INFLUX_URL`), the counts are only in the registry; "
        "`failed`: InfluxDB did not take them (see `oee_detail`); the entry is saved all "
        "the same, and the writer's next cycle (or saving it again, PUT) writes it."
    )
    oee_detail: str = Field(description="Why `failed` (empty otherwise).")
