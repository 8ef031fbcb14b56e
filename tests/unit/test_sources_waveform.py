"""Waveform replay (renkei.edge.sources.waveform) on synthetic .mat files: timing, decimation,
labels, loops and the errors that name the file and the variable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.io import savemat
from scipy.signal import decimate

from renkei.edge.features import Windower, vibration_windower
from renkei.edge.sources import SourceError, SourceFileNotFoundError
from renkei.edge.sources.waveform import WaveformOptions, WaveformSource, load_mat_waveform


def _mat(tmp_path: Path, **variables: object) -> Path:
    path = tmp_path / "rec.mat"
    savemat(path, variables)
    return path


def test_blocks_cover_the_record_in_time_order_with_whole_ms_starts(tmp_path: Path) -> None:
    x = np.sin(np.arange(30_000) / 7.0)
    path = _mat(tmp_path, X097_DE_time=x[:, None], X097RPM=np.array([[1796]]))
    src = WaveformSource(WaveformOptions(path=path, sample_rate_hz=12_000.0, label=3))
    blocks = list(src.blocks())
    assert src.fields == {"accel_de_g": "g_n"} and src.duration_s == 2.5
    assert [int(b.t_ms[0]) for b in blocks[:3]] == [0, 100, 200]
    np.testing.assert_array_equal(np.concatenate([b.fields["accel_de_g"] for b in blocks]), x)
    assert all(b.labels is not None and set(b.labels.tolist()) == {3} for b in blocks)
    # windows of 0.2 s hold samples [2400 k, 2400 (k+1)): the training recipe's segments
    win: Windower = vibration_windower(0.2)
    rows = [r for b in blocks for r in win.push(b)]
    assert len(rows) == 12 and rows[0].t_ms == 200 and rows[0].label == 3


def test_decimation_matches_scipy_on_the_whole_record(tmp_path: Path) -> None:
    x = np.random.default_rng(1).normal(size=48_000)
    path = _mat(tmp_path, sig=x)
    src = WaveformSource(
        WaveformOptions(path=path, sample_rate_hz=48_000.0, variable="sig", decimate=4)
    )
    got = np.concatenate([b.fields["accel_de_g"] for b in src.blocks()])
    np.testing.assert_allclose(got, decimate(x, 4, ftype="fir", zero_phase=True), atol=1e-12)
    assert src.sample_rate_hz == 12_000.0


def test_loop_continues_the_timeline(tmp_path: Path) -> None:
    path = _mat(tmp_path, a_DE_time=np.ones(1_250))
    src = WaveformSource(WaveformOptions(path=path, sample_rate_hz=12_000.0, loop=True))
    it = src.blocks()
    starts = [int(next(it).t_ms[0]) for _ in range(4)]
    assert starts == [0, 100, 105, 205]  # pass 1 starts at ceil(1250 / 12 ms) = 105 ms


def test_errors_name_the_file_and_what_was_expected(tmp_path: Path) -> None:
    with pytest.raises(SourceFileNotFoundError, match="no such file"):
        load_mat_waveform(tmp_path / "missing.mat")
    bad = tmp_path / "bad.mat"
    bad.write_bytes(b"not a mat file at all")
    with pytest.raises(SourceError, match="bad.mat"):
        load_mat_waveform(bad)
    two = _mat(tmp_path, a_DE_time=np.ones(10), b_DE_time=np.ones(10))
    with pytest.raises(SourceError, match=r"exactly one \*_DE_time .*'a_DE_time', 'b_DE_time'"):
        load_mat_waveform(two)
    with pytest.raises(SourceError, match="no variable 'zz'"):
        load_mat_waveform(two, "zz")
    matrix = _mat(tmp_path, m=np.ones((3, 4)))
    with pytest.raises(SourceError, match="numeric vector"):
        load_mat_waveform(matrix, "m")
    nan = _mat(tmp_path, v=np.array([1.0, np.nan]))
    with pytest.raises(SourceError, match="NaN"):
        load_mat_waveform(nan, "v")
    short = _mat(tmp_path, v=np.ones(50))
    with pytest.raises(SourceError, match="shorter than one block"):
        WaveformSource(WaveformOptions(path=short, sample_rate_hz=12_000.0, variable="v"))
    with pytest.raises(SourceError, match="decimate"):
        WaveformOptions(path=short, sample_rate_hz=12_000.0, decimate=0)
