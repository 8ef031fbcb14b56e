"""Unit tests of the SLMP 3E binary codec, device parsing and config validation (pure
logic, no I/O)."""

from __future__ import annotations

import struct
from typing import Any

import pytest
import yaml

from harness.services import REPO
from renkei.edge.config import ConfigError, load_config
from renkei.edge.sources.live import registers
from renkei.edge.sources.live.blocks import ReadBlock
from renkei.edge.sources.live.slmp import frames
from renkei.edge.sources.live.slmp.config import SlmpSignal, SlmpSourceConfig
from renkei.edge.sources.live.slmp.devices import parse_device
from renkei.edge.sources.live.slmp.driver import decode_block, plan

OWN = frames.Route()  # network 0, PC 0xFF, module I/O 0x03FF, station 0


# --------------------------------------------------------------------------- frames


def test_word_batch_read_request_matches_the_manual_example() -> None:
    # SH-080956ENG §5.1 "Device Read (batch)", communication example "read D100 to D102 in
    # word units", binary code, QnA-compatible 3E frame with monitoring timer 0x0010.
    expected = bytes.fromhex("5000 00 FF FF03 00 0C00 1000 0104 0000 640000 A8 0300")
    got = frames.encode_batch_read(
        OWN, device_code=0xA8, head=100, points=3, bit_units=False, monitoring_timer=0x10
    )
    assert got == expected


def test_word_batch_read_response_decodes_as_in_the_manual() -> None:
    # Same example: D100 = 0x1995, D101 = 0x1202, D102 = 0x1130, low byte first.
    response = bytes.fromhex("D000 00 FF FF03 00 0800 0000 9519 0212 3011")
    length = frames.parse_response_header(response[:9], OWN, max_len=100)
    assert length == 8
    end, data = frames.split_body(response[9:], 3, bit_units=False)
    assert end == 0
    assert frames.decode_words(data) == [0x1995, 0x1202, 0x1130]
    assert frames.encode_response(OWN, 0, data) == response


def test_bit_batch_read_request_and_response() -> None:
    # Same section, example "read M100 to M107 in bit units": one nibble per point, the
    # first point in the upper nibble.
    req = frames.encode_batch_read(
        OWN, device_code=0x90, head=100, points=8, bit_units=True, monitoring_timer=0x10
    )
    assert req == bytes.fromhex("5000 00 FF FF03 00 0C00 1000 0104 0100 640000 90 0800")
    data = bytes.fromhex("00011011")
    assert frames.decode_bits(data, 8) == [0, 0, 0, 1, 1, 0, 1, 1]
    assert frames.encode_bits([0, 0, 0, 1, 1, 0, 1, 1]) == data
    # odd point counts are padded with a zero nibble
    assert frames.encode_bits([1, 0, 1]) == b"\x10\x10"
    assert frames.decode_bits(b"\x10\x10", 3) == [1, 0, 1]


def test_request_round_trip_through_the_server_decoder() -> None:
    route = frames.Route(network=1, pc=2, module_io=0x03E0, station=5)
    req = frames.encode_batch_read(
        route, device_code=0xB0, head=0x123456, points=960, bit_units=False, monitoring_timer=8
    )
    assert frames.decode_request(req) == (route, 8, 0x0401, 0, 0x123456, 0xB0, 960)


def test_error_end_code_response_keeps_the_code() -> None:
    info = OWN.pack() + struct.pack("<HH", 0x0401, 0)
    resp = frames.encode_response(OWN, 0xC056, info)
    n = frames.parse_response_header(
        resp[:9], OWN, max_len=frames.max_response_len(1, bit_units=False)
    )
    end, data = frames.split_body(resp[9 : 9 + n], 1, bit_units=False)
    assert end == 0xC056 and data == info


@pytest.mark.parametrize(
    ("header", "match"),
    [
        (bytes.fromhex("D100 00FF FF03 00 0800"), "subheader"),
        (bytes.fromhex("D000 01FF FF03 00 0800"), "route"),
        (bytes.fromhex("D000 00FF FF03 00 FFFF"), "length 65535"),
        (bytes.fromhex("D000 00FF FF03 00 0100"), "length 1"),
        (bytes.fromhex("D000 00FF FF03 00"), "header is 7 bytes"),
    ],
)
def test_bad_headers_are_refused_before_the_body(header: bytes, match: str) -> None:
    with pytest.raises(frames.FrameError, match=match):
        frames.parse_response_header(
            header, OWN, max_len=frames.max_response_len(3, bit_units=False)
        )


