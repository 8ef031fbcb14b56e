"""MTConnect response documents -> plain data (MTConnect Standard Part 1 "Fundamentals",
Part 2 "Device Information Model", Part 3 "Observation Information Model").

Three documents come back from an agent:

- ``MTConnectDevices`` (``/probe``): the device model, read into :class:`DataItem` records
  (id, name, category, type, subType, units, holding component and device);
- ``MTConnectStreams`` (``/current``, ``/sample``): a :class:`StreamsHeader` (instanceId,
  bufferSize, firstSequence, lastSequence, nextSequence) and :class:`Observation` records
  (dataItemId, sequence, timestamp, value or condition level);
- ``MTConnectError``: raised as :class:`AgentError` with the agent's error codes
  (``OUT_OF_RANGE``, ``NO_DEVICE``, ...).

Every document is parsed by :func:`parse_xml` with a hardened lxml parser: no DTD loading,
no entity resolution, no network access, no ``huge_tree``; and a document that declares a
DTD at all (``<!DOCTYPE``: billion laughs, XXE) is refused, since MTConnect documents never
carry one. Callers bound the document size before parsing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from lxml import etree  # type: ignore[import-untyped]

from renkei.core.errors import DecodeError, TransportError

__all__ = [
    "AgentError",
    "DataItem",
    "DeviceModel",
    "DocumentError",
    "Observation",
    "Streams",
    "StreamsHeader",
    "parse_devices",
    "parse_streams",
    "parse_timestamp_ms",
    "parse_xml",
]

#: Condition levels (Part 3, "Condition"): element name -> level code.
CONDITION_LEVELS: Final = {"Normal": 0, "Warning": 1, "Fault": 2, "Unavailable": -1}
_CATEGORY_GROUPS: Final = {"Samples": "SAMPLE", "Events": "EVENT", "Condition": "CONDITION"}


class DocumentError(DecodeError):
    """A response is not a well-formed, safe MTConnect document of the expected kind."""


class AgentError(TransportError):
    """The agent answered with an ``MTConnectError`` document.

    Attributes:
        errors: ``(errorCode, text)`` pairs, e.g. ``("OUT_OF_RANGE", "'from' must be ...")``.
    """

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{c}: {t}" if t else c for c, t in errors) or "no details")

    @property
    def codes(self) -> set[str]:
        """The error codes."""
        return {c for c, _ in self.errors}


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def parse_xml(data: bytes) -> etree._Element:
    """The root element of ``data``, parsed safely (module docstring).

    Raises:
        DocumentError: not well-formed XML, or the document has a DTD (``<!DOCTYPE``).
    """
    if _prolog_has_dtd(data):
        raise DocumentError(_DTD_REFUSED)
    try:
        root = etree.fromstring(data, parser=_parser())
    except etree.XMLSyntaxError as exc:
        raise DocumentError(f"not well-formed XML: {exc}") from None
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise DocumentError(_DTD_REFUSED)
    return root


_DTD_REFUSED: Final = (
    "document declares a DTD (<!DOCTYPE>): refused (MTConnect documents have none; "
    "entity expansion and external entities are never processed)"
)


def _prolog_has_dtd(data: bytes) -> bool:
    """True if a ``<!DOCTYPE`` comes before the root element (XML 1.0 §2.8 prolog:
    declaration, comments, processing instructions, doctype)."""
    i = 0
    while True:
        j = data.find(b"<", i)
        if j < 0:
            return False
        if data.startswith(b"<?", j):
            end, skip = data.find(b"?>", j + 2), 2
        elif data.startswith(b"<!--", j):
            end, skip = data.find(b"-->", j + 4), 3
        else:
            return data.startswith(b"<!DOCTYPE", j)
        if end < 0:
            return False
        i = end + skip


def _local(el: etree._Element) -> str:
    tag = el.tag
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]


def _check_error(root: etree._Element) -> None:
    if _local(root) != "MTConnectError":
        return
    errors: list[tuple[str, str]] = []
    for el in root.iter():
        if _local(el) == "Error":
            errors.append((el.get("errorCode", "UNKNOWN"), (el.text or "").strip()[:300]))
    raise AgentError(errors[:20])


def parse_timestamp_ms(text: str) -> int | None:
    """UTC epoch ms of an MTConnect timestamp (ISO 8601, ``2010-03-04T18:44:40.123456Z``);
    ``None`` if unreadable. A timestamp without zone is UTC (Part 1, "timestamp")."""
    s = text.strip()
    if s.endswith("Z"):
        s = s[:-1] + "+00:00"
    # Python < 3.12 accepts only 3 or 6 fraction digits: pad or cut to 6
    head, dot, rest = s.partition(".")
    if dot:
        digits = "".join(c for c in rest[:20] if c.isdigit())
        zone = rest[len(digits) :]
        s = f"{head}.{(digits + '000000')[:6]}{zone}"
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        return None
    if dt.utcoffset() is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


@dataclass(frozen=True, slots=True)
class DataItem:
    """One DataItem of the device model (Part 2, "DataItem").

    ``category`` is ``SAMPLE``, ``EVENT`` or ``CONDITION``; ``type`` and ``sub_type`` are
    upper-case; ``units`` may be empty; ``component_*`` describe the holding component
    (element name such as ``Linear``, its ``id`` and ``name``).
    """

    id: str
    name: str
    category: str
    type: str
    sub_type: str
    units: str
    component: str
    component_id: str
    component_name: str
    device: str
    device_uuid: str

    def label(self) -> str:
        """``id`` with name, type and component, for messages."""
        bits = [self.type + (f"/{self.sub_type}" if self.sub_type else "")]
        if self.name:
            bits.insert(0, f"name {self.name!r}")
        where = self.component_name or self.component_id
        if where:
            bits.append(f"in {self.component} {where!r}")
        return f"{self.id!r} ({', '.join(bits)})"


@dataclass(frozen=True, slots=True)
class DeviceModel:
    """The ``/probe`` answer: the agent's instanceId and every DataItem of its devices."""

    instance_id: str
    devices: list[tuple[str, str]]
    """``(name, uuid)`` per device."""
    data_items: list[DataItem]


