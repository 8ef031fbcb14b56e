"""Read plan of a ``modbus`` source and decoding of its responses (pure logic, no I/O).

:func:`plan` groups the signals of each (unit id, table) into the fewest read requests
(:func:`edge.sources.live.blocks.plan_reads`). :class:`BlockDecoder` turns one response
(registers or bits) into :class:`~edge.sources.live.base.Reading` objects, defensively: a
response shorter than the request, a word outside 0..65535 or a non-finite float becomes a
``BAD`` reading, never an exception.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Final

from edge.sources.live.base import Quality, Reading
from edge.sources.live.blocks import Item, ReadBlock, plan_reads
from edge.sources.live.modbus.config import BIT_TABLES, ModbusSignal, ModbusSourceConfig, Table
from edge.sources.live.registers import DATA_TYPES, decode_words

__all__ = [
    "EXCEPTION_NAMES",
    "Area",
    "Block",
    "BlockDecoder",
    "decode_block",
    "exception_reason",
    "plan",
]

#: Modbus exception codes (Application Protocol Specification V1.1b3 §7).
EXCEPTION_NAMES: Final[dict[int, str]] = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "server device failure",
    5: "acknowledge",
    6: "server device busy",
    7: "negative acknowledge",
    8: "memory parity error",
    10: "gateway path unavailable",
    11: "gateway target device failed to respond",
}


@dataclass(frozen=True, slots=True)
class Area:
    """What one request addresses: a unit id and a table."""

    unit_id: int
    table: Table

    @property
    def bits(self) -> bool:
        """True for coils and discrete inputs."""
        return self.table in BIT_TABLES


Block = ReadBlock[Area, ModbusSignal]

_GOOD: Final = Quality.GOOD


def plan(config: ModbusSourceConfig) -> list[Block]:
    """The read requests of one poll, ordered by (unit id, table) then address."""
    items = [
        Item(
            Area(config.unit_id if s.unit_id is None else s.unit_id, s.table),
            s.address,
            s.width,
            s,
        )
        for s in config.signals
    ]
    bits = [i for i in items if i.area.bits]
    regs = [i for i in items if not i.area.bits]
    blocks = plan_reads(regs, max_len=config.max_read_registers, max_gap=config.max_gap)
    blocks += plan_reads(bits, max_len=config.max_read_bits, max_gap=config.max_gap)
    blocks.sort(key=lambda b: (b.area.unit_id, b.area.table, b.start))
    return blocks


def exception_reason(code: int) -> str:
    """``modbus exception 2 (illegal data address)``."""
    return f"modbus exception {code} ({EXCEPTION_NAMES.get(code, 'unknown')})"


class BlockDecoder:
    """Decodes the responses of one :class:`Block` (precomputed once per block: a struct
    and a byte order per signal, so a poll costs one ``struct`` call per value).

    Semantics are those of :func:`edge.sources.live.registers.decode_words` (the slow,
    checking path it falls back to when a response holds a word outside 0..65535).
    """

    def __init__(self, block: Block) -> None:
        self.block = block
        self._items: list[tuple[str, int, int, struct.Struct | None, Callable[..., Any] | None]]
        self._items = []
        for item in block.items:
            sig = item.ref
            off = block.offset(item)
            if block.area.bits:
                self._items.append((sig.name, off, 1, None, None))
                continue
            fmt, width = DATA_TYPES[sig.dtype]
            perm: Callable[..., Any] | None = None
            if sig.word_order != "big" or sig.byte_order != "big":
                words = range(width) if sig.word_order == "big" else range(width - 1, -1, -1)
                idx: list[int] = []
                for w in words:
                    hi, lo = 2 * (off + w), 2 * (off + w) + 1
                    idx += [hi, lo] if sig.byte_order == "big" else [lo, hi]
                perm = itemgetter(*idx)
            self._items.append((sig.name, off, width, struct.Struct(fmt), perm))

    def decode(self, values: Sequence[int] | Sequence[bool], t_ms: int) -> list[Reading]:
        """Readings of the block's signals from a response's ``registers`` (or ``bits``).

        ``values`` may be longer than the block (bit responses are padded to whole bytes);
        signals it does not cover are ``BAD`` (``short response``); a non-finite float is
        ``BAD`` (``non-finite value``). All readings carry the gateway time ``t_ms``
        (``device_time=False``).
        """
        n = len(values)
        out: list[Reading] = []
        if self.block.area.bits:
            for name, off, _, _, _ in self._items:
                if off < n:
                    out.append(Reading(name, t_ms, 1.0 if values[off] else 0.0, _GOOD, False))
                else:
                    out.append(_bad(name, t_ms, f"short response ({n} of {self.block.count})"))
            return out
        try:
            raw = struct.pack(f">{n}H", *values)
        except (struct.error, TypeError):
            return decode_block(self.block, values, t_ms)
        for name, off, width, st, perm in self._items:
            if off + width > n:
                out.append(_bad(name, t_ms, f"short response ({n} of {self.block.count})"))
                continue
            assert st is not None
            v = float(
                st.unpack_from(raw, 2 * off)[0] if perm is None else st.unpack(bytes(perm(raw)))[0]
            )
            if v - v != 0.0:  # NaN or ±inf
                out.append(_bad(name, t_ms, "non-finite value"))
            else:
                out.append(Reading(name, t_ms, v, _GOOD, False))
        return out


def decode_block(block: Block, values: Sequence[int] | Sequence[bool], t_ms: int) -> list[Reading]:
    """Readings of ``block``'s signals (the checking reference of :class:`BlockDecoder`).

    A word outside 0..65535 makes that signal ``BAD`` (``invalid response``); otherwise as
    :meth:`BlockDecoder.decode`.
    """
    out: list[Reading] = []
    n = len(values)
    for item in block.items:
        sig = item.ref
        off = block.offset(item)
        if off + item.width > n:
            out.append(_bad(sig.name, t_ms, f"short response ({n} of {block.count})"))
            continue
        if block.area.bits:
            out.append(Reading(sig.name, t_ms, 1.0 if values[off] else 0.0, device_time=False))
            continue
        try:
            v = decode_words(
                [int(w) for w in values[off : off + item.width]],
                sig.dtype,
                word_order=sig.word_order,
                byte_order=sig.byte_order,
            )
        except (ValueError, TypeError) as exc:
            out.append(_bad(sig.name, t_ms, f"invalid response ({exc})"))
            continue
        if not math.isfinite(v):
            out.append(_bad(sig.name, t_ms, "non-finite value"))
            continue
        out.append(Reading(sig.name, t_ms, v, device_time=False))
    return out


def _bad(name: str, t_ms: int, reason: str) -> Reading:
    return Reading(name, t_ms, math.nan, Quality.BAD, device_time=False, reason=reason)
