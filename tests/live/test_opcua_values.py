"""DataValue -> Reading mapping of the ``opcua`` driver (pure logic, no server)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from renkei.edge.sources.live.base import Quality
from renkei.edge.sources.live.opcua.values import ReadingMaker, datetime_ms, numeric, quality_of

T = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
T_MS = 1714564800000


def test_quality_from_severity_bits() -> None:
    assert quality_of(0, "Good") == (Quality.GOOD, "")
    assert quality_of(0x40000000, "Uncertain") == (Quality.UNCERTAIN, "Uncertain")
    assert quality_of(0x408F0000, "UncertainLastUsableValue")[0] is Quality.UNCERTAIN
    assert quality_of(0x808A0000, "BadSensorFailure") == (Quality.BAD, "BadSensorFailure")
    assert quality_of(0xC0000000, "x")[0] is Quality.BAD


def test_numeric() -> None:
    assert numeric(True) == 1.0 and numeric(False) == 0.0
    assert numeric(7) == 7.0 and numeric(2.5) == 2.5
    assert numeric("7") is None and numeric(None) is None and numeric([1, 2]) is None


def test_timestamps() -> None:
    assert datetime_ms(T) == T_MS
    assert datetime_ms(T.replace(tzinfo=None)) == T_MS  # naive = UTC
    assert datetime_ms(datetime(1601, 1, 1)) is None and datetime_ms(None) is None
    m = ReadingMaker()
    r = m.make("a", 1.0, 0, "Good", None, T, now_ms=5)
    assert r is not None and r.t_ms == T_MS and r.device_time  # ServerTimestamp fallback
    r = m.make("a", 1.0, 0, "Good", None, None, now_ms=5)
    assert r is not None and r.t_ms == 5 and not r.device_time


def test_bad_and_non_numeric_once() -> None:
    m = ReadingMaker()
    bad = m.make("a", 3.0, 0x808A0000, "BadSensorFailure", T, T, 0)
    assert bad is not None and bad.quality is Quality.BAD and math.isnan(bad.value)
    unc = m.make("a", 3.0, 0x40000000, "Uncertain", T, T, 0)
    assert unc is not None and unc.quality is Quality.UNCERTAIN and unc.value == 3.0
    first = m.make("s", "hello", 0, "Good", T, T, 0)
    assert first is not None and first.quality is Quality.BAD
    assert first.reason == "not numeric (str)"
    assert m.make("s", "again", 0, "Good", T, T, 0) is None
    ok = m.make("s", 4, 0, "Good", T, T, 0)
    assert ok is not None and ok.value == 4.0
    assert m.make("s", "back", 0, "Good", T, T, 0) is not None  # a new episode


def test_resent_samples_dropped() -> None:
    m = ReadingMaker()
    assert m.make("a", 1.0, 0, "Good", T, T, 0) is not None
    assert m.make("a", 1.0, 0, "Good", T, T, 0) is None  # same sample polled again
    assert m.make("a", 2.0, 0, "Good", T.replace(second=1), None, 0) is not None
    # an older timestamp is not a repeat (a device clock stepped back): kept, so that the
    # signal is not silenced until the clock catches up; LiveSource counts it as late
    older = m.make("a", 3.0, 0, "Good", T, T, 0)
    assert older is not None and older.value == 3.0
    assert m.make("a", 3.0, 0, "Good", T, T, 0) is None  # and that one is not repeated
    assert m.make("b", 1.0, 0, "Good", None, None, 7) is not None  # gateway time: kept
    assert m.make("b", 1.0, 0, "Good", None, None, 7) is not None
