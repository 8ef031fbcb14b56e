"""registers.decode_words against known vectors, ``struct`` and pymodbus's own conversion."""

from __future__ import annotations

import math
import struct
from typing import Any, get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pymodbus.client.mixin import ModbusClientMixin

from renkei.edge.sources.live.registers import DATA_TYPES, DataType, Order, decode_words, word_count

ORDERS: tuple[Order, ...] = get_args(Order)
NUMERIC: tuple[DataType, ...] = tuple(t for t in get_args(DataType) if t != "bool")

# (dtype, value, words in Modbus big-endian "ABCD" order)
VECTORS: list[tuple[DataType, float, list[int]]] = [
    ("int16", -2, [0xFFFE]),
    ("int16", 12345, [0x3039]),
    ("uint16", 65535, [0xFFFF]),
    ("int32", -123456789, [0xF8A4, 0x32EB]),
    ("uint32", 4_000_000_000, [0xEE6B, 0x2800]),
    ("float32", 123.456, [0x42F6, 0xE979]),
    ("float32", -1.5, [0xBFC0, 0x0000]),
    ("float64", 123456.789, [0x40FE, 0x240C, 0x9FBE, 0x76C9]),
]


def _swap(words: list[int], word_order: Order, byte_order: Order) -> list[int]:
    """The ABCD words as a device with these orders sends them."""
    out = list(words) if word_order == "big" else list(reversed(words))
    if byte_order == "little":
        out = [((w & 0xFF) << 8) | (w >> 8) for w in out]
    return out


@pytest.mark.parametrize("word_order", ORDERS)
@pytest.mark.parametrize("byte_order", ORDERS)
@pytest.mark.parametrize(("dtype", "value", "abcd"), VECTORS)
def test_known_vectors_in_every_order(
    dtype: DataType, value: float, abcd: list[int], word_order: Order, byte_order: Order
) -> None:
    words = _swap(abcd, word_order, byte_order)
    got = decode_words(words, dtype, word_order=word_order, byte_order=byte_order)
    if dtype == "float32":
        assert got == pytest.approx(value, rel=1e-7)
    else:
        assert got == value


def test_named_orders_of_one_float() -> None:
    # 0x41200000 = 10.0: ABCD, CDAB (word swap), BADC (byte swap), DCBA (both)
    assert decode_words([0x4120, 0x0000], "float32") == 10.0
    assert decode_words([0x0000, 0x4120], "float32", word_order="little") == 10.0
    assert decode_words([0x2041, 0x0000], "float32", byte_order="little") == 10.0
    assert (
        decode_words([0x0000, 0x2041], "float32", word_order="little", byte_order="little") == 10.0
    )


_PYMODBUS = {
    "int16": ModbusClientMixin.DATATYPE.INT16,
    "uint16": ModbusClientMixin.DATATYPE.UINT16,
    "int32": ModbusClientMixin.DATATYPE.INT32,
    "uint32": ModbusClientMixin.DATATYPE.UINT32,
    "float32": ModbusClientMixin.DATATYPE.FLOAT32,
    "float64": ModbusClientMixin.DATATYPE.FLOAT64,
}


@given(data=st.data())
def test_matches_struct_and_pymodbus_for_any_words(data: Any) -> None:
    dtype: DataType = data.draw(st.sampled_from(NUMERIC))
    word_order: Order = data.draw(st.sampled_from(ORDERS))
    n = word_count(dtype)
    words = data.draw(st.lists(st.integers(0, 0xFFFF), min_size=n, max_size=n))
    got = decode_words(words, dtype, word_order=word_order)
    seq = words if word_order == "big" else words[::-1]
    ref = struct.unpack(DATA_TYPES[dtype][0], b"".join(w.to_bytes(2, "big") for w in seq))[0]
    theirs = ModbusClientMixin.convert_from_registers(
        words, _PYMODBUS[dtype], word_order=word_order
    )
    assert isinstance(theirs, int | float)
    for other in (ref, theirs):
        assert (math.isnan(got) and math.isnan(other)) or got == other
    # byte order: swapping every word's bytes and decoding "little" gives the same value
    swapped = [((w & 0xFF) << 8) | (w >> 8) for w in words]
    again = decode_words(swapped, dtype, word_order=word_order, byte_order="little")
    assert (math.isnan(got) and math.isnan(again)) or got == again


@pytest.mark.parametrize("dtype", NUMERIC)
def test_round_trip_with_pymodbus_encoder(dtype: DataType) -> None:
    value: float = -7 if dtype.startswith("int") else 7
    if dtype.startswith("float"):
        value = -7.25
    for order in ORDERS:
        words = ModbusClientMixin.convert_to_registers(value, _PYMODBUS[dtype], word_order=order)
        assert decode_words(words, dtype, word_order=order) == value


def test_word_counts() -> None:
    assert {t: word_count(t) for t in get_args(DataType)} == {
        "bool": 0,
        "int16": 1,
        "uint16": 1,
        "int32": 2,
        "uint32": 2,
        "float32": 2,
        "float64": 4,
    }


def test_float_nan_and_inf_pass_through() -> None:
    assert math.isnan(decode_words([0x7FC0, 0], "float32"))
    assert decode_words([0x7F80, 0], "float32") == math.inf


@pytest.mark.parametrize(
    ("words", "dtype", "match"),
    [
        ([1], "int32", "needs 2 word"),
        ([1, 2, 3], "float32", "needs 2 word"),
        ([0x10000], "uint16", "outside 0..65535"),
        ([-1], "int16", "outside 0..65535"),
        ([1], "bool", "cannot decode 'bool'"),
        ([1], "int8", "cannot decode 'int8'"),
    ],
)
def test_bad_input_raises(words: list[int], dtype: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        decode_words(words, dtype)
