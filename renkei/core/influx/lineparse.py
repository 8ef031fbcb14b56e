"""A parser for InfluxDB line protocol (the decoder), used by the embedded
:mod:`renkei.cloud.store.sqlite` store.

Follows the line protocol reference
(https://docs.influxdata.com/influxdb/v2/reference/syntax/line-protocol/)::

    measurement[,tag_key=tag_value...] field_key=field_value[,field_key=field_value...] [ts]

- Measurement: ``\\,`` and ``\\ `` are escapes. Tag keys, tag values, field keys: ``\\,``,
  ``\\=`` and ``\\ ``. ``\\\\`` is a literal backslash; any other backslash is literal.
- Field values: float (``1``, ``-1.5``, ``1e+16``), integer (``1i``), unsigned (``1u``),
  boolean (``t``, ``T``, ``true``, ``True``, ``TRUE``, ``f``, ``F``, ``false``,
  ``False``, ``FALSE``) or double-quoted string (``\\"`` and ``\\\\`` escaped; may contain
  newlines). NaN and infinities are not line protocol.
- Timestamp: optional signed integer in the body's precision; converted to ns.
- Lines are separated by ``\\n`` (a trailing ``\\r`` is ignored); empty lines and lines
  starting with ``#`` are skipped.

Lines without ``"`` or ``\\`` (everything the ingest writes for machine data) take a fast
path built on ``str.split``; the others go through a character scanner.
"""

from __future__ import annotations

import re
from typing import Final, NamedTuple

from renkei.core.errors import DecodeError
from renkei.core.influx.lineproto import FieldValue

__all__ = ["PRECISION_NS", "LineParseError", "ParsedPoint", "parse_lines"]

#: Nanoseconds per unit of each ``precision`` accepted by InfluxDB's ``/write``.
PRECISION_NS: Final[dict[str, int]] = {
    "ns": 1,
    "n": 1,
    "u": 1_000,
    "us": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}

_FLOAT_RE: Final = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_INT_RE: Final = re.compile(r"[-+]?\d+")
_TRUE: Final = frozenset({"t", "T", "true", "True", "TRUE"})
_FALSE: Final = frozenset({"f", "F", "false", "False", "FALSE"})
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1
_UINT_MAX: Final = 2**64 - 1
# InfluxDB's valid time range (ns), see models.MinNanoTime/MaxNanoTime.
_MIN_NS, _MAX_NS = -9_223_372_036_854_775_806, 9_223_372_036_854_775_806


class LineParseError(DecodeError):
    """A body is not valid InfluxDB line protocol (a :class:`~renkei.core.errors.DecodeError`,
    so also a ``ValueError``).

    The embedded store re-raises it as :class:`renkei.cloud._exceptions.LineProtocolError`
    (a ``StoreRejected``), as InfluxDB answers such a body with HTTP 400.

    Attributes:
        line_no: 1-based line number of the offending line within the body (0: the body
            as a whole, e.g. not UTF-8).
    """

    def __init__(self, message: str, *, line_no: int = 0) -> None:
        super().__init__(message)
        self.line_no = line_no


class ParsedPoint(NamedTuple):
    """One parsed point: tags sorted by key, fields in line order, time in ns (or None)."""

    measurement: str
    tags: tuple[tuple[str, str], ...]
    fields: dict[str, FieldValue]
    time_ns: int | None


def parse_lines(body: bytes | str, *, precision: str = "ns") -> list[ParsedPoint]:
    """Parse a line-protocol body.

    Args:
        body: UTF-8 bytes or text.
        precision: unit of the timestamps (``ns``, ``u``/``us``, ``ms``, ``s``, ``m``,
            ``h``); they are converted to nanoseconds.

    Raises:
        LineParseError: invalid UTF-8, syntax error, bad value, or time out of range;
            ``line_no`` tells which line (the whole body is refused).
    """
    try:
        scale = PRECISION_NS[precision]
    except KeyError:
        raise LineParseError(f"unknown precision {precision!r}") from None
    if isinstance(body, bytes | bytearray | memoryview):
        try:
            text = bytes(body).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise LineParseError(f"body is not UTF-8: {exc}") from None
    else:
        text = body
    points: list[ParsedPoint] = []
    if '"' not in text:
        for no, line in enumerate(text.split("\n"), 1):
            _parse_line(line, no, scale, points)
        return points
    # Strings may contain newlines: split into logical lines with a quote-aware scan.
    for no, line in enumerate(_logical_lines(text), 1):
        _parse_line(line, no, scale, points)
    return points


def _logical_lines(text: str) -> list[str]:
    lines: list[str] = []
    start = 0
    i = 0
    n = len(text)
    in_str = False
    # Only a quote in field-value position opens a string; before the first unescaped
    # space (measurement and tags) a quote is a plain character.
    spaces = 0
    after_eq = False  # previous character was an unescaped '='
    while i < n:
        ch = text[i]
        if ch == "\\":
            i += 2
            after_eq = False
            continue
        if in_str:
            if ch == '"':
                in_str = False
        elif ch == "\n":
            lines.append(text[start:i])
            start = i + 1
            spaces = 0
        elif ch == " ":
            spaces += 1
        elif ch == '"' and spaces >= 1 and after_eq:
            in_str = True
        after_eq = ch == "=" and not in_str
        i += 1
    lines.append(text[start:])
    return lines


