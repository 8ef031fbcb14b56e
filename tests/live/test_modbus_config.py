"""``modbus`` source config validation (key paths) and read planning/decoding (pure logic)."""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import pytest
import yaml

from renkei.edge.config import ConfigError, load_config
from renkei.edge.sources.live import Quality
from renkei.edge.sources.live.modbus.config import ModbusSourceConfig
from renkei.edge.sources.live.modbus.plan import BlockDecoder, decode_block, exception_reason, plan

REPO = Path(__file__).resolve().parents[2]


def gateway(tmp_path: Path, source: dict[str, Any]) -> Path:
    cfg = {
        "gateway_id": "gw-1",
        "firm": "acme",
        "site": "osaka",
        "state_dir": str(tmp_path / "state"),
        "machines": [{"id": "m1", "area": "a", "line": "l", "source": source}],
    }
    path = tmp_path / "gw.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def problems(tmp_path: Path, **source: Any) -> list[tuple[str, str]]:
    src = {"type": "modbus", "host": "10.0.0.5"} | source
    src.setdefault("signals", [{"name": "v", "table": "holding_register", "address": 0}])
    with pytest.raises(ConfigError) as err:
        load_config(gateway(tmp_path, src))
    return err.value.problems


def sig(**kw: Any) -> dict[str, Any]:
    return {"name": "v", "table": "holding_register", "address": 0} | kw


@pytest.mark.parametrize(
    ("source", "key", "text"),
    [
        ({"signals": [sig(table="coil", type="float32")]}, "signals[0]", "type: 'float32'"),
        ({"signals": [sig(type="bool")]}, "signals[0]", "type: 'bool'"),
        ({"signals": [sig(address=65535, type="float32")]}, "signals[0]", "runs past"),
        ({"signals": [sig(address=70000)]}, "signals[0].address", "less than or equal"),
        ({"signals": [sig(type="int64")]}, "signals[0].type", "int16"),
        ({"signals": [sig(word_order="middle")]}, "signals[0].word_order", "big"),
        ({"signals": [sig(unit_id=256)]}, "signals[0].unit_id", "255"),
        ({"signals": [sig(table="holding")]}, "signals[0].table", "holding_register"),
        ({"signals": [sig(register=3)]}, "signals[0].register", "unknown key"),
        ({"signals": []}, "signals", "at least 1"),
        ({"host": None}, "source", "host: transport 'tcp' needs"),
        ({"transport": "rtu", "host": None}, "source", "serial_port: transport 'rtu'"),
        ({"parity": "X"}, "parity", "'N', 'E' or 'O'"),
        ({"max_read_registers": 126}, "max_read_registers", "125"),
        ({"max_read_bits": 2001}, "max_read_bits", "2000"),
        ({"poll_interval_ms": 5}, "poll_interval_ms", "10"),
        ({"max_gap": -1}, "max_gap", "0"),
        (
            {"max_read_registers": 2, "signals": [sig(type="float64")]},
            "source",
            "signals[0].type: float64 spans 4",
        ),
        (
            {"transport": "rtu", "host": None, "serial_port": "/dev/ttyS0", "unit_id": 0},
            "source",
            "unit_id: RTU unit ids are 1..247",
        ),
        (
            {"signals": [sig(name="a"), sig(name="a", address=1)]},
            "signals[1].name",
            "also signals[0]",
        ),
    ],
)
def test_bad_config_names_the_key_path(
    tmp_path: Path, source: dict[str, Any], key: str, text: str
) -> None:
    found = problems(tmp_path, **source)
    path = "machines[0].source" + ("" if key == "source" else "." + key)
    assert any(p == path and text in m for p, m in found), found


def test_defaults_and_examples_load() -> None:
    cfg = ModbusSourceConfig.model_validate(
        {
            "type": "modbus",
            "host": "plc",
            "signals": [sig(), sig(name="c", table="coil")],
        }
    )
    assert (cfg.port, cfg.unit_id, cfg.poll_interval_ms, cfg.max_gap) == (502, 1, 1000, 8)
    assert [s.type for s in cfg.signals] == ["uint16", "bool"]
    assert cfg.endpoint == "tcp://plc:502"
    for name in ("modbus-imm.yaml", "modbus-rtu.yaml"):
        gw = load_config(REPO / "firmware-config" / name)
        assert gw.machines[0].source.type == "modbus"


def _cfg(signals: list[dict[str, Any]], **kw: Any) -> ModbusSourceConfig:
    return ModbusSourceConfig.model_validate(
        {"type": "modbus", "host": "plc", "signals": signals} | kw
    )


def test_plan_merges_per_unit_and_table_within_gap_and_length() -> None:
    signals = [sig(name=f"r{a}", address=a) for a in range(0, 300, 3)]  # 100 signals
    signals += [sig(name="f", address=400, type="float64")]
    signals += [sig(name=f"c{a}", table="coil", address=a) for a in range(0, 2500, 100)]
    signals += [sig(name="u7", address=0, unit_id=7)]
    blocks = plan(_cfg(signals, max_gap=100))
    shape = [(b.area.unit_id, b.area.table, b.start, b.count) for b in blocks]
    assert shape == [
        (1, "coil", 0, 2000 - 99),  # 0..1900: 20 coils, 1901 bits <= 2000
        (1, "coil", 2000, 401),
        (1, "holding_register", 0, 124),  # 0..123 (42 registers at step 3), next would be 126
        (1, "holding_register", 126, 124),
        (1, "holding_register", 252, 46),  # 252..297, then gap to 400 is 102 > 100
        (1, "holding_register", 400, 4),
        (7, "holding_register", 0, 1),
    ]
    assert sum(len(b.items) for b in blocks) == len(signals)
    assert len(plan(_cfg(signals, max_gap=0))) > len(blocks)
    assert len(plan(_cfg(signals, max_gap=100, max_read_registers=10))) > len(blocks)


