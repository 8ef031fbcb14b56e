"""CAD OSE, indexed (renkei.edge.model.cad_ose) against the plain reference oracle
(tests/cad_ose_reference.py): identical scores row by row on synthetic streams and on
slices of real NAB files (NAB's wrapper scale: the file's min / max, restPeriod =
probation / 5); the Python 2 rules the original's outputs depend on; the ``cad_ose`` kind of
the streaming detector (gateway scale rule)."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from renkei.edge.model.cad_ose import CadOse, CadOseError, Py2IntDict, py2_tuple_hash
from renkei.edge.model.stream_detector import (
    StreamDetector,
    StreamDetectorConfig,
    StreamDetectorError,
)
from renkei.models.nab_scoring import probationary_length
from tests.cad_ose_reference import ReferenceCadOse
from tests.datasets import require_data_dir


def _assert_same(x: np.ndarray, lo: float, hi: float, rest: float) -> None:
    ref = ReferenceCadOse(lo, hi, rest_period=rest)
    fast = CadOse(lo, hi, rest_period=rest)
    for i, v in enumerate(x.tolist()):
        a, b = ref.score(v), fast.push(v)
        assert a == b, f"row {i}: reference {a!r}, indexed {b!r}"
    assert len(ref.contexts) == fast.contexts  # same context memory


def test_python2_tuple_hash_and_dict_order() -> None:
    assert py2_tuple_hash(()) == 3527539  # CPython 2.7 / 3.7, 64-bit
    assert py2_tuple_hash((1, 2)) == 3713081631934410656
    d = Py2IntDict()
    for k in (10, 3, 8):
        assert d.setdefault(k, k * 2) == k * 2
    assert [k for k, _ in d.items()] == [8, 10, 3]  # Python 2: {10:., 3:., 8:.}.keys()
    assert d.setdefault(3, 99) == 6 and len(d) == 3
    for k in range(20, 40):  # resizes keep every item once
        d.setdefault(k, k)
    assert sorted(k for k, _ in d.items()) == [3, 8, 10, *range(20, 40)]


@pytest.mark.parametrize("seed", [0, 1])
def test_indexed_equals_reference_on_synthetic_streams(seed: int) -> None:
    rng = np.random.default_rng(seed)
    t = np.arange(1200)
    x = np.sin(t / 12.0) + 0.3 * rng.standard_normal(t.size)
    x[900:915] += 3.0
    _assert_same(x, float(x.min()), float(x.max()), 30.0)


SLICES = (
    ("realKnownCause/machine_temperature_system_failure.csv", 1500),
    ("artificialWithAnomaly/art_daily_jumpsup.csv", 1500),
    ("realAdExchange/exchange-2_cpc_results.csv", 1000),
)


@pytest.mark.parametrize(("name", "rows"), SLICES)
def test_indexed_equals_reference_on_real_nab_slices(name: str, rows: int) -> None:
    path = require_data_dir() / "nab" / "data" / name
    with path.open(encoding="utf-8", newline="") as fh:
        x = np.array([float(r["value"]) for r in csv.DictReader(fh)])
    rest = probationary_length(x.size) / 5.0  # NAB's wrapper
    _assert_same(x[:rows], float(x.min()), float(x.max()), rest)


def test_bad_parameters_and_values_are_refused() -> None:
    with pytest.raises(CadOseError, match="range"):
        CadOse(1.0, 0.0)
    with pytest.raises(CadOseError, match="base_threshold"):
        CadOse(0.0, 1.0, base_threshold=0.0)
    with pytest.raises(CadOseError, match="value_bits"):
        CadOse(0.0, 1.0, value_bits=0)
    det = CadOse(0.0, 1.0)
    with pytest.raises(CadOseError, match="not finite"):
        det.push(math.nan)
    assert det.code(-5.0) == 0 and det.code(5.0) == 7  # clipped to the range


def test_cad_ose_kind_of_the_stream_detector() -> None:
    cfg = StreamDetectorConfig(
        kind="cad_ose", value_bits=3, range_rows=50, rest_rows=20, range_margin=0.5
    )
    assert StreamDetectorConfig.from_params(cfg.to_params()) == cfg
    params = {**cfg.to_params(), "stream_detector.range_margin": 1}  # JSON int accepted
    assert StreamDetectorConfig.from_params(params).range_margin == 1.0
    rng = np.random.default_rng(3)
    x = np.sin(np.arange(600) / 7.0) + 0.1 * rng.standard_normal(600)
    x[400] = 50.0  # far outside the frozen range: clipped, still scored
    det = StreamDetector(cfg)
    got = det.run(x)
    assert got[:50] == [0.0] * 50
    assert all(0.0 <= s <= 1.0 for s in got)
    lo, hi = float(x[:50].min()), float(x[:50].max())
    assert det.scale == pytest.approx((lo - 0.5 * (hi - lo), 2.0 * (hi - lo) / 7.0))
    # the gateway rule = the reference on the frozen range, first rows replayed
    ref = ReferenceCadOse(lo - 0.5 * (hi - lo), hi + 0.5 * (hi - lo), rest_period=20.0)
    clipped = np.clip(x, lo - 0.5 * (hi - lo), hi + 0.5 * (hi - lo))
    expect = [ref.score(float(v)) for v in clipped]
    assert got[50:] == expect[50:]
    assert math.isnan(det.push(math.nan))
    with pytest.raises(StreamDetectorError, match="rest_rows"):
        StreamDetectorConfig(kind="cad_ose", rest_rows=0)
    with pytest.raises(StreamDetectorError, match="range_margin"):
        StreamDetectorConfig(kind="cad_ose", range_margin=-1.0)
    with pytest.raises(StreamDetectorError, match="kind"):
        StreamDetectorConfig(kind="htm")
