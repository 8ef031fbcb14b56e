"""Replay of the real dataset files (SKAB, NAB, Kassel CPC), parsed in full."""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path

import numpy as np
import pytest

from renkei.edge.sources import FIELD_NAME_RE, KASSEL_CLASS_CODES, ReplayOptions, ReplaySource
from tests.datasets import require_data_dir

SKAB_FIELDS = [
    "accel1_rms_g",
    "accel2_rms_g",
    "current_A",
    "pressure_bar",
    "temperature_C",
    "thermocouple_C",
    "voltage_V",
    "flow_rate_l_min",
]


def _ms(text: str) -> int:
    stamp = dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)
    return int(stamp.timestamp() * 1000)


@pytest.fixture(scope="module")
def data_dir() -> Path:
    return require_data_dir()


@pytest.fixture(scope="module")
def skab0(data_dir: Path) -> ReplaySource:
    return ReplaySource(
        ReplayOptions(path=data_dir / "skab/data/valve1/0.csv", preset="skab", timestamps="keep")
    )


@pytest.fixture(scope="module")
def nab(data_dir: Path) -> ReplaySource:
    path = data_dir / "nab/data/realKnownCause/machine_temperature_system_failure.csv"
    return ReplaySource(ReplayOptions(path=path, preset="nab", timestamps="keep"))


@pytest.fixture(scope="module")
def kassel(data_dir: Path) -> ReplaySource:
    path = data_dir / "molding/kassel_cpc_lower_workpiece/static_data.csv"
    return ReplaySource(
        ReplayOptions(path=path, preset="kassel", timestamps="keep", block_rows=500)
    )


def _collect(src: ReplaySource) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray | None]:
    blocks = list(src.blocks())
    t = np.concatenate([b.t_ms for b in blocks])
    fields = {k: np.concatenate([b.fields[k] for b in blocks]) for k in blocks[0].fields}
    labels = (
        None
        if blocks[0].labels is None
        else np.concatenate([b.labels for b in blocks if b.labels is not None])
    )
    return t, fields, labels


def test_skab_valve1_file(skab0: ReplaySource) -> None:
    t, fields, labels = _collect(skab0)
    assert skab0.stream == "slow"
    assert list(skab0.fields) == SKAB_FIELDS
    assert skab0.fields["current_A"] == "A"
    assert t.size == 1147
    assert np.all(np.diff(t) > 0)
    assert t[0] == _ms("2020-03-09 10:14:33")
    assert fields["current_A"][0] == pytest.approx(1.3302)
    assert labels is not None
    assert np.bincount(labels).tolist() == [746, 401]


def test_skab_anomaly_free_has_no_labels(data_dir: Path) -> None:
    src = ReplaySource(
        ReplayOptions(
            path=data_dir / "skab/data/anomaly-free/anomaly-free.csv",
            preset="skab",
            block_rows=1000,
            start_ms=0,
        )
    )
    t, fields, labels = _collect(src)
    assert t.size == 9405
    assert np.all(np.diff(t) > 0)
    assert t[0] == 0
    assert labels is None
    assert all(np.isfinite(v).all() for v in fields.values())


def test_nab_machine_temperature(nab: ReplaySource) -> None:
    assert list(nab.fields) == ["machine_temperature"]
    assert nab.n_rows == 22_695
    t = nab.recorded_t_ms
    assert np.all(np.diff(t) > 0)
    # the clock step back at 2014-01-07 02:55 -> 02:00 is shifted to a normal 5-min step
    step = np.diff(t)
    assert set(np.unique(step).tolist()) == {300_000}
    assert t[0] == _ms("2013-12-02 21:15:00")
    assert t[-1] == _ms("2014-02-19 15:25:00") + 3_600_000  # rows after the step: +60 min
    labels = nab.labels
    assert labels is not None
    assert np.bincount(labels).tolist() == [22_695 - 2268, 2268]
    # 4 contiguous windows
    assert int(np.sum(np.diff(labels.astype(int)) == 1)) == 4


def test_kassel_static_data(kassel: ReplaySource) -> None:
    t, fields, labels = _collect(kassel)
    assert kassel.stream == "shot"
    assert t.size == 7861
    assert np.all(np.diff(t) > 0)
    assert len(kassel.fields) == 52
    assert all(FIELD_NAME_RE.match(name) for name in kassel.fields)
    for name, unit in [
        ("T801_C", "°C"),
        ("T801I_C", "°C"),
        ("t4052_s", "s"),
        ("V403_cm3", "cm³"),
        ("Q304_cm3_s", "cm³/s"),
        ("p4055_bar", "bar"),
        ("weight_g", "g"),
        ("t007_s", "s"),
    ]:
        assert kassel.fields[name] == unit
    assert np.isnan(fields["weight_g"]).sum() == 2853  # weight 0 = not weighed
    assert np.isnan(fields["t4052_s"]).sum() == 32  # empty cells
    assert np.isnan(fields["T801I_C"]).sum() == 0
    assert fields["weight_g"][1] == pytest.approx(85.559)  # decimal comma
    assert np.array_equal(fields["lower_workpiece_id"], np.arange(1, 7862))  # production order
    assert labels is not None
    codes = KASSEL_CLASS_CODES
    counts = np.bincount(labels, minlength=6)
    assert counts[codes["reference"]] == 4094
    assert counts[codes["cooling_time"]] == 781
    assert counts[codes["injection_velocity"]] == 551 + 235
    assert counts[codes["switching_point"]] == 690 + 230
    assert counts[codes["mold_temperature"]] == 600
    assert counts[codes["glass_fiber_content"]] == 680
    # recorded times are kept; the 00:00:00 rows are imputed between their neighbours
    assert t[1] == _ms("2024-06-05 15:51:36")
    assert t[0] == t[1] - 37_000  # leading unknown row: one median cycle earlier


def test_rebase_speed_and_keep(data_dir: Path, skab0: ReplaySource) -> None:
    path = data_dir / "skab/data/valve1/0.csv"
    fast = ReplaySource(
        ReplayOptions(path=path, preset="skab", start_ms=1_000, speed=4.0, block_rows=64)
    )
    t_fast = np.concatenate([b.t_ms for b in fast.blocks()])
    t_keep = skab0.recorded_t_ms
    assert t_fast[0] == 1_000
    assert np.array_equal(t_fast, 1_000 + np.round((t_keep - t_keep[0]) / 4.0).astype(np.int64))


def test_loop_continues_timeline(data_dir: Path) -> None:
    path = data_dir / "skab/data/valve1/0.csv"
    src = ReplaySource(ReplayOptions(path=path, preset="skab", start_ms=0, loop=True, speed=2.0))
    blocks = list(itertools.islice(src.blocks(), 2 * 1147 + 1))
    t = np.array([b.t_ms[0] for b in blocks])
    assert np.all(np.diff(t) > 0)
    # second pass starts one median step (1 s / speed) after the end of the first
    assert t[1147] - t[1146] == 500
    assert t[1147] == t[0] + src._period_ms
    assert np.array_equal(blocks[1147].fields["current_A"], blocks[0].fields["current_A"])


def test_keep_with_loop_shifts_later_passes(data_dir: Path, skab0: ReplaySource) -> None:
    path = data_dir / "skab/data/valve1/0.csv"
    src = ReplaySource(
        ReplayOptions(path=path, preset="skab", timestamps="keep", loop=True, block_rows=1147)
    )
    first, second = itertools.islice(src.blocks(), 2)
    assert np.array_equal(first.t_ms, skab0.recorded_t_ms)
    assert second.t_ms[0] == first.t_ms[-1] + 1000
