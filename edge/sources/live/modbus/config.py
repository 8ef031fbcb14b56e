"""Config of the ``modbus`` live source (pydantic only: loading a config imports no protocol
library).

Addresses are the 0-based *PDU addresses* of the Modbus Application Protocol Specification
V1.1b3 §4.4 (what goes on the wire), not the 1-based "Modicon" reference numbers printed in
many manuals: holding register ``40001`` (or ``400001``) is ``table: holding_register,
address: 0``; input register ``30010`` is ``table: input_register, address: 9``; coil
``00001`` is ``table: coil, address: 0``; discrete input ``10001`` is ``table:
discrete_input, address: 0``.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import Field, model_validator

from renkei.edge.sources.live.registers import DataType, Order, word_count
from renkei.edge.sources.live.signals import LiveSourceConfig, SignalMap

__all__ = [
    "BIT_TABLES",
    "MAX_READ_BITS",
    "MAX_READ_REGISTERS",
    "ModbusSignal",
    "ModbusSourceConfig",
    "Table",
]

Table = Literal["coil", "discrete_input", "holding_register", "input_register"]

#: Tables of single bits (function codes 1 and 2); the others hold 16-bit registers.
BIT_TABLES: Final = ("coil", "discrete_input")

#: Largest read the protocol allows (V1.1b3 §6.1-6.4: 2000 coils/inputs, 125 registers).
MAX_READ_BITS: Final = 2000
MAX_READ_REGISTERS: Final = 125

UnitId = Annotated[int, Field(ge=0, le=255)]


class ModbusSignal(SignalMap):
    """One signal of a ``modbus`` source: the common mapping keys plus where it is read.

    ``table`` and ``address`` (0-based PDU address, see the module docstring) locate it;
    ``type`` says how many registers it spans and how they decode (``bool`` for the bit
    tables, a numeric type for the register tables; default ``bool`` resp. ``uint16``);
    ``word_order``/``byte_order`` (see :mod:`renkei.edge.sources.live.registers`) apply to values
    wider than one register. ``unit_id`` overrides the source's ``unit_id`` (several units
    behind one TCP gateway or on one RS-485 bus share the one connection).
    """

    table: Table
    """Coil, discrete input (bits); holding or input register (16-bit words)."""
    address: Annotated[int, Field(ge=0, le=65535)]
    """0-based PDU address of the (first) register or bit."""
    type: DataType | None = None
    """Data type (``bool``, ``int16``, ``uint16``, ``int32``, ``uint32``, ``float32``,
    ``float64``); default ``bool`` on bit tables, ``uint16`` on register tables."""
    word_order: Order = "big"
    """``big``: first register holds the most significant word ("ABCD")."""
    byte_order: Order = "big"
    """``little``: the two bytes of each register are swapped ("BADC")."""
    unit_id: UnitId | None = None
    """Unit (slave) id of this signal; default the source's ``unit_id``."""

    @model_validator(mode="after")
    def _type_fits_table(self) -> ModbusSignal:
        bits = self.table in BIT_TABLES
        if self.type is None:
            object.__setattr__(self, "type", "bool" if bits else "uint16")
        if bits and self.type != "bool":
            raise ValueError(
                f"type: {self.type!r} cannot be read from a {self.table} (a single bit); "
                "use type 'bool' or a register table"
            )
        if not bits and self.type == "bool":
            raise ValueError(
                f"type: 'bool' cannot be read from a {self.table}; use a numeric type "
                "(int16, uint16, ...) or table coil/discrete_input"
            )
        if self.address + self.width - 1 > 65535:
            raise ValueError(
                f"address: {self.address} + {self.width} register(s) of {self.type} "
                "runs past the last address 65535"
            )
        return self

    @property
    def dtype(self) -> DataType:
        """The resolved data type."""
        assert self.type is not None
        return self.type

    @property
    def width(self) -> int:
        """Registers (or bits, for ``bool``) the value spans."""
        return max(1, word_count(self.dtype))


