"""Config of the ``modbus`` live source (pydantic only: loading a config imports no protocol
library)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from edge.sources.live.signals import LiveSourceConfig, SignalMap

__all__ = ["ModbusSignal", "ModbusSourceConfig"]


class ModbusSignal(SignalMap):
    """One signal of a ``modbus`` source: the common mapping keys plus its address."""


class ModbusSourceConfig(LiveSourceConfig):
    """A ``modbus`` source (stub: the protocol's keys are added with its driver)."""

    type: Literal["modbus"]
    signals: list[ModbusSignal] = Field(default_factory=list, max_length=10_000)
