"""``renkei edge probe``: connect a config's live machines and show what they read.

The first thing an engineer does at a new machine is check that the gateway reaches it and
that every signal reads a plausible value in the right unit. :func:`probe` builds the live
sources of a gateway config exactly as the agent would, runs them for a few seconds without
MQTT or an outbox, and returns per signal the last value, its unit, readings and bad
readings, plus the source's events (connected, unreachable, bad signals).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from renkei.edge.config import GatewayConfig, LiveSourceConfig
from renkei.edge.sources.live import LiveSource, build_live_source

__all__ = ["MachineProbe", "SignalProbe", "probe"]


@dataclass(slots=True)
class SignalProbe:
    """What one signal read during the probe: ``last`` (mapped value, NaN = none),
    ``unit`` and ``readings`` (finite values seen)."""

    name: str
    unit: str
    last: float = math.nan
    readings: int = 0


@dataclass(slots=True)
class MachineProbe:
    """One live machine: its device, signals, events and the source's counters."""

    machine: str
    device: str
    signals: dict[str, SignalProbe] = field(default_factory=dict)
    events: list[str] = field(default_factory=list)
    shots: int = 0
    status: dict[str, int | bool] = field(default_factory=dict)


def probe(
    config: GatewayConfig, *, seconds: float, machines: Sequence[str] = ()
) -> list[MachineProbe]:
    """Run the live sources of ``config`` (or of the named ``machines``) for ``seconds``.

    Raises:
        renkei.edge.sources.live.LiveSourceError: a source cannot be built (e.g. a missing secret).
        ValueError: a named machine is not in the config or has no live source.
    """
    chosen = [m for m in config.machines if not machines or m.id in machines]
    unknown = set(machines) - {m.id for m in chosen}
    if unknown:
        raise ValueError(f"no machine {sorted(unknown)} in the config")
    sources: list[tuple[str, LiveSource]] = []
    for m in chosen:
        if isinstance(m.source, LiveSourceConfig):
            sources.append((m.id, build_live_source(m.source)))
        elif machines:
            raise ValueError(f"machine {m.id!r} has source type {m.source.type!r}, not live")
    results = {
        mid: MachineProbe(
            machine=mid,
            device=src.describe,
            signals={n: SignalProbe(n, "") for n in src.signals},
        )
        for mid, src in sources
    }
    for _, src in sources:
        src.start()
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
            for mid, src in sources:
                _collect(results[mid], src)
    finally:
        for _, src in sources:
            src.stop()
    for mid, src in sources:
        _collect(results[mid], src)
        res = results[mid]
        for name, unit in src.fields.items():
            res.signals[name].unit = unit
        res.status = src.status()
    return list(results.values())


def _collect(res: MachineProbe, src: LiveSource) -> None:
    batch = src.poll()
    res.events.extend(f"{e.severity} {e.code}: {e.message}" for e in batch.events)
    for block in batch.blocks:
        if block.stream == "shot":
            res.shots += block.n_samples
            continue
        for name, values in block.fields.items():
            sp = res.signals.get(name)
            if sp is None:
                continue
            finite = values[np.isfinite(values)]
            sp.readings += int(finite.size)
            if finite.size:
                sp.last = float(finite[-1])
