"""The NAB score of binary detections on one data file (Numenta Anomaly Benchmark rules).

Re-implementation of ``nab/sweeper.py`` of github.com/numenta/NAB @ ea702d7 (MIT; Lavin &
Ahmad 2015, arXiv:1510.03336; Ahmad et al. 2017, doi:10.1016/j.neucom.2017.04.070):

- probationary period: the first ``min(floor(0.15 n), 0.15 · 5000)`` rows are not scored
  (750 rows for any file of ≥ 5,000 rows; NAB's ``_getProbationaryLength``);
- every anomaly window that has scored rows starts at ``-fnWeight`` (a miss); a detection
  inside it replaces that with the best (earliest) detection's
  ``scaledSigmoid(-(right - i + 1) / width) · tpWeight / scaledSigmoid(-1)``;
- every detection outside the windows adds ``scaledSigmoid(p) · fpWeight`` (negative),
  ``p = |i - right_prev| / (width_prev - 1)`` after a window, ``p = 3`` (→ -1) before the
  first one; ``scaledSigmoid(p) = 2 / (1 + exp(5 p)) - 1``, ``-1`` for ``p ≥ 3``;
- the normalised score ``100 (raw - null) / (perfect - null)`` with the null detector
  (no detection: ``-fnWeight`` per window) and the perfect detector (a detection on every
  window's first row: ``+tpWeight`` per window).

NAB normalises over its whole corpus; the single-file normalised score here uses the same
formula on one file, so it is only comparable with other detectors' scores on this file.

Corpus protocol (NAB ``optimizer.py`` / ``runner.py``): a detector outputs a score per row;
every scored row with ``score >= threshold`` is a detection; ONE threshold per detector and
profile is chosen to maximise the raw score summed over all files (:func:`optimize_threshold`,
an exact sweep over the distinct score values, like NAB's sweeper); the corpus score is
normalised with the null and perfect detectors' corpus sums (:func:`corpus_score`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "PROFILES",
    "CorpusResult",
    "NabCosts",
    "NabFile",
    "NabResult",
    "corpus_score",
    "nab_score",
    "optimize_threshold",
    "probationary_length",
    "scaled_sigmoid",
]


@dataclass(frozen=True, slots=True)
class NabCosts:
    """A NAB cost matrix (``config/profiles.json``)."""

    tp: float
    fp: float
    fn: float


#: NAB's application profiles (``config/profiles.json`` @ ea702d7).
PROFILES: Final[Mapping[str, NabCosts]] = {
    "standard": NabCosts(tp=1.0, fp=0.11, fn=1.0),
    "reward_low_FP_rate": NabCosts(tp=1.0, fp=0.22, fn=1.0),
    "reward_low_FN_rate": NabCosts(tp=1.0, fp=0.11, fn=2.0),
}


@dataclass(frozen=True, slots=True)
class NabResult:
    """Score of one file.

    Attributes:
        raw: NAB raw score (sum of window and false-positive contributions).
        normalized: ``100 (raw - null) / (perfect - null)``; 100 = perfect, 0 = null.
        null, perfect: raw scores of the null and the perfect detector.
        windows_detected: windows with ≥ 1 scored detection.
        windows: scored windows.
        false_positives: scored detections outside every window.
        window_scores: per scored window, its contribution (``-fn`` if missed).
    """

    raw: float
    normalized: float
    null: float
    perfect: float
    windows_detected: int
    windows: int
    false_positives: int
    window_scores: tuple[float, ...]


def scaled_sigmoid(position: float) -> float:
    """NAB's ``scaledSigmoid``: ``2 / (1 + exp(5 p)) - 1``, and -1 for ``p ≥ 3``."""
    if position >= 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * position)) - 1.0


def probationary_length(n_rows: int, probation_percent: float = 0.15) -> int:
    """Rows NAB does not score: ``min(floor(p · n), p · 5000)`` (750 for n ≥ 5000)."""
    return int(min(math.floor(probation_percent * n_rows), probation_percent * 5000))


