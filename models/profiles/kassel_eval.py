"""Evaluation of ``kassel-shot-t2`` 2.x (:mod:`renkei.models.profiles.kassel_recipe`).

Metric groups (names as in the manifest):

- ``ref_heldout_vs_<set>.*``: per deviation family (and all, without the design's
  centre points, per injection-velocity level) vs the held-out reference shots: ROC-AUC,
  recall / FAR / F1 at the shipped threshold.
- ``threshold.*``: stability of the threshold to one calibration shot (removed, replaced,
  refitted, or one fault shot slipped into the calibration data).
- ``drift.*``: the gateway's drift watch (:class:`renkei.edge.model.drift.DriftWatch`, the same
  code) on regime switches and on the stable reference runs.
- ``other_day.<run>.*``: leave-one-reference-run-out: calibrated on the other four runs
  (another day's production), scored on the whole left-out run.
"""

from __future__ import annotations

from typing import Final

import numpy as np
from numpy.typing import NDArray

from renkei.core.manifest import DriftSpec
from renkei.edge.model.drift import DriftWatch, drift_trace
from renkei.models.conformal import single_shot_bounds
from renkei.models.metrics import binary_metrics, roc_auc
from renkei.models.profiles.kassel_recipe import (
    ALPHA,
    DRIFT_WINDOW,
    FAMILIES,
    N_FOLDS,
    KasselShots,
    calibrate,
    fit_score,
)

__all__ = ["evaluation_metrics", "family_sets", "segments", "switch_delays"]

#: Calibration shots removed one at a time (with refit) in the stability check: the highest
#: out-of-fold scores (they decide the tail) plus evenly spread ones.
LOO_TOP: Final = 20
LOO_SPREAD: Final = 20


def family_sets(shots: KasselShots) -> dict[str, NDArray[np.bool_]]:
    """Positive-shot masks of each evaluation set (scored shots only), by set name."""
    ok = shots.ok
    dev = ok & (shots.family != "reference")
    sets = {"all_deviations": dev}
    for fam in FAMILIES:
        sets[fam] = ok & (shots.family == fam)
    not_centre = ~np.isin(shots.runs, sorted(shots.centre))
    for fam in ("injection_velocity", "switching_point"):
        sets[f"{fam}_without_centre_points"] = ok & (shots.family == fam) & not_centre
    for run in sorted({r for r in shots.runs.tolist() if r.startswith("injection_velocity")}):
        sets[f"level_{run}"] = ok & (shots.runs == run)
    return sets


def segments(runs: NDArray[np.str_]) -> list[tuple[str, int, int]]:
    """Consecutive blocks of one run in file order: ``(name, start, stop)``; a run that
    occurs twice (cooling_time_25) gets ``#2`` on its second block."""
    out: list[tuple[str, int, int]] = []
    seen: dict[str, int] = {}
    start = 0
    for i in range(1, runs.size + 1):
        if i == runs.size or runs[i] != runs[start]:
            name = str(runs[start])
            seen[name] = seen.get(name, 0) + 1
            out.append((name if seen[name] == 1 else f"{name}#{seen[name]}", start, i))
            start = i
    return out


def switch_delays(
    shots: KasselShots, scores: NDArray[np.float64], spec: DriftSpec
) -> dict[str, int]:
    """Per run segment: shots from its start to the drift onset (-1: none), for a watch
    warmed up on the last ``window`` held-out reference shots (stable normal) before it."""
    normal = scores[(shots.part == "eval") & shots.ok][-spec.window :]
    out: dict[str, int] = {}
    for name, a, b in segments(shots.runs):
        watch = DriftWatch(spec)
        for s in normal.tolist():
            watch.push(s)
        seg = scores[a:b][shots.ok[a:b]]
        out[name] = -1
        for j, s in enumerate(seg.tolist()):
            if watch.push(s) is not None and watch.drifting:
                out[name] = j + 1
                break
    return out


