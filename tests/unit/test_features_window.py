"""Tumbling windows over slow and vibration blocks."""

from __future__ import annotations

import numpy as np
import pytest

from renkei.edge.features import (
    FeatureRow,
    WindowData,
    Windower,
    slow_feature_names,
    slow_features,
    slow_windower,
    vibration_feature_names,
    vibration_windower,
)
from renkei.edge.sources import FaultSpec, SampleBlock, SimulatedCell, SimulatorOptions

T0 = 1_700_000_000_000  # a multiple of 10 s


def _slow(t_ms: np.ndarray, x: np.ndarray, labels: np.ndarray | None = None) -> SampleBlock:
    return SampleBlock(
        stream="slow",
        t_ms=t_ms.astype(np.int64),
        fields={"oil_temp_C": x},
        labels=labels,
        sample_rate_hz=None,
    )


def _vib(t0_ms: int, x: np.ndarray, fs: float = 1000.0) -> SampleBlock:
    return SampleBlock(
        stream="vibration",
        t_ms=np.array([t0_ms], dtype=np.int64),
        fields={"pump_vibration_g": x},
        labels=None,
        sample_rate_hz=fs,
    )


def test_slow_windows_match_direct_features() -> None:
    t = T0 + 100 * np.arange(250)  # 25 s at 10 Hz
    x = np.sin(np.arange(250) / 7.0)
    labels = np.zeros(250, dtype=np.int16)
    labels[150] = 3
    w = slow_windower(10.0)
    rows = []
    for i in range(0, 250, 7):  # blocks that straddle window boundaries
        rows += w.push(_slow(t[i : i + 7], x[i : i + 7], labels[i : i + 7]))
    assert [r.t_ms for r in rows] == [T0 + 10_000, T0 + 20_000]
    rows += w.flush()
    assert rows[-1].t_ms == T0 + 30_000  # partial last window
    assert [r.label for r in rows] == [0, 3, 0]
    expected = slow_features(t[100:200], {"oil_temp_C": x[100:200]})
    assert rows[1].values == pytest.approx(expected)
    assert list(rows[0].values) == slow_feature_names(["oil_temp_C"])


def test_slow_gap_skips_empty_windows_and_order_is_enforced() -> None:
    w = slow_windower(1.0)
    assert w.push(_slow(T0 + np.array([0, 500]), np.array([1.0, 2.0]))) == []
    rows = w.push(_slow(T0 + np.array([5000, 5500]), np.array([3.0, 4.0])))
    assert [r.t_ms for r in rows] == [T0 + 1000]
    with pytest.raises(ValueError, match="time order"):
        w.push(_slow(T0 + np.array([100]), np.array([0.0])))
    with pytest.raises(ValueError, match="'slow'"):
        w.push(_vib(T0, np.zeros(10)))


def test_vibration_windows_split_unaligned_blocks() -> None:
    seen: list[tuple[int, int]] = []

    def count(data: WindowData) -> dict[str, float]:
        seen.append((data.start_ms, data.values.shape[1]))
        return {"n": float(data.values.shape[1])}

    w = Windower(stream="vibration", window_s=1.0, features=count)
    rows = []
    start = T0 + 250
    for k in range(5):  # 5 blocks of 0.5 s at 1 kHz starting 250 ms into a window
        rows += w.push(_vib(start + 500 * k, np.ones(500)))
    # windows: [T0, T0+1s) has 750 samples, [T0+1s, T0+2s) 1000, the 3rd ends after 2.75 s
    assert [r.t_ms for r in rows] == [T0 + 1000, T0 + 2000]
    assert seen == [(T0, 750), (T0 + 1000, 1000)]
    rows = w.flush()
    assert rows[0].values == {"n": 750.0}


def test_vibration_window_closes_at_exact_block_end() -> None:
    w = vibration_windower(1.0)
    rows = w.push(_vib(T0, np.sin(np.arange(10_000) / 3.0), fs=10_000.0))
    assert len(rows) == 1
    assert rows[0].t_ms == T0 + 1000
    assert list(rows[0].values) == vibration_feature_names(10_000.0)
    with pytest.raises(ValueError, match="sampling rate"):
        w.push(_vib(T0 + 1000, np.zeros(100), fs=5000.0))


def test_multi_channel_vibration_needs_prefixes() -> None:
    block = SampleBlock(
        stream="vibration",
        t_ms=np.array([T0], dtype=np.int64),
        fields={"a_g": np.zeros(10_000), "b_g": np.ones(10_000)},
        labels=None,
        sample_rate_hz=10_000.0,
    )
    with pytest.raises(ValueError, match="prefixes"):
        vibration_windower(1.0).push(block)
    rows = vibration_windower(1.0, prefixes={"a_g": "va", "b_g": "vb"}).push(block)
    assert rows[0].values["vb_rms_g"] == 1.0
    assert rows[0].values["va_rms_g"] == 0.0


def test_simulated_cell_end_to_end() -> None:
    """Windows over the simulator: labels carried, bearing fault visible in window features."""
    opts = SimulatorOptions(
        start_ms=T0,
        duration_s=30,
        streams=("slow", "vibration"),
        faults=(FaultSpec("bearing_wear", 15.0, 0.0, 0.5),),
    )
    slow, vib = slow_windower(5.0), vibration_windower(1.0)
    rows: dict[str, list[FeatureRow]] = {"slow": [], "vibration": []}
    for block in SimulatedCell(opts).blocks():
        rows[block.stream] += (slow if block.stream == "slow" else vib).push(block)
    rows["slow"] += slow.flush()
    assert len(rows["slow"]) == 6
    assert len(rows["vibration"]) == 30
    assert [r.label for r in rows["slow"]] == [0, 0, 0, 2, 2, 2]
    kurt = np.array([r.values["vib_kurtosis"] for r in rows["vibration"]])
    assert kurt[16:].min() > kurt[:15].max()
    assert len(rows["slow"][0].values) == 4 * 11
