"""The simulator's scheduled stops and ``machine_state`` signal (pure logic)."""

from __future__ import annotations

import numpy as np
import pytest

from renkei.edge.sources.base import SourceError
from renkei.edge.sources.simulated import SimulatedCell, SimulatorOptions, StopSpec


def test_stops_pause_cycles_and_machine_state_follows() -> None:
    stops = (
        StopSpec(state="down", start_s=60, duration_s=60),
        StopSpec(state="idle", start_s=200, duration_s=40),
    )
    opts = SimulatorOptions(
        seed=1,
        start_ms=0,
        duration_s=300,
        streams=("slow", "shot"),
        machine_state=True,
        stops=stops,
    )
    cell = SimulatedCell(opts)
    assert cell.stream_fields("slow")["machine_state"] == "state"
    state, times, shots = [], [], []
    for b in cell.blocks():
        if b.stream == "slow":
            state.append(b.fields["machine_state"])
            times.append(b.t_ms)
        else:
            shots.append((int(b.t_ms[0]) / 1000, float(b.fields["cycle_time_s"][0])))
    st, t = np.concatenate(state), np.concatenate(times) / 1000
    # no cycle starts inside a stop; the one in progress at its start finishes
    starts = [end - ct for end, ct in shots]
    assert not any(60 <= s < 120 - 1e-3 or 200 <= s < 240 - 1e-3 for s in starts), starts
    # running exactly while a cycle runs: the gaps are the stops' states
    running = np.zeros(t.shape, bool)
    for end, ct in shots:
        running |= (t >= end - ct) & (t < end)
    mismatch = (st == 1) != (running | (t >= shots[-1][0]))
    assert mismatch.sum() <= 2 * len(shots)  # a sample on a ms-rounded cycle boundary
    assert set(np.unique(st[(t >= 81) & (t < 120)])) == {3.0}
    assert set(np.unique(st[(t >= 221) & (t < 240)])) == {2.0}


def test_bad_stop_and_no_signal_by_default() -> None:
    with pytest.raises(SourceError, match="duration_s"):
        StopSpec(state="down", start_s=0, duration_s=0)
    assert "machine_state" not in SimulatedCell(SimulatorOptions()).stream_fields("slow")
