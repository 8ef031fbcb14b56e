"""Export a weekly capacity series as a Catena-X ``WeekBasedCapacityGroup`` JSON document.

Source: Catena-X standard CX-0128 *Demand and Capacity Management Data Exchange*, aspect
model ``urn:samm:io.catenax.week_based_capacity_group:3.0.1#WeekBasedCapacityGroup``
(eclipse-tractusx/sldt-semantic-models, ``io.catenax.week_based_capacity_group/3.0.1``).
Field names are the standard's (camelCase); the pydantic models here validate what this
module emits against the parts of that schema Renkei fills:

- required: ``capacityGroupId`` (UUID), ``name``, ``supplier`` and ``customer`` (BPNL:
  ``BPNL`` + 12 alphanumerics), ``changedAt`` (ISO 8601 date-time),
  ``unitOfMeasureIsOmitted``, ``capacityGroupIsInactive``;
- ``unitOfMeasure``: ``unit:hourUnitOfTime`` (the schema's ``ItemUnitEnumeration`` value
  for hours; a plain ``unit:hour`` is not in that enumeration);
- ``capacities``: per ISO week, ``pointInTime`` (the week's Monday), ``actualCapacity``,
  ``maximumCapacity`` (required, >= 0) and ``agreedCapacity`` (optional, >= 0);
- ``supplierLocations``: optional set of BPNS.

Not used: ``linkedDemandSeries`` (and so ``demandCategory``), ``linkedCapacityGroups``,
``demandVolatilityParameters``, ``deltaProductionResult``. The mapping of Renkei hours to
the capacity fields is documented in :mod:`renkei.cloud.capacity.rollup`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from renkei.cloud.capacity.rollup import CapacitySeries

__all__ = [
    "ASPECT_MODEL_URN",
    "RENKEI_DCM_NAMESPACE",
    "UNIT_HOUR",
    "DcmCapacity",
    "WeekBasedCapacityGroup",
    "capacity_group_id",
    "to_catenax_json",
]

#: The aspect model this export follows.
ASPECT_MODEL_URN: Final = (
    "urn:samm:io.catenax.week_based_capacity_group:3.0.1#WeekBasedCapacityGroup"
)
#: ``unitOfMeasure`` for hours in the Catena-X ItemUnitEnumeration.
UNIT_HOUR: Final = "unit:hourUnitOfTime"
#: UUID namespace for deterministic capacity group ids (uuid5 of supplier/customer/class).
RENKEI_DCM_NAMESPACE: Final = uuid.UUID("6f0d1f5e-8a4b-5c61-9d2e-72656e6b6569")

_QUANTITY_MAX: Final = 999_999_999_999_999_999.999
_UUID = r"(^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$)|(^urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$)"  # noqa: E501

Bpnl = Annotated[str, StringConstraints(pattern=r"^BPNL[a-zA-Z0-9]{12}$")]
Bpns = Annotated[str, StringConstraints(pattern=r"^BPNS[a-zA-Z0-9]{12}$")]
Quantity = Annotated[float, Field(ge=0, le=_QUANTITY_MAX, allow_inf_nan=False)]

_CAMEL = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class DcmCapacity(BaseModel):
    """One entry of ``capacities`` (the standard's ``Capacity`` entity), hours."""

    model_config = _CAMEL

    point_in_time: date = Field(description="Monday of the ISO week (YYYY-MM-DD).")
    actual_capacity: Quantity = Field(
        description="Spare hours of the week: what can realistically be offered (h, >= 0)."
    )
    maximum_capacity: Quantity = Field(
        description="Available (scheduled) hours of the week: the most the class could work "
        "(h, >= 0)."
    )
    agreed_capacity: Quantity | None = Field(
        default=None,
        description="Hours reserved for the customer by agreement (h, >= 0; not a legal "
        "obligation).",
    )

    @field_validator("point_in_time")
    @classmethod
    def _monday(cls, value: date) -> date:
        if value.weekday() != 0:
            raise ValueError(f"pointInTime must be the Monday of an ISO week, got {value}")
        return value


class WeekBasedCapacityGroup(BaseModel):
    """The subset of CX-0128 ``WeekBasedCapacityGroup`` Renkei emits (camelCase aliases).

    Raises:
        pydantic.ValidationError: a required field is missing or malformed (UUID, BPNL,
            BPNS, non-Monday ``pointInTime``, negative quantity, duplicate weeks, unit of
            measure present although omitted or vice versa).
    """

    model_config = _CAMEL

    capacity_group_id: Annotated[str, StringConstraints(pattern=_UUID)] = Field(
        description="UUID of the group, stable per supplier, customer and capability class (uuid5)."
    )
    name: Annotated[str, StringConstraints(min_length=1)] = Field(
        description="Name of the group, e.g. `Renkei spare capacity injection_molding:1000-2000kN`."
    )
    supplier: Bpnl = Field(description="BPNL of the firm offering the capacity.")
    customer: Bpnl = Field(description="BPNL of the partner it is offered to.")
    changed_at: AwareDatetime = Field(
        description="When the document was produced (ISO-8601 with offset)."
    )
    unit_of_measure_is_omitted: bool = Field(description="False: `unitOfMeasure` is given (hours).")
    capacity_group_is_inactive: bool = Field(description="True if the group is no longer used.")
    unit_of_measure: Literal["unit:hourUnitOfTime"] | None = Field(
        default=None, description="`unit:hourUnitOfTime`: capacities are in hours."
    )
    supplier_locations: list[Bpns] | None = Field(
        default=None, description="BPNS of the supplier's sites, if known."
    )
    capacities: list[DcmCapacity] = Field(
        default_factory=list, description="One entry per ISO week, at most one per week."
    )

    @model_validator(mode="after")
    def _consistent(self) -> WeekBasedCapacityGroup:
        if self.unit_of_measure_is_omitted != (self.unit_of_measure is None):
            raise ValueError(
                "unitOfMeasure must be given exactly when unitOfMeasureIsOmitted is false"
            )
        weeks = [c.point_in_time for c in self.capacities]
        if len(set(weeks)) != len(weeks):
            raise ValueError("capacities must have at most one entry per week (pointInTime)")
        if self.supplier_locations is not None and len(set(self.supplier_locations)) != len(
            self.supplier_locations
        ):
            raise ValueError("supplierLocations must not repeat a BPNS")
        return self


def capacity_group_id(supplier: str, customer: str, capability_class: str) -> str:
    """Deterministic capacity group id: uuid5 of ``supplier/customer/capability_class``.

    CX-0128 asks that the id identify the group within one supplier–customer relationship
    and stay stable across updates; deriving it from those three values does both.
    """
    return str(uuid.uuid5(RENKEI_DCM_NAMESPACE, f"{supplier}/{customer}/{capability_class}"))


def to_catenax_json(
    series: CapacitySeries,
    *,
    supplier: str,
    customer: str,
    group_id: str | None = None,
    name: str | None = None,
    changed_at: datetime | None = None,
    supplier_locations: Sequence[str] = (),
    inactive: bool = False,
    decimals: int = 3,
) -> dict[str, Any]:
    """A CX-0128 ``WeekBasedCapacityGroup`` document (JSON-ready dict) for one class.

    Args:
        series: a **week** granularity series from :func:`renkei.cloud.capacity.rollup.rollup`.
        supplier: BPNL of the firm offering the capacity.
        customer: BPNL of the partner it is offered to.
        group_id: ``capacityGroupId``; default :func:`capacity_group_id`.
        name: ``name``; default ``"Renkei spare capacity <class>"``.
        changed_at: ``changedAt`` (aware); default now (UTC).
        supplier_locations: BPNS of the supplier's sites (``supplierLocations``).
        inactive: ``capacityGroupIsInactive``.
        decimals: hours are rounded to this many decimals (default 3 = 3.6 s).

    Returns:
        The document with the standard's camelCase keys, ``None`` fields left out, dates as
        ``YYYY-MM-DD`` and ``changedAt`` as ISO 8601.

    Raises:
        ValueError: ``series`` is not week granularity, or the document does not validate
            (``pydantic.ValidationError`` is a ``ValueError``), e.g. a malformed BPNL.
    """
    if series.granularity != "week":
        raise ValueError("CX-0128 exchanges weekly capacities; roll up with granularity='week'")
    doc = WeekBasedCapacityGroup(
        capacity_group_id=group_id
        or capacity_group_id(supplier, customer, series.capability_class),
        name=name or f"Renkei spare capacity {series.capability_class}",
        supplier=supplier,
        customer=customer,
        changed_at=changed_at or datetime.now(UTC),
        unit_of_measure_is_omitted=False,
        capacity_group_is_inactive=inactive,
        unit_of_measure=UNIT_HOUR,
        supplier_locations=list(supplier_locations) or None,
        capacities=[
            DcmCapacity(
                point_in_time=p.period_start,
                actual_capacity=round(p.actual_h, decimals),
                maximum_capacity=round(p.maximum_h, decimals),
                agreed_capacity=round(p.agreed_h, decimals),
            )
            for p in series.points
        ],
    )
    return doc.model_dump(mode="json", by_alias=True, exclude_none=True)
