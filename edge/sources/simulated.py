"""A seeded, reproducible injection-molding cell simulator (slow, vibration and shot streams).

Streams (see :mod:`renkei.edge.sources.sim_process` and :mod:`renkei.edge.sources.sim_vibration` for
the models and fault effects):

- ``slow`` at ``slow_rate_hz`` in blocks of ``slow_block_s``: barrel zone temperatures,
  injection pressure, clamp force, pump motor current, heater current, oil and mold
  temperature (:data:`BASE_SLOW_CHANNELS` = 11 with 5 zones) plus ``extra_slow_channels``
  (21 extra -> the 32-channel reference load);
- ``vibration``: ``pump_vibration_g`` at ``vibration_rate_hz`` in blocks of
  ``vibration_block_s``;
- ``shot``: one row at the end of every cycle.

Everything is generated vectorised per block from ``numpy.random.Generator(PCG64(...))``
streams derived from ``seed`` (one per stream), so a seed and options give identical data,
and every call to :meth:`SimulatedCell.blocks` restarts the simulation.
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

import numpy as np

from renkei.edge.sources.base import STREAMS, SampleBlock, SourceError, Stream
from renkei.edge.sources.faults import FAULT_CODES, FaultSchedule, FaultSpec
from renkei.edge.sources.sim_process import BASE_SLOW_UNITS, SHOT_UNITS, CycleSchedule, SlowModel
from renkei.edge.sources.sim_state import MACHINE_STATE_FIELD, StopSpec, machine_state
from renkei.edge.sources.sim_vibration import VibrationModel

__all__ = [
    "BASE_SLOW_CHANNELS",
    "FAULT_CODES",
    "VIBRATION_FIELD",
    "FaultSpec",
    "SimulatedCell",
    "SimulatorOptions",
    "StopSpec",
]

VIBRATION_FIELD: Final = "pump_vibration_g"
_DEFAULT_SETPOINTS: Final = (200.0, 215.0, 225.0, 235.0, 240.0)
#: Slow channels without extras (5 barrel zones + the base channels).
BASE_SLOW_CHANNELS: Final = len(_DEFAULT_SETPOINTS) + len(BASE_SLOW_UNITS)
_ORDER: Final = {s: i for i, s in enumerate(STREAMS)}


@dataclass(frozen=True, slots=True, kw_only=True)
class SimulatorOptions:
    """Settings of :class:`SimulatedCell` (all keyword-only; defaults = the reference cell).

    Attributes:
        seed: random seed.
        start_ms: epoch ms of simulation time 0 (default: wall clock at ``blocks()``).
        duration_s: stop after this many simulated seconds (default: never).
        streams: which streams to produce.
        slow_rate_hz: slow sampling rate, (0, 1000] Hz.
        slow_block_s: slow block length, s (a whole number of samples).
        barrel_setpoints_C: barrel zone set-points, °C (one channel each).
        heater_zone: 1-based barrel zone whose band fails in ``heater_band_failure``.
        mold_setpoint_C: mold temperature set-point, °C.
        extra_slow_channels: extra slow channels (21 -> 32 slow channels in total).
        vibration_rate_hz: waveform sampling rate, >= 5000 Hz.
        vibration_block_s: waveform block length, s (whole ms and whole samples).
        pump_speed_rpm: pump shaft speed, rpm.
        bpfo_order: outer-race defect frequency / shaft frequency.
        resonance_hz: resonance excited by bearing impacts, Hz (< 0.45 x rate).
        cycle_time_s: nominal machine cycle, s.
        cycle_jitter_s: standard deviation of the cycle time, s.
        initial_shot_count: shot counter before the first simulated shot.
        faults: injected faults.
        stops: scheduled stops (idle or down; :mod:`renkei.edge.sources.sim_state`).
        machine_state: add the slow channel ``machine_state`` (1 running, 2 idle, 3 down).

    Raises:
        SourceError: (``__post_init__``) on out-of-range settings.
    """

    seed: int = 0
    start_ms: int | None = None
    duration_s: float | None = None
    streams: tuple[Stream, ...] = STREAMS
    slow_rate_hz: float = 10.0
    slow_block_s: float = 1.0
    barrel_setpoints_C: tuple[float, ...] = _DEFAULT_SETPOINTS
    heater_zone: int = 3
    mold_setpoint_C: float = 50.0
    extra_slow_channels: int = 0
    vibration_rate_hz: float = 10_000.0
    vibration_block_s: float = 1.0
    pump_speed_rpm: float = 1480.0
    bpfo_order: float = 3.58
    resonance_hz: float = 3000.0
    cycle_time_s: float = 20.0
    cycle_jitter_s: float = 0.1
    initial_shot_count: int = 0
    faults: tuple[FaultSpec, ...] = ()
    stops: tuple[StopSpec, ...] = ()
    machine_state: bool = False

    def __post_init__(self) -> None:
        def need(ok: bool, what: str) -> None:
            if not ok:
                raise SourceError(f"SimulatorOptions: {what}")

        need(all(s in STREAMS for s in self.streams), f"streams must be in {STREAMS}")
        need(self.duration_s is None or self.duration_s > 0, "duration_s must be > 0")
        need(0 < self.slow_rate_hz <= 1000, "slow_rate_hz must be in (0, 1000]")
        need(
            _whole(self.slow_block_s * self.slow_rate_hz) >= 1,
            "slow_block_s * slow_rate_hz must be a whole number >= 1",
        )
        need(len(self.barrel_setpoints_C) >= 1, "barrel_setpoints_C must not be empty")
        need(
            1 <= self.heater_zone <= len(self.barrel_setpoints_C),
            f"heater_zone must be in 1..{len(self.barrel_setpoints_C)}",
        )
        need(self.extra_slow_channels >= 0, "extra_slow_channels must be >= 0")
        need(self.vibration_rate_hz >= 5000, "vibration_rate_hz must be >= 5000")
        need(
            _whole(self.vibration_block_s * self.vibration_rate_hz) >= 1
            and _whole(self.vibration_block_s * 1000) >= 1,
            "vibration_block_s must be whole milliseconds and whole samples",
        )
        need(
            0 < self.resonance_hz < 0.45 * self.vibration_rate_hz,
            "resonance_hz must be in (0, 0.45 * vibration_rate_hz)",
        )
        need(
            self.pump_speed_rpm > 0 and self.bpfo_order > 0,
            "pump_speed_rpm and bpfo_order must be > 0",
        )
        need(self.cycle_time_s >= 2.0, "cycle_time_s must be >= 2 s")
        need(
            0 <= self.cycle_jitter_s <= 0.05 * self.cycle_time_s,
            "cycle_jitter_s must be in [0, 0.05 * cycle_time_s]",
        )
        need(all(isinstance(f, FaultSpec) for f in self.faults), "faults must be FaultSpec")
        need(all(isinstance(s, StopSpec) for s in self.stops), "stops must be StopSpec")


def _whole(x: float) -> int:
    """``x`` as an int if it is (within 1e-9) a whole number, else -1."""
    r = round(x)
    return int(r) if math.isclose(x, r, rel_tol=0, abs_tol=1e-9) else -1


class SimulatedCell:
    """The simulated cell as a :class:`~renkei.edge.sources.base.Source`.

    ``blocks()`` interleaves the enabled streams in order of *availability*: a block is
    yielded at its :attr:`~renkei.edge.sources.base.SampleBlock.end_ms` (ties: slow, vibration,
    shot). Infinite unless ``duration_s`` is set.
    """

    def __init__(self, options: SimulatorOptions | None = None) -> None:
        self.options = options or SimulatorOptions()
        probe = SlowModel(
            barrel_setpoints_C=self.options.barrel_setpoints_C,
            heater_zone=self.options.heater_zone,
            mold_setpoint_C=self.options.mold_setpoint_C,
            extra_channels=self.options.extra_slow_channels,
            faults=FaultSchedule(()),
            rng=np.random.default_rng(0),
        )
        state = {MACHINE_STATE_FIELD: "state"} if self.options.machine_state else {}
        self._slow_units = MappingProxyType(dict(probe.units) | state)
        self._units = MappingProxyType(
            {
                **self.stream_fields("slow"),
                **self.stream_fields("vibration"),
                **self.stream_fields("shot"),
            }
        )

    def stream_fields(self, stream: Stream) -> Mapping[str, str]:
        """Field name -> unit of one stream (empty if the stream is disabled)."""
        if stream not in self.options.streams:
            return {}
        if stream == "slow":
            return self._slow_units
        if stream == "vibration":
            return {VIBRATION_FIELD: "g_n"}
        return dict(SHOT_UNITS)

    @property
    def fields(self) -> Mapping[str, str]:
        """Field name -> unit over all enabled streams.

        ``mold_temp_C`` appears in both ``slow`` (instantaneous) and ``shot`` (cycle mean);
        use :meth:`stream_fields` for the per-stream sets.
        """
        return self._units

    def blocks(self) -> Iterator[SampleBlock]:
        """Yield the blocks of all enabled streams in time order (see class docstring)."""
        opts = self.options
        start_ms = opts.start_ms if opts.start_ms is not None else int(time.time() * 1000)
        seeds = np.random.SeedSequence(opts.seed).spawn(4)
        rngs = [np.random.Generator(np.random.PCG64(s)) for s in seeds]
        faults = FaultSchedule(opts.faults)
        cycles = CycleSchedule(
            cycle_time_s=opts.cycle_time_s,
            jitter_s=opts.cycle_jitter_s,
            mold_setpoint_C=opts.mold_setpoint_C,
            initial_shot_count=opts.initial_shot_count,
            faults=faults,
            rng=rngs[0],
            stops=opts.stops,
        )
        state = _Progress(
            shot_next=0 if "shot" in opts.streams else 1 << 62,
            slow_t_s=0.0 if "slow" in opts.streams else math.inf,
        )
        gens: list[Iterator[SampleBlock]] = []
        if "slow" in opts.streams:
            model = SlowModel(
                barrel_setpoints_C=opts.barrel_setpoints_C,
                heater_zone=opts.heater_zone,
                mold_setpoint_C=opts.mold_setpoint_C,
                extra_channels=opts.extra_slow_channels,
                faults=faults,
                rng=rngs[1],
            )
            gens.append(_slow_blocks(opts, start_ms, model, cycles, faults, state))
        if "vibration" in opts.streams:
            vib = VibrationModel(
                fs_hz=opts.vibration_rate_hz,
                shaft_hz=opts.pump_speed_rpm / 60.0,
                bpfo_order=opts.bpfo_order,
                resonance_hz=opts.resonance_hz,
                faults=faults,
                rng=rngs[2],
            )
            gens.append(_vibration_blocks(opts, start_ms, vib, faults))
        if "shot" in opts.streams:
            gens.append(_shot_blocks(opts, start_ms, cycles, faults, state))
        yield from heapq.merge(*gens, key=lambda b: (b.end_ms, _ORDER[b.stream]))


@dataclass(slots=True)
class _Progress:
    """How far the two consumers of the cycle schedule have got (for releasing cycles)."""

    shot_next: int
    slow_t_s: float


def _slow_blocks(
    opts: SimulatorOptions,
    start_ms: int,
    model: SlowModel,
    cycles: CycleSchedule,
    faults: FaultSchedule,
    state: _Progress,
) -> Iterator[SampleBlock]:
    rate = opts.slow_rate_hz
    n_block = _whole(opts.slow_block_s * rate)
    limit = math.inf if opts.duration_s is None else opts.duration_s
    i0 = 0
    while i0 / rate < limit:
        idx = np.arange(i0, i0 + n_block)
        t_s = idx / rate
        t_s = t_s[t_s < limit]
        covering = cycles.covering(float(t_s[0]), float(t_s[-1]))
        fields = model.sample(t_s, covering)
        if opts.machine_state:
            spans = [(c.start_s, c.end_s) for c in covering]
            fields[MACHINE_STATE_FIELD] = machine_state(t_s, spans, opts.stops)
        state.slow_t_s = float(t_s[0])
        cycles.release_before(state.shot_next, state.slow_t_s)
        yield SampleBlock(
            stream="slow",
            t_ms=start_ms + np.round(t_s * 1000.0).astype(np.int64),
            fields=fields,
            labels=faults.labels(t_s),
            sample_rate_hz=None,
        )
        i0 += n_block


def _vibration_blocks(
    opts: SimulatorOptions, start_ms: int, model: VibrationModel, faults: FaultSchedule
) -> Iterator[SampleBlock]:
    fs = opts.vibration_rate_hz
    n_block = _whole(opts.vibration_block_s * fs)
    limit = math.inf if opts.duration_s is None else opts.duration_s
    n0 = 0
    while n0 / fs < limit:
        n = min(n_block, math.ceil(limit * fs) - n0) if opts.duration_s else n_block
        x = model.block(n0, n)
        t_s = (n0 + np.arange(n)) / fs
        yield SampleBlock(
            stream="vibration",
            t_ms=np.array([start_ms + round(n0 * 1000.0 / fs)], dtype=np.int64),
            fields={VIBRATION_FIELD: x},
            labels=faults.labels(t_s),
            sample_rate_hz=fs,
        )
        n0 += n


def _shot_blocks(
    opts: SimulatorOptions,
    start_ms: int,
    cycles: CycleSchedule,
    faults: FaultSchedule,
    state: _Progress,
) -> Iterator[SampleBlock]:
    limit = math.inf if opts.duration_s is None else opts.duration_s
    k = 0
    while True:
        cycle = cycles.get(k)
        if cycle.end_s > limit:
            return
        k += 1
        state.shot_next = k
        cycles.release_before(state.shot_next, state.slow_t_s)
        t = np.array([cycle.end_s])
        yield SampleBlock(
            stream="shot",
            t_ms=start_ms + np.round(t * 1000.0).astype(np.int64),
            fields={name: np.array([v]) for name, v in cycle.shot.items()},
            labels=faults.labels(np.array([cycle.start_s])),
            sample_rate_hz=None,
        )
