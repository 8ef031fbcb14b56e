"""The OEE plan of one machine: its ``oee`` config plus the source's own status signals.

:func:`oee_plan` turns a machine's config into a :class:`renkei.edge.features.oee.OeePlan`
(fallbacks and bases: :mod:`renkei.edge.config.oee`). EUROMAP 77 (``preset: euromap77``)
carries its own status: ``machine_mode`` (OPC 40083 MachineModeEnumeration: 1 AUTOMATIC
and 2 SEMI_AUTOMATIC = running, 3 MANUAL and 4 SETUP = setup, 5 SLEEP = idle, 0 OTHER =
unknown), the job's ``good_parts``/``bad_parts`` counters and ``expected_cycle_time_s``.
"""

from __future__ import annotations

from typing import Final

from renkei.edge.config import MachineConfig
from renkei.edge.config.oee import RunStateConfig
from renkei.edge.features.oee import OeePlan, RunStates, State
from renkei.edge.sources.live.opcua.config import OpcuaSourceConfig

__all__ = ["EUROMAP77_RUN_STATE", "oee_plan"]

EUROMAP77_RUN_STATE: Final = RunStateConfig(
    signal="machine_mode", running=[1, 2], setup=[3, 4], idle=[5], basis="status"
)
"""EUROMAP 77 MachineMode as the run state (the module docstring)."""


def _states(cfg: RunStateConfig) -> RunStates:
    states: dict[float, State] = {}
    for name in ("running", "idle", "setup", "down"):
        state: State = name
        states.update(dict.fromkeys(getattr(cfg, name), state))
    return RunStates(signal=cfg.signal, states=states, basis=cfg.basis)


def oee_plan(machine: MachineConfig, *, has_model: bool, time_scale: float = 1.0) -> OeePlan:
    """The OEE plan of ``machine``.

    ``has_model``: a model scores it (the quality proxy); ``time_scale``: published ms per
    source ms (``1 / speed`` when the pipeline re-bases a faster-than-real-time source).
    """
    cfg = machine.oee
    euromap = isinstance(machine.source, OpcuaSourceConfig) and machine.source.preset == (
        "euromap77"
    )
    run_state = cfg.run_state or (EUROMAP77_RUN_STATE if euromap else None)
    good = cfg.good_count or ("good_parts" if euromap else None)
    reject = cfg.reject_count or ("bad_parts" if euromap else None)
    return OeePlan(
        interval_ms=round(cfg.interval_s * 1000),
        hold_ms=round(cfg.hold_s * 1000),
        grace_ms=min(5_000, round(cfg.interval_s * 1000)),
        run_state=None if run_state is None else _states(run_state),
        ideal_cycle_time_s=cfg.ideal_cycle_time_s,
        nominal_signal="expected_cycle_time_s" if euromap else None,
        good_signal=good,
        reject_signal=reject,
        proxy_quality=has_model,
        time_scale=time_scale,
    )
