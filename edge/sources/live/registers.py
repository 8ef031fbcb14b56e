"""Register-map semantics shared by the ``modbus`` and ``slmp`` sources.

Both protocols read 16-bit *words* (Modbus holding/input registers, MELSEC word devices such
as D, W, R) and single *bits* (Modbus coils/discrete inputs, MELSEC bit devices such as M,
X, Y). A value wider than 16 bits spans consecutive words; devices disagree on the order:

- ``word_order``: ``big`` = the first (lowest-address) word holds the most significant 16
  bits (Modbus convention, "ABCD"); ``little`` = the first word holds the least significant
  bits (MELSEC convention for 32-bit D registers, many Modbus devices: "CDAB").
- ``byte_order``: order of the two bytes *inside* each word as the value is assembled:
  ``big`` (normal) or ``little`` (byte-swapped devices: "BADC"/"DCBA").

Sources: Modbus Application Protocol Specification V1.1b3 §4.2 (big-endian registers);
MELSEC Communication Protocol Reference Manual (SH-080008) §3 (word units, low word first
for double words).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Final, Literal

__all__ = ["DATA_TYPES", "DataType", "Order", "decode_words", "word_count"]

DataType = Literal["bool", "int16", "uint16", "int32", "uint32", "float32", "float64"]
Order = Literal["big", "little"]

#: struct format and width in 16-bit words of each data type (``bool`` reads a bit).
DATA_TYPES: Final[dict[str, tuple[str, int]]] = {
    "int16": (">h", 1),
    "uint16": (">H", 1),
    "int32": (">i", 2),
    "uint32": (">I", 2),
    "float32": (">f", 2),
    "float64": (">d", 4),
}


def word_count(dtype: DataType) -> int:
    """Words a value of ``dtype`` occupies (``bool``: 0, it is a bit)."""
    return 0 if dtype == "bool" else DATA_TYPES[dtype][1]


def decode_words(
    words: Sequence[int],
    dtype: DataType,
    *,
    word_order: Order = "big",
    byte_order: Order = "big",
) -> float:
    """Decode ``word_count(dtype)`` unsigned 16-bit words into a number.

    Args:
        words: the words in address order, each 0..65535.
        dtype: one of :data:`DATA_TYPES` (not ``bool``).
        word_order, byte_order: see the module docstring.

    Returns:
        the value as a float (NaN/inf of a float register are returned as they are; the
        caller treats non-finite values as bad quality).

    Raises:
        ValueError: wrong number of words, a word outside 0..65535, or ``bool``.
    """
    if dtype not in DATA_TYPES:
        raise ValueError(f"cannot decode {dtype!r} from words")
    fmt, n = DATA_TYPES[dtype]
    if len(words) != n:
        raise ValueError(f"{dtype} needs {n} word(s), got {len(words)}")
    seq = list(words) if word_order == "big" else list(reversed(words))
    raw = bytearray()
    for w in seq:
        if not 0 <= w <= 0xFFFF:
            raise ValueError(f"register word {w} is outside 0..65535")
        hi, lo = w >> 8, w & 0xFF
        raw += bytes((hi, lo)) if byte_order == "big" else bytes((lo, hi))
    return float(struct.unpack(fmt, bytes(raw))[0])