def _parse_line(line: str, no: int, scale: int, out: list[ParsedPoint]) -> None:
    if line.endswith("\r"):
        line = line[:-1]
    stripped = line.lstrip(" \t")
    if not stripped or stripped.startswith("#"):
        return
    if "\\" in line or '"' in line:
        out.append(_Scanner(line, no, scale).point())
        return
    parts = line.split(" ")
    if len(parts) == 2:
        key, fields_txt = parts
        time_txt = None
    elif len(parts) == 3:
        key, fields_txt, time_txt = parts
    else:
        raise LineParseError(
            f"line {no}: expected 2 or 3 space-separated parts: {line!r}", line_no=no
        )
    meas, *tag_parts = key.split(",")
    if not meas:
        raise LineParseError(f"line {no}: missing measurement", line_no=no)
    tags: dict[str, str] = {}
    for tp in tag_parts:
        k, eq, v = tp.partition("=")
        if not eq or not k or not v or "=" in v:
            raise LineParseError(f"line {no}: bad tag {tp!r}", line_no=no)
        if k in tags:
            raise LineParseError(f"line {no}: duplicate tag {k!r}", line_no=no)
        tags[k] = v
    fields: dict[str, FieldValue] = {}
    for fp in fields_txt.split(","):
        k, eq, v = fp.partition("=")
        if not eq or not k or "=" in v:
            raise LineParseError(f"line {no}: bad field {fp!r}", line_no=no)
        fields[k] = _value(v, no)
    out.append(ParsedPoint(meas, tuple(sorted(tags.items())), fields, _time(time_txt, no, scale)))


def _value(txt: str, no: int) -> FieldValue:
    if not txt:
        raise LineParseError(f"line {no}: missing field value", line_no=no)
    last = txt[-1]
    if last == "i" or last == "u":
        num = txt[:-1]
        if not _INT_RE.fullmatch(num):
            raise LineParseError(f"line {no}: bad integer {txt!r}", line_no=no)
        value = int(num)
        lo, hi = (_INT_MIN, _INT_MAX) if last == "i" else (0, _UINT_MAX)
        if not lo <= value <= hi:
            raise LineParseError(f"line {no}: integer {txt!r} out of range", line_no=no)
        return value
    if txt in _TRUE:
        return True
    if txt in _FALSE:
        return False
    if not _FLOAT_RE.fullmatch(txt):
        raise LineParseError(f"line {no}: bad field value {txt!r}", line_no=no)
    value_f = float(txt)
    if value_f in (float("inf"), float("-inf")):
        raise LineParseError(f"line {no}: float {txt!r} out of range", line_no=no)
    return value_f


def _time(txt: str | None, no: int, scale: int) -> int | None:
    if txt is None:
        return None
    if not _INT_RE.fullmatch(txt):
        raise LineParseError(f"line {no}: bad timestamp {txt!r}", line_no=no)
    ns = int(txt) * scale
    if not _MIN_NS <= ns <= _MAX_NS:
        raise LineParseError(f"line {no}: time {txt} outside the supported range", line_no=no)
    return ns


class _Scanner:
    """Character scanner for lines with escapes or string fields."""

    def __init__(self, line: str, no: int, scale: int) -> None:
        self.s = line
        self.i = 0
        self.no = no
        self.scale = scale

    def fail(self, what: str) -> LineParseError:
        return LineParseError(f"line {self.no}: {what}: {self.s!r}", line_no=self.no)

    def token(self, stops: str, escapable: str) -> str:
        """Read until an unescaped char of ``stops``; unescape ``\\`` + ``escapable``."""
        s, n = self.s, len(self.s)
        out: list[str] = []
        i = self.i
        while i < n:
            ch = s[i]
            if ch == "\\" and i + 1 < n:
                nxt = s[i + 1]
                if nxt in escapable or nxt == "\\":
                    out.append(nxt)
                    i += 2
                    continue
                out.append(ch)
                i += 1
                continue
            if ch in stops:
                break
            out.append(ch)
            i += 1
        self.i = i
        return "".join(out)

    def peek(self) -> str:
        return self.s[self.i] if self.i < len(self.s) else ""

    def point(self) -> ParsedPoint:
        meas = self.token(", ", ", ")
        if not meas:
            raise self.fail("missing measurement")
        tags: dict[str, str] = {}
        while self.peek() == ",":
            self.i += 1
            key = self.token("=, ", ",= ")
            if self.peek() != "=" or not key:
                raise self.fail("bad tag key")
            self.i += 1
            value = self.token(", =", ",= ")
            if not value or self.peek() == "=":
                raise self.fail(f"bad value for tag {key!r}")
            if key in tags:
                raise self.fail(f"duplicate tag {key!r}")
            tags[key] = value
        if self.peek() != " ":
            raise self.fail("missing fields")
        self.i += 1
        fields: dict[str, FieldValue] = {}
        while True:
            key = self.token("=, ", ",= ")
            if self.peek() != "=" or not key:
                raise self.fail("bad field key")
            self.i += 1
            if self.peek() == '"':
                fields[key] = self.string()
            else:
                start = self.i
                while self.i < len(self.s) and self.s[self.i] not in ", ":
                    self.i += 1
                fields[key] = _value(self.s[start : self.i], self.no)
            if self.peek() == ",":
                self.i += 1
                continue
            break
        time_ns = None
        if self.peek() == " ":
            self.i += 1
            time_ns = _time(self.s[self.i :], self.no, self.scale)
            self.i = len(self.s)
        if self.i != len(self.s):
            raise self.fail("trailing characters")
        return ParsedPoint(meas, tuple(sorted(tags.items())), fields, time_ns)

    def string(self) -> str:
        s, n = self.s, len(self.s)
        i = self.i + 1
        out: list[str] = []
        while i < n:
            ch = s[i]
            if ch == "\\" and i + 1 < n and s[i + 1] in '"\\':
                out.append(s[i + 1])
                i += 2
                continue
            if ch == '"':
                self.i = i + 1
                return "".join(out)
            out.append(ch)
            i += 1
        raise self.fail("unterminated string")
