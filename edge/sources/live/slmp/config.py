"""Config of the ``slmp`` live source (pydantic only: loading a config imports no protocol
library).

Example::

    source:
      type: slmp
      host: 192.168.3.39
      port: 5007
      poll_interval_ms: 500
      signals:
        - {name: shot_counter, device: D200, type: uint32}
        - {name: barrel_temp_C, device: D100, type: int16, scale: 0.1, unit: degC}
        - {name: running, device: M0, type: bool}
        - {name: alarm, device: D300.4, type: bool}
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from renkei.edge.sources.live.registers import DataType, Order
from renkei.edge.sources.live.signals import LiveSourceConfig, SignalMap, check_signal_names
from renkei.edge.sources.live.slmp.devices import DeviceAddress, parse_device
from renkei.edge.sources.live.slmp.frames import MAX_BITS, MAX_WORDS

__all__ = ["SlmpSignal", "SlmpSourceConfig"]


class SlmpSignal(SignalMap):
    """One signal of a ``slmp`` source: the common mapping keys plus its device.

    ``device`` is a MELSEC device as in GX Works: ``D100``, ``ZR200``, ``M0``, ``X1F``
    (``X``/``Y``/``B``/``W``/``SB``/``SW``/``DX``/``DY`` in hex), or ``D100.3`` (bit 3 of
    word D100). ``type`` ``bool`` needs a bit device or a bit index; every other type needs
    a word device and reads 1 (16-bit), 2 (32-bit) or 4 (float64) consecutive words.
    ``word_order`` defaults to ``little`` (MELSEC stores double words low word first, e.g.
    a 32-bit value in D200 has its low 16 bits in D200 and its high 16 bits in D201).
    """

    device: Annotated[str, Field(min_length=2, max_length=16)]
    type: DataType = "int16"
    word_order: Order = "little"
    byte_order: Order = "big"

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        return str(parse_device(v))

    @property
    def address(self) -> DeviceAddress:
        """The parsed device."""
        return parse_device(self.device)

    @model_validator(mode="after")
    def _type_fits_device(self) -> SlmpSignal:
        addr = self.address
        if self.type == "bool":
            if not addr.spec.bit and addr.bit_index is None:
                raise ValueError(
                    f"type bool needs a bit device (M, X, Y, B, L, SM, ...) or a bit of a "
                    f"word device such as {self.device}.0; {self.device} is a word device"
                )
        elif addr.spec.bit:
            raise ValueError(
                f"type {self.type} needs a word device (D, W, R, ZR, ...); "
                f"{self.device} is a bit device: use type bool"
            )
        elif addr.bit_index is not None:
            raise ValueError(f"a bit index ({self.device}) needs type bool, not {self.type}")
        return self


class SlmpSourceConfig(LiveSourceConfig):
    """A ``slmp`` source: one MELSEC CPU (or Ethernet module) over SLMP 3E binary frames
    on TCP, polled with Device Read (batch) requests (SH-080956ENG §5.1).

    The route keys (``network``, ``pc``, ``module_io``, ``station``) default to "the CPU I
    am connected to" (0x00, 0xFF, 0x03FF, 0x00); change them only to reach another station
    through the connected one.
    """

    type: Literal["slmp"]
    host: Annotated[str, Field(min_length=1, max_length=253)]
    """PLC (or Ethernet module) IP address or host name."""
    port: Annotated[int, Field(ge=1, le=65535)] = 5007
    """TCP port of the SLMP (MC protocol) "open" connection set in GX Works."""
    network: Annotated[int, Field(ge=0, le=0xFF)] = 0x00
    """Network number of the route (0 = own network)."""
    pc: Annotated[int, Field(ge=0, le=0xFF)] = 0xFF
    """PC (station) number of the route (0xFF = the connected station)."""
    module_io: Annotated[int, Field(ge=0, le=0xFFFF)] = 0x03FF
    """Request destination module I/O number (0x03FF = own CPU; 0x03E0.. multi-CPU)."""
    station: Annotated[int, Field(ge=0, le=0xFF)] = 0x00
    """Request destination module station number (multidrop), normally 0."""
    monitoring_timer_s: Annotated[float, Field(ge=0.25, le=60)] = 2.0
    """How long the PLC may take to answer a request, s (sent in 250 ms units); must be
    shorter than ``link.timeout_s`` so the PLC's error answer comes before our timeout."""
    poll_interval_ms: Annotated[int, Field(ge=10, le=3_600_000)] = 1000
    """Period of one poll (all blocks), ms, on a monotonic schedule."""
    max_gap: Annotated[int, Field(ge=0, le=MAX_WORDS)] = 16
    """Most unused points bridged to merge two reads of one device type (0: never)."""
    max_read_words: Annotated[int, Field(ge=1, le=MAX_WORDS)] = MAX_WORDS
    """Words per request (960 by the spec; lower for CPUs that accept fewer)."""
    max_read_bits: Annotated[int, Field(ge=1, le=MAX_BITS)] = MAX_BITS
    """Bits per request (7168 by the spec)."""
    timeouts_before_reconnect: Annotated[int, Field(ge=1, le=100)] = 3
    """Consecutive polls without an answer before the connection is dropped and made anew."""
    signals: Annotated[list[SlmpSignal], Field(min_length=1, max_length=10_000)]

    @model_validator(mode="after")
    def _cross(self) -> SlmpSourceConfig:
        if self.monitoring_timer_s >= self.link.timeout_s:
            raise ValueError(
                f"monitoring_timer_s={self.monitoring_timer_s} must be < "
                f"link.timeout_s={self.link.timeout_s}"
            )
        problems = check_signal_names([s.name for s in self.signals], self.shots)
        if problems:
            key, msg = problems[0]
            raise ValueError(f"{key}: {msg}")
        return self

    @property
    def monitoring_timer(self) -> int:
        """The monitoring timer in the 250 ms units sent on the wire."""
        return max(1, round(self.monitoring_timer_s * 4))
