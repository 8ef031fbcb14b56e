"""Shadow check: score a candidate model on the machine's recent rows before it goes live.

:func:`shadow_check` runs the candidate, one row per call as the pipeline does, on recent
feature rows (windows or shots) next to the running model and passes only if:

1. every row the pipeline would score (all inputs present and finite) gets a finite score;
2. the 95th percentile of the per-call latency is within ``latency_budget_ms``;
3. the share of rows the candidate flags (``score > threshold`` of its own manifest) is at
   most ``max(max_alarm_fraction, share the running model flags on the same rows)`` -- a
   candidate may not be noisier than both the configured bound and the running model.

At least ``min_windows`` scorable rows are required.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from renkei.core.errors import ModelError
from renkei.edge.config import ShadowConfig
from renkei.edge.model.inference import AnomalyModel

__all__ = ["ShadowResult", "shadow_check"]


@dataclass(frozen=True, slots=True)
class ShadowResult:
    """Outcome of :func:`shadow_check`; ``checks`` holds the measured numbers."""

    ok: bool
    reason: str
    checks: dict[str, float] = field(default_factory=dict)


def _alarm_fraction(model: AnomalyModel, x: np.ndarray) -> float | None:
    try:
        scores = model.score(x)
    except ModelError:  # the running model's view is only a reference
        return None
    finite = np.isfinite(scores)
    if not finite.any():
        return None
    return float(np.mean(scores[finite] > model.threshold))


def shadow_check(
    candidate: AnomalyModel,
    current: AnomalyModel | None,
    rows: Sequence[dict[str, float]],
    cfg: ShadowConfig,
) -> ShadowResult:
    """Run the checks of the module docstring.

    Args:
        candidate: the verified, loaded new model.
        current: the model running now (for the relative alarm bound), or ``None``.
        rows: recent feature rows, oldest first (feature name -> value).
        cfg: bounds.

    Returns:
        The result; never raises for a misbehaving candidate (that is a failed check).
    """
    names = candidate.input_names
    usable = [r for r in rows if all(n in r for n in names)]
    if rows and not usable:
        missing = sorted({n for n in names for r in rows[-1:] if n not in r})
        return ShadowResult(False, f"recent rows lack the model's inputs {missing[:10]}")
    x = np.array([[r[n] for n in names] for r in usable], dtype=np.float32).reshape(-1, len(names))
    x = x[np.isfinite(x).all(axis=1)]
    n = int(x.shape[0])
    checks: dict[str, float] = {"windows": float(n)}
    if n < cfg.min_windows:
        return ShadowResult(False, f"only {n} scorable recent rows, need {cfg.min_windows}", checks)
    scores = np.empty(n, dtype=np.float64)
    latencies = np.empty(n, dtype=np.float64)
    try:
        candidate.score(x[:1])  # warm-up, not timed
        for i in range(n):
            t0 = time.perf_counter()
            scores[i] = candidate.score(x[i : i + 1])[0]
            latencies[i] = (time.perf_counter() - t0) * 1000.0
    except ModelError as exc:
        return ShadowResult(False, f"model failed while scoring: {exc}", checks)
    p95 = float(np.percentile(latencies, 95))
    checks["latency_p95_ms"] = round(p95, 4)
    checks["latency_max_ms"] = round(float(latencies.max()), 4)
    bad = int((~np.isfinite(scores)).sum())
    checks["nonfinite_scores"] = float(bad)
    if bad:
        return ShadowResult(
            False, f"{bad} of {n} scores on recent rows are not finite (NaN/inf)", checks
        )
    checks["score_median"] = float(np.median(scores))
    checks["threshold"] = float(candidate.threshold)
    alarm = float(np.mean(scores > candidate.threshold))
    checks["alarm_fraction"] = round(alarm, 6)
    allowed = cfg.max_alarm_fraction
    if current is not None and all(name in names for name in current.input_names):
        cols = [names.index(name) for name in current.input_names]
        ref = _alarm_fraction(current, x[:, cols])
        if ref is not None:
            checks["current_alarm_fraction"] = round(ref, 6)
            allowed = max(allowed, ref)
    if p95 > cfg.latency_budget_ms:
        return ShadowResult(
            False,
            f"latency p95 {p95:.3g} ms exceeds the budget of {cfg.latency_budget_ms:g} ms",
            checks,
        )
    if alarm > allowed:
        return ShadowResult(
            False,
            f"flags {alarm:.1%} of {n} recent rows as anomalous (score > threshold "
            f"{candidate.threshold:.6g}); at most {allowed:.1%} allowed",
            checks,
        )
    return ShadowResult(True, "", checks)
