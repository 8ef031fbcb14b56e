"""Sparkplug B payloads (Sparkplug 3.0.0 §6.4) through the ``pysparkplug`` library.

Decoding is tolerant per metric: a BIRTH with a Template or DataSet metric (which
``pysparkplug`` does not decode) still yields its numeric metrics, so the protobuf message
is parsed with the library's generated Tahu ``Payload`` class and each metric's value is
converted with :class:`pysparkplug.DataType` (two's-complement Int8..Int64 in the unsigned
protobuf fields, §6.4.17). Encoding (the rebirth NCMD, and the test Edge Node) uses the
library's public payload classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import pysparkplug as spb
from pysparkplug import _protobuf as spb_pb

from renkei.core.errors import DecodeError

__all__ = [
    "BD_SEQ_METRIC",
    "NUMERIC_TYPES",
    "REBIRTH_METRIC",
    "MalformedPayload",
    "SpbMetric",
    "SpbPayload",
    "decode_payload",
    "encode_rebirth",
    "metric_value",
    "type_name",
]

#: The NCMD metric that asks an Edge Node to publish its births again (§5.17, §6.4.23).
REBIRTH_METRIC: Final = "Node Control/Rebirth"

#: The bdSeq metric of NBIRTH and NDEATH (§6.4.19, §6.4.25).
BD_SEQ_METRIC: Final = "bdSeq"

#: Datatypes read as numbers (§6.4.16); all others are not signals.
NUMERIC_TYPES: Final = frozenset(
    {
        spb.DataType.INT8,
        spb.DataType.INT16,
        spb.DataType.INT32,
        spb.DataType.INT64,
        spb.DataType.UINT8,
        spb.DataType.UINT16,
        spb.DataType.UINT32,
        spb.DataType.UINT64,
        spb.DataType.FLOAT,
        spb.DataType.DOUBLE,
        spb.DataType.BOOLEAN,
    }
)


class MalformedPayload(DecodeError):
    """The bytes are not a Sparkplug B payload (protobuf error, missing field, wrong type)."""


@dataclass(frozen=True, slots=True)
class SpbMetric:
    """One metric as received (§6.4.6).

    Attributes:
        name: the name, or ``None`` when only the alias is sent (DATA after a BIRTH).
        alias: the alias, or ``None``.
        timestamp: UTC epoch ms of the metric, or ``None``.
        datatype: the declared datatype (§6.4.16; 0 = not sent, as usual in DATA).
        raw: the protobuf ``value`` oneof content, or ``None`` (no value / ``is_null``).
        is_null: the edge node says the metric has no value (§6.4.6 ``is_null``).
        is_historical: historical data that must not update the live value.
    """

    name: str | None
    alias: int | None
    timestamp: int | None
    datatype: int
    raw: Any
    is_null: bool
    is_historical: bool


@dataclass(frozen=True, slots=True)
class SpbPayload:
    """A decoded payload (§6.4.5): ``timestamp`` (UTC epoch ms or ``None``), ``seq``
    (0..255 or ``None``), ``metrics``."""

    timestamp: int | None
    seq: int | None
    metrics: tuple[SpbMetric, ...]


def decode_payload(raw: bytes) -> SpbPayload:
    """Parse a Sparkplug B payload.

    Raises:
        MalformedPayload: not a protobuf ``Payload``, or ``seq`` outside 0..255.
    """
    try:
        pb = spb_pb.Payload.FromString(raw)
    except Exception as exc:  # google.protobuf.message.DecodeError and kin (untyped module)
        raise MalformedPayload(f"not a Sparkplug B payload ({type(exc).__name__})") from None
    seq = int(pb.seq) if pb.HasField("seq") else None
    if seq is not None and not 0 <= seq <= 255:
        raise MalformedPayload(f"seq {seq} outside 0..255")
    metrics = []
    for m in pb.metrics:
        field = m.WhichOneof("value")
        metrics.append(
            SpbMetric(
                name=m.name if m.HasField("name") else None,
                alias=int(m.alias) if m.HasField("alias") else None,
                timestamp=int(m.timestamp) if m.HasField("timestamp") else None,
                datatype=int(m.datatype),
                raw=getattr(m, field) if field is not None else None,
                is_null=bool(m.is_null),
                is_historical=bool(m.is_historical),
            )
        )
    return SpbPayload(
        timestamp=int(pb.timestamp) if pb.HasField("timestamp") else None,
        seq=seq,
        metrics=tuple(metrics),
    )


def metric_value(datatype: int, raw: Any) -> float | None:
    """The metric's value as a float (Boolean 0.0/1.0), or ``None`` if ``raw`` is missing or
    ``datatype`` is not one of :data:`NUMERIC_TYPES` or the value does not fit it."""
    if raw is None or datatype not in NUMERIC_TYPES:
        return None
    try:
        value = spb.DataType(datatype).decode(raw)
    except (ValueError, TypeError, OverflowError, NotImplementedError):
        return None
    if isinstance(value, bool | int | float):
        return float(value)
    return None


#: Datatype names of §6.4.16 that ``pysparkplug.DataType`` (0.3) does not list.
_MORE_TYPES: Final = dict(
    enumerate(
        (
            "DataSet", "Bytes", "File", "Template", "PropertySet", "PropertySetList",
            "Int8Array", "Int16Array", "Int32Array", "Int64Array", "UInt8Array", "UInt16Array",
            "UInt32Array", "UInt64Array", "FloatArray", "DoubleArray", "BooleanArray",
            "StringArray", "DateTimeArray",
        ),
        start=16,
    )
)  # fmt: skip


def type_name(datatype: int) -> str:
    """The Sparkplug name of a datatype number (``String``, ``DataSet``...)."""
    if datatype in _MORE_TYPES:
        return _MORE_TYPES[datatype]
    try:
        return spb.DataType(datatype).name.title().replace("_", "")
    except ValueError:
        return f"datatype {datatype}"


def encode_rebirth(timestamp_ms: int) -> bytes:
    """An NCMD payload asking for a rebirth: metric ``Node Control/Rebirth`` = true (Boolean),
    §6.4.23; NCMD carries no ``seq``."""
    metric = spb.Metric(
        timestamp=timestamp_ms,
        name=REBIRTH_METRIC,
        datatype=spb.DataType.BOOLEAN,
        value=True,
    )
    return spb.NCmd(timestamp=timestamp_ms, metrics=(metric,)).encode(include_dtypes=True)