def _threshold_stability(
    shots: KasselShots, scores: NDArray[np.float64], threshold: float
) -> dict[str, float]:
    cal = np.flatnonzero(shots.part == "cal")
    x_cal, runs_cal = shots.x[cal], shots.runs[cal]
    base = calibrate(x_cal, runs_cal)
    lo, hi = single_shot_bounds(base.oof, ALPHA)
    dev = scores[shots.ok & (shots.family != "reference")]
    out = {
        "threshold.alpha": ALPHA,
        "threshold.n_calibration": float(cal.size),
        "threshold.recomputed_rel": base.threshold / threshold - 1.0,
        "holdout_normal.far": float(np.mean(base.oof > threshold)),
        "threshold.single_shot_low_rel": lo / base.threshold - 1.0,
        "threshold.single_shot_high_rel": hi / base.threshold - 1.0,
        "threshold.recall_all_at_low": float(np.mean(dev > lo)),
        "threshold.recall_all_at_high": float(np.mean(dev > hi)),
    }
    order = np.argsort(base.oof)[::-1]
    picks = sorted(
        {*order[:LOO_TOP].tolist(), *np.linspace(0, cal.size - 1, LOO_SPREAD).astype(int).tolist()}
    )
    moves = []
    for i in picks:
        keep = np.ones(cal.size, dtype=bool)
        keep[i] = False
        moves.append(calibrate(x_cal[keep], runs_cal[keep]).threshold / base.threshold - 1.0)
    out["threshold.loo_refit_min_rel"] = float(min(moves))
    out["threshold.loo_refit_max_rel"] = float(max(moves))
    # One fault shot slipped into the calibration data: the highest-scoring deviation shot,
    # inserted into the middle of the largest reference run's calibration part.
    worst = int(np.nanargmax(np.where(shots.family != "reference", scores, np.nan)))
    big = max(set(runs_cal.tolist()), key=lambda r: int(np.sum(runs_cal == r)))
    at = int(np.flatnonzero(runs_cal == big)[int(np.sum(runs_cal == big)) // 2])
    x_in = np.insert(x_cal, at, shots.x[worst], axis=0)
    r_in = np.insert(runs_cal, at, big)
    injected = calibrate(x_in, r_in).threshold
    out["threshold.outlier_injected_rel"] = injected / base.threshold - 1.0
    out["threshold.outlier_injected_recall_all"] = float(np.mean(dev > injected))
    return out


def _drift_metrics(
    shots: KasselShots, scores: NDArray[np.float64], spec: DriftSpec
) -> dict[str, float]:
    out: dict[str, float] = {
        "drift.window": float(spec.window),
        "drift.reference_score": spec.reference_score,
        "drift.fire_share": spec.fire_share,
    }
    delays = switch_delays(shots, scores, spec)
    for name, d in delays.items():
        out[f"drift.switch.{name}.delay"] = float(d)
    dev = [d for n, d in delays.items() if not n.startswith("reference")]
    out["drift.switch.deviation_runs_fired"] = float(np.mean([d > 0 for d in dev]))
    fired = [d for d in dev if d > 0]
    out["drift.switch.median_delay"] = float(np.median(fired)) if fired else float("nan")
    ok = np.flatnonzero(shots.ok)
    _share, state = drift_trace(scores[ok], spec)
    onsets = np.flatnonzero(np.diff(state.astype(np.int8), prepend=np.int8(0)) == 1)
    runs_ok = shots.runs[ok]
    for name, a, b in segments(shots.runs):
        m = (ok >= a) & (ok < b)
        out[f"drift.stream.{name}.time_in_drift"] = float(np.mean(state[m]))
    ref = np.char.startswith(runs_ok, "reference")
    out["drift.stream.reference.onsets_per_1000"] = (
        1000.0 * float(np.sum(ref[onsets])) / float(ref.sum())
    )
    ev = shots.part[ok] == "eval"
    out["drift.stream.reference_eval.time_in_drift"] = float(np.mean(state[ev]))
    return out


def _other_day(shots: KasselShots, scores: NDArray[np.float64]) -> dict[str, float]:
    out: dict[str, float] = {}
    dev_x = shots.x[shots.ok & (shots.family != "reference")]
    for run in shots.reference_runs:
        cal = (shots.part == "cal") & (shots.runs != run)
        try:
            c = calibrate(shots.x[cal], shots.runs[cal])
        except ValueError:  # e.g. t4052 constant in a fold without this run: refused
            out[f"other_day.{run}.refused"] = 1.0
            continue
        x_all = shots.x[shots.ok & (shots.runs == run)]
        s_run = fit_score(shots.x[cal], np.vstack([x_all, dev_x]))
        own, dev = s_run[: len(x_all)], s_run[len(x_all) :]
        _, state = drift_trace(own, c.drift)
        out[f"other_day.{run}.far"] = float(np.mean(own > c.threshold))
        out[f"other_day.{run}.recall_all"] = float(np.mean(dev > c.threshold))
        out[f"other_day.{run}.time_in_drift"] = float(np.mean(state))
        out[f"other_day.{run}.n"] = float(len(own))
    return out


def evaluation_metrics(
    shots: KasselShots, scores: NDArray[np.float64], threshold: float, spec: DriftSpec
) -> dict[str, float]:
    """All evaluation numbers (see the module docstring) for the model's ``scores`` (n,)
    (NaN on unscored shots), its ``threshold`` and drift ``spec``."""
    out: dict[str, float] = {}
    neg = scores[(shots.part == "eval") & shots.ok]
    for name, mask in family_sets(shots).items():
        pos = scores[mask]
        s = np.r_[neg, pos]
        y = np.r_[np.zeros(neg.size, np.int8), np.ones(pos.size, np.int8)]
        key = f"ref_heldout_vs_{name}"
        if not name.startswith("level_"):
            for k, v in binary_metrics(s, y, threshold).items():
                out[f"{key}.{k}"] = v
        else:
            out[f"{key}.n_pos"] = float(pos.size)
            out[f"{key}.n_neg"] = float(neg.size)
        out[f"{key}.roc_auc"] = roc_auc(s, y)
    cal_scores = scores[(shots.part == "cal") & shots.ok]
    out["calibration_in_sample.far"] = float(np.mean(cal_scores > threshold))
    out.update(_threshold_stability(shots, scores, threshold))
    out.update(_drift_metrics(shots, scores, spec))
    out.update(_other_day(shots, scores))
    out["n_folds"] = float(N_FOLDS)
    out["drift_window"] = float(DRIFT_WINDOW)
    return out
