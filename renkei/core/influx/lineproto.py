"""InfluxDB line protocol: escaping and formatting of single points (the encoder).

Line protocol reference (InfluxDB 1.x/2.x/3.x):
https://docs.influxdata.com/influxdb/v1/write_protocols/line_protocol_reference/ ::

    measurement[,tag_key=tag_value...] field_key=field_value[,field_key=field_value...] [ts]

- measurement: escape ``,`` and space with ``\\``; tag keys/values and field keys: escape
  ``,``, ``=`` and space. Line protocol cannot carry a newline in any of them, and 1.x and
  2.x disagree on whether ``\\\\`` is an escape, so names containing ``\\n``, ``\\r`` or
  ``\\\\`` are refused (:func:`escape_key` raises ``ValueError``).
- string field values are double-quoted, with ``"`` and ``\\`` escaped by ``\\``.
- floats are written in the shortest form that round-trips (``repr``-equivalent, e.g.
  ``41.2``, ``1e+16``); integers get the ``i`` suffix; booleans are ``true``/``false``.
- tags are sorted by key, as InfluxDB recommends for write performance.

The ingest's column-oriented fast path for whole machine messages lives in
:mod:`renkei.cloud.ingest.lineproto`; the parser (the decoder) in
:mod:`renkei.core.influx.lineparse`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Final

__all__ = [
    "FORBIDDEN_IN_NAMES",
    "FieldValue",
    "escape_key",
    "escape_measurement",
    "format_point",
    "format_value",
    "quote_string",
]

#: A field value: float, integer (``i``/``u`` suffix in line protocol), string or boolean.
FieldValue = float | int | str | bool

#: Characters line protocol cannot carry in a measurement, tag or field name.
FORBIDDEN_IN_NAMES: Final = ("\n", "\r", "\\")

_INT64_MAX: Final = 2**63 - 1

_MEAS_ESC: Final = str.maketrans({",": "\\,", " ": "\\ "})
_KEY_ESC: Final = str.maketrans({",": "\\,", "=": "\\=", " ": "\\ "})
_STR_ESC: Final = str.maketrans({"\\": "\\\\", '"': '\\"'})


def _check_name(kind: str, name: str) -> None:
    if not name:
        raise ValueError(f"{kind} must not be empty")
    for ch in FORBIDDEN_IN_NAMES:
        if ch in name:
            raise ValueError(f"{kind} {name!r} contains {ch!r}, which line protocol cannot carry")


def escape_measurement(name: str) -> str:
    """Escape a measurement name (``,`` and space).

    Raises:
        ValueError: empty, starts with ``#`` (a comment line) or a tab (stripped by
            InfluxDB), or contains a newline, carriage return or backslash.
    """
    _check_name("measurement", name)
    if name.startswith("#"):
        raise ValueError(f"measurement {name!r} would be read as a comment line")
    if name.startswith("\t"):
        raise ValueError(f"measurement {name!r}: InfluxDB strips a line's leading tabs")
    return name.translate(_MEAS_ESC)


def escape_key(name: str) -> str:
    """Escape a tag key, tag value or field key (``,``, ``=`` and space).

    Raises:
        ValueError: empty, or contains a newline, carriage return or backslash.
    """
    _check_name("tag/field name", name)
    return name.translate(_KEY_ESC)


def quote_string(value: str) -> str:
    """A string field value: double-quoted, ``\\`` and ``"`` escaped (newlines allowed)."""
    return '"' + value.translate(_STR_ESC) + '"'


def format_value(value: FieldValue) -> str:
    """Format one field value: float (round-trip ``repr``), ``{n}i`` integer, bool, string.

    Raises:
        ValueError: NaN or infinite float, or an integer outside int64.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if not -_INT64_MAX - 1 <= value <= _INT64_MAX:
            raise ValueError(f"integer {value} is outside int64")
        return f"{value}i"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"float {value!r} is not finite; line protocol has no NaN/inf")
        return repr(value)
    return quote_string(value)


def format_point(
    measurement: str,
    tags: Mapping[str, str],
    fields: Mapping[str, FieldValue],
    time: int | None = None,
) -> bytes:
    """One line of line protocol (with trailing ``\\n``), tags sorted by key.

    ``time`` is in whatever precision the body is written with (the ingest uses ms).

    Raises:
        ValueError: no fields, or a name/value that line protocol cannot carry.
    """
    if not fields:
        raise ValueError("a point needs at least one field")
    parts = [escape_measurement(measurement)]
    for key in sorted(tags):
        parts.append(f",{escape_key(key)}={escape_key(tags[key])}")
    parts.append(" ")
    parts.append(",".join(f"{escape_key(k)}={format_value(v)}" for k, v in fields.items()))
    if time is not None:
        parts.append(f" {int(time)}")
    parts.append("\n")
    return "".join(parts).encode()