class ModbusSourceConfig(LiveSourceConfig):
    """A ``modbus`` source: one Modbus TCP server/gateway or one RTU serial line, polled.

    Connection: ``transport: tcp`` needs ``host`` (``port`` 502); ``transport: rtu`` needs
    ``serial_port`` (``baudrate``, ``parity``, ``stopbits``, ``bytesize``; Modbus over
    Serial Line V1.02 §2.5.1 default is 19200 baud, even parity, 1 stop bit). All signals
    are read over the one connection, also those of other unit ids.

    Polling: every ``poll_interval_ms`` on a fixed schedule. Reads are planned once: the
    signals of each (unit id, table) are merged into ranges bridging at most ``max_gap``
    unread registers/bits, up to ``max_read_registers`` registers / ``max_read_bits`` bits
    per request (lower them for devices that refuse long reads or holes).
    """

    type: Literal["modbus"]
    transport: Literal["tcp", "rtu"] = "tcp"
    host: Annotated[str, Field(min_length=1, max_length=253)] | None = None
    """TCP: host name or IP address of the device or Modbus gateway."""
    port: Annotated[int, Field(ge=1, le=65535)] = 502
    """TCP: port."""
    serial_port: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    """RTU: serial device (``/dev/ttyUSB0``, ``COM3``)."""
    baudrate: Annotated[int, Field(ge=300, le=4_000_000)] = 19200
    parity: Literal["N", "E", "O"] = "E"
    stopbits: Literal[1, 2] = 1
    bytesize: Literal[7, 8] = 8
    unit_id: UnitId = 1
    """Default unit (slave) id of the signals (RTU: 1..247)."""
    poll_interval_ms: Annotated[int, Field(ge=10, le=3_600_000)] = 1000
    """Poll period, ms (a fixed schedule; a poll that overruns skips the missed slots)."""
    max_gap: Annotated[int, Field(ge=0, le=MAX_READ_BITS)] = 8
    """Unread registers/bits bridged inside one read (0 = read only configured ones)."""
    max_read_registers: Annotated[int, Field(ge=1, le=MAX_READ_REGISTERS)] = MAX_READ_REGISTERS
    """Most registers per read request (function codes 3/4)."""
    max_read_bits: Annotated[int, Field(ge=1, le=MAX_READ_BITS)] = MAX_READ_BITS
    """Most bits per read request (function codes 1/2)."""
    timeouts_before_reconnect: Annotated[int, Field(ge=1, le=1000)] = 3
    """Requests in a row without a valid response before the connection is reopened."""
    signals: Annotated[list[ModbusSignal], Field(min_length=1, max_length=10_000)]

    @model_validator(mode="after")
    def _connection(self) -> ModbusSourceConfig:
        if self.transport == "tcp":
            if self.host is None:
                raise ValueError("host: transport 'tcp' needs the device's host name or IP")
            if self.serial_port is not None:
                raise ValueError("serial_port: only for transport 'rtu'")
        else:
            if self.serial_port is None:
                raise ValueError("serial_port: transport 'rtu' needs a serial device")
            if self.host is not None:
                raise ValueError("host: only for transport 'tcp'")
            for i, s in enumerate(self.signals):
                unit = self.unit_id if s.unit_id is None else s.unit_id
                if not 1 <= unit <= 247:
                    where = f"signals[{i}].unit_id" if s.unit_id is not None else "unit_id"
                    raise ValueError(
                        f"{where}: RTU unit ids are 1..247 (0 is broadcast), got {unit}"
                    )
        for i, s in enumerate(self.signals):
            limit = self.max_read_bits if s.table in BIT_TABLES else self.max_read_registers
            if s.width > limit:
                raise ValueError(
                    f"signals[{i}].type: {s.dtype} spans {s.width} registers > "
                    f"max_read_registers={limit}"
                )
        return self

    @property
    def endpoint(self) -> str:
        """``tcp://host:port`` or ``rtu:/dev/ttyUSB0@19200/8E1`` (logs, events)."""
        if self.transport == "tcp":
            return f"tcp://{self.host}:{self.port}"
        return f"rtu:{self.serial_port}@{self.baudrate}/{self.bytesize}{self.parity}{self.stopbits}"
