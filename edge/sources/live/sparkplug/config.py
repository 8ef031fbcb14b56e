"""Config of the ``sparkplug`` live source (pydantic only: loading a config imports no protocol
library)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from edge.sources.live.signals import LiveSourceConfig, SignalMap

__all__ = ["SparkplugSignal", "SparkplugSourceConfig"]


class SparkplugSignal(SignalMap):
    """One signal of a ``sparkplug`` source: the common mapping keys plus its address."""


class SparkplugSourceConfig(LiveSourceConfig):
    """A ``sparkplug`` source (stub: the protocol's keys are added with its driver)."""

    type: Literal["sparkplug"]
    signals: list[SparkplugSignal] = Field(default_factory=list, max_length=10_000)
