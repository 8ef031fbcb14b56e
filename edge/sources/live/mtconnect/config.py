"""Config of the ``mtconnect`` live source (pydantic only: loading a config imports no protocol
library)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from edge.sources.live.signals import LiveSourceConfig, SignalMap

__all__ = ["MtconnectSignal", "MtconnectSourceConfig"]


class MtconnectSignal(SignalMap):
    """One signal of a ``mtconnect`` source: the common mapping keys plus its address."""


class MtconnectSourceConfig(LiveSourceConfig):
    """A ``mtconnect`` source (stub: the protocol's keys are added with its driver)."""

    type: Literal["mtconnect"]
    signals: list[MtconnectSignal] = Field(default_factory=list, max_length=10_000)
