"""OPC UA DataValue -> :class:`~renkei.edge.sources.live.base.Reading` (pure logic).

- Quality from the StatusCode's severity bits (OPC 10000-4 §7.39: bits 31-30 ``00`` Good,
  ``01`` Uncertain, ``10``/``11`` Bad); a non-good reading's reason is the status name
  (``BadSensorFailure``).
- Time: the SourceTimestamp (``device_time=True``); without one the ServerTimestamp (still
  the device side's clock); without both, the gateway's clock (``device_time=False``).
- Value: numbers as float; Booleans 0.0/1.0; enumerations are Int32 on the wire, so they
  are numbers too. Anything else (String, ByteString, LocalizedText, arrays, structures)
  cannot be a signal value: the first such value of an episode becomes a ``BAD`` reading
  with the reason ``not numeric (<type>)``; further non-numeric values are skipped until a
  numeric one arrives (so one misconfigured node does not flood the quality counters).
- Re-sent samples are dropped: a device-time reading of a signal that is older than the
  last one handed on, or equally old with the same value and quality, is the same sample
  again (a poll of an unchanged value; the initial value a new subscription sends after a
  reconnect), not a new one.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any, Final

from renkei.edge.sources.live.base import Quality, Reading

__all__ = ["ReadingMaker", "datetime_ms", "numeric", "quality_of"]

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def quality_of(code: int, name: str) -> tuple[Quality, str]:
    """Quality and reason of a StatusCode value ``code`` named ``name``."""
    severity = (code >> 30) & 0b11
    if severity == 0:
        return Quality.GOOD, ""
    if severity == 1:
        return Quality.UNCERTAIN, name
    return Quality.BAD, name


def numeric(value: Any) -> float | None:
    """``value`` as a float, or ``None`` if it is not a number (see the module docstring)."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    return None


def datetime_ms(dt: datetime | None) -> int | None:
    """UTC epoch ms of an OPC UA DateTime (naive values are UTC, as asyncua returns them);
    ``None`` for a missing or null (1601-01-01) timestamp."""
    if dt is None:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    if dt.year < 1971:
        return None
    return int((dt - _EPOCH).total_seconds() * 1000)


class ReadingMaker:
    """Turns DataValues of the signals into readings; remembers which signals are in a
    non-numeric episode (one per driver; not thread-safe, the driver's loop owns it)."""

    def __init__(self) -> None:
        self._non_numeric: set[str] = set()
        self._last: dict[str, tuple[int, float, Quality]] = {}

    def reset(self) -> None:
        """Forget the non-numeric episodes (after a reconnect, report them again)."""
        self._non_numeric.clear()

    def make(
        self,
        signal: str,
        value: Any,
        status_code: int,
        status_name: str,
        source_ts: datetime | None,
        server_ts: datetime | None,
        now_ms: int,
    ) -> Reading | None:
        """The reading of one DataValue, or ``None`` if it is to be skipped."""
        r = self._make(signal, value, status_code, status_name, source_ts, server_ts, now_ms)
        if r is None or not r.device_time:
            return r
        last = self._last.get(signal)
        if last is not None:
            t, v, q = last
            # only the very sample seen last is a repeat; an *older* timestamp is data (a
            # device clock stepped back must not silence the signal until it catches up):
            # the source places it after the last row and counts it as ``late``
            if (
                r.t_ms == t
                and r.quality is q
                and (v == r.value or (math.isnan(v) and math.isnan(r.value)))
            ):
                return None
        self._last[signal] = (r.t_ms, r.value, r.quality)
        return r

    def _make(
        self,
        signal: str,
        value: Any,
        status_code: int,
        status_name: str,
        source_ts: datetime | None,
        server_ts: datetime | None,
        now_ms: int,
    ) -> Reading | None:
        t = datetime_ms(source_ts)
        if t is None:
            t = datetime_ms(server_ts)
        device_time = t is not None
        t_ms = t if t is not None else now_ms
        quality, reason = quality_of(status_code, status_name)
        if quality is Quality.BAD:
            self._non_numeric.discard(signal)
            return Reading(signal, t_ms, math.nan, quality, device_time, reason)
        number = numeric(value)
        if number is None:
            if signal in self._non_numeric:
                return None
            self._non_numeric.add(signal)
            kind = "null" if value is None else type(value).__name__
            return Reading(
                signal, t_ms, math.nan, Quality.BAD, device_time, f"not numeric ({kind})"
            )
        self._non_numeric.discard(signal)
        return Reading(signal, t_ms, number, quality, device_time, reason)
