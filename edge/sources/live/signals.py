"""The one signal-mapping model shared by every live source (config side, pydantic only).

Every live source (``opcua``, ``modbus``, ``slmp``, ``mtconnect``, ``sparkplug``) lists the
machine values it reads as *signals*. A signal entry always has the same mapping keys,
defined once here in :class:`SignalMap`; each protocol subclasses it only to add *where*
the value comes from (a NodeId, a register address, a DataItem id, a metric name):

- ``name``: the Renkei signal name, i.e. the field name in ``telemetry`` rows and the
  InfluxDB field key (1-64 characters ``[A-Za-z_][A-Za-z0-9_]*``, not a reserved name such
  as ``firm``, ``time`` or ``_x``, see :func:`renkei.core.wire.reserved_name_problem`). Put the
  unit in the name where it helps (``barrel_temp_zone1_C``).
- ``unit``: the unit published with the signal; empty = the device's own unit where the
  protocol has one (OPC UA ``EngineeringUnits``, MTConnect ``units``), else none.
- ``scale`` and ``offset``: ``value = raw * scale + offset`` (e.g. a holding register in
  0.1 °C steps: ``scale: 0.1``).

Quality: a reading the device marks bad (OPC UA ``Bad*`` status, a Modbus exception or
timeout, an MTConnect ``UNAVAILABLE``, a stale Sparkplug metric) is never published as a
value: its field is ``null`` in the ``telemetry`` row and the bad reading is counted in the
machine's ``quality`` rows (see :mod:`renkei.edge.sources.live.source`).

Secrets (passwords, private keys) are never written in the YAML: :class:`Secret` names an
environment variable or a file holding them.

Shots (:class:`ShotsConfig`): a machine without its own cycle event gets one ``shot`` row
per increment of a shot counter signal, or per rising edge of a cycle signal.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from renkei.core.errors import RenkeiError
from renkei.core.influx.contract import QUALITY_COUNTERS
from renkei.core.wire import reserved_name_problem

__all__ = [
    "QUALITY_FIELDS",
    "LinkConfig",
    "LiveSourceConfig",
    "Secret",
    "SecretError",
    "ShotsConfig",
    "SignalMap",
    "SignalName",
    "check_signal_names",
]

_FROZEN: Final = ConfigDict(frozen=True, extra="forbid")

SignalName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
"""A Renkei signal (field) name."""

#: Names a shot row always has (they would collide with a signal of the same name).
SHOT_ROW_FIELDS: Final = ("shot_count", "cycle_time_s")

#: Counter fields of ``quality`` rows (a signal may not use these names), see
#: :mod:`renkei.edge.sources.live.source`.
QUALITY_FIELDS: Final = QUALITY_COUNTERS  # one list: the measurement contract's


class SecretError(RenkeiError, ValueError):
    """A secret's environment variable is unset or its file cannot be read."""


class Secret(BaseModel):
    """Where a secret (password, private-key passphrase) is kept: never inline in the YAML.

    Exactly one of ``env`` (name of an environment variable) or ``file`` (path of a file
    whose content, without a trailing newline, is the secret).
    """

    model_config = _FROZEN

    env: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")] | None = None
    file: Path | None = None

    @model_validator(mode="after")
    def _one(self) -> Secret:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of 'env' (variable name) or 'file' (path)")
        return self

    def read(self) -> str:
        """The secret's value.

        Raises:
            SecretError: the variable is unset/empty, or the file is unreadable, empty or
                not UTF-8 text; the message names the variable or file (never the value).
        """
        if self.env is not None:
            value = os.environ.get(self.env)
            if not value:
                raise SecretError(f"environment variable {self.env} is not set")
            return value
        assert self.file is not None
        try:
            value = self.file.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise SecretError(f"cannot read secret file {self.file}: {exc.strerror}") from None
        except UnicodeDecodeError:  # its message would quote bytes of the secret
            raise SecretError(f"secret file {self.file} is not UTF-8 text") from None
        if not value:
            raise SecretError(f"secret file {self.file} is empty")
        return value


class SignalMap(BaseModel):
    """The mapping keys every live signal has (see the module docstring).

    Protocol configs subclass it and add the address keys; ``extra`` keys are refused.
    """

    model_config = _FROZEN

    name: SignalName
    """Renkei signal name (telemetry field name)."""
    unit: Annotated[str, Field(max_length=32)] = ""
    """Unit published with the signal; empty = the device's unit where it has one."""
    scale: float = 1.0
    """``value = raw * scale + offset``."""
    offset: float = 0.0

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, name: str) -> str:
        problem = reserved_name_problem(name)
        if problem is not None:
            raise ValueError(f"signal name {name!r} is reserved: {problem}")
        if name in SHOT_ROW_FIELDS or name in QUALITY_FIELDS:
            raise ValueError(
                f"signal name {name!r} is reserved (shot rows use {list(SHOT_ROW_FIELDS)}, "
                f"quality rows {list(QUALITY_FIELDS)})"
            )
        return name

    @field_validator("scale", "offset")
    @classmethod
    def _finite(cls, v: float) -> float:
        if v != v or v in (float("inf"), float("-inf")):
            raise ValueError("must be a finite number")
        return v


