"""The ``oee`` section of a machine: where availability, performance and quality come from.

Definitions and bases: :mod:`renkei.core.oee` (Nakajima; ISO 22400-2:2014). The gateway
accounts each ``interval_s`` of data time (:mod:`renkei.edge.features.oee`) and publishes
one ``oee`` row per interval; the cloud only sums them over a range. Without this section
(or with parts of it left out) each component falls back, and says so in its basis:

- availability: ``run_state`` → the source's own status where the protocol carries one
  (``preset: euromap77``: ``machine_mode``) → ``proxy_data_arrival``;
- performance: ``ideal_cycle_time_s`` of the mounted ``mold`` (registry) → the machine's
  own expected cycle time (``expected_cycle_time_s``, EUROMAP 77) → ``unknown``;
- quality: ``good_count``/``reject_count`` (``good_parts``/``bad_parts`` for EUROMAP 77)
  → ``proxy_anomaly_rate`` (when a model scores the machine) → ``unknown``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from renkei.core.wire import Level

__all__ = ["OeeConfig", "RunStateConfig"]

_FROZEN = ConfigDict(frozen=True, extra="forbid")
_Signal = Annotated[str, Field(min_length=1, max_length=128)]
_Values = Annotated[list[float], Field(max_length=64)]


class RunStateConfig(BaseModel):
    """A run-state signal and which of its values mean running, idle, setup and down.

    A value in none of the lists (or no reading for longer than ``hold_s``) is *unknown*
    time, left out of the planned busy time. MTConnect ``Execution``: map its texts to
    numbers with the signal's ``states`` (e.g. ``{ACTIVE: 1, READY: 2, STOPPED: 2,
    INTERRUPTED: 3, FEED_HOLD: 2}``) and list those numbers here with ``basis: status``.
    """

    model_config = _FROZEN

    signal: _Signal
    """Name of the slow signal (telemetry field) holding the machine state."""
    running: Annotated[list[float], Field(min_length=1, max_length=64)]
    """Values meaning *running* (producing): actual production time."""
    idle: _Values = []
    """Values meaning *idle* (ready, waiting for material or an operator)."""
    setup: _Values = []
    """Values meaning *setup* (mold change, adjustment, manual mode)."""
    down: _Values = []
    """Values meaning *down* (stopped by a fault, alarm, breakdown)."""
    basis: Literal["run_state", "status"] = "run_state"
    """``status`` when the signal is the machine's own status (EUROMAP 77 MachineMode,
    MTConnect Execution), ``run_state`` for a signal a shop wired or derived itself."""

    @model_validator(mode="after")
    def _disjoint(self) -> RunStateConfig:
        seen: dict[float, str] = {}
        for name in ("running", "idle", "setup", "down"):
            for v in getattr(self, name):
                if v in seen:
                    raise ValueError(f"value {v} is in both {seen[v]!r} and {name!r}")
                seen[v] = name
        return self


class OeeConfig(BaseModel):
    """How the gateway accounts OEE for one machine (see the module docstring)."""

    model_config = _FROZEN

    interval_s: Annotated[float, Field(ge=1, le=3600)] = 60.0
    """Accounting interval (data time), s; one ``oee`` row per interval."""
    hold_s: Annotated[float, Field(gt=0, le=3600)] = 10.0
    """A reading holds for at most this long (s); longer gaps are unknown time (or, for
    the data-arrival proxy, time without data)."""
    run_state: RunStateConfig | None = None
    """The run-state signal; default: the source's status where its preset has one."""
    mold: Level | None = None
    """Registry id of the mold mounted on the machine."""
    ideal_cycle_time_s: Annotated[float, Field(gt=0, le=86400)] | None = None
    """Ideal cycle time of the mounted mold (registry ``mold.cycle_time_s``), s per shot."""
    good_count: _Signal | None = None
    """Slow signal counting good parts (a counter: deltas are summed, a drop = reset)."""
    reject_count: _Signal | None = None
    """Slow signal counting rejected parts (a counter, like ``good_count``)."""
