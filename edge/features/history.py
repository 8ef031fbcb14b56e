"""Row-history features: per-row trailing statistics of a multichannel series, causal.

Used where a model needs the recent history of a signal rather than one window: SKAB pump
runs (1 Hz rows), NAB machine temperature (5 min rows), C-MAPSS engine cycles and the
molding shots of the simulated cell (one row per shot). A *row* is one sample of every
field (a slow sample, a 1 s window's means, a shot, a flight cycle); row spacing is
whatever the source delivers (the features count rows, not seconds).

For every field ``f`` (values ``x_t``, t = 0, 1, ... rows) the features are, in this order
(each group for all fields, in field order):

- ``{f}_m{w}``: trailing mean of ``x`` over the last ``w`` rows (fewer at the start), units of f;
- ``{f}_e{a}``: EWMA ``e_t = e_{t-1} + a (x_t - e_{t-1})``, ``e_0 = x_0``, units of f
  (Roberts 1959; ``a`` formatted with :func:`renkei.edge.features.vibration.hz_label`, 0.1 →
  ``0p1``);
- ``{f}_s{w}``: ordinary least-squares slope of ``x`` against the row index over the last
  ``w`` rows (fewer at the start; 0 for a single row), units of f per row;
- with a baseline (``baseline_rows = n > 0``): ``mu``, ``sd`` = mean and standard deviation
  (ddof 0) of the first ``n`` rows, ``sd`` floored at ``max(sd_floor_rel * |mu|,
  sd_floor_abs)``; then ``{f}_zm{w}``: trailing mean over ``w`` rows of the standardised
  value ``(x - mu) / sd`` (dimensionless, "σ of the baseline"), and ``{f}_d{a}``: EWMA
  (``a``) minus ``mu`` (units of f, drift from the baseline level);
- ``rows_seen`` (if ``count``): 1-based row number since the start (e.g. the cycle count).

The baseline is frozen after its ``n`` rows and applied to every row including the first
``n``: a gateway collects the commissioning rows (known-normal operation, e.g. the first
400 s of a SKAB run, the leaderboard's "train" part) before it can emit any feature, then
emits the backlog and continues row by row. :func:`history_features` (batch, used for
training) and :class:`HistoryFeatures` (streaming, for the gateway) give the same numbers
(tested to 1e-9 relative). A NaN input makes the trailing means and slopes of the windows
holding it NaN, and every later EWMA value (the gateway skips rows with a NaN feature);
a NaN in the baseline rows makes the baseline features NaN.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from renkei.edge.features.vibration import hz_label

__all__ = ["HistoryConfig", "HistoryFeatures", "history_feature_names", "history_features"]

FloatArray = npt.NDArray[np.float64]
_MAX_NAME: Final = 64


@dataclass(frozen=True, slots=True)
class HistoryConfig:
    """What :func:`history_features` computes (see the module docstring for the names).

    Attributes:
        mean_rows: trailing-mean lengths, rows (each ≥ 1).
        ewma_alphas: EWMA weights of the newest row, each in (0, 1].
        slope_rows: trailing-slope lengths, rows (each ≥ 2).
        baseline_rows: rows of the frozen baseline (0 = no baseline features).
        zmean_rows: trailing-mean lengths of the standardised values (needs a baseline).
        dev_alphas: EWMA weights of the drift-from-baseline features (needs a baseline).
        sd_floor_rel: baseline sd floor relative to ``|mu|``.
        sd_floor_abs: absolute baseline sd floor, units of each field.
        count: add ``rows_seen``.
    """

    mean_rows: tuple[int, ...] = ()
    ewma_alphas: tuple[float, ...] = ()
    slope_rows: tuple[int, ...] = ()
    baseline_rows: int = 0
    zmean_rows: tuple[int, ...] = ()
    dev_alphas: tuple[float, ...] = ()
    sd_floor_rel: float = 1e-3
    sd_floor_abs: float = 1e-6
    count: bool = False

    def __post_init__(self) -> None:
        if any(w < 1 for w in self.mean_rows + self.zmean_rows):
            raise ValueError("mean_rows and zmean_rows must be >= 1")
        if any(w < 2 for w in self.slope_rows):
            raise ValueError("slope_rows must be >= 2")
        if any(not 0 < a <= 1 for a in self.ewma_alphas + self.dev_alphas):
            raise ValueError("EWMA alphas must be in (0, 1]")
        if self.baseline_rows < 0:
            raise ValueError("baseline_rows must be >= 0")
        if (self.zmean_rows or self.dev_alphas) and self.baseline_rows == 0:
            raise ValueError("zmean_rows / dev_alphas need baseline_rows > 0")
        if self.sd_floor_rel < 0 or self.sd_floor_abs <= 0:
            raise ValueError("sd floors must be >= 0 (relative) and > 0 (absolute)")

    @property
    def history_rows(self) -> int:
        """Rows a streaming extractor keeps (longest trailing window)."""
        return max((1, *self.mean_rows, *self.slope_rows, *self.zmean_rows))


def history_feature_names(fields: Sequence[str], config: HistoryConfig) -> list[str]:
    """Feature names of :func:`history_features`, in column order.

    Raises:
        ValueError: a name would exceed 64 characters or a field name is empty.
    """
    if any(not f for f in fields):
        raise ValueError("field names must not be empty")
    names: list[str] = []
    names += [f"{f}_m{w}" for w in config.mean_rows for f in fields]
    names += [f"{f}_e{hz_label(a)}" for a in config.ewma_alphas for f in fields]
    names += [f"{f}_s{w}" for w in config.slope_rows for f in fields]
    names += [f"{f}_zm{w}" for w in config.zmean_rows for f in fields]
    names += [f"{f}_d{hz_label(a)}" for a in config.dev_alphas for f in fields]
    if config.count:
        names.append("rows_seen")
    too_long = [n for n in names if len(n) > _MAX_NAME]
    if too_long:
        raise ValueError(f"feature names longer than {_MAX_NAME} characters: {too_long}")
    return names


def _baseline(x: FloatArray, config: HistoryConfig) -> tuple[FloatArray, FloatArray]:
    ref = x[: config.baseline_rows]
    mu = ref.mean(axis=0)
    sd = ref.std(axis=0)
    floor = np.maximum(config.sd_floor_rel * np.abs(mu), config.sd_floor_abs)
    return mu, np.maximum(sd, floor)


def _trailing_mean(x: FloatArray, w: int) -> FloatArray:
    """(n, k) mean of rows max(0, t-w+1)..t, for every t."""
    n = x.shape[0]
    finite = np.isfinite(x)
    zero = np.zeros((1, x.shape[1]))
    c = np.cumsum(np.vstack([zero, np.where(finite, x, 0.0)]), axis=0)
    bad = np.cumsum(np.vstack([zero, ~finite]), axis=0)  # NaN count, so a NaN stays local
    t = np.arange(n)
    a = np.maximum(0, t - w + 1)
    out: FloatArray = (c[t + 1] - c[a]) / (t + 1 - a)[:, None]
    out[(bad[t + 1] - bad[a]) > 0] = np.nan
    return out


def _slope(seg: FloatArray) -> FloatArray:
    """OLS slope per column of a (m, k) segment against 0..m-1; zeros for m = 1."""
    m = seg.shape[0]
    if m < 2:
        return np.zeros(seg.shape[1])
    tc = np.arange(m, dtype=np.float64) - (m - 1) / 2.0
    out: FloatArray = tc @ (seg - seg.mean(axis=0)) / float(tc @ tc)
    return out


def _trailing_slope(x: FloatArray, w: int) -> FloatArray:
    """(n, k) OLS slope of rows max(0, t-w+1)..t, for every t (per row)."""
    n, k = x.shape
    out = np.zeros((n, k))
    for t in range(1, min(w - 1, n)):  # partial windows at the start
        out[t] = _slope(x[: t + 1])
    if n >= w:
        win = np.lib.stride_tricks.sliding_window_view(x, w, axis=0)  # (n-w+1, k, w)
        tc = np.arange(w, dtype=np.float64) - (w - 1) / 2.0
        centred = win - win.mean(axis=2, keepdims=True)
        out[w - 1 :] = (centred @ tc) / float(tc @ tc)
    return out


def _ewma(x: FloatArray, alpha: float) -> FloatArray:
    out = np.empty_like(x)
    state = x[0].copy()
    for t in range(x.shape[0]):
        if t:
            state = state + alpha * (x[t] - state)
        out[t] = state
    return out


def history_features(x: npt.ArrayLike, config: HistoryConfig) -> FloatArray:
    """Batch history features of a whole series (the training path).

    Args:
        x: (n, k) rows in time order, k fields; n ≥ ``baseline_rows`` and n ≥ 1.
        config: what to compute.

    Returns:
        (n, F) features in the column order of :func:`history_feature_names`; row t uses
        rows ≤ t only, except for the frozen baseline (first ``baseline_rows`` rows).

    Raises:
        ValueError: ``x`` is not 2-D, is empty, or is shorter than the baseline.
    """
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise ValueError(f"x must be a non-empty (rows, fields) array, got shape {arr.shape}")
    if arr.shape[0] < config.baseline_rows:
        raise ValueError(
            f"series has {arr.shape[0]} rows, the baseline needs {config.baseline_rows}"
        )
    cols: list[FloatArray] = []
    cols += [_trailing_mean(arr, w) for w in config.mean_rows]
    cols += [_ewma(arr, a) for a in config.ewma_alphas]
    cols += [_trailing_slope(arr, w) for w in config.slope_rows]
    if config.baseline_rows:
        mu, sd = _baseline(arr, config)
        z = (arr - mu) / sd
        cols += [_trailing_mean(z, w) for w in config.zmean_rows]
        cols += [_ewma(arr, a) - mu for a in config.dev_alphas]
    if config.count:
        cols.append(np.arange(1, arr.shape[0] + 1, dtype=np.float64)[:, None])
    if not cols:
        return np.zeros((arr.shape[0], 0))
    return np.hstack(cols)


class HistoryFeatures:
    """Streaming :func:`history_features` for a gateway: push rows, get feature rows.

    Keeps the last ``config.history_rows`` rows, the EWMA states and (until the baseline
    is frozen) the commissioning backlog. Memory is O(history_rows · fields).

    Args:
        n_fields: k, values per row.
        config: what to compute.
    """

    def __init__(self, n_fields: int, config: HistoryConfig) -> None:
        if n_fields < 1:
            raise ValueError("n_fields must be >= 1")
        self.config = config
        self._k = n_fields
        self._raw: deque[FloatArray] = deque(maxlen=config.history_rows)
        self._z: deque[FloatArray] = deque(maxlen=config.history_rows)
        self._ewma: list[FloatArray | None] = [None] * len(config.ewma_alphas)
        self._dev: list[FloatArray | None] = [None] * len(config.dev_alphas)
        self._backlog: list[FloatArray] = []
        self._mu: FloatArray | None = None
        self._sd: FloatArray | None = None
        self._seen = 0

    @property
    def ready(self) -> bool:
        """Whether the baseline is frozen (always True without a baseline)."""
        return self.config.baseline_rows == 0 or self._mu is not None

    def push(self, rows: npt.ArrayLike) -> FloatArray:
        """Add rows (m, k) in time order; return the (r, F) feature rows completed by them.

        While the baseline is being collected nothing is returned; the push that completes
        it returns the features of all baseline rows plus the rows after it.

        Raises:
            ValueError: rows of the wrong width.
        """
        arr = np.atleast_2d(np.asarray(rows, dtype=np.float64))
        if arr.shape[1] != self._k:
            raise ValueError(f"rows must have {self._k} values, got shape {arr.shape}")
        out: list[FloatArray] = []
        for row in arr:
            if not self.ready:
                self._backlog.append(row.copy())
                if len(self._backlog) == self.config.baseline_rows:
                    self._mu, self._sd = _baseline(np.vstack(self._backlog), self.config)
                    backlog, self._backlog = self._backlog, []
                    out += [self._step(r) for r in backlog]
                continue
            out.append(self._step(row))
        return np.vstack(out) if out else np.zeros((0, self.n_features))

    @property
    def n_features(self) -> int:
        """F, features per output row."""
        c = self.config
        per_field = (
            len(c.mean_rows)
            + len(c.ewma_alphas)
            + len(c.slope_rows)
            + len(c.zmean_rows)
            + len(c.dev_alphas)
        )
        return per_field * self._k + int(c.count)

    def _step(self, row: FloatArray) -> FloatArray:
        c = self.config
        self._seen += 1
        self._raw.append(row)
        raw = np.array(self._raw)
        parts: list[FloatArray] = [raw[-w:].mean(axis=0) for w in c.mean_rows]
        for i, a in enumerate(c.ewma_alphas):
            prev = self._ewma[i]
            self._ewma[i] = row.copy() if prev is None else prev + a * (row - prev)
            parts.append(self._ewma[i])  # type: ignore[arg-type]
        parts += [_slope(raw[-w:]) for w in c.slope_rows]
        if c.baseline_rows:
            assert self._mu is not None and self._sd is not None
            self._z.append((row - self._mu) / self._sd)
            z = np.array(self._z)
            parts += [z[-w:].mean(axis=0) for w in c.zmean_rows]
            for i, a in enumerate(c.dev_alphas):
                prev = self._dev[i]
                self._dev[i] = row.copy() if prev is None else prev + a * (row - prev)
                parts.append(self._dev[i] - self._mu)  # type: ignore[operator]
        if c.count:
            parts.append(np.array([float(self._seen)]))
        return np.concatenate(parts) if parts else np.zeros(0)
