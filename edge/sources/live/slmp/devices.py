"""MELSEC device names ("D100", "X1F", "ZR200", "D100.3") and their SLMP device codes.

A MELSEC *device* is a letter code and a number: word devices hold 16-bit words (data
registers ``D``, link registers ``W``, file registers ``R``/``ZR``, timer/counter current
values ``TN``/``CN``, special registers ``SD``); bit devices hold single bits (inputs ``X``,
outputs ``Y``, internal relays ``M``, latch relays ``L``, link relays ``B``, special relays
``SM``). ``X``, ``Y``, ``B``, ``W`` (and ``SB``, ``SW``, ``DX``, ``DY``) are numbered in
hexadecimal, the others in decimal, as in GX Works.

Device codes are the 1-byte binary codes of the Q/L-compatible device specification
(subcommands 0x0000/0x0001): SLMP Reference Manual SH-080956ENG §5.1 "Device code list";
MELSEC Communication Protocol Reference Manual SH-080008 §3.3.6 (cross-checked against the
``slmp/constants.py`` table of the maintained plc-comm-slmp library).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

__all__ = ["DEVICES", "MAX_DEVICE_NUMBER", "DeviceAddress", "DeviceSpec", "parse_device"]

#: Highest head device number a 3-byte device number field can carry.
MAX_DEVICE_NUMBER: Final = 0xFF_FFFF


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    """One device type: its name, binary device code, bit (``True``) or word device, and
    the radix its numbers are written in (10 or 16)."""

    name: str
    code: int
    bit: bool
    radix: int


def _spec(name: str, code: int, bit: bool, radix: int = 10) -> tuple[str, DeviceSpec]:
    return name, DeviceSpec(name, code, bit, radix)


#: Supported devices by name (SH-080956ENG §5.1 device code list, Q/L binary codes).
DEVICES: Final[dict[str, DeviceSpec]] = dict(
    [
        _spec("SM", 0x91, True),
        _spec("SD", 0xA9, False),
        _spec("X", 0x9C, True, 16),
        _spec("Y", 0x9D, True, 16),
        _spec("M", 0x90, True),
        _spec("L", 0x92, True),
        _spec("F", 0x93, True),
        _spec("V", 0x94, True),
        _spec("B", 0xA0, True, 16),
        _spec("D", 0xA8, False),
        _spec("W", 0xB4, False, 16),
        _spec("TS", 0xC1, True),
        _spec("TC", 0xC0, True),
        _spec("TN", 0xC2, False),
        _spec("SS", 0xC7, True),
        _spec("SC", 0xC6, True),
        _spec("SN", 0xC8, False),
        _spec("CS", 0xC4, True),
        _spec("CC", 0xC3, True),
        _spec("CN", 0xC5, False),
        _spec("SB", 0xA1, True, 16),
        _spec("SW", 0xB5, False, 16),
        _spec("DX", 0xA2, True, 16),
        _spec("DY", 0xA3, True, 16),
        _spec("Z", 0xCC, False),
        _spec("R", 0xAF, False),
        _spec("ZR", 0xB0, False),
    ]
)

# Longest names first so "SM" wins over "M", "ZR" over "Z", "TN" over nothing.
_NAMES: Final = "|".join(sorted(DEVICES, key=lambda n: (-len(n), n)))
_DEVICE_RE: Final = re.compile(
    rf"^(?P<name>{_NAMES})(?P<number>[0-9A-F]+)(?:\.(?P<bit>[0-9A-F]))?$", re.IGNORECASE
)


@dataclass(frozen=True, slots=True)
class DeviceAddress:
    """A parsed device: its :class:`DeviceSpec`, head number, and for ``D100.3`` the bit
    index (0-15) inside the word."""

    spec: DeviceSpec
    number: int
    bit_index: int | None = None

    def __str__(self) -> str:
        num = f"{self.number:X}" if self.spec.radix == 16 else str(self.number)
        return self.spec.name + num + ("" if self.bit_index is None else f".{self.bit_index:X}")


def parse_device(text: str) -> DeviceAddress:
    """Parse a device string as written in GX Works (``D100``, ``X1F``, ``ZR200``,
    ``D100.3`` = bit 3 of D100, bit index in hex 0-F).

    Raises:
        ValueError: unknown device name, a number not valid in the device's radix
            (``X``/``Y``/``B``/``W``/``SB``/``SW``/``DX``/``DY`` are hexadecimal, the rest
            decimal), a number above 0xFFFFFF, or a bit index on a bit device.
    """
    s = text.strip()
    m = _DEVICE_RE.match(s)
    if m is None:
        raise ValueError(
            f"{text!r} is not a MELSEC device (a name such as "
            f"{', '.join(sorted(DEVICES))} followed by a number, e.g. D100, X1F, M0)"
        )
    spec = DEVICES[m["name"].upper()]
    digits = m["number"]
    try:
        number = int(digits, spec.radix)
    except ValueError:
        raise ValueError(
            f"{text!r}: {spec.name} devices are numbered in decimal, {digits!r} is not"
        ) from None
    if number > MAX_DEVICE_NUMBER:
        raise ValueError(f"{text!r}: device number above {MAX_DEVICE_NUMBER:#X}")
    bit_index: int | None = None
    if m["bit"] is not None:
        if spec.bit:
            raise ValueError(f"{text!r}: a bit index applies to word devices only")
        bit_index = int(m["bit"], 16)
    return DeviceAddress(spec, number, bit_index)