def parse_devices(data: bytes) -> DeviceModel:
    """Read a ``/probe`` answer.

    Raises:
        DocumentError: unsafe/broken XML or not an ``MTConnectDevices`` document.
        AgentError: the agent answered with an ``MTConnectError`` document.
    """
    root = parse_xml(data)
    _check_error(root)
    if _local(root) != "MTConnectDevices":
        raise DocumentError(f"expected MTConnectDevices, got <{_local(root)}>")
    instance = ""
    devices: list[tuple[str, str]] = []
    items: list[DataItem] = []
    for el in root:
        if _local(el) == "Header":
            instance = el.get("instanceId", "")
    for dev in root.iter():
        if _local(dev) not in ("Device", "Agent") or dev.getparent() is None:
            continue
        parent = dev.getparent()
        if parent is None or _local(parent) != "Devices":
            continue
        dname, duuid = dev.get("name", ""), dev.get("uuid", "")
        devices.append((dname, duuid))
        _walk_component(dev, dname, duuid, items)
    return DeviceModel(instance_id=instance, devices=devices, data_items=items)


def _walk_component(comp: etree._Element, dname: str, duuid: str, out: list[DataItem]) -> None:
    for child in comp:
        kind = _local(child)
        if kind == "DataItems":
            for di in child:
                if _local(di) != "DataItem" or not di.get("id"):
                    continue
                out.append(
                    DataItem(
                        id=di.get("id", ""),
                        name=di.get("name", ""),
                        category=di.get("category", "").upper(),
                        type=di.get("type", "").upper(),
                        sub_type=di.get("subType", "").upper(),
                        units=di.get("units", ""),
                        component=_local(comp),
                        component_id=comp.get("id", ""),
                        component_name=comp.get("name", ""),
                        device=dname,
                        device_uuid=duuid,
                    )
                )
        elif kind == "Components":
            for sub in child:
                if isinstance(sub.tag, str):
                    _walk_component(sub, dname, duuid, out)


