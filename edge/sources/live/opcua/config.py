"""Config of the ``opcua`` live source (pydantic only: loading a config imports no protocol
library)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from edge.sources.live.opcua.euromap77_config import Euromap77Options
from edge.sources.live.signals import LiveSourceConfig, SignalMap

__all__ = ["OpcuaSignal", "OpcuaSourceConfig"]


class OpcuaSignal(SignalMap):
    """One signal of a ``opcua`` source: the common mapping keys plus its address."""


class OpcuaSourceConfig(LiveSourceConfig):
    """A ``opcua`` source (stub: the protocol's keys are added with its driver)."""

    type: Literal["opcua"]
    preset: Literal["euromap77"] | None = None
    """``euromap77``: read an IMM2MES machine's standard variables (no ``signals`` needed)."""
    euromap77: Euromap77Options = Euromap77Options()
    signals: list[OpcuaSignal] = Field(default_factory=list, max_length=10_000)
