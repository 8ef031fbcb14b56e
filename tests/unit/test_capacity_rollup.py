"""Capability classes, ISO weeks, class roll-ups and the Catena-X CX-0128 export."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
from pydantic import ValidationError

from renkei.cloud.capacity import (
    KN_PER_TONF,
    UNIT_HOUR,
    Booking,
    CapabilityClass,
    ShiftCalendar,
    SpareCapacity,
    WeekBasedCapacityGroup,
    capability_class,
    capacity_group_id,
    compute_spare,
    iso_week_label,
    iso_week_monday,
    parse_capability_class,
    rollup,
    to_catenax_json,
)

CAL = ShiftCalendar(weekly_hours=(16, 16, 16, 16, 16, 8, 0))
SUPPLIER = "BPNL000000000ABC"
CUSTOMER = "BPNL000000000XYZ"
IM = "injection_molding:1000-2000kN"


# ----------------------------------------------------------------------------- classes


@pytest.mark.parametrize(
    ("tonf", "band"),
    [
        (50, "0-500kN"),
        (100, "500-1000kN"),
        (180, "1000-2000kN"),
        (350, "2000-4000kN"),
        (650, "4000-8000kN"),
        (850, "8000-16000kN"),
        (3000, "16000kN+"),
    ],
)
def test_injection_molding_bands_from_tonf(tonf: float, band: str) -> None:
    cls = capability_class("injection_molding", clamp_force_kN=tonf * KN_PER_TONF)
    assert cls.id == f"injection_molding:{band}"
    assert parse_capability_class(cls.id) == cls


def test_band_edges_and_other_processes() -> None:
    assert capability_class("injection_molding", clamp_force_kN=1000).id == IM
    assert capability_class("injection_molding", clamp_force_kN=1999.9).id == IM
    top = capability_class("press", tonnage_kN=16000)
    assert (top.id, top.min_kN, top.max_kN) == ("press:16000kN+", 16000, float("inf"))
    assert [capability_class("machining", axes=a).id for a in (2, 3, 4, 5, 9)] == [
        "machining:3axis",
        "machining:3axis",
        "machining:4axis",
        "machining:5axis",
        "machining:5axis",
    ]
    assert capability_class("die_casting") == CapabilityClass("die_casting")
    assert str(parse_capability_class("machining:4axis")) == "machining:4axis"
    assert parse_capability_class("die_casting").band == ""


@pytest.mark.parametrize(
    ("process", "kwargs"),
    [
        ("injection_molding", {}),
        ("injection_molding", {"clamp_force_kN": 0}),
        ("press", {"clamp_force_kN": 500}),
        ("press", {"tonnage_kN": float("nan")}),
        ("machining", {}),
        ("Injection Molding", {}),
    ],
)
def test_capability_class_errors(process: str, kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - messages differ per case
        capability_class(process, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "bad",
    [
        "injection_molding",
        "injection_molding:1000-3000kN",
        "press:5axis",
        "machining:7axis",
        "machining",
        "x:1-2kN",
        "",
        "a:b:c",
        "injection_molding:300kN+",
    ],
)
def test_parse_rejects_invalid_ids(bad: str) -> None:
    with pytest.raises(ValueError, match="capability class|band"):
        parse_capability_class(bad)


# ----------------------------------------------------------------------------- weeks


def test_iso_weeks_across_the_year_boundary() -> None:
    assert iso_week_label(date(2026, 12, 28)) == "2026-W53"
    assert iso_week_label(date(2027, 1, 3)) == "2026-W53"
    assert iso_week_label(date(2027, 1, 4)) == "2027-W01"
    assert iso_week_label(date(2026, 1, 1)) == "2026-W01"
    assert iso_week_label(date(2025, 12, 29)) == "2026-W01"
    assert iso_week_monday(date(2027, 1, 1)) == date(2026, 12, 28)
    assert iso_week_monday(date(2026, 12, 28)) == date(2026, 12, 28)


# ----------------------------------------------------------------------------- roll-ups


def _spare(start: date, days: int = 84) -> SpareCapacity:
    return compute_spare(
        ["a", "b", "c", "d"],
        start=start,
        default_calendar=CAL,
        bookings=[
            Booking(machine_id="a", start=start + timedelta(2), end=start + timedelta(30), hours=9),
            Booking(machine_id="b", start=start, hours=20),
            Booking(machine_id="c", start=start + timedelta(10), hours=3.5),
        ],
        availability={"a": 0.8, "b": 0.95},
        days=days,
    )


CLASSES: dict[str, str | CapabilityClass] = {
    "a": IM,
    "b": IM,
    "c": capability_class("press", tonnage_kN=800),
    "zz": IM,
}


def test_weekly_sums_equal_daily_sums() -> None:
    sp = _spare(date(2026, 1, 5))
    weekly = rollup(sp, CLASSES)
    daily = rollup(sp, CLASSES, granularity="day")
    assert list(weekly) == [IM, "press:500-1000kN"]  # d has no class: not shared
    assert weekly[IM].machines == ("a", "b")
    assert len(weekly[IM].points) == 12 and len(daily[IM].points) == 84
    for cls in weekly:
        w, d = weekly[cls].points, daily[cls].points
        assert [p.days for p in w] == [7] * 12
        for k, p in enumerate(w):
            assert p.period_start == date(2026, 1, 5) + timedelta(7 * k)
            days = d[7 * k : 7 * k + 7]
            assert p.maximum_h == pytest.approx(sum(x.maximum_h for x in days))
            assert p.actual_h == pytest.approx(sum(x.actual_h for x in days))
            assert 0 <= p.actual_h <= p.maximum_h
    # And daily class sums equal the machine sums.
    rows = [sp.machine_index["a"], sp.machine_index["b"]]
    np.testing.assert_allclose([p.actual_h for p in daily[IM].points], sp.spare_h[rows].sum(0))
    np.testing.assert_allclose([p.maximum_h for p in daily[IM].points], sp.available_h[rows].sum(0))


def test_mid_week_start_keeps_rest_of_week_and_drops_trailing_partial_week() -> None:
    start = date(2026, 12, 23)  # Wednesday of 2026-W52
    sp = _spare(start, days=21)  # .. Tuesday 2027-01-12
    weekly = rollup(sp, CLASSES)[IM]
    assert [(p.period_start, p.days) for p in weekly.points] == [
        (date(2026, 12, 21), 5),  # W52 from Wednesday on
        (date(2026, 12, 28), 7),  # W53
        (date(2027, 1, 4), 7),  # 2027-W01; W02 (Mon+Tue only) left out
    ]
    assert [iso_week_label(p.period_start) for p in weekly.points] == [
        "2026-W52",
        "2026-W53",
        "2027-W01",
    ]
    daily = rollup(sp, CLASSES, granularity="day")[IM].points
    assert weekly.points[0].maximum_h == pytest.approx(sum(p.maximum_h for p in daily[:5]))
    assert weekly.points[2].actual_h == pytest.approx(sum(p.actual_h for p in daily[12:19]))
    # A horizon inside one week that stops before Sunday has no complete week.
    assert rollup(_spare(start, days=3), CLASSES)[IM].points == ()


def test_agreed_hours() -> None:
    sp = _spare(date(2026, 1, 5), days=14)
    weekly = rollup(
        sp, CLASSES, agreed={(IM, date(2026, 1, 12)): 40.0, ("other", date(2026, 1, 5)): 1}
    )
    assert [p.agreed_h for p in weekly[IM].points] == [0.0, 40.0]
    daily = rollup(sp, CLASSES, granularity="day", agreed={(IM, date(2026, 1, 7)): 4})
    assert daily[IM].points[2].agreed_h == 4.0
    with pytest.raises(ValueError, match="not a Monday"):
        rollup(sp, CLASSES, agreed={(IM, date(2026, 1, 7)): 4})
    with pytest.raises(ValueError, match=">= 0"):
        rollup(sp, CLASSES, agreed={(IM, date(2026, 1, 5)): -1})
    with pytest.raises(ValueError, match="granularity"):
        rollup(sp, CLASSES, granularity="month")  # type: ignore[arg-type]
    assert rollup(sp, {"zz": IM}) == {}


# ----------------------------------------------------------------------------- Catena-X


def test_catenax_json_shape() -> None:
    sp = _spare(date(2026, 12, 21), days=21)
    series = rollup(sp, CLASSES, agreed={(IM, date(2026, 12, 28)): 12.5})[IM]
    changed = datetime(2026, 12, 20, 9, 30, tzinfo=UTC)
    doc = to_catenax_json(
        series,
        supplier=SUPPLIER,
        customer=CUSTOMER,
        changed_at=changed,
        supplier_locations=["BPNS00000000SITE"],
    )
    assert set(doc) == {
        "capacityGroupId",
        "name",
        "supplier",
        "customer",
        "changedAt",
        "unitOfMeasure",
        "unitOfMeasureIsOmitted",
        "capacityGroupIsInactive",
        "supplierLocations",
        "capacities",
    }
    assert doc["unitOfMeasure"] == UNIT_HOUR == "unit:hourUnitOfTime"
    assert doc["unitOfMeasureIsOmitted"] is False and doc["capacityGroupIsInactive"] is False
    assert doc["changedAt"] == "2026-12-20T09:30:00Z"
    assert doc["name"] == f"Renkei spare capacity {IM}"
    assert uuid.UUID(doc["capacityGroupId"]) == uuid.UUID(capacity_group_id(SUPPLIER, CUSTOMER, IM))
    assert doc["capacityGroupId"] != capacity_group_id(SUPPLIER, "BPNL000000000OTH", IM)
    assert [c["pointInTime"] for c in doc["capacities"]] == [
        "2026-12-21",
        "2026-12-28",
        "2027-01-04",
    ]
    for c, p in zip(doc["capacities"], series.points, strict=True):
        assert set(c) == {"pointInTime", "actualCapacity", "maximumCapacity", "agreedCapacity"}
        assert c["maximumCapacity"] == round(p.maximum_h, 3)
        assert c["actualCapacity"] == round(p.actual_h, 3)
        assert 0 <= c["actualCapacity"] <= c["maximumCapacity"]
    assert doc["capacities"][1]["agreedCapacity"] == 12.5
    assert json.loads(json.dumps(doc)) == doc
    assert (
        WeekBasedCapacityGroup.model_validate(doc).model_dump(
            mode="json", by_alias=True, exclude_none=True
        )
        == doc
    )


def test_catenax_export_errors() -> None:
    sp = _spare(date(2026, 1, 5), days=7)
    with pytest.raises(ValueError, match="week"):
        to_catenax_json(
            rollup(sp, CLASSES, granularity="day")[IM], supplier=SUPPLIER, customer=CUSTOMER
        )
    series = rollup(sp, CLASSES)[IM]
    with pytest.raises(ValidationError, match="supplier"):
        to_catenax_json(series, supplier="acme", customer=CUSTOMER)
    with pytest.raises(ValidationError, match="BPNS"):
        to_catenax_json(series, supplier=SUPPLIER, customer=CUSTOMER, supplier_locations=["x"])


def _doc(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "capacityGroupId": "0157ba42-d2a8-4e28-8565-7b07830c1110",
        "name": "g",
        "supplier": SUPPLIER,
        "customer": CUSTOMER,
        "changedAt": "2023-03-10T12:27:11.320Z",
        "unitOfMeasure": UNIT_HOUR,
        "unitOfMeasureIsOmitted": False,
        "capacityGroupIsInactive": False,
        "capacities": [{"pointInTime": "2022-08-01", "actualCapacity": 10, "maximumCapacity": 20}],
    }
    base.update(changes)
    return base


@pytest.mark.parametrize(
    "changes",
    [
        {"capacityGroupId": "not-a-uuid"},
        {"customer": "BPNS000000000XYZ"},
        {"changedAt": "2023-03-10T12:27:11"},  # no offset
        {"unitOfMeasure": "unit:hour"},  # not in the Catena-X unit enumeration
        {"unitOfMeasureIsOmitted": True},  # unit present although omitted
        {"capacities": [{"pointInTime": "2022-08-02", "actualCapacity": 1, "maximumCapacity": 2}]},
        {"capacities": [{"pointInTime": "2022-08-01", "actualCapacity": -1, "maximumCapacity": 2}]},
        {"capacities": [{"pointInTime": "2022-08-01", "maximumCapacity": 2}]},
        {
            "capacities": [{"pointInTime": "2022-08-01", "actualCapacity": 1, "maximumCapacity": 2}]
            * 2
        },
        {"demandCategory": {"demandCategoryCode": "0001"}},  # not used by Renkei
    ],
)
def test_model_rejects_invalid_documents(changes: dict[str, object]) -> None:
    WeekBasedCapacityGroup.model_validate(_doc())  # the base document is valid
    with pytest.raises(ValidationError):
        WeekBasedCapacityGroup.model_validate(_doc(**changes))