class ShotsConfig(BaseModel):
    """Turn a counter or cycle signal into ``shot`` rows (one per machine cycle).

    Exactly one trigger: ``counter`` (a shot/cycle counter signal: each increment by ``n``
    completes ``n`` cycles; a decrease is a counter reset and starts counting afresh) or
    ``cycle_signal`` (a 0/1 signal whose rising edge ends a cycle). Each completed cycle
    gives a row at the trigger reading's time with:

    - ``shot_count``: the counter value (``counter``) or the number of cycles seen since the
      gateway started (``cycle_signal``);
    - ``cycle_time_s``: time since the previous cycle end, s (divided by ``n`` when the
      counter jumped by ``n``; NaN for the first cycle after start or a gap);
    - each of ``values``: its latest reading at the cycle end (units of the signal);
    - for each of ``stats``: ``{name}_mean`` and ``{name}_max`` over the cycle's readings.
    """

    model_config = _FROZEN

    counter: SignalName | None = None
    cycle_signal: SignalName | None = None
    values: Annotated[list[SignalName], Field(max_length=64)] = []
    stats: Annotated[list[SignalName], Field(max_length=32)] = []

    @model_validator(mode="after")
    def _one_trigger(self) -> ShotsConfig:
        if (self.counter is None) == (self.cycle_signal is None):
            raise ValueError("give exactly one of 'counter' or 'cycle_signal'")
        return self

    @property
    def trigger(self) -> str:
        """The trigger signal's name."""
        name = self.counter if self.counter is not None else self.cycle_signal
        assert name is not None
        return name


class LinkConfig(BaseModel):
    """How a live source keeps its connection to the device.

    After a failed connect or a lost connection the source waits, then reconnects: the wait
    starts at ``reconnect_min_s`` and doubles up to ``reconnect_max_s`` (with ±20 % jitter,
    so many gateways do not reconnect in step); a connection that stays up resets it.
    """

    model_config = _FROZEN

    reconnect_min_s: Annotated[float, Field(gt=0, le=3600)] = 1.0
    reconnect_max_s: Annotated[float, Field(gt=0, le=3600)] = 30.0
    timeout_s: Annotated[float, Field(gt=0, le=600)] = 5.0
    """Timeout of one connect or request, s."""

    @model_validator(mode="after")
    def _order(self) -> LinkConfig:
        if self.reconnect_min_s > self.reconnect_max_s:
            raise ValueError(
                f"reconnect_min_s={self.reconnect_min_s} must be <= "
                f"reconnect_max_s={self.reconnect_max_s}"
            )
        return self


class LiveSourceConfig(BaseModel):
    """Keys every live source config has; each protocol subclasses it with its ``type``,
    connection keys and ``signals`` (a list of its :class:`SignalMap` subclass)."""

    model_config = _FROZEN

    link: LinkConfig = LinkConfig()
    """Reconnect backoff and timeouts."""
    shots: ShotsConfig | None = None
    """Shot rows from a counter or cycle signal (see :class:`ShotsConfig`)."""
    max_clock_skew_s: Annotated[float, Field(gt=0, le=86_400)] = 300.0
    """A device timestamp further than this from the gateway clock, s, is replaced by the
    gateway's time (counted as ``gateway_time``; one ``clock_skew`` event per episode): a
    PLC with a wrong clock must not stamp data in another year. Ahead of the gateway clock
    the limit is at most 240 s whatever this says (the ingest refuses points more than
    300 s in the future)."""
    quality_interval_s: Annotated[float, Field(ge=1, le=3600)] = 10.0
    """Period of the machine's ``quality`` rows, s."""
    row_merge_ms: Annotated[int, Field(ge=0, le=60_000)] = 0
    """``0``: one telemetry row per distinct device timestamp (exact times). ``N > 0``:
    readings whose timestamps fall in the same ``N`` ms slot share one row, stamped with
    the earliest of them (a second reading of a signal in a slot starts another row).
    Every row carries every signal (``null`` where it has no reading), so a source with
    hundreds of signals that change at unrelated times (OPC UA subscriptions, MTConnect,
    Sparkplug) should set this, e.g. to its sampling interval: 5,000 items with their
    own timestamps would otherwise make 5,000 rows of 5,000 fields each."""

    def signal_maps(self) -> list[SignalMap]:
        """The configured signals (protocol subclasses return their ``signals``)."""
        signals = getattr(self, "signals", [])
        return list(signals)

    @property
    def speed(self) -> float:
        """Live data is real time (the agent's pacing factor)."""
        return 1.0


def check_signal_names(signals: list[str], shots: ShotsConfig | None) -> list[tuple[str, str]]:
    """Problems (relative key path, message) of a source's signal names: duplicates, shot
    keys naming no signal, and a ``values`` entry named like a ``{stat}_mean``/``_max``
    field of the shot row."""
    problems: list[tuple[str, str]] = []
    seen: dict[str, int] = {}
    for i, name in enumerate(signals):
        if name in seen:
            problems.append(
                (f"signals[{i}].name", f"signal {name!r} is also signals[{seen[name]}]")
            )
        seen.setdefault(name, i)
    if shots is not None:
        refs: list[tuple[str, str]] = [
            ("shots." + ("counter" if shots.counter else "cycle_signal"), shots.trigger)
        ]
        refs += [(f"shots.values[{i}]", n) for i, n in enumerate(shots.values)]
        refs += [(f"shots.stats[{i}]", n) for i, n in enumerate(shots.stats)]
        for key, name in refs:
            if name not in seen:
                problems.append((key, f"{name!r} is not one of this source's signals"))
        derived = {
            f"{n}_{k}": f"shots.stats[{i}]"
            for i, n in enumerate(shots.stats)
            for k in ("mean", "max")
        }
        for i, name in enumerate(shots.values):
            if name in derived:
                problems.append(
                    (
                        f"shots.values[{i}]",
                        f"{name!r} is also the shot field {derived[name]} makes; one would "
                        "overwrite the other",
                    )
                )
    return problems


Kind = Literal["opcua", "modbus", "slmp", "mtconnect", "sparkplug"]