def nab_score(
    detections: NDArray[np.bool_] | Sequence[bool],
    windows: Sequence[tuple[int, int]],
    *,
    costs: NabCosts = PROFILES["standard"],
    probation: int | None = None,
) -> NabResult:
    """NAB score of binary ``detections`` (one per row) against anomaly ``windows``.

    Args:
        detections: (n,) True where the detector raised an alarm (NAB counts every such
            row; a detector that holds an alarm raised for many rows pays a false positive
            for each of them outside the windows).
        windows: ``(first_row, last_row)`` inclusive, sorted, non-overlapping.
        costs: cost matrix (default NAB "standard").
        probation: unscored leading rows (default :func:`probationary_length`).

    Raises:
        ValueError: windows out of range, unsorted or overlapping.
    """
    det = np.asarray(detections, dtype=bool).ravel()
    n = det.size
    prob = probationary_length(n) if probation is None else probation
    prev_right = -1
    for a, b in windows:
        if not 0 <= a <= b < n or a <= prev_right:
            raise ValueError(f"windows must be sorted, disjoint and inside [0, {n}): {windows}")
        prev_right = b
    max_tp = scaled_sigmoid(-1.0)
    in_window = np.full(n, -1, dtype=np.int64)
    for j, (a, b) in enumerate(windows):
        in_window[a : b + 1] = j
    scored = [j for j, (_, b) in enumerate(windows) if b >= prob]
    best = {j: -costs.fn for j in scored}
    fp_total = 0.0
    n_fp = 0
    for i in np.flatnonzero(det).tolist():
        if i < prob:
            continue
        j = int(in_window[i])  # i: Python int
        if j >= 0:
            a, b = windows[j]
            width = b - a + 1
            s = scaled_sigmoid(-(b - i + 1) / width) * costs.tp / max_tp
            best[j] = max(best[j], s)
            continue
        before = [k for k, (_, b) in enumerate(windows) if b < i]
        if before:
            a, b = windows[before[-1]]
            position = abs(i - b) / float(b - a)  # NAB: width - 1 = b - a
        else:
            position = 3.0
        fp_total += scaled_sigmoid(position) * costs.fp
        n_fp += 1
    raw = sum(best.values()) + fp_total
    null = -costs.fn * len(scored)
    perfect = costs.tp * len(scored)
    normalized = 100.0 * (raw - null) / (perfect - null) if perfect > null else float("nan")
    return NabResult(
        raw=raw,
        normalized=normalized,
        null=null,
        perfect=perfect,
        windows_detected=sum(1 for j in scored if best[j] > -costs.fn),
        windows=len(scored),
        false_positives=n_fp,
        window_scores=tuple(best[j] for j in scored),
    )


@dataclass(frozen=True, slots=True)
class NabFile:
    """One corpus file as the scorer sees it: ``name`` (``folder/file.csv``), ``n`` rows,
    ``windows`` (first, last) rows inclusive, ``probation`` unscored leading rows."""

    name: str
    n: int
    windows: tuple[tuple[int, int], ...]
    probation: int


@dataclass(frozen=True, slots=True)
class CorpusResult:
    """A detector's corpus score for one profile at one threshold.

    Attributes:
        threshold: the detection threshold (``score >= threshold``).
        raw: raw scores summed over files.
        null, perfect: the null / perfect detectors' corpus sums (``∓ weight · windows``).
        normalized: ``100 (raw - null) / (perfect - null)``.
        per_file: each file's :class:`NabResult`, in input order.
    """

    threshold: float
    raw: float
    null: float
    perfect: float
    normalized: float
    per_file: tuple[NabResult, ...]


