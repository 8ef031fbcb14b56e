"""Process model of the simulated injection-molding cell: machine cycles, shots, slow signals.

A cycle (nominal ``cycle_time_s``, default 20 s) has the phases, as fractions of the nominal
cycle time: mold close 5 %, injection 6 %, holding 15 %, cooling (screw dosing during its
first 30 % of the cycle) and mold open / eject 10 %. Typical magnitudes follow a small
hydraulic machine (~80 t clamp); the part weight mimics the Kassel CPC reference runs
(84.7 g). The numbers are plausible, not calibrated to a specific machine.

Fault effects at severity ``s`` (0..1), see :mod:`renkei.edge.sources.faults`:

- ``heater_band_failure``: the band of ``heater_zone`` loses ``s`` of its power: that zone
  sags by up to 30 °C (neighbours 6 °C), total ``heater_current_A`` drops (the failed band)
  while neighbours draw more; colder melt -> longer dosing (+1.2 s), higher dosing motor
  current (+6 A), lower cavity pressure peak (-25 bar).
- ``cooling_blockage``: mold temperature +12 °C, cycle +4 s (longer cooling), part weight
  -0.5 g; with extra channels, cooling circuit 1 flow -60 % and return temperature +8 °C.
- ``mold_wear``: flash -> part weight +1.2 g, cushion -1.5 mm, cavity pressure peak
  -60 bar, injection time +0.1 s.
- ``bearing_wear``: oil temperature +2 °C (friction); the vibration effect is in
  :mod:`renkei.edge.sources.sim_vibration`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from renkei.edge.sources.faults import FaultSchedule
from renkei.edge.sources.sim_state import StopSpec, resume_at

__all__ = ["BASE_SLOW_UNITS", "SHOT_UNITS", "Cycle", "CycleSchedule", "SlowModel"]

FloatArray = npt.NDArray[np.float64]

#: Shot-stream fields and units, in output order.
SHOT_UNITS: Final = {
    "cycle_time_s": "s",
    "cushion_mm": "mm",
    "injection_time_s": "s",
    "dosing_time_s": "s",
    "cavity_pressure_peak_bar": "bar",
    "mold_temp_C": "°C",
    "part_weight_g": "g",
    "shot_count": "",
}

_FRAC_CLOSE, _FRAC_INJ, _FRAC_HOLD, _FRAC_DOSE, _FRAC_OPEN = 0.05, 0.06, 0.15, 0.30, 0.10


@dataclass(frozen=True, slots=True)
class Cycle:
    """One machine cycle. Times in simulation seconds; ``shot`` = shot-stream row."""

    index: int
    start_s: float
    inj_start_s: float
    inj_end_s: float
    hold_end_s: float
    dose_end_s: float
    open_start_s: float
    end_s: float
    shot: dict[str, float]


class CycleSchedule:
    """Generates cycles one after another (lazily) and keeps the ones still needed."""

    def __init__(
        self,
        *,
        cycle_time_s: float,
        jitter_s: float,
        mold_setpoint_C: float,
        initial_shot_count: int,
        faults: FaultSchedule,
        rng: np.random.Generator,
        stops: Sequence[StopSpec] = (),
    ) -> None:
        self._stops = tuple(stops)
        self._T = cycle_time_s
        self._jitter = jitter_s
        self._mold_C = mold_setpoint_C
        self._count0 = initial_shot_count
        self._faults = faults
        self._rng = rng
        self._cycles: list[Cycle] = []
        self._next_start = 0.0
        self._next_index = 0

    def _new_cycle(self) -> Cycle:
        T, rng, f = self._T, self._rng, self._faults
        t0 = resume_at(self._next_start, self._stops) if self._stops else self._next_start
        heat = f.severity_at("heater_band_failure", t0)
        cool = f.severity_at("cooling_blockage", t0)
        wear = f.severity_at("mold_wear", t0)
        z = rng.standard_normal(7)
        inj = T * _FRAC_INJ + 0.01 * z[0] + 0.1 * wear
        dose = T * _FRAC_DOSE + 0.08 * z[1] + 1.2 * heat
        duration = T + self._jitter * z[2] + 4.0 * cool
        inj_start = t0 + T * _FRAC_CLOSE
        hold_end = inj_start + inj + T * _FRAC_HOLD
        open_start = t0 + duration - T * _FRAC_OPEN
        shot = {
            "cycle_time_s": duration,
            "cushion_mm": 5.0 + 0.05 * z[3] - 1.5 * wear,
            "injection_time_s": inj,
            "dosing_time_s": dose,
            "cavity_pressure_peak_bar": 450.0 + 4.0 * z[4] - 60.0 * wear - 25.0 * heat,
            "mold_temp_C": self._mold_C + 0.2 * z[5] + 12.0 * cool,
            "part_weight_g": 84.7 + 0.12 * z[6] + 1.2 * wear - 0.5 * cool,
            "shot_count": float(self._count0 + self._next_index + 1),
        }
        cycle = Cycle(
            index=self._next_index,
            start_s=t0,
            inj_start_s=inj_start,
            inj_end_s=inj_start + inj,
            hold_end_s=hold_end,
            dose_end_s=min(hold_end + dose, open_start),
            open_start_s=open_start,
            end_s=t0 + duration,
            shot=shot,
        )
        self._next_start = cycle.end_s
        self._next_index += 1
        return cycle

    def get(self, index: int) -> Cycle:
        """Cycle number ``index`` (0-based), generating it if needed.

        Raises:
            IndexError: if it was already released by :meth:`release_before`.
        """
        while self._next_index <= index:
            self._cycles.append(self._new_cycle())
        first = self._cycles[0].index if self._cycles else self._next_index
        if index < first:
            raise IndexError(f"cycle {index} was already released")
        return self._cycles[index - first]

    def covering(self, t0_s: float, t1_s: float) -> list[Cycle]:
        """Cycles overlapping ``[t0_s, t1_s]``, generating them as needed."""
        while self._next_start <= t1_s:
            self._cycles.append(self._new_cycle())
        return [c for c in self._cycles if c.end_s > t0_s and c.start_s <= t1_s]

    def release_before(self, index: int, t_s: float) -> None:
        """Forget cycles with index < ``index`` that also ended before ``t_s``."""
        keep = 0
        while (
            keep < len(self._cycles)
            and self._cycles[keep].index < index
            and self._cycles[keep].end_s < t_s
        ):
            keep += 1
        if keep:
            del self._cycles[:keep]


def _cycle_arrays(cycles: list[Cycle], t_s: FloatArray) -> dict[str, FloatArray]:
    """Per-sample phase boundaries of the cycle each time ``t_s`` falls in.

    No cycle (a scheduled stop): every phase long past, so the machine is at rest.
    """
    if not cycles:
        past = np.full(t_s.shape, -1e9)
        names = ("inj_start_s", "inj_end_s", "hold_end_s", "dose_end_s", "open_start_s")
        return {name: past for name in (*names, "start_s")}
    starts = np.array([c.start_s for c in cycles])
    k = np.clip(np.searchsorted(starts, t_s, side="right") - 1, 0, len(cycles) - 1)
    out = {}
    for name in ("inj_start_s", "inj_end_s", "hold_end_s", "dose_end_s", "open_start_s"):
        out[name] = np.array([getattr(c, name) for c in cycles])[k]
    out["start_s"] = starts[k]
    return out


BASE_SLOW_UNITS: Final = {
    "injection_pressure_bar": "bar",
    "clamp_force_kN": "kN",
    "motor_current_A": "A",
    "heater_current_A": "A",
    "oil_temp_C": "°C",
    "mold_temp_C": "°C",
}


class SlowModel:
    """Vectorised slow-signal generator (one call per block of samples).

    Channels: ``barrel_zone{i}_temp_C`` (one per set-point), the :data:`BASE_SLOW_UNITS`,
    then ``extra_channels`` cycling through ``hot_runner_zone{j}_temp_C``,
    ``cooling_circuit{j}_flow_l_min`` and ``cooling_circuit{j}_return_temp_C``.
    """

    def __init__(
        self,
        *,
        barrel_setpoints_C: tuple[float, ...],
        heater_zone: int,
        mold_setpoint_C: float,
        extra_channels: int,
        faults: FaultSchedule,
        rng: np.random.Generator,
    ) -> None:
        self._sp = np.asarray(barrel_setpoints_C, dtype=np.float64)
        self._zone = heater_zone - 1
        self._mold_C = mold_setpoint_C
        self._faults = faults
        self._rng = rng
        nz = self._sp.size
        self._pid_period_s = rng.uniform(90.0, 150.0, nz)  # heater PID limit-cycle
        self._pid_phase = rng.uniform(0.0, 2 * np.pi, nz)
        self.units: dict[str, str] = {f"barrel_zone{i + 1}_temp_C": "°C" for i in range(nz)}
        self.units.update(BASE_SLOW_UNITS)
        self._extras: list[tuple[str, int]] = []
        kinds = (
            ("hot_runner_zone{}_temp_C", "°C"),
            ("cooling_circuit{}_flow_l_min", "L/min"),
            ("cooling_circuit{}_return_temp_C", "°C"),
        )
        for e in range(extra_channels):
            pattern, unit = kinds[e % 3]
            j = e // 3 + 1
            self.units[pattern.format(j)] = unit
            self._extras.append((pattern.format(j), e % 3))

    def sample(self, t_s: FloatArray, cycles: list[Cycle]) -> dict[str, FloatArray]:
        """Values of every channel at times ``t_s`` (s, shape (n,)) -> {name: (n,)}."""
        n, f, rng = t_s.size, self._faults, self._rng
        noise = rng.standard_normal((len(self.units), n))
        heat = f.severity("heater_band_failure", t_s)
        cool = f.severity("cooling_blockage", t_s)
        wear = f.severity("bearing_wear", t_s)
        c = _cycle_arrays(cycles, t_s)
        inject = (t_s >= c["inj_start_s"]) & (t_s < c["inj_end_s"])
        hold = (t_s >= c["inj_end_s"]) & (t_s < c["hold_end_s"])
        dose = (t_s >= c["hold_end_s"]) & (t_s < c["dose_end_s"])
        closed = (t_s >= c["start_s"] + 0.5 * (c["inj_start_s"] - c["start_s"])) & (
            t_s < c["open_start_s"]
        )
        moving = ~closed & ~inject
        out: dict[str, FloatArray] = {}
        # barrel zones: set-point + PID limit cycle + noise; failed band sags
        nz = self._sp.size
        osc = np.sin(
            2 * np.pi * t_s[None, :] / self._pid_period_s[:, None] + self._pid_phase[:, None]
        )
        sag = np.zeros(nz)
        sag[self._zone] = 30.0
        if self._zone > 0:
            sag[self._zone - 1] = 6.0
        if self._zone < nz - 1:
            sag[self._zone + 1] = 6.0
        temps = self._sp[:, None] + 0.4 * osc + 0.15 * noise[:nz] - sag[:, None] * heat[None, :]
        for i in range(nz):
            out[f"barrel_zone{i + 1}_temp_C"] = temps[i]
        ramp = np.clip(
            (t_s - c["inj_start_s"]) / np.maximum(c["inj_end_s"] - c["inj_start_s"], 1e-3), 0.0, 1.0
        )
        out["injection_pressure_bar"] = (
            np.select([inject, hold, dose], [300.0 + 800.0 * ramp, 600.0, 80.0], 5.0)
            * (1 + 0.01 * noise[nz])
            + 2.0 * noise[nz]
        )
        out["clamp_force_kN"] = np.where(closed, 800.0, 0.0) + 2.0 * noise[nz + 1]
        out["motor_current_A"] = (
            np.select([inject, hold, dose, moving], [48.0, 30.0, 35.0 + 6.0 * heat, 25.0], 12.0)
            + 0.5 * noise[nz + 2]
        )
        duty = 0.45 - 0.05 * osc  # PID output, anti-phase with the temperature
        band_amps = 8.0 * duty
        band_amps[self._zone] *= 1.0 - heat
        for nb in (self._zone - 1, self._zone + 1):
            if 0 <= nb < nz:
                band_amps[nb] *= 1.0 + 0.3 * heat
        out["heater_current_A"] = band_amps.sum(axis=0) + 0.3 * noise[nz + 3]
        out["oil_temp_C"] = (
            45.0 + 1.5 * np.sin(2 * np.pi * t_s / 900.0) + 2.0 * wear + 0.05 * noise[nz + 4]
        )
        since_inj = np.maximum(t_s - c["inj_start_s"], 0.0)
        out["mold_temp_C"] = (
            self._mold_C
            + 12.0 * cool
            + 0.8 * np.exp(-since_inj / 5.0) * (t_s >= c["inj_start_s"])
            + 0.1 * noise[nz + 5]
        )
        base = nz + len(BASE_SLOW_UNITS)
        for e, (name, kind) in enumerate(self._extras):
            z = noise[base + e]
            first = name.startswith("cooling_circuit1_")
            if kind == 0:
                out[name] = 230.0 + 0.3 * z
            elif kind == 1:
                out[name] = 12.0 * (1.0 - (0.6 * cool if first else 0.0)) + 0.1 * z
            else:
                out[name] = 30.0 + (8.0 * cool if first else 0.0) + 0.1 * z
        return out
