"""Window statistics of slow process signals (temperatures, pressures, currents...).

For every field ``f`` of a window the features are, in this order:
``{f}_mean``, ``{f}_min``, ``{f}_max`` (units of ``f``) and ``{f}_slope_per_s`` (units of
``f`` per second: ordinary least-squares slope against time). NaN samples are ignored; a
field with no finite sample gives NaN for all four; the slope is NaN with fewer than two
finite samples. All fields are computed together on a (k, n) matrix (no Python loop over
samples).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = ["SLOW_STATS", "slow_feature_names", "slow_features", "slow_features_matrix"]

FloatArray = npt.NDArray[np.float64]
SLOW_STATS: Final = ("mean", "min", "max", "slope_per_s")
_MAX_NAME: Final = 64


def slow_feature_names(fields: Iterable[str]) -> list[str]:
    """Feature names for ``fields``, in the order of :func:`slow_features`.

    Raises:
        ValueError: if a name would exceed 64 characters (InfluxDB/wire field limit).
    """
    names = [f"{f}_{s}" for f in fields for s in SLOW_STATS]
    too_long = [n for n in names if len(n) > _MAX_NAME]
    if too_long:
        raise ValueError(f"feature names longer than {_MAX_NAME} characters: {too_long}")
    return names


def slow_features_matrix(t_ms: npt.NDArray[np.int64], values: FloatArray) -> FloatArray:
    """Statistics of a (k, n) matrix of k fields sampled at times ``t_ms`` (n,).

    Returns:
        (k, 4) array: mean, min, max, slope per second of each row (NaN where undefined).

    Raises:
        ValueError: on mismatched shapes.
    """
    if values.ndim != 2 or values.shape[1] != t_ms.shape[0]:
        raise ValueError(
            f"values must be (k, n) with n = len(t_ms) = {t_ms.shape[0]}, got {values.shape}"
        )
    k, n = values.shape
    out = np.full((k, 4), np.nan)
    if n == 0:
        return out
    mask = np.isfinite(values)
    count = mask.sum(axis=1)
    ok = count > 0
    x0 = np.where(mask, values, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = x0.sum(axis=1) / count
        out[:, 0] = mean
        out[:, 1] = np.where(mask, values, np.inf).min(axis=1)
        out[:, 2] = np.where(mask, values, -np.inf).max(axis=1)
        t_s = (t_ms - t_ms[0]).astype(np.float64) / 1000.0
        tw = np.where(mask, t_s[None, :], 0.0)
        t_mean = tw.sum(axis=1) / count
        dt = np.where(mask, t_s[None, :] - t_mean[:, None], 0.0)
        dx = np.where(mask, values - mean[:, None], 0.0)
        var = (dt * dt).sum(axis=1)
        slope = (dt * dx).sum(axis=1) / var
        out[:, 3] = np.where((count >= 2) & (var > 0), slope, np.nan)
    out[~ok, :] = np.nan
    return out


def slow_features(
    t_ms: npt.NDArray[np.int64], fields: Mapping[str, FloatArray]
) -> dict[str, float]:
    """Mean/min/max/slope of every field of a window.

    Args:
        t_ms: (n,) int64 sample times, epoch ms.
        fields: field name -> (n,) float64 values (NaN = missing).

    Returns:
        ``{name: value}`` in the order of :func:`slow_feature_names` (``fields`` order).

    Raises:
        ValueError: on mismatched shapes or too-long names.
    """
    names = slow_feature_names(fields)
    if not fields:
        return {}
    stats = slow_features_matrix(t_ms, np.vstack(list(fields.values())))
    return dict(zip(names, stats.ravel().tolist(), strict=True))
