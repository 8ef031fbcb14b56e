"""Read plan of a ``modbus`` source and decoding of its responses (pure logic, no I/O).

:func:`plan` groups the signals of each (unit id, table) into the fewest read requests
(:func:`renkei.edge.sources.live.blocks.plan_reads`). :class:`BlockDecoder` turns one response
(registers or bits) into :class:`~renkei.edge.sources.live.base.Reading` objects
(:meth:`BlockDecoder.decode`) or, for the poll loop, into one columnar
:class:`~renkei.edge.sources.live.base.ReadingBlock` (:meth:`BlockDecoder.columns`: the registers
as big-endian bytes, one gather and one ``numpy`` view per data type and order), defensively:
a response shorter than the request, a word outside 0..65535 or a non-finite float becomes
a ``BAD`` reading, never an exception.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Final

import numpy as np

from renkei.edge.sources.live.base import Quality, Reading, ReadingBlock
from renkei.edge.sources.live.blocks import Item, ReadBlock, plan_reads
from renkei.edge.sources.live.modbus.config import (
    BIT_TABLES,
    ModbusSignal,
    ModbusSourceConfig,
    Table,
)
from renkei.edge.sources.live.registers import DATA_TYPES, decode_words

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

#: Big-endian numpy dtype of each register data type (the bytes are gathered big-endian).
_NP_TYPES: Final[dict[str, str]] = {
    "int16": ">i2",
    "uint16": ">u2",
    "int32": ">i4",
    "uint32": ">u4",
    "float32": ">f4",
    "float64": ">f8",
}


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

    Semantics are those of :func:`renkei.edge.sources.live.registers.decode_words` (the slow,
    checking path it falls back to when a response holds a word outside 0..65535).
    """

    def __init__(self, block: Block, names: Sequence[str] | None = None) -> None:
        self.block = block
        self._init_columns(names)
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

    # ------------------------------------------------------------- columnar path

    def _init_columns(self, names: Sequence[str] | None) -> None:
        """Precompute :meth:`columns`: per (type, word order, byte order) group the output
        positions and the byte positions that assemble each value big-endian."""
        block = self.block
        own = [i.ref.name for i in block.items]
        self.names: tuple[str, ...] = tuple(own if names is None else names)
        pos_of = {n: i for i, n in enumerate(self.names)}
        self.index = np.asarray([pos_of[n] for n in own], dtype=np.intp)
        m = len(own)
        self._ends = np.asarray([block.offset(i) + i.width for i in block.items], dtype=np.intp)
        nan = np.full(m, np.nan)
        nan.flags.writeable = False
        all_bad = np.full(m, int(Quality.BAD), dtype=np.uint8)
        all_bad.flags.writeable = False
        self._nan, self._all_bad = nan, all_bad
        self._bit_offs = np.asarray([block.offset(i) for i in block.items], dtype=np.intp)
        groups: dict[tuple[str, str, str], tuple[list[int], list[list[int]]]] = {}
        if block.area.bits:
            self._groups: list[tuple[np.ndarray, np.ndarray, np.dtype[Any], bool]] = []
            return
        for j, item in enumerate(block.items):
            sig = item.ref
            off = block.offset(item)
            width = DATA_TYPES[sig.dtype][1]
            words = range(width) if sig.word_order == "big" else range(width - 1, -1, -1)
            idx: list[int] = []
            for w in words:
                hi, lo = 2 * (off + w), 2 * (off + w) + 1
                idx += [hi, lo] if sig.byte_order == "big" else [lo, hi]
            pos, gather = groups.setdefault((sig.dtype, sig.word_order, sig.byte_order), ([], []))
            pos.append(j)
            gather.append(idx)
        self._groups = [
            (
                np.asarray(pos, dtype=np.intp),
                np.asarray(gather, dtype=np.intp),
                np.dtype(_NP_TYPES[dtype]),
                dtype.startswith("float"),
            )
            for (dtype, _, _), (pos, gather) in groups.items()
        ]

    def bad(self, reason: str, t_ms: int) -> ReadingBlock:
        """All of the block's signals ``BAD`` for ``reason`` at gateway time ``t_ms``."""
        return ReadingBlock(
            self.names, self.index, self._nan, t_ms, self._all_bad, reason, device_time=False
        )

    def columns(self, values: Sequence[int] | Sequence[bool], t_ms: int) -> ReadingBlock:
        """:meth:`decode` as one :class:`ReadingBlock` (same values, qualities and reasons:
        ``columns(v, t).readings() == decode(v, t)``), positions in ``names``."""
        n = len(values)
        count = self.block.count
        m = len(self.index)
        if self.block.area.bits:
            got = np.zeros(count, dtype=np.float64)
            k = min(n, count)
            got[:k] = [1.0 if v else 0.0 for v in values[:k]]
            out = got[self._bit_offs]
            finite = True
        else:
            try:
                raw = struct.pack(f">{n}H", *values)
            except (struct.error, TypeError):
                return self._from_readings(decode_block(self.block, values, t_ms), t_ms)
            if n < count:
                raw += bytes(2 * (count - n))
            u8 = np.frombuffer(raw, dtype=np.uint8)
            out = np.empty(m, dtype=np.float64)
            finite = True
            for pos, gather, dt, is_float in self._groups:
                vals = u8[gather].view(dt).reshape(-1)
                if not is_float:
                    out[pos] = vals
                    continue
                with np.errstate(invalid="ignore"):  # a signalling NaN register
                    out[pos] = vals
                if finite:
                    finite = bool(np.isfinite(out[pos]).all())
        short = n < count and bool((self._ends > n).any())
        if finite and not short:
            return ReadingBlock(self.names, self.index, out, t_ms, None, "", device_time=False)
        quality = np.zeros(m, dtype=np.uint8)
        reasons: dict[int, str] = {}
        if not finite:
            for j in np.flatnonzero(~np.isfinite(out)).tolist():
                reasons[j] = "non-finite value"
        if short:
            for j in np.flatnonzero(self._ends > n).tolist():
                reasons[j] = f"short response ({n} of {count})"
        for j in reasons:
            quality[j] = Quality.BAD
            out[j] = math.nan
        return ReadingBlock(
            self.names, self.index, out, t_ms, quality, "", reasons, device_time=False
        )

    def _from_readings(self, readings: list[Reading], t_ms: int) -> ReadingBlock:
        """A block of the checking path's readings (item order)."""
        return ReadingBlock(
            self.names,
            self.index,
            np.asarray([r.value for r in readings], dtype=np.float64),
            t_ms,
            np.asarray([int(r.quality) for r in readings], dtype=np.uint8),
            "",
            {j: r.reason for j, r in enumerate(readings) if r.reason},
            device_time=False,
        )


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