def test_short_or_long_normal_data_is_refused() -> None:
    with pytest.raises(frames.FrameError, match="expected 6"):
        frames.split_body(b"\x00\x00" + b"\x01" * 5, 3, bit_units=False)
    with pytest.raises(frames.FrameError):
        frames.split_body(b"\x00", 3, bit_units=False)
    with pytest.raises(frames.FrameError):
        frames.decode_bits(b"\x11\x11", 5)


def test_request_limits() -> None:
    for points, bits in ((0, False), (961, False), (7169, True)):
        with pytest.raises(ValueError, match="points"):
            frames.encode_batch_read(
                OWN, device_code=0xA8, head=0, points=points, bit_units=bits, monitoring_timer=1
            )
    with pytest.raises(ValueError, match="3 bytes"):
        frames.encode_batch_read(
            OWN, device_code=0xA8, head=1 << 24, points=1, bit_units=False, monitoring_timer=1
        )


# --------------------------------------------------------------------------- devices


@pytest.mark.parametrize(
    ("text", "name", "code", "number", "bit", "index"),
    [
        ("D100", "D", 0xA8, 100, False, None),
        ("d100", "D", 0xA8, 100, False, None),
        ("X1F", "X", 0x9C, 0x1F, True, None),
        ("Y10", "Y", 0x9D, 0x10, True, None),
        ("B1A", "B", 0xA0, 0x1A, True, None),
        ("W100", "W", 0xB4, 0x100, False, None),
        ("M0", "M", 0x90, 0, True, None),
        ("L7", "L", 0x92, 7, True, None),
        ("SM400", "SM", 0x91, 400, True, None),
        ("SD210", "SD", 0xA9, 210, False, None),
        ("R5", "R", 0xAF, 5, False, None),
        ("ZR200", "ZR", 0xB0, 200, False, None),
        ("TN3", "TN", 0xC2, 3, False, None),
        ("CN12", "CN", 0xC5, 12, False, None),
        ("D100.3", "D", 0xA8, 100, False, 3),
        ("D100.F", "D", 0xA8, 100, False, 15),
    ],
)
def test_parse_device(
    text: str, name: str, code: int, number: int, bit: bool, index: int | None
) -> None:
    addr = parse_device(text)
    assert (addr.spec.name, addr.spec.code, addr.number, addr.spec.bit, addr.bit_index) == (
        name,
        code,
        number,
        bit,
        index,
    )
    assert parse_device(str(addr)) == addr


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("Q100", "not a MELSEC device"),
        ("D", "not a MELSEC device"),
        ("D1A", "decimal"),
        ("M0.1", "word devices only"),
        ("D16777216", "above"),
        ("D100.G", "not a MELSEC device"),
    ],
)
def test_parse_device_errors(text: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_device(text)


# --------------------------------------------------------------------------- config


def _source(**over: Any) -> dict[str, Any]:
    src: dict[str, Any] = {
        "type": "slmp",
        "host": "127.0.0.1",
        "signals": [{"name": "temp", "device": "D100"}],
    }
    src.update(over)
    return src


def _gateway(tmp_path: Any, source: dict[str, Any]) -> Any:
    cfg = {
        "gateway_id": "gw-1",
        "firm": "acme",
        "site": "osaka",
        "state_dir": str(tmp_path / "state"),
        "mqtt": {"host": "127.0.0.1", "port": 1883},
        "machines": [{"id": "plc-1", "area": "a", "line": "l", "source": source}],
    }
    path = tmp_path / "gw.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.parametrize(
    ("signal", "key", "match"),
    [
        ({"name": "a", "device": "Q1"}, "signals[0].device", "not a MELSEC device"),
        ({"name": "a", "device": "X1G"}, "signals[0].device", "not a MELSEC device"),
        ({"name": "a", "device": "M0", "type": "int16"}, "signals[0]", "bit device"),
        ({"name": "a", "device": "D0", "type": "bool"}, "signals[0]", "word device"),
        ({"name": "a", "device": "D0.1", "type": "int32"}, "signals[0]", "needs type bool"),
        ({"name": "a", "device": "D0", "type": "int64"}, "signals[0].type", ""),
        ({"name": "a", "device": "D0", "word_order": "mid"}, "signals[0].word_order", ""),
    ],
)
def test_bad_signals_name_their_key_path(
    tmp_path: Any, signal: dict[str, Any], key: str, match: str
) -> None:
    path = _gateway(tmp_path, _source(signals=[signal]))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    msg = str(err.value)
    assert f"machines[0].source.{key}" in msg, msg
    assert match in msg


