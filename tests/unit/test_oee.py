"""OEE arithmetic (renkei.core.oee) and the gateway's per-interval accounting
(renkei.edge.features.oee), with exact numbers."""

from __future__ import annotations

import numpy as np
import pytest

from renkei.core.influx import contract
from renkei.core.oee import BASIS_CODES, BASIS_NAMES, OeeTotals, compute_oee
from renkei.edge.features.oee import OeeAccumulator, OeePlan, RunStates


def test_worked_example_iso_22400_terms() -> None:
    """The textbook shift: PBT 420 min, APT 373 min, ideal 1.0 s, 19 271 produced, 423 rejects.

    A = APT/PBT, P = ideal x PQ / APT, Q = GQ/PQ (ISO 22400-2:2014), OEE = A x P x Q,
    which equals ideal x GQ / PBT.
    """
    r = compute_oee(
        OeeTotals(
            planned_s=420 * 60,
            run_s=373 * 60,
            shots=19_271,
            ideal_cycle_time_s=1.0,
            good=18_848,
            reject=423,
        )
    )
    assert r.availability == pytest.approx(373 / 420, abs=1e-12)
    assert r.performance == pytest.approx(19_271 / 22_380, abs=1e-12)
    assert r.quality == pytest.approx(18_848 / 19_271, abs=1e-12)
    assert r.oee == pytest.approx(18_848 / 25_200, abs=1e-12)  # 0.747936...
    assert round(r.oee or 0, 4) == 0.7479
    assert (r.availability_basis, r.performance_basis, r.quality_basis) == (
        "run_state",
        "mold_registry",
        "counts",
    )


def test_down_whole_window_no_ideal_no_counts() -> None:
    r = compute_oee(OeeTotals(planned_s=600, run_s=0, shots=0, quality_basis="counts"))
    assert r.availability == 0.0
    assert r.performance is None and r.performance_basis == "unknown"
    assert r.quality is None and r.quality_basis == "unknown"
    assert r.oee is None


def test_bad_totals_are_refused_with_the_numbers() -> None:
    with pytest.raises(ValueError, match="run_s=700"):
        OeeTotals(planned_s=600, run_s=700, shots=0)
    with pytest.raises(ValueError, match="ideal_cycle_time_s"):
        OeeTotals(planned_s=600, run_s=0, shots=0, ideal_cycle_time_s=0)


def test_basis_codes_round_trip() -> None:
    assert {BASIS_NAMES[c] for c in BASIS_CODES.values()} == set(BASIS_CODES)


# --------------------------------------------------------------------------- gateway

RUN = RunStates(signal="state", states={1.0: "running", 2.0: "idle", 0.0: "down", 3.0: "setup"})


def _slow(acc: OeeAccumulator, t_s: np.ndarray, **cols: np.ndarray) -> None:
    acc.add_slow((t_s * 1000).astype(np.int64), cols)


def test_run_state_seconds_shots_counts_per_interval() -> None:
    plan = OeePlan(
        interval_ms=60_000,
        hold_ms=5_000,
        grace_ms=0,
        run_state=RUN,
        ideal_cycle_time_s=10.0,
        good_signal="good",
        reject_signal="bad",
    )
    acc = OeeAccumulator(plan)
    t = np.arange(0, 121, 1.0)  # 1 Hz for two minutes (t = 0 .. 120 s)
    state = np.where(t < 30, 1.0, np.where(t < 45, 0.0, np.where(t < 50, 3.0, 1.0)))
    good = np.floor(t / 12)  # +1 every 12 s
    bad = np.where(t >= 100, 2.0, 0.0)
    acc.add_shots([10_000, 20_000, 70_000, 80_000, 90_000])
    _slow(acc, t, state=state, good=good, bad=bad)
    rows = acc.close()
    assert [r[0] for r in rows] == [60_000, 120_000]
    first, second = (r[1] for r in rows)
    assert first["planned_s"] == 60.0
    assert (first["run_s"], first["down_s"], first["setup_s"], first["idle_s"]) == (
        40.0,
        15.0,
        5.0,
        0.0,
    )
    assert (first["shots"], first["ideal_s"], first["ideal_run_s"]) == (2.0, 20.0, 40.0)
    assert (first["good"], first["reject"]) == (4.0, 0.0)  # counter 0 -> 4 within [0, 60)
    assert second["run_s"] == 60.0 and second["shots"] == 3.0
    assert (second["good"], second["reject"]) == (5.0, 2.0)
    for row in (first, second):
        assert row["availability_basis"] == BASIS_CODES["run_state"]
        assert row["performance_basis"] == BASIS_CODES["mold_registry"]
        assert row["quality_basis"] == BASIS_CODES["counts"]
        contract.oee_point(
            contract.MachineTags(firm="f", site="s", area="a", line="l", machine="m", gw="g"),
            time_ms=1,
            fields=row,
        )  # every row fits the measurement contract


def test_down_whole_window_without_ideal_or_counts_is_labelled() -> None:
    plan = OeePlan(interval_ms=60_000, hold_ms=5_000, grace_ms=0, run_state=RUN)
    acc = OeeAccumulator(plan)
    t = np.arange(0, 61, 1.0)
    _slow(acc, t, state=np.zeros_like(t))
    acc.add_scored(30_000, flagged=False)
    acc.add_scored(40_000, flagged=True)
    (end, row), *_ = acc.close()
    assert end == 60_000
    assert (row["planned_s"], row["run_s"], row["down_s"]) == (60.0, 0.0, 60.0)
    assert "ideal_s" not in row and row["performance_basis"] == BASIS_CODES["unknown"]
    # no counts reported: the quality proxy, labelled as such
    assert (row["good"], row["reject"]) == (1.0, 1.0)
    assert row["quality_basis"] == BASIS_CODES["proxy_anomaly_rate"]
    r = compute_oee(
        OeeTotals(
            planned_s=row["planned_s"],
            run_s=row["run_s"],
            shots=row["shots"],
            good=row["good"],
            reject=row["reject"],
            quality_basis="proxy_anomaly_rate",
        )
    )
    assert (r.availability, r.performance, r.performance_basis, r.oee) == (
        0.0,
        None,
        "unknown",
        None,
    )
    assert r.quality == 0.5 and r.quality_basis == "proxy_anomaly_rate"


def test_without_run_state_the_proxy_is_data_arrival() -> None:
    acc = OeeAccumulator(OeePlan(interval_ms=60_000, hold_ms=2_000, grace_ms=0))
    t = np.concatenate([np.arange(0, 20, 1.0), np.arange(40, 61, 1.0)])  # 20 s silent
    _slow(acc, t, x=np.ones_like(t))
    (_, row), *_ = acc.close()
    # covered: [0, 21) (the last reading holds 2 s) and [40, 60); gap [21, 40)
    assert (row["planned_s"], row["run_s"]) == (60.0, 41.0)
    assert row["availability_basis"] == BASIS_CODES["proxy_data_arrival"]
    assert row["quality_basis"] == BASIS_CODES["unknown"] and "good" not in row


def test_unknown_values_and_gaps_are_not_planned_time() -> None:
    acc = OeeAccumulator(OeePlan(interval_ms=60_000, hold_ms=5_000, grace_ms=0, run_state=RUN))
    t = np.arange(0, 61, 1.0)
    state = np.where(t < 30, 1.0, 9.0)  # 9: in no list
    _slow(acc, t, state=state)
    (_, row), *_ = acc.close()
    assert (row["planned_s"], row["run_s"], row["unknown_s"]) == (30.0, 30.0, 30.0)
