"""Machine availability from gateway data in a real InfluxDB, checked to exact ratios.

Window: the 7 Tokyo days Mon 2026-01-05 .. Sun 2026-01-11 (``until`` = Mon 2026-01-12 in
Tokyo). Calendar: 8 h Monday–Friday, Saturday/Sunday 0 h, so 40 scheduled hours a week.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from harness.services import InfluxDB, free_port
from renkei.cloud._exceptions import StoreUnavailable
from renkei.cloud.capacity import (
    ShiftCalendar,
    availability_from_daily,
    compute_spare,
    daily_up_hours,
    recent_availability,
    recent_availability_details,
)
from renkei.cloud.store.influx import InfluxSettings, InfluxStore

JST = timezone(timedelta(hours=9))
CAL = ShiftCalendar(weekly_hours=(8, 8, 8, 8, 8, 0, 0))
UNTIL = datetime(2026, 1, 12, 3, 0, tzinfo=JST)
MON = date(2026, 1, 5)


def _minutes(
    machine: str,
    day: date,
    hour: float,
    hours: float,
    *,
    firm: str = "acme",
    gw: str = "gw-1",
    field: str = "oil_temp_C",
    offset_s: int = 0,
    measurement: str = "features",
) -> Iterator[str]:
    """One point per minute from Tokyo ``hour`` on ``day`` for ``hours`` hours."""
    begin = datetime(day.year, day.month, day.day, tzinfo=JST) + timedelta(hours=hour)
    for k in range(round(hours * 60)):
        t_ms = int((begin + timedelta(minutes=k, seconds=offset_s)).timestamp() * 1000)
        yield (
            f"{measurement},area=a1,firm={firm},gw={gw},line=l1,machine={machine},site=s1 "
            f"{field}={40 + k % 7}.5 {t_ms}"
        )


def _week_of_data() -> list[str]:
    lines: list[str] = []
    weekdays = [MON + timedelta(k) for k in range(5)]
    for d in weekdays:
        # m1: runs the full 08:00-16:00 shift, reported by two gateways with different
        # fields (counted once per minute), plus unscheduled Saturday work (clipped).
        lines += _minutes("m1", d, 8, 8)
        lines += _minutes("m1", d, 8, 8, gw="gw-2", field="motor_current_A", offset_s=30)
        # m2: 6 h a day, rows alternate between two fields -> 30/40 = 0.75.
        lines += _minutes("m2", d, 8, 3, field="a")
        lines += _minutes("m2", d, 11, 3, field="b")
        # m5: another firm, filtered out by where={"firm": "acme"}.
        lines += _minutes("m5", d, 8, 8, firm="other")
    lines += _minutes("m1", MON + timedelta(5), 8, 2)
    # m3: connected on Wednesday: Wed 8 h, Thu 4 h, Fri nothing -> 12/24 over Wed..Sun.
    lines += _minutes("m3", MON + timedelta(2), 8, 8)
    lines += _minutes("m3", MON + timedelta(3), 8, 4)
    # m4: Mon-Thu 8 h; Friday night 20:00-04:00 Tokyo = 11:00-19:00 UTC Friday. Tokyo days
    # give Friday 4 h (Saturday's 4 h are unscheduled): 36/40 = 0.9 (UTC days would say 1.0).
    for d in weekdays[:4]:
        lines += _minutes("m4", d, 8, 8)
    lines += _minutes("m4", MON + timedelta(4), 20, 8)
    # m6: only data before the window -> unknown. An old field outside the window too.
    lines += _minutes("m6", MON - timedelta(3), 8, 8, field="legacy_field")
    # m7: data but no calendar.
    lines += _minutes("m7", MON, 8, 2)
    # m8: raw telemetry only (features are the default measurement).
    lines += _minutes("m8", MON, 8, 4, measurement="telemetry")
    return lines


@pytest.fixture
def store(influxdb: InfluxDB, database: str) -> Iterator[InfluxStore]:
    s = InfluxStore(settings=InfluxSettings(url=influxdb.url, database=database))
    s.ensure_database()
    lines = _week_of_data()
    for i in range(0, len(lines), 5000):
        s.write_lines("\n".join(lines[i : i + 5000]).encode())
    yield s
    s.close()


def test_ratios_are_exact(store: InfluxStore) -> None:
    calendars = {m: CAL for m in ("m1", "m2", "m3", "m4", "m5", "m6")}
    details = recent_availability_details(
        store, calendars=calendars, where={"firm": "acme"}, days=7, until=UNTIL
    )
    assert {m: d.ratio for m, d in details.items()} == {
        "m1": 1.0,
        "m2": 0.75,
        "m3": 0.5,
        "m4": 0.9,
    }
    assert (details["m2"].up_h, details["m2"].scheduled_h) == (30.0, 40.0)
    assert (details["m3"].up_h, details["m3"].scheduled_h) == (12.0, 24.0)
    assert details["m3"].first_day == MON + timedelta(2)
    assert details["m4"].up_h == 36.0
    assert details["m1"].window_end == date(2026, 1, 12)
    # The plain mapping plugs into compute_spare; m6 (no data) falls back to the default.
    ratios = recent_availability(
        store.settings, calendars=calendars, where={"firm": "acme"}, days=7, until=UNTIL
    )
    assert ratios == {m: d.ratio for m, d in details.items()}
    sp = compute_spare(
        ["m2", "m6"], start=date(2026, 1, 12), default_calendar=CAL, availability=ratios, days=1
    )
    assert sp.spare_h[:, 0].tolist() == [6.0, pytest.approx(7.2)]


def test_scope_keys_default_calendar_and_window(store: InfluxStore) -> None:
    everyone = recent_availability(store, default_calendar=CAL, days=7, until=UNTIL)
    assert set(everyone) == {"m1", "m2", "m3", "m4", "m5", "m7"}
    assert everyone["m5"] == 1.0
    assert everyone["m7"] == 2.0 / 40.0
    keyed = recent_availability(
        store, default_calendar=CAL, key_tags=("firm", "machine"), days=7, until=UNTIL
    )
    assert keyed["other/m5"] == 1.0 and keyed["acme/m2"] == 0.75
    # A window that ends one day earlier (until Sunday) drops nothing scheduled: same ratios.
    earlier = recent_availability(
        store, calendars={"m2": CAL}, days=6, until=UNTIL - timedelta(days=1)
    )
    assert earlier == {"m2": 0.75}
    # A window before any data knows nothing.
    assert (
        recent_availability(store, default_calendar=CAL, days=7, until=UNTIL - timedelta(30)) == {}
    )
    # 5-minute buckets: m2's 6 h are 72 buckets -> same ratio.
    assert recent_availability(store, calendars={"m2": CAL}, days=7, bucket_s=300, until=UNTIL) == {
        "m2": 0.75
    }
    # In UTC days the runs shift by 9 h: m4's Friday-night run falls on Friday (8 h), but
    # Monday's 08:00 JST start is Sunday 23:00 UTC (outside the window) and Thursday gets
    # only 7 h: 39/40 instead of 36/40 in Tokyo days.
    utc_cal = CAL.model_copy(update={"timezone": "UTC"})
    assert utc_cal.timezone == "UTC"
    utc = recent_availability(
        store, calendars={"m4": utc_cal}, days=7, until=datetime(2026, 1, 12, 0, 0, tzinfo=UTC)
    )
    assert utc == {"m4": 39.0 / 40.0}


def test_measurement_field_and_daily_hours(store: InfluxStore) -> None:
    raw = recent_availability(
        store, default_calendar=CAL, measurement="telemetry", days=7, until=UNTIL
    )
    assert raw == {"m8": 4.0 / 40.0}
    # The single-field fast path: right only for a field present in every row.
    one = recent_availability(
        store, calendars={"m1": CAL, "m2": CAL}, field="a", days=7, until=UNTIL
    )
    assert one == {"m2": 15.0 / 40.0}
    one = recent_availability(store, calendars={"m1": CAL}, field="oil_temp_C", days=7, until=UNTIL)
    assert one == {"m1": 1.0}
    # Daily up hours (for caching per day), unclipped: m1 worked 2 h on Saturday.
    daily = daily_up_hours(store, first_day=MON, days=7, where={"firm": "acme"})
    assert daily["m1"] == {MON + timedelta(k): 8.0 for k in range(5)} | {MON + timedelta(5): 2.0}
    assert daily["m4"][MON + timedelta(4)] == 4.0 and daily["m4"][MON + timedelta(5)] == 4.0
    assert "m5" not in daily and "m8" not in daily
    cached = availability_from_daily(
        daily, window_end=MON + timedelta(7), days=7, default_calendar=CAL
    )
    assert cached["m4"].ratio == 0.9


def test_argument_and_store_errors(influxdb: InfluxDB, database: str) -> None:
    settings = InfluxSettings(url=influxdb.url, database=database)
    with pytest.raises(ValueError, match="days"):
        recent_availability(settings, default_calendar=CAL, days=0)
    with pytest.raises(ValueError, match="bucket_s"):
        recent_availability(settings, default_calendar=CAL, bucket_s=7)
    with pytest.raises(ValueError, match="key_tags"):
        recent_availability(settings, default_calendar=CAL, key_tags=())
    with pytest.raises(ValueError, match="aware"):
        recent_availability(settings, default_calendar=CAL, until=datetime(2026, 1, 1))
    with pytest.raises(StoreUnavailable, match="database not found"):  # not created yet
        recent_availability(settings, default_calendar=CAL)
    down = InfluxSettings(url=f"http://127.0.0.1:{free_port()}", database=database)
    with pytest.raises(StoreUnavailable, match="unreachable"):
        recent_availability(down, default_calendar=CAL)
    # No calendars at all: nothing to measure against, no query needed.
    assert recent_availability(down) == {}
