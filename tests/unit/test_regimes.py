"""Regime normalisation on the gateway (renkei.edge.model.regimes) and the RUL band per
history-length x predicted-RUL cell (renkei.models.rul): batch = streaming, parameters round
trip through the manifest, clear errors, ONNX band = reference."""

from __future__ import annotations

import math

import numpy as np
import pytest

from renkei.edge.model.regimes import RegimeNormaliser, RegimeParamsError, RegimeTable, normalise
from renkei.models.artifact import make_session, run_outputs
from renkei.models.rul import fit_rul, reference_outputs, to_onnx_bytes


def _table(drift_rows: int = 3) -> RegimeTable:
    return RegimeTable(
        settings=("alt", "mach", "tra"),
        grid=np.array([1.0, 0.01, 1.0]),
        centroids=np.array([[0.0, 0.0, 100.0], [25.0, 0.62, 60.0], [42.0, 0.84, 100.0]]),
        sensors=("a", "b"),
        mean=np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]]),
        sd=np.array([[0.5, 1.0], [0.25, 2.0], [1.0, 4.0]]),
        drift_rows=drift_rows,
    )


def test_assign_nearest_centroid_in_grid_units() -> None:
    t = _table()
    s = np.array([[0.002, 0.0007, 100.0], [24.998, 0.6218, 60.0], [41.99, 0.8408, 100.0]])
    assert t.assign(s).tolist() == [0, 1, 2]
    assert t.assign(np.array([[math.nan, 0.0, 100.0]])).tolist() == [-1]


def test_batch_equals_streaming_rows_and_params_round_trip() -> None:
    t = RegimeTable.from_params(_table().to_params())
    assert t is not None and np.array_equal(t.mean, _table().mean)
    rng = np.random.default_rng(0)
    s = _table().centroids[rng.integers(0, 3, size=40)] + rng.normal(0, 0.001, size=(40, 3))
    x = rng.normal(size=(40, 2)) * 3 + 10
    batch = normalise(t, s, x)
    norm = RegimeNormaliser(t)
    rows = [
        norm.push({"alt": s[i, 0], "mach": s[i, 1], "tra": s[i, 2], "a": x[i, 0], "b": x[i, 1]})
        for i in range(40)
    ]
    stream = np.array([[r[f] for f in t.output_fields] for r in rows])
    assert np.array_equal(batch, stream)
    r = t.assign(s)
    np.testing.assert_allclose(batch[:, :2], (x - t.mean[r]) / t.sd[r])
    # drift: minus the expanding mean of the first min(t, 3) normalised rows
    z = batch[:, :2]
    np.testing.assert_allclose(batch[0, 2:], 0.0, atol=1e-12)
    np.testing.assert_allclose(batch[1, 2:], z[1] - z[:2].mean(axis=0))
    np.testing.assert_allclose(batch[10, 2:], z[10] - z[:3].mean(axis=0))


def test_unknown_regime_row_is_nan_and_does_not_advance_the_baseline() -> None:
    norm = RegimeNormaliser(_table())
    out = norm.push({"alt": 0.0, "mach": 0.0, "a": 1.0, "b": 10.0})  # no "tra"
    assert all(math.isnan(v) for v in out.values()) and norm.rows == 0
    out = norm.push({"alt": 0.0, "mach": 0.0, "tra": 100.0, "a": 1.5, "b": 10.0})
    assert out["a_rn"] == 1.0 and out["a_rb"] == 0.0 and norm.rows == 1


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"regime_sd": "1,1;1,1;1,0"}, "regime_sd must be > 0"),
        ({"regime_mean": "1,2;3,4"}, "regime_mean and regime_sd"),
        ({"regime_grid": "1,x,1"}, "regime_grid"),
        ({"regime_drift_rows": 0}, "regime_drift_rows"),
        ({"regime_centroids": "0,0;1,1;2,2"}, "regime_centroids"),
    ],
)
def test_bad_params_name_the_key(change: dict[str, object], match: str) -> None:
    with pytest.raises(RegimeParamsError, match=match):
        RegimeTable.from_params({**_table().to_params(), **change})


def test_partial_params_are_refused_and_none_means_no_regimes() -> None:
    params = _table().to_params()
    del params["regime_sd"]
    with pytest.raises(RegimeParamsError, match="regime_sd"):
        RegimeTable.from_params(params)
    assert RegimeTable.from_params({"learning_rate": 0.1}) is None


def test_band_cells_onnx_equals_reference_and_widen_short_histories() -> None:
    rng = np.random.default_rng(1)
    n = 4000
    x = rng.normal(size=(n, 3))
    x[:, 2] = np.tile(np.arange(1, 101), 40)  # history length
    noise = rng.normal(size=n) * (2 + 40 / x[:, 2])  # short histories are noisier
    y = np.clip(60 + 25 * x[:, 0] + noise, 0, 125)
    fit = fit_rul(
        x,
        y,
        cap=125.0,
        groups=np.repeat(np.arange(40), 100),
        calib_folds=3,
        band_col=2,
        band_edges=(10.0, 50.0),
        rul_edges=(60.0,),
        min_cell_rows=50,
        params={"max_iter": 30},
    )
    assert len(fit.band_table) == 6 and sum(fit.cell_rows) == n
    assert np.isfinite(fit.cv_pred).all()
    out = run_outputs(make_session(to_onnx_bytes(fit)), x)
    ref = reference_outputs(fit, x)
    for k in ("rul", "rul_lo", "rul_hi", "score"):
        np.testing.assert_allclose(out[k], ref[k], atol=2e-3)
    width = out["rul_hi"] - out["rul_lo"]
    assert width[x[:, 2] < 10].mean() > width[x[:, 2] >= 50].mean()


def test_band_edges_need_a_column() -> None:
    x = np.zeros((10, 2))
    with pytest.raises(ValueError, match="band_col"):
        fit_rul(x, np.zeros(10), cap=1.0, band_edges=(1.0,))
