"""Live sources: the gateway reads machines over their own protocols.

Data flow: a protocol *driver* (its own thread, :mod:`.base`) hands raw readings to a
:class:`LiveSink`; a :class:`LiveSource` (:mod:`.source`) on the agent's main thread maps them
(:mod:`.signals`: name, unit, scale, offset, quality) into the same ``slow``/``shot`` sample
blocks as recorded sources, plus ``quality`` rows and events. Everything after the source
(features, models, outbox, MQTT) is unchanged.

Source types (``source.type`` in the gateway config) and their packages:

- ``opcua`` (:mod:`.opcua`): OPC UA client; preset ``euromap77`` for IMM2MES machines.
- ``modbus`` (:mod:`.modbus`): Modbus TCP/RTU register maps (:mod:`.registers`).
- ``slmp`` (:mod:`.slmp`): Mitsubishi MELSEC SLMP 3E binary frames.
- ``mtconnect`` (:mod:`.mtconnect`): MTConnect agents.
- ``sparkplug`` (:mod:`.sparkplug`): Sparkplug B edge nodes on a plant broker.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Final

from renkei.edge.sources.live.backoff import Backoff
from renkei.edge.sources.live.base import Driver, LinkEvent, LiveSink, Quality, Reading
from renkei.edge.sources.live.signals import (
    LinkConfig,
    LiveSourceConfig,
    Secret,
    SecretError,
    ShotsConfig,
    SignalMap,
)
from renkei.edge.sources.live.source import LiveBatch, LiveSource, LiveSourceError

__all__ = [
    "LIVE_SOURCE_TYPES",
    "Backoff",
    "Driver",
    "LinkConfig",
    "LinkEvent",
    "LiveBatch",
    "LiveSink",
    "LiveSource",
    "LiveSourceConfig",
    "LiveSourceError",
    "Quality",
    "Reading",
    "Secret",
    "SecretError",
    "ShotsConfig",
    "SignalMap",
    "build_live_source",
]

LIVE_SOURCE_TYPES: Final = ("opcua", "modbus", "slmp", "mtconnect", "sparkplug")


def build_live_source(
    config: LiveSourceConfig, *, wake: Callable[[], None] = lambda: None
) -> LiveSource:
    """The :class:`LiveSource` of a live source config (imports its protocol library).

    Raises:
        LiveSourceError: the driver cannot be built (missing secret, unreadable key file).
    """
    kind = str(getattr(config, "type", ""))
    if kind not in LIVE_SOURCE_TYPES:
        raise LiveSourceError(f"unknown live source type {kind!r}")
    module = importlib.import_module(f"renkei.edge.sources.live.{kind}.driver")
    make: Callable[[LiveSourceConfig], Driver] = module.make_driver
    return LiveSource(config=config, driver=make(config), wake=wake)
