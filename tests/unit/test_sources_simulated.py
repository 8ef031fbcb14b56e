"""The injection-molding cell simulator: reproducibility, structure, labels, fault effects."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest

from renkei.edge.features import vibration_features
from renkei.edge.sources import (
    BASE_SLOW_CHANNELS,
    FAULT_CODES,
    FIELD_NAME_RE,
    FaultSpec,
    SampleBlock,
    SimulatedCell,
    SimulatorOptions,
    SourceError,
)

START = 1_700_000_000_000


def _run(**kw: object) -> list[SampleBlock]:
    opts = SimulatorOptions(start_ms=START, **kw)  # type: ignore[arg-type]
    return list(SimulatedCell(opts).blocks())


def _stream(blocks: list[SampleBlock], stream: str) -> list[SampleBlock]:
    return [b for b in blocks if b.stream == stream]


def _concat(blocks: list[SampleBlock], field: str) -> np.ndarray:
    return np.concatenate([b.fields[field] for b in blocks])


def test_same_seed_same_data_other_seed_differs() -> None:
    a = _run(seed=7, duration_s=45)
    b = _run(seed=7, duration_s=45)
    c = _run(seed=8, duration_s=45)
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x.stream == y.stream
        assert np.array_equal(x.t_ms, y.t_ms)
        assert all(np.array_equal(x.fields[k], y.fields[k]) for k in x.fields)
    va, vc = _stream(a, "vibration")[0], _stream(c, "vibration")[0]
    assert not np.array_equal(va.fields["pump_vibration_g"], vc.fields["pump_vibration_g"])


def test_structure_rates_and_order() -> None:
    blocks = _run(duration_s=60, extra_slow_channels=21)
    ends = [b.end_ms for b in blocks]
    assert ends == sorted(ends)
    slow, vib, shot = (_stream(blocks, s) for s in ("slow", "vibration", "shot"))
    assert len(slow) == 60
    assert all(b.n_samples == 10 for b in slow)
    assert len(slow[0].fields) == BASE_SLOW_CHANNELS + 21 == 32
    assert all(FIELD_NAME_RE.match(name) for name in slow[0].fields)
    t = np.concatenate([b.t_ms for b in slow])
    assert np.array_equal(t, START + 100 * np.arange(600))
    assert len(vib) == 60
    assert vib[0].sample_rate_hz == 10_000.0
    assert vib[1].t_ms[0] == START + 1000
    assert vib[0].n_samples == 10_000
    assert len(shot) == 2
    counts = _concat(shot, "shot_count")
    assert counts.tolist() == [1.0, 2.0]
    cycle = _concat(shot, "cycle_time_s")
    assert np.all(np.abs(cycle - 20.0) < 1.0)
    assert shot[1].t_ms[0] - shot[0].t_ms[0] == round(cycle[1] * 1000)


def test_infinite_without_duration_and_shot_counter_start() -> None:
    cell = SimulatedCell(SimulatorOptions(start_ms=0, streams=("shot",), initial_shot_count=1000))
    shots = list(itertools.islice(cell.blocks(), 5))
    assert [b.fields["shot_count"][0] for b in shots] == [1001.0, 1002.0, 1003.0, 1004.0, 1005.0]


def test_labels_follow_fault_schedule() -> None:
    faults = (FaultSpec("cooling_blockage", 10.0, 5.0, 1.0), FaultSpec("mold_wear", 30.0))
    blocks = _run(duration_s=50, faults=faults, streams=("slow", "vibration"))
    slow = _stream(blocks, "slow")
    t = np.concatenate([b.t_ms for b in slow]) - START
    labels = np.concatenate([b.labels for b in slow if b.labels is not None])
    expected = np.where(
        t >= 30_000,
        FAULT_CODES["mold_wear"],
        np.where(t >= 10_000, FAULT_CODES["cooling_blockage"], 0),
    )
    assert np.array_equal(labels, expected)
    vib = _stream(blocks, "vibration")
    assert vib[9].labels is not None
    assert set(vib[9].labels.tolist()) == {0}
    assert vib[10].labels is not None
    assert set(vib[10].labels.tolist()) == {3}


def test_bearing_wear_raises_kurtosis_crest_and_hf_energy() -> None:
    blocks = _run(
        duration_s=20, streams=("vibration",), faults=(FaultSpec("bearing_wear", 10.0, 0.0, 0.3),)
    )
    feats = [vibration_features(b.fields["pump_vibration_g"], 10_000.0) for b in blocks]
    healthy, worn = feats[:10], feats[11:]
    for name in ("vib_kurtosis", "vib_crest", "vib_band_2000_5000Hz_g2", "vib_env_5_500Hz_g2"):
        assert min(f[name] for f in worn) > max(f[name] for f in healthy), name
    assert all(abs(f["vib_kurtosis"]) < 1.0 for f in healthy)


def test_cooling_blockage_heats_mold_and_lengthens_cycle() -> None:
    blocks = _run(
        duration_s=400,
        streams=("slow", "shot"),
        extra_slow_channels=3,
        faults=(FaultSpec("cooling_blockage", 200.0, 0.0, 1.0),),
    )
    slow, shot = _stream(blocks, "slow"), _stream(blocks, "shot")
    mold = _concat(slow, "mold_temp_C")
    assert mold[2100:].mean() - mold[:1900].mean() > 10.0
    flow = _concat(slow, "cooling_circuit1_flow_l_min")
    assert flow[2100:].mean() < 0.5 * flow[:1900].mean()
    cycle = _concat(shot, "cycle_time_s")
    t_shot = np.array([b.t_ms[0] for b in shot]) - START
    assert cycle[t_shot > 230_000].min() > cycle[t_shot < 200_000].max() + 2.0


def test_heater_band_failure_sags_zone_and_current() -> None:
    blocks = _run(
        duration_s=60,
        streams=("slow",),
        heater_zone=2,
        faults=(FaultSpec("heater_band_failure", 30.0, 0.0, 1.0),),
    )
    zone2 = _concat(blocks, "barrel_zone2_temp_C")
    zone5 = _concat(blocks, "barrel_zone5_temp_C")
    current = _concat(blocks, "heater_current_A")
    assert zone2[:300].mean() - zone2[300:].mean() > 25.0
    assert abs(zone5[:300].mean() - zone5[300:].mean()) < 1.0
    assert current[:300].mean() - current[300:].mean() > 1.5


def test_mold_wear_adds_weight_and_drops_cavity_pressure() -> None:
    blocks = _run(
        duration_s=2000, streams=("shot",), faults=(FaultSpec("mold_wear", 1000.0, 0.0, 1.0),)
    )
    t = np.array([b.t_ms[0] for b in blocks]) - START
    before, after = t < 1_000_000, t > 1_030_000
    weight, peak = _concat(blocks, "part_weight_g"), _concat(blocks, "cavity_pressure_peak_bar")
    cushion = _concat(blocks, "cushion_mm")
    assert weight[after].mean() - weight[before].mean() > 1.0
    assert peak[before].mean() - peak[after].mean() > 40.0
    assert cushion[before].mean() - cushion[after].mean() > 1.0


def test_cpu_cost_is_small() -> None:
    """Reference load: 32 slow channels at 10 Hz + 10 kHz vibration + shots."""
    opts = SimulatorOptions(start_ms=START, duration_s=30, extra_slow_channels=21)
    t0 = time.process_time()
    n = sum(1 for _ in SimulatedCell(opts).blocks())
    cpu_per_sim_s = (time.process_time() - t0) / 30
    assert n > 60
    assert cpu_per_sim_s < 0.02  # measured ~1 ms per simulated second; generous bound


@pytest.mark.parametrize(
    "kw",
    [
        {"vibration_rate_hz": 4000.0},
        {"slow_rate_hz": 3.0, "slow_block_s": 0.5},
        {"heater_zone": 6},
        {"resonance_hz": 6000.0},
        {"streams": ("fast",)},
    ],
)
def test_option_validation(kw: dict[str, object]) -> None:
    with pytest.raises(SourceError):
        SimulatorOptions(**kw)  # type: ignore[arg-type]


def test_fault_spec_validation() -> None:
    with pytest.raises(SourceError, match="kind"):
        FaultSpec("gremlins", 1.0)  # type: ignore[arg-type]
    with pytest.raises(SourceError, match="severity"):
        FaultSpec("mold_wear", 1.0, 0.0, 1.5)
