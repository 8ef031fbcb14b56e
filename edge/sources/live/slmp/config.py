"""Config of the ``slmp`` live source (pydantic only: loading a config imports no protocol
library)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from edge.sources.live.signals import LiveSourceConfig, SignalMap

__all__ = ["SlmpSignal", "SlmpSourceConfig"]


class SlmpSignal(SignalMap):
    """One signal of a ``slmp`` source: the common mapping keys plus its address."""


class SlmpSourceConfig(LiveSourceConfig):
    """A ``slmp`` source (stub: the protocol's keys are added with its driver)."""

    type: Literal["slmp"]
    signals: list[SlmpSignal] = Field(default_factory=list, max_length=10_000)
