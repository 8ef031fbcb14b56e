"""SLMP / MC protocol 3E binary frames: the Batch Read request (command 0x0401) and its
response, as a pure codec (no I/O).

Layout (all multi-byte fields little endian), SLMP Reference Manual SH-080956ENG §3.1
"Message format" / MELSEC Communication Protocol Reference Manual SH-080008 §3.1.1 (QnA-
compatible 3E frame):

Request::

    50 00            subheader "5000H" (bytes 0x50, 0x00)
    NN               network number (0x00 = own network)
    PP               PC number / station (0xFF = the connected station)
    IO IO            request destination module I/O number (0x03FF = own CPU)
    SS               request destination module station number (multidrop, 0x00)
    LL LL            request data length: bytes from the monitoring timer to the end
    TT TT            monitoring timer, units of 250 ms (0 = wait forever)
    01 04            command 0x0401 Device Read (batch)
    ss 00            subcommand 0x0000 (word units) / 0x0001 (bit units)
    DD DD DD         head device number (3 bytes)
    CC               device code (see :mod:`.devices`)
    nn nn            number of device points

Response::

    D0 00            subheader "D000H" (bytes 0xD0, 0x00)
    NN PP IO IO SS   the request's route, echoed
    LL LL            response data length: bytes from the end code to the end
    EE EE            end code (0x0000 = normal completion)
    ...              read data (word units: 2 bytes per word, low byte first; bit units:
                     one 4-bit nibble per point, upper nibble first, padded to a byte), or,
                     for an error end code, the error information (route + command +
                     subcommand, 9 bytes)

Batch read limits (SH-080956ENG §5.1): 960 words or 7168 bits per request.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from renkei.core.errors import DecodeError

__all__ = [
    "HEADER_LEN",
    "MAX_BITS",
    "MAX_WORDS",
    "REQUEST_SUBHEADER",
    "RESPONSE_SUBHEADER",
    "FrameError",
    "Route",
    "decode_bits",
    "decode_request",
    "decode_words",
    "encode_batch_read",
    "encode_bits",
    "encode_response",
    "max_response_len",
    "parse_response_header",
    "response_data_len",
    "split_body",
]

#: Subheaders as sent: the bytes 0x50 0x00 / 0xD0 0x00 (the manual's "5000H"/"D000H" are
#: written in transmission order, not as little-endian words).
REQUEST_SUBHEADER: Final = b"\x50\x00"
RESPONSE_SUBHEADER: Final = b"\xd0\x00"
CMD_BATCH_READ: Final = 0x0401
SUB_WORD: Final = 0x0000
SUB_BIT: Final = 0x0001
#: Words / bits one batch read may request (SH-080956ENG §5.1).
MAX_WORDS: Final = 960
MAX_BITS: Final = 7168
#: Bytes of a response up to and including the response data length field.
HEADER_LEN: Final = 9
#: Error information after an error end code: route (5) + command (2) + subcommand (2).
ERROR_INFO_LEN: Final = 9


class FrameError(DecodeError):
    """A response that is not a valid 3E binary response to our request (wrong subheader,
    route or length): the byte stream can no longer be trusted."""


@dataclass(frozen=True, slots=True)
class Route:
    """The access route of a request (SH-080956ENG §3.1): network number, PC (station)
    number, request destination module I/O number, and multidrop station number."""

    network: int = 0x00
    pc: int = 0xFF
    module_io: int = 0x03FF
    station: int = 0x00

    def pack(self) -> bytes:
        """The 5 route bytes as sent."""
        return struct.pack("<BBHB", self.network, self.pc, self.module_io, self.station)


def encode_batch_read(
    route: Route,
    *,
    device_code: int,
    head: int,
    points: int,
    bit_units: bool,
    monitoring_timer: int,
) -> bytes:
    """A Device Read (batch) request, command 0x0401.

    Args:
        route: where the request goes.
        device_code: 1-byte device code (e.g. 0xA8 for ``D``).
        head: head device number, 0..0xFFFFFF.
        points: number of words (``bit_units=False``, 1..960) or bits (1..7168).
        bit_units: subcommand 0x0001 (bits) instead of 0x0000 (words).
        monitoring_timer: in 250 ms units, 0..0xFFFF.

    Raises:
        ValueError: a field outside its range.
    """
    limit = MAX_BITS if bit_units else MAX_WORDS
    if not 1 <= points <= limit:
        raise ValueError(f"points must be 1..{limit}, got {points}")
    if not 0 <= head <= 0xFF_FFFF:
        raise ValueError(f"head device number {head} does not fit 3 bytes")
    if not 0 <= device_code <= 0xFF or not 0 <= monitoring_timer <= 0xFFFF:
        raise ValueError("device code or monitoring timer out of range")
    body = struct.pack(
        "<HHH",
        monitoring_timer,
        CMD_BATCH_READ,
        SUB_BIT if bit_units else SUB_WORD,
    )
    body += head.to_bytes(3, "little") + struct.pack("<BH", device_code, points)
    return REQUEST_SUBHEADER + route.pack() + struct.pack("<H", len(body)) + body


def response_data_len(points: int, *, bit_units: bool) -> int:
    """Bytes of read data in a normal response for ``points`` points."""
    return (points + 1) // 2 if bit_units else 2 * points


def parse_response_header(header: bytes, route: Route, *, max_len: int) -> int:
    """Check the first :data:`HEADER_LEN` bytes of a response; return the response data
    length (end code + data bytes still to read).

    Args:
        header: exactly :data:`HEADER_LEN` bytes.
        route: the request's route (the response must echo it).
        max_len: the largest response data length this request can legitimately get;
            a larger length field is refused *before* reading the body.

    Raises:
        FrameError: wrong subheader, route or a length outside ``2..max_len``.
    """
    if len(header) != HEADER_LEN:
        raise FrameError(f"response header is {len(header)} bytes, expected {HEADER_LEN}")
    if header[:2] != RESPONSE_SUBHEADER:
        raise FrameError(f"response subheader {header[:2].hex().upper()}, expected D000")
    if header[2:7] != route.pack():
        raise FrameError(f"response route {header[2:7].hex()} does not echo the request's")
    length = int.from_bytes(header[7:9], "little")
    if not 2 <= length <= max_len:
        raise FrameError(f"response data length {length} outside 2..{max_len}")
    return length


def max_response_len(points: int, *, bit_units: bool) -> int:
    """Largest legitimate response data length of a batch read of ``points``."""
    return 2 + max(response_data_len(points, bit_units=bit_units), ERROR_INFO_LEN)


def split_body(body: bytes, points: int, *, bit_units: bool) -> tuple[int, bytes]:
    """Split a response body (end code + data) into ``(end_code, data)``.

    For end code 0 the data must be exactly the requested points' bytes; for an error end
    code the data is the error information (not checked further).

    Raises:
        FrameError: a body shorter than the end code, or normal data of the wrong length.
    """
    if len(body) < 2:
        raise FrameError("response body shorter than its end code")
    end_code = int.from_bytes(body[0:2], "little")
    data = body[2:]
    expected = response_data_len(points, bit_units=bit_units)
    if end_code == 0 and len(data) != expected:
        raise FrameError(f"response carries {len(data)} data bytes, expected {expected}")
    return end_code, data


def decode_words(data: bytes) -> list[int]:
    """Word-unit read data → unsigned 16-bit words in device order (low byte first)."""
    if len(data) % 2:
        raise FrameError("odd number of bytes in word data")
    return list(struct.unpack(f"<{len(data) // 2}H", data))


def decode_bits(data: bytes, points: int) -> list[int]:
    """Bit-unit read data → ``points`` values 0/1 (each byte holds two points, the first
    in its upper nibble; SH-080956ENG §5.1 "bit units")."""
    if len(data) != (points + 1) // 2:
        raise FrameError(f"{len(data)} bytes of bit data for {points} points")
    out: list[int] = []
    for b in data:
        out.append(1 if b & 0xF0 else 0)
        out.append(1 if b & 0x0F else 0)
    return out[:points]


def encode_response(route: Route, end_code: int, data: bytes) -> bytes:
    """A 3E binary response (used by test servers and tests)."""
    body = struct.pack("<H", end_code) + data
    return RESPONSE_SUBHEADER + route.pack() + struct.pack("<H", len(body)) + body


def encode_bits(values: list[int]) -> bytes:
    """``values`` (0/1) as bit-unit read data (inverse of :func:`decode_bits`)."""
    padded = list(values) + ([0] if len(values) % 2 else [])
    return bytes(
        (0x10 if padded[i] else 0) | (0x01 if padded[i + 1] else 0)
        for i in range(0, len(padded), 2)
    )


def decode_request(frame: bytes) -> tuple[Route, int, int, int, int, int, int]:
    """Parse a batch read request (used by test servers): ``(route, timer, command,
    subcommand, head, device_code, points)``.

    Raises:
        FrameError: wrong subheader or length.
    """
    if len(frame) < 21:
        raise FrameError(f"request of {len(frame)} bytes, a batch read is 21")
    if frame[:2] != REQUEST_SUBHEADER:
        raise FrameError(f"request subheader {frame[:2].hex().upper()}")
    network, pc, io, station, length = struct.unpack_from("<BBHBH", frame, 2)
    if length != len(frame) - HEADER_LEN:
        raise FrameError("request data length mismatch")
    timer, command, sub = struct.unpack_from("<HHH", frame, 9)
    head = int.from_bytes(frame[15:18], "little")
    code, points = struct.unpack_from("<BH", frame, 18)
    return Route(network, pc, io, station), timer, command, sub, head, code, points
