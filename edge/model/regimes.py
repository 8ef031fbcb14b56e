"""Operating-regime normalisation of a machine's rows, streaming (multi-condition RUL models).

A machine that runs in several operating conditions (C-MAPSS FD002: six flight regimes
given by altitude, Mach number and throttle resolver angle; Saxena et al. 2008) shows
sensor level jumps that follow the regime, not the wear. Before any history feature, each
row is mapped to its regime and its sensors are standardised with that regime's training
mean and standard deviation (the usual "operating-condition normalisation", e.g. Wang et
al., PHM08 winning entry; Li, Ding & Sun 2018):

- regime ``r`` = the nearest centroid to the row's settings, distance measured in grid
  units: ``argmin_r Σ_j ((s_j - c_rj) / g_j)²`` (the training recipe found the centroids by
  rounding the settings to the grid ``g``; first centroid wins a tie);
- ``{f}_rn`` = ``(x_f - mean_rf) / sd_rf`` (dimensionless);
- ``{f}_rb`` = ``{f}_rn`` minus its expanding mean over the machine's first
  ``min(t, drift_rows)`` rows (t = rows so far, 1-based; frozen after ``drift_rows``): the
  drift from the machine's own start, defined from the very first row on, so a machine
  with a short history still gets every field.

Parameters come from the model manifest's ``algorithm_params`` (:data:`PARAM_KEYS`;
strings of comma-separated numbers, regimes separated by ``;``, written by
:meth:`RegimeTable.to_params`), so they are covered by the manifest's signature and hash.
:func:`normalise` (batch, used by the training recipe) and :class:`RegimeNormaliser`
(streaming, one row at a time, for the gateway) give identical numbers (same float64
operations in the same order). A NaN or missing setting makes the row's fields NaN (the
gateway does not score it) and does not advance the drift baseline; a NaN sensor makes its
own two fields NaN (and, within the first ``drift_rows`` rows, its later ``_rb`` values).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray

from renkei.core.errors import ModelError

__all__ = [
    "DRIFT_SUFFIX",
    "NORM_SUFFIX",
    "PARAM_KEYS",
    "RegimeNormaliser",
    "RegimeParamsError",
    "RegimeTable",
    "normalise",
]

NORM_SUFFIX: Final = "_rn"
DRIFT_SUFFIX: Final = "_rb"
#: ``algorithm_params`` keys of a regime table (all present, or none).
PARAM_KEYS: Final = (
    "regime_settings",
    "regime_grid",
    "regime_centroids",
    "regime_sensors",
    "regime_mean",
    "regime_sd",
    "regime_drift_rows",
)


class RegimeParamsError(ModelError, ValueError):
    """A manifest's regime parameters are incomplete or malformed (message names the key)."""