def test_cross_field_checks(tmp_path: Any) -> None:
    src = _source(monitoring_timer_s=5, link={"timeout_s": 2})
    with pytest.raises(ConfigError, match="monitoring_timer_s=5.0 must be <"):
        load_config(_gateway(tmp_path, src))
    src = _source(signals=[{"name": "a", "device": "D0"}, {"name": "a", "device": "D1"}])
    with pytest.raises(ConfigError, match="also signals"):
        load_config(_gateway(tmp_path, src))
    with pytest.raises(ConfigError, match="port"):
        load_config(_gateway(tmp_path, _source(port=0)))


def test_defaults_and_monitoring_timer_units() -> None:
    cfg = SlmpSourceConfig.model_validate(_source(monitoring_timer_s=1.5))
    assert cfg.port == 5007 and cfg.pc == 0xFF and cfg.module_io == 0x03FF
    assert cfg.monitoring_timer == 6
    sig = cfg.signals[0]
    assert sig.type == "int16" and sig.word_order == "little" and sig.byte_order == "big"


# --------------------------------------------------------------------------- planning


def test_plan_merges_per_device_code_and_decodes() -> None:
    cfg = SlmpSourceConfig.model_validate(
        _source(
            max_gap=4,
            signals=[
                {"name": "a", "device": "D100"},
                {"name": "b", "device": "D102", "type": "int32"},
                {"name": "c", "device": "D200"},
                {"name": "d", "device": "D100.2", "type": "bool"},
                {"name": "m", "device": "M5", "type": "bool"},
                {"name": "n", "device": "M8", "type": "bool"},
                {"name": "z", "device": "ZR100"},
            ],
        )
    )
    blocks = plan(cfg)
    got = sorted((b.area.name, b.start, b.count) for b in blocks)
    assert got == [("D", 100, 4), ("D", 200, 1), ("M", 5, 4), ("ZR", 100, 1)]
    d100 = next(b for b in blocks if b.area.name == "D" and b.start == 100)
    words = [0x0004, 0, 0xFFFE, 0xFFFF]  # D100 = 4 (bit 2 set), D102:D103 = -2 low word first
    data = b"".join(w.to_bytes(2, "little") for w in words)
    values = {r.signal: r.value for r in decode_block(d100, data, 0)}
    assert values == {"a": 4.0, "b": -2.0, "d": 1.0}
    m = next(b for b in blocks if b.area.name == "M")
    assert isinstance(m, ReadBlock)
    values = {r.signal: r.value for r in decode_block(m, frames.encode_bits([1, 0, 0, 0]), 0)}
    assert values == {"m": 1.0, "n": 0.0}


def test_plan_respects_the_batch_limit() -> None:
    sigs = [{"name": f"s{i}", "device": f"D{i * 4}", "type": "float64"} for i in range(500)]
    cfg = SlmpSourceConfig.model_validate(_source(signals=sigs))
    blocks = plan(cfg)
    assert [b.count for b in blocks] == [960, 960, 80]
    assert SlmpSignal(name="x", device="x1f", type="bool").device == "X1F"


def test_example_gateway_config_loads() -> None:
    cfg = load_config(REPO / "firmware-config" / "slmp-melsec-imm.yaml")
    source = cfg.machines[0].source
    assert isinstance(source, SlmpSourceConfig)
    # D100..D120 (holes <= 16 bridged), D200:D201, D300, ZR1000, M100, X1F
    assert [b.count for b in plan(source)] == [21, 2, 1, 1, 1, 1]


@pytest.mark.parametrize("dtype", ["int16", "uint16"])
@pytest.mark.parametrize("byte_order", ["big", "little"])
def test_one_word_fast_path_matches_the_shared_decoder(dtype: str, byte_order: str) -> None:
    words = [0, 1, 0x7FFF, 0x8000, 0xFFFF, 0x1234, 0xFF00, 0x00FF]
    sigs = [
        {"name": f"s{i}", "device": f"D{i}", "type": dtype, "byte_order": byte_order}
        for i in range(len(words))
    ]
    cfg = SlmpSourceConfig.model_validate(_source(signals=sigs))
    (block,) = plan(cfg)
    data = b"".join(w.to_bytes(2, "little") for w in words)
    got = [r.value for r in decode_block(block, data, 0)]
    want = [
        registers.decode_words([w], dtype, byte_order=byte_order)  # type: ignore[arg-type]
        for w in words
    ]
    assert got == want
