"""Read plan of a ``modbus`` source and decoding of its responses (pure logic, no I/O).

:func:`plan` groups the signals of each (unit id, table) into the fewest read requests
(:func:`edge.sources.live.blocks.plan_reads`). :func:`decode_block` turns one response
(registers or bits) into :class:`~edge.sources.live.base.Reading` objects, defensively: a
response shorter than the request, a word outside 0..65535 or a non-finite float becomes a
``BAD`` reading, never an exception.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from edge.sources.live.base import Quality, Reading
from edge.sources.live.blocks import Item, ReadBlock, plan_reads
from edge.sources.live.modbus.config import BIT_TABLES, ModbusSignal, ModbusSourceConfig, Table
from edge.sources.live.registers import decode_words

__all__ = ["EXCEPTION_NAMES", "Area", "Block", "decode_block", "exception_reason", "plan"]

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


def decode_block(block: Block, values: Sequence[int] | Sequence[bool], t_ms: int) -> list[Reading]:
    """Readings of ``block``'s signals from a response's ``registers`` (or ``bits``).

    ``values`` may be longer than the block (bit responses are padded to whole bytes); if it
    is shorter, the signals it does not cover are ``BAD`` (``short response``). All
    readings carry the gateway time ``t_ms`` (``device_time=False``).
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