def _numbers(key: str, text: object) -> NDArray[np.float64]:
    """(R, m) array from ``"a,b;c,d"`` (one row per ``;``)."""
    if not isinstance(text, str) or not text.strip():
        raise RegimeParamsError(f"algorithm_params[{key!r}] must be a non-empty string")
    try:
        rows = [[float(v) for v in part.split(",")] for part in text.split(";")]
    except ValueError:
        raise RegimeParamsError(f"algorithm_params[{key!r}]: not numbers: {text[:80]!r}") from None
    if len({len(r) for r in rows}) != 1:
        raise RegimeParamsError(f"algorithm_params[{key!r}]: rows of unequal length")
    arr = np.array(rows, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise RegimeParamsError(f"algorithm_params[{key!r}]: non-finite value")
    return arr


def _fmt(a: NDArray[np.float64]) -> str:
    return ";".join(",".join(repr(float(v)) for v in row) for row in np.atleast_2d(a))


@dataclass(frozen=True, eq=False)
class RegimeTable:
    """Regimes and per-regime sensor statistics.

    Attributes:
        settings: row fields of the m operating settings (e.g. altitude, Mach, TRA).
        grid: (m,) grid step of each setting (distance unit), > 0.
        centroids: (R, m) regime centres, settings' units.
        sensors: row fields of the k sensors normalised.
        mean: (R, k) per-regime sensor means, sensors' units.
        sd: (R, k) per-regime sensor standard deviations, > 0.
        drift_rows: rows of the expanding drift baseline, ≥ 1.

    Raises:
        RegimeParamsError: shapes disagree, empty names, non-positive grid / sd, or
            ``drift_rows < 1``.
    """

    settings: tuple[str, ...]
    grid: NDArray[np.float64]
    centroids: NDArray[np.float64]
    sensors: tuple[str, ...]
    mean: NDArray[np.float64]
    sd: NDArray[np.float64]
    drift_rows: int

    def __post_init__(self) -> None:
        m, k = len(self.settings), len(self.sensors)
        r = self.centroids.shape[0] if self.centroids.ndim == 2 else 0
        if not m or not k or not all(self.settings) or not all(self.sensors):
            raise RegimeParamsError("regime_settings and regime_sensors must name fields")
        if self.grid.shape != (m,) or np.any(self.grid <= 0):
            raise RegimeParamsError(f"regime_grid must be {m} positive steps")
        if r < 1 or self.centroids.shape != (r, m):
            raise RegimeParamsError(f"regime_centroids must be (regimes, {m}) numbers")
        if self.mean.shape != (r, k) or self.sd.shape != (r, k):
            raise RegimeParamsError(f"regime_mean and regime_sd must be ({r}, {k}) numbers")
        if np.any(self.sd <= 0):
            raise RegimeParamsError("regime_sd must be > 0")
        if self.drift_rows < 1:
            raise RegimeParamsError(f"regime_drift_rows must be >= 1, got {self.drift_rows}")

    @property
    def output_fields(self) -> list[str]:
        """Fields added to each row: ``{f}_rn`` for every sensor, then ``{f}_rb``."""
        return [f + NORM_SUFFIX for f in self.sensors] + [f + DRIFT_SUFFIX for f in self.sensors]

    def assign(self, settings: NDArray[np.float64]) -> NDArray[np.int64]:
        """(n,) regime index of rows of settings (n, m); -1 where a setting is not finite."""
        s = np.atleast_2d(np.asarray(settings, dtype=np.float64))
        d = (((s[:, None, :] - self.centroids[None]) / self.grid) ** 2).sum(axis=2)
        idx: NDArray[np.int64] = np.argmin(np.where(np.isfinite(d), d, np.inf), axis=1).astype(
            np.int64
        )
        idx[~np.all(np.isfinite(s), axis=1)] = -1
        return idx

    def to_params(self) -> dict[str, str | int]:
        """The manifest ``algorithm_params`` entries (exact float round trip)."""
        return {
            "regime_settings": ",".join(self.settings),
            "regime_grid": _fmt(self.grid),
            "regime_centroids": _fmt(self.centroids),
            "regime_sensors": ",".join(self.sensors),
            "regime_mean": _fmt(self.mean),
            "regime_sd": _fmt(self.sd),
            "regime_drift_rows": int(self.drift_rows),
        }

    @classmethod
    def from_params(cls, params: Mapping[str, object]) -> RegimeTable | None:
        """The table in ``algorithm_params``, or ``None`` when it has no regime keys.

        Raises:
            RegimeParamsError: some keys missing, or a malformed value.
        """
        present = [k for k in PARAM_KEYS if k in params]
        if not present:
            return None
        missing = [k for k in PARAM_KEYS if k not in params]
        if missing:
            raise RegimeParamsError(f"algorithm_params lack regime keys {missing}")
        drift = params["regime_drift_rows"]
        if not isinstance(drift, int | float) or drift != int(drift):
            raise RegimeParamsError(f"algorithm_params['regime_drift_rows']: {drift!r}")
        names = {k: str(params[k]).split(",") for k in ("regime_settings", "regime_sensors")}
        return cls(
            settings=tuple(n.strip() for n in names["regime_settings"]),
            grid=_numbers("regime_grid", params["regime_grid"]).ravel(),
            centroids=_numbers("regime_centroids", params["regime_centroids"]),
            sensors=tuple(n.strip() for n in names["regime_sensors"]),
            mean=_numbers("regime_mean", params["regime_mean"]),
            sd=_numbers("regime_sd", params["regime_sd"]),
            drift_rows=int(drift),
        )


def normalise(
    table: RegimeTable, settings: NDArray[np.float64], sensors: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Batch regime normalisation of one machine's rows (the training path).

    Args:
        table: the regime table.
        settings: (n, m) operating settings, time order.
        sensors: (n, k) sensor values, same rows.

    Returns:
        (n, 2k) ``[_rn fields, _rb fields]`` in :attr:`RegimeTable.output_fields` order.

    Raises:
        ValueError: shapes disagree with the table.
    """
    s = np.asarray(settings, dtype=np.float64)
    x = np.asarray(sensors, dtype=np.float64)
    n, k = x.shape[0], len(table.sensors)
    if s.shape != (n, len(table.settings)) or x.shape != (n, k):
        raise ValueError(f"settings {s.shape} / sensors {x.shape} do not match the table")
    norm = RegimeNormaliser(table)
    out = np.empty((n, 2 * k))
    for t in range(n):  # the streaming code itself: identical numbers by construction
        out[t] = norm.push_values(s[t], x[t])
    return out


class RegimeNormaliser:
    """Streaming regime normalisation of one machine (one engine): push rows, get fields.

    State: rows seen and the running sum of the first ``drift_rows`` normalised rows
    (O(k) memory). Not thread-safe; a new machine (engine) needs a new instance.
    """

    def __init__(self, table: RegimeTable) -> None:
        self.table = table
        self.fields = tuple(table.output_fields)
        self._k = len(table.sensors)
        self._sum = np.zeros(self._k)
        self._base_rows = 0
        self.rows = 0
        """Rows with a known regime so far."""

    def push_values(
        self, settings: Sequence[float] | NDArray[np.float64], sensors: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """(2k,) fields of one row from its settings (m,) and sensors (k,)."""
        s = np.asarray(settings, dtype=np.float64).reshape(1, -1)
        r = int(self.table.assign(s)[0])
        if r < 0:
            return np.full(2 * self._k, np.nan)
        z = (np.asarray(sensors, dtype=np.float64) - self.table.mean[r]) / self.table.sd[r]
        self.rows += 1
        if self._base_rows < self.table.drift_rows:
            self._sum = self._sum + z
            self._base_rows += 1
        return np.concatenate([z, z - self._sum / self._base_rows])

    def push(self, row: Mapping[str, float]) -> dict[str, float]:
        """The fields (:attr:`RegimeTable.output_fields`) of one row (a missing field is
        NaN)."""
        s = [_get(row, f) for f in self.table.settings]
        x = np.array([_get(row, f) for f in self.table.sensors], dtype=np.float64)
        return dict(zip(self.fields, self.push_values(s, x).tolist(), strict=True))


def _get(row: Mapping[str, float], field: str) -> float:
    v = row.get(field)
    return math.nan if v is None else float(v)