def test_decode_block_is_defensive() -> None:
    signals = [
        sig(name="a", address=0),
        sig(name="f", address=1, type="float32"),
        sig(name="g", address=3, type="float32", word_order="little", byte_order="little"),
    ]
    (block,) = plan(_cfg(signals))
    # 3.0 big/big = 0x4040 0x0000 ; 3.0 little/little = 0x0000 0x4040 -> bytes swapped 0x4040
    good = decode_block(block, [7, 0x4040, 0, 0, 0x4040], 5)
    assert [(r.signal, r.value, r.quality, r.device_time, r.t_ms) for r in good] == [
        ("a", 7.0, Quality.GOOD, False, 5),
        ("f", 3.0, Quality.GOOD, False, 5),
        ("g", 3.0, Quality.GOOD, False, 5),
    ]
    short = decode_block(block, [7, 0x7F80, 0], 5)  # f = +inf, g missing
    assert [(r.signal, r.quality, r.reason) for r in short] == [
        ("a", Quality.GOOD, ""),
        ("f", Quality.BAD, "non-finite value"),
        ("g", Quality.BAD, "short response (3 of 5)"),
    ]
    assert all(math.isnan(r.value) for r in short[1:])
    weird = decode_block(block, [70000, 0, 0, 0, 0], 5)  # a word no register can hold
    assert weird[0].quality is Quality.BAD and "invalid response" in weird[0].reason
    assert exception_reason(2) == "modbus exception 2 (illegal data address)"
    assert exception_reason(99) == "modbus exception 99 (unknown)"


def test_block_decoder_matches_the_reference_decode_for_every_type_and_order() -> None:
    rng = random.Random(12)
    signals: list[dict[str, Any]] = []
    address = 0
    for dtype in ("int16", "uint16", "int32", "uint32", "float32", "float64"):
        for wo in ("big", "little"):
            for bo in ("big", "little"):
                name = f"{dtype}_{wo[0]}{bo[0]}"
                signals.append(
                    sig(name=name, address=address, type=dtype, word_order=wo, byte_order=bo)
                )
                address += 5
    signals.append(sig(name="overlap", address=1, type="float32"))
    (block,) = plan(_cfg(signals))
    decoder = BlockDecoder(block)
    for _ in range(200):
        words = [rng.randrange(65536) for _ in range(block.count)]
        fast = decoder.decode(words, 9)
        ref = decode_block(block, words, 9)
        assert [(r.signal, r.quality, r.reason) for r in fast] == [
            (r.signal, r.quality, r.reason) for r in ref
        ]
        for a, b in zip(fast, ref, strict=True):
            assert a.value == b.value or (math.isnan(a.value) and math.isnan(b.value))
    bad = decoder.decode([70000] * block.count, 9)  # falls back to the checking path
    assert all(r.quality is Quality.BAD for r in bad)
    (bits,) = plan(
        _cfg([sig(name="c0", table="coil", address=0), sig(name="c9", table="coil", address=9)])
    )
    assert [r.value for r in BlockDecoder(bits).decode([True] + [False] * 15, 1)] == [1.0, 0.0]
    assert BlockDecoder(bits).decode([True] * 8, 1)[1].reason == "short response (8 of 10)"


def _key(readings: list[Any]) -> list[tuple[Any, ...]]:
    return [
        (r.signal, r.t_ms, None if math.isnan(r.value) else r.value, r.quality, r.device_time)
        + (r.reason,)
        for r in readings
    ]


def test_columnar_decode_matches_the_reference_decode_for_every_type_and_order() -> None:
    rng = random.Random(77)
    signals: list[dict[str, Any]] = []
    address = 0
    for dtype in ("int16", "uint16", "int32", "uint32", "float32", "float64"):
        for wo in ("big", "little"):
            for bo in ("big", "little"):
                signals.append(
                    sig(name=f"{dtype}_{wo[0]}{bo[0]}", address=address, type=dtype)
                    | {"word_order": wo, "byte_order": bo}
                )
                address += 5
    signals.append(sig(name="overlap", address=1, type="float32"))
    (block,) = plan(_cfg(signals))
    names = ("unrelated", *(s["name"] for s in signals))  # positions in the driver's list
    decoder = BlockDecoder(block, names)
    specials = [0x7FC0, 0x7F80, 0xFF80, 0x7FF0, 0xFFFF, 0x8000, 0]
    for k in range(300):
        words = [
            rng.choice(specials) if k % 3 else rng.randrange(65536) for _ in range(block.count)
        ]
        if k % 7 == 0:
            words = words[: rng.randrange(block.count)]  # short response
        col = decoder.columns(words, 9)
        assert col.names is names and 0 not in col.index.tolist()
        assert _key(col.readings()) == _key(decode_block(block, words, 9))
    weird = decoder.columns([70000] + [0] * (block.count - 1), 9)  # the checking path
    assert _key(weird.readings()) == _key(decode_block(block, [70000] + [0] * (block.count - 1), 9))
    bad = decoder.bad("timeout", 4).readings()
    assert {(r.quality, r.reason, r.t_ms) for r in bad} == {(Quality.BAD, "timeout", 4)}
    assert len(bad) == len(block.items) and all(math.isnan(r.value) for r in bad)
    (bits,) = plan(
        _cfg([sig(name="c0", table="coil", address=0), sig(name="c9", table="coil", address=9)])
    )
    for values in ([True] + [False] * 15, [True] * 8, [], [False, True] * 5):
        assert _key(BlockDecoder(bits).columns(values, 1).readings()) == _key(
            decode_block(bits, values, 1)
        )