@dataclass(frozen=True, slots=True)
class StreamsHeader:
    """``MTConnectStreams`` Header (Part 1, "Header"): sequences of the agent's buffer."""

    instance_id: str
    buffer_size: int
    first_sequence: int
    last_sequence: int
    next_sequence: int


@dataclass(frozen=True, slots=True)
class Observation:
    """One observation (Part 3): a Sample, Event or Condition of a DataItem.

    ``value`` is the element text (``UNAVAILABLE`` when unknown); for a CONDITION, ``level``
    is 0 normal, 1 warning, 2 fault, -1 unavailable, with ``native_code``,
    ``native_severity``, ``qualifier`` and the text in ``value``. ``t_ms`` is ``None`` if
    the timestamp is unreadable.
    """

    data_item_id: str
    sequence: int
    t_ms: int | None
    category: str
    value: str
    level: int = 0
    native_code: str = ""
    native_severity: str = ""
    qualifier: str = ""


@dataclass(frozen=True, slots=True)
class Streams:
    """A ``/current`` or ``/sample`` answer (or one part of a stream)."""

    header: StreamsHeader
    observations: list[Observation]


def _int(el: etree._Element, key: str) -> int:
    raw = el.get(key)
    if raw is None:
        raise DocumentError(f"Header has no {key}")
    try:
        return int(raw)
    except ValueError:
        raise DocumentError(f"Header {key}={raw[:40]!r} is not an integer") from None


def parse_streams(data: bytes) -> Streams:
    """Read a ``/current`` or ``/sample`` answer; observations in sequence order.

    Raises:
        DocumentError: unsafe/broken XML, not ``MTConnectStreams``, or a Header without
            its sequence numbers.
        AgentError: the agent answered with an ``MTConnectError`` document.
    """
    root = parse_xml(data)
    _check_error(root)
    if _local(root) != "MTConnectStreams":
        raise DocumentError(f"expected MTConnectStreams, got <{_local(root)}>")
    header: StreamsHeader | None = None
    obs: list[Observation] = []
    for el in root:
        if _local(el) == "Header":
            header = StreamsHeader(
                instance_id=el.get("instanceId", ""),
                buffer_size=_int(el, "bufferSize"),
                first_sequence=_int(el, "firstSequence"),
                last_sequence=_int(el, "lastSequence"),
                next_sequence=_int(el, "nextSequence"),
            )
    if header is None:
        raise DocumentError("MTConnectStreams without Header")
    for group in root.iter():
        category = _CATEGORY_GROUPS.get(_local(group))
        if category is None:
            continue
        for o in group:
            if not isinstance(o.tag, str):
                continue
            ob = _observation(o, category)
            if ob is not None:
                obs.append(ob)
    obs.sort(key=_by_sequence)
    return Streams(header=header, observations=obs)


def _observation(o: etree._Element, category: str) -> Observation | None:
    item = o.get("dataItemId")
    seq_raw = o.get("sequence")
    if not item or seq_raw is None:
        return None
    try:
        seq = int(seq_raw)
    except ValueError:
        return None
    t_ms = parse_timestamp_ms(o.get("timestamp", ""))
    text = (o.text or "").strip()[:1024]
    if category != "CONDITION":
        return Observation(item, seq, t_ms, category, text)
    level = CONDITION_LEVELS.get(_local(o))
    if level is None:
        return None
    return Observation(
        item,
        seq,
        t_ms,
        category,
        "UNAVAILABLE" if level < 0 else text,
        level=level,
        native_code=o.get("nativeCode", "")[:128],
        native_severity=o.get("nativeSeverity", "")[:64],
        qualifier=o.get("qualifier", "")[:64],
    )


def _by_sequence(o: Observation) -> int:
    return o.sequence
