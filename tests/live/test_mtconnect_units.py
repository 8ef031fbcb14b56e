"""Pure logic of the ``mtconnect`` source: config validation, the hardened XML parser,
the multipart reader, signal resolution and condition tracking (no network)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from harness.live.mtconnect_agent import BOMB, XXE
from renkei.edge.sources.live.base import Quality
from renkei.edge.sources.live.mtconnect.config import MtconnectSignal, MtconnectSourceConfig
from renkei.edge.sources.live.mtconnect.mapping import Decoder, MappingError, resolve
from renkei.edge.sources.live.mtconnect.multipart import (
    MultipartError,
    PartReader,
    PartTooLarge,
    boundary_of,
)
from renkei.edge.sources.live.mtconnect.parse import (
    AgentError,
    DocumentError,
    Observation,
    parse_devices,
    parse_streams,
    parse_timestamp_ms,
    parse_xml,
)
from tests.datasets import require_data_dir


def _cfg(**kw: Any) -> MtconnectSourceConfig:
    base: dict[str, Any] = {
        "type": "mtconnect",
        "url": "http://127.0.0.1:5000",
        "signals": [{"name": "x", "data_item": "x2"}],
    }
    base.update(kw)
    return MtconnectSourceConfig.model_validate(base)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"url": "ftp://h/"}, "must start with http:// or https://"),
        ({"url": "http://h:5000/?x=1"}, "without '?query'"),
        ({"url": "http://u:p@h:5000"}, "must not carry a user or password"),
        ({"ca_file": "/tmp/ca.pem"}, "'ca_file' needs an https:// url"),
        ({"mode": "push"}, "'stream' or 'poll'"),
        ({"signals": []}, "at least 1 item"),
        ({"signals": [{"name": "x"}]}, "give exactly one of 'data_item'"),
        ({"signals": [{"name": "x", "data_item": "a", "type": "LOAD"}]}, "exactly one of"),
        ({"signals": [{"name": "x", "data_item": "a", "sub_type": "ACTUAL"}]}, "'sub_type' needs"),
        ({"signals": [{"name": "x", "data_item": "a/b"}]}, "String should match pattern"),
        ({"signals": [{"name": "x", "data_item": "a", "states": {"ON": "nan"}}]}, "finite"),
        ({"max_document_bytes": 10}, "greater than or equal to 16384"),
    ],
)
def test_config_errors_are_clear(kw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as info:
        _cfg(**kw)
    assert message in str(info.value)


def test_config_defaults_and_normalisation() -> None:
    cfg = _cfg(
        url="https://agent.local:5000/mt/",
        ca_file="/etc/ssl/ca.pem",
        signals=[{"name": "y", "type": "position", "sub_type": "actual", "component": "Y"}],
    )
    assert cfg.url == "https://agent.local:5000/mt"
    assert cfg.mode == "stream" and cfg.count == 1000 and cfg.conditions == "all"
    assert cfg.signals[0].type == "POSITION" and cfg.signals[0].sub_type == "ACTUAL"


def test_gateway_config_names_the_key_path(tmp_path: Path) -> None:
    from renkei.edge.config import ConfigError, load_config

    text = (
        Path(__file__).resolve().parents[2] / "firmware-config" / "mtconnect-vmc.yaml"
    ).read_text()
    path = tmp_path / "gw.yaml"
    path.write_text(text.replace("data_item: Sspeed", "sub_type: ACTUAL"))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "machines[0].source.signals[1]" in str(info.value)


# ------------------------------------------------------------------- XML safety


@pytest.mark.parametrize("doc", [BOMB, XXE], ids=["billion-laughs", "xxe"])
def test_dtd_documents_are_refused_fast(doc: bytes) -> None:
    t0 = time.monotonic()
    with pytest.raises(DocumentError, match="declares a DTD"):
        parse_streams(doc)
    assert time.monotonic() - t0 < 0.5


def test_dtd_after_comments_is_still_refused() -> None:
    doc = b'<?xml version="1.0"?><!-- hi --><?pi x?>\n' + XXE.split(b"?>", 1)[1]
    with pytest.raises(DocumentError, match="declares a DTD"):
        parse_xml(doc)


def test_broken_and_foreign_documents() -> None:
    with pytest.raises(DocumentError, match="not well-formed"):
        parse_streams(b"<MTConnectStreams><Header")
    with pytest.raises(DocumentError, match="expected MTConnectStreams"):
        parse_streams(b"<html/>")
    with pytest.raises(DocumentError, match="Header has no firstSequence"):
        parse_streams(
            b'<MTConnectStreams><Header instanceId="1" bufferSize="2"/></MTConnectStreams>'
        )


def test_error_document_is_raised_as_agent_error() -> None:
    doc = (
        b'<MTConnectError xmlns="urn:mtconnect.org:MTConnectError:2.0"><Header instanceId="1"/>'
        b'<Errors><Error errorCode="OUT_OF_RANGE">too old</Error></Errors></MTConnectError>'
    )
    with pytest.raises(AgentError) as info:
        parse_streams(doc)
    assert info.value.codes == {"OUT_OF_RANGE"} and "too old" in str(info.value)


def test_timestamps() -> None:
    assert parse_timestamp_ms("1970-01-01T00:00:01.5Z") == 1500
    assert parse_timestamp_ms("1970-01-01T00:00:01.123456789Z") == 1123
    assert parse_timestamp_ms("1970-01-01T00:00:02") == 2000
    assert parse_timestamp_ms("1970-01-01T09:00:00+09:00") == 0
    assert parse_timestamp_ms("yesterday") is None


def test_streams_document() -> None:
    doc = b"""<MTConnectStreams xmlns="urn:mtconnect.org:MTConnectStreams:1.3">
    <Header instanceId="7" bufferSize="16" firstSequence="3" lastSequence="9" nextSequence="10"/>
    <Streams><DeviceStream name="d" uuid="u"><ComponentStream component="Linear" componentId="x1">
    <Samples><Position dataItemId="x2" sequence="5" timestamp="1970-01-01T00:00:01Z">1.5</Position>
    </Samples>
    <Condition><Fault dataItemId="s" sequence="4" timestamp="1970-01-01T00:00:00Z" nativeCode="E1"
      qualifier="HIGH" type="SYSTEM">Boom</Fault></Condition>
    </ComponentStream></DeviceStream></Streams></MTConnectStreams>"""
    s = parse_streams(doc)
    assert (s.header.instance_id, s.header.first_sequence, s.header.next_sequence) == ("7", 3, 10)
    assert [o.sequence for o in s.observations] == [4, 5]
    fault, pos = s.observations
    assert (fault.level, fault.native_code, fault.qualifier, fault.value) == (
        2,
        "E1",
        "HIGH",
        "Boom",
    )
    assert (pos.value, pos.t_ms, pos.category) == ("1.5", 1000, "SAMPLE")


# ------------------------------------------------------------------- multipart


def _stream(parts: list[bytes], boundary: str = "B", length: bool = True) -> bytes:
    out = b""
    for p in parts:
        head = f"--{boundary}\r\nContent-type: text/xml\r\n"
        if length:
            head += f"Content-length: {len(p)}\r\n"
        out += head.encode() + b"\r\n" + p + b"\r\n"
    return out


@pytest.mark.parametrize("length", [True, False])
@pytest.mark.parametrize("chunk", [1, 7, 1000])
def test_part_reader_splits_across_any_chunking(length: bool, chunk: int) -> None:
    parts = [b"<a>one</a>", b"<b>two\r\n</b>", b""]
    data = _stream(parts, length=length) + b"--B\r\n"  # the next part's start
    reader = PartReader("B", max_part=1000)
    got: list[bytes] = []
    for i in range(0, len(data), chunk):
        got += reader.feed(data[i : i + chunk])
    if not length:
        parts = [p.rstrip(b"\r\n") for p in parts]
    assert got == parts


def test_part_reader_refuses_oversize_parts_early() -> None:
    reader = PartReader("B", max_part=100)
    with pytest.raises(PartTooLarge, match="5000000 bytes"):
        list(reader.feed(b"--B\r\nContent-length: 5000000\r\n\r\n<x"))
    reader = PartReader("B", max_part=100)
    assert not list(reader.feed(b"--B\r\n\r\n"))  # no Content-length: scan for the end
    assert not list(reader.feed(b"x" * 60))
    with pytest.raises(PartTooLarge, match="no Content-length"):
        list(reader.feed(b"x" * 60))
    assert reader.buffered < 300


def test_part_reader_bounds_garbage_and_headers() -> None:
    reader = PartReader("B", max_part=100)
    for _ in range(1000):
        assert not list(reader.feed(b"garbage without a boundary " * 10))
    assert reader.buffered < 10
    with pytest.raises(MultipartError, match="headers longer"):
        list(reader.feed(b"--B\r\n" + b"X-Long: y\r\n" * 1000))


def test_boundary_of() -> None:
    assert boundary_of('multipart/x-mixed-replace; boundary="abc"') == "abc"
    with pytest.raises(MultipartError, match="expected a multipart"):
        boundary_of("text/xml")


# ------------------------------------------------------------------- mapping


@pytest.fixture
def vmc_items() -> Any:
    path = require_data_dir() / "mtconnect" / "simulator" / "VMC-3Axis.xml"
    return parse_devices(path.read_bytes()).data_items


def test_device_model_of_the_reference_vmc(vmc_items: Any) -> None:
    assert len(vmc_items) == 44
    cats = [i.category for i in vmc_items]
    assert (cats.count("SAMPLE"), cats.count("EVENT"), cats.count("CONDITION")) == (15, 11, 18)
    x2 = next(i for i in vmc_items if i.id == "x2")
    assert (x2.name, x2.units, x2.component, x2.component_name) == (
        "Xact",
        "MILLIMETER",
        "Linear",
        "X",
    )


def test_demo_devices_with_two_devices_parse() -> None:
    path = require_data_dir() / "mtconnect" / "demo" / "agent" / "Devices.xml"
    model = parse_devices(path.read_bytes())
    assert {n for n, _ in model.devices} >= {"OKUMA", "Mazak"}
    assert len(model.data_items) >= 216


def test_resolve_by_id_name_type_and_component(vmc_items: Any) -> None:
    sigs = [
        MtconnectSignal(name="a", data_item="x2"),
        MtconnectSignal(name="b", data_item="Sspeed"),
        MtconnectSignal(name="c", type="POSITION", sub_type="ACTUAL", component="z1"),
        MtconnectSignal(name="d", type="PATH_FEEDRATE", component="path", data_item=None),
    ]
    with pytest.raises(MappingError, match="'d': type PATH_FEEDRATE in component 'path' matches 2"):
        resolve(sigs, vmc_items)
    got = resolve(sigs[:3], vmc_items)
    assert {k: v.id for k, v in got.items()} == {"a": "x2", "b": "c2", "c": "z2"}


def test_condition_tracking_and_values(vmc_items: Any) -> None:
    sigs = [
        MtconnectSignal(name="sys", data_item="system"),
        MtconnectSignal(name="ex", data_item="execution", states={"ACTIVE": 1}),
    ]
    mapping = resolve(sigs, vmc_items)
    conds = [i for i in vmc_items if i.category == "CONDITION"]
    dec = Decoder(mapping, sigs, conds)

    def cond(seq: int, level: int, code: str = "") -> Observation:
        return Observation(
            "system", seq, 1000 + seq, "CONDITION", "t", level=level, native_code=code
        )

    r, e = dec.decode([cond(1, 0)], initial=True)
    assert [x.value for x in r] == [0.0] and not e, "a normal condition at start is no news"
    r, e = dec.decode([cond(2, 1, "A"), cond(3, 2, "B"), cond(4, 0, "B"), cond(5, 0)])
    assert [x.value for x in r] == [1.0, 2.0, 1.0, 0.0]
    assert [x.code for x in e] == [
        "condition_warning",
        "condition_fault",
        "condition_normal",
        "condition_normal",
    ]
    r, e = dec.decode([cond(6, -1), cond(7, 0)])
    assert r[0].quality is Quality.BAD and r[0].reason == "UNAVAILABLE" and not e
    r, _ = dec.decode(
        [
            Observation("cn6", 8, 9, "EVENT", "ACTIVE"),
            Observation("cn6", 9, 9, "EVENT", "FEED_HOLD"),
            Observation("cn6", 10, None, "EVENT", "UNAVAILABLE"),
        ]
    )
    assert r[0].value == 1.0 and r[1].reason == "unmapped state"
    assert r[2].reason == "UNAVAILABLE" and not r[2].device_time