def _row_terms(f: NabFile) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Per scored row: window index (-1 outside) and the unit-weight contribution of a
    detection there (``+tp`` scale inside a window, ``<= 0`` false-positive weight outside)."""
    win = np.full(f.n, -1, dtype=np.int64)
    term = np.empty(f.n, dtype=np.float64)
    max_tp = scaled_sigmoid(-1.0)
    prev: tuple[int, int] | None = None
    k = 0
    for i in range(f.n):
        while k < len(f.windows) and f.windows[k][1] < i:
            prev = f.windows[k]
            k += 1
        if k < len(f.windows) and f.windows[k][0] <= i:
            a, b = f.windows[k]
            win[i] = k
            term[i] = scaled_sigmoid(-(b - i + 1) / (b - a + 1)) / max_tp
        elif prev is None:
            term[i] = -1.0
        else:
            term[i] = scaled_sigmoid(abs(i - prev[1]) / float(prev[1] - prev[0]))
    return win, term


def optimize_threshold(
    files: Sequence[NabFile],
    scores: Sequence[NDArray[np.float64]],
    costs: NabCosts = PROFILES["standard"],
) -> tuple[float, float]:
    """NAB's corpus threshold: the ``threshold`` maximising the summed raw score.

    Exact sweep: scored rows of all files sorted by score (descending); lowering the
    threshold past a score value adds its rows as detections (a window keeps its best,
    i.e. earliest, detection; each row outside windows adds its false-positive cost).
    Ties are broken towards the higher threshold. Returns ``(threshold, raw total)``;
    ``threshold = inf`` when no threshold beats the null detector. Non-finite scores never
    detect.

    Raises:
        ValueError: ``files`` and ``scores`` differ in length or a score array in size.
    """
    if len(files) != len(scores):
        raise ValueError(f"{len(files)} files but {len(scores)} score arrays")
    vals, wins, terms = [], [], []
    n_windows = 0
    for f, s in zip(files, scores, strict=True):
        s = np.asarray(s, dtype=np.float64)
        if s.shape != (f.n,):
            raise ValueError(f"{f.name}: {s.shape[0]} scores for {f.n} rows")
        win, term = _row_terms(f)
        scored_windows = [j for j, (_, b) in enumerate(f.windows) if b >= f.probation]
        keep = np.zeros(f.n, dtype=bool)
        keep[f.probation :] = True
        keep &= np.isfinite(s)
        # windows wholly inside the probation are not scored; their rows are not either
        keep &= (win < 0) | np.isin(win, scored_windows)
        w = np.where(win[keep] >= 0, win[keep] + n_windows, -1)
        vals.append(s[keep])
        wins.append(w)
        terms.append(term[keep])
        n_windows += len(f.windows)
    v = np.concatenate(vals) if vals else np.empty(0)
    w_all = np.concatenate(wins) if wins else np.empty(0, dtype=np.int64)
    t_all = np.concatenate(terms) if terms else np.empty(0)
    n_scored = sum(sum(1 for (_, b) in f.windows if b >= f.probation) for f in files)
    order = np.argsort(-v, kind="stable")
    v, w_all, t_all = v[order], w_all[order], t_all[order]
    best = np.full(max(n_windows, 1), -costs.fn)
    total = -costs.fn * n_scored
    best_total, best_thr = total, math.inf
    i, n = 0, v.size
    while i < n:
        j = i
        while j < n and v[j] == v[i]:
            k = int(w_all[j])
            if k >= 0:
                gain = costs.tp * float(t_all[j])
                if gain > best[k]:
                    total += gain - best[k]
                    best[k] = gain
            else:
                total += costs.fp * float(t_all[j])
            j += 1
        if total > best_total + 1e-12:
            best_total, best_thr = total, float(v[i])
        i = j
    return best_thr, best_total


def corpus_score(
    files: Sequence[NabFile],
    scores: Sequence[NDArray[np.float64]],
    costs: NabCosts = PROFILES["standard"],
    threshold: float | None = None,
) -> CorpusResult:
    """Corpus score at ``threshold`` (default: :func:`optimize_threshold`'s), NAB-normalised
    with the null and perfect detectors' sums over ``files``."""
    if threshold is None:
        threshold, _ = optimize_threshold(files, scores, costs)
    per_file = []
    for f, s in zip(files, scores, strict=True):
        s = np.asarray(s, dtype=np.float64)
        det = np.isfinite(s) & (s >= threshold)
        per_file.append(nab_score(det, f.windows, costs=costs, probation=f.probation))
    raw = sum(r.raw for r in per_file)
    null = sum(r.null for r in per_file)
    perfect = sum(r.perfect for r in per_file)
    normalized = 100.0 * (raw - null) / (perfect - null) if perfect > null else float("nan")
    return CorpusResult(threshold, raw, null, perfect, normalized, tuple(per_file))
