"""Fit the machine's model on the first part of its period, set the threshold on the rest.

Rule (fixed in code, no label is ever read):

1. rows with every chosen channel present, oldest first; the first ``1 - holdout_fraction``
   (default 75 %) are fitted, the last ``holdout_fraction`` (25 %) are held back and never
   fitted (a time split: neighbouring rows do not leak into the held-back part);
2. channels: those the checks kept (:class:`~renkei.models.commission.decision.Decision`:
   present, not flat, not drifting), minus channels that repeat an earlier one (absolute
   correlation ≥ :data:`DUPLICATE_CORR` on the fit rows, e.g. a window's ``_min``/``_max``
   equal to its ``_mean`` when a window holds one sample) or are constant on the fit rows;
3. inputs: with ``mean_rows`` W > 1 the trailing mean of each kept channel over W rows
   (``{channel}_m{W}``, :mod:`renkei.edge.features.history`, which the gateway computes
   streaming from the same stored fields, :func:`renkei.edge.model.inputs.plan_inputs`);
   the first W - 1 rows (a shorter mean) are not fitted. W = 1: the channels themselves
   (a channel whose name would read as a history feature is then left out);
4. model: mean squared Mahalanobis distance to the fit rows with Ledoit-Wolf shrinkage
   (:mod:`renkei.models.mahalanobis`, fitted on standardised channels and mapped back to raw
   units, exported to ONNX as is);
5. threshold: :func:`renkei.models.commission.threshold.alarm_threshold` on the ONNX scores
   (onnxruntime, the gateway's session options) of the held-back rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray

from renkei.edge.features.history import HistoryConfig, history_feature_names, history_features
from renkei.edge.model.inputs import HISTORY_NAME_RE
from renkei.models.artifact import make_session, run_outputs
from renkei.models.commission.query import FeatureTable
from renkei.models.commission.threshold import ThresholdChoice, alarm_threshold
from renkei.models.mahalanobis import MahalanobisFit, fit_mahalanobis, to_onnx_bytes

__all__ = ["DUPLICATE_CORR", "CommissionFit", "fit_commission"]

DUPLICATE_CORR: Final = 0.999


@dataclass(frozen=True)
class CommissionFit:
    """A fitted model, not yet written.

    Attributes:
        channels: input names in column order (``{field}_m{W}`` with ``mean_rows`` W > 1).
        fields: the stored fields the inputs are computed from.
        mean_rows: trailing-mean length W, rows (1 = the fields themselves).
        duplicates: channel -> the earlier channel it repeats (left out).
        fit: the Mahalanobis fit.
        onnx_bytes: its ONNX graph.
        fit_t_ms: (first, last) time of the fit rows, UTC epoch ms.
        holdout_t_ms: (first, last) time of the held-back rows.
        fit_rows, holdout_rows: row counts.
        incomplete_rows: rows left out for a missing channel value.
        holdout_scores: (H,) ONNX scores of the held-back rows.
        fit_median: median score of the fit rows (in-sample; ≈ 1 by construction).
        threshold: the :class:`ThresholdChoice`.
    """

    channels: tuple[str, ...]
    fields: tuple[str, ...]
    mean_rows: int
    duplicates: dict[str, str]
    fit: MahalanobisFit
    onnx_bytes: bytes
    fit_t_ms: tuple[int, int]
    holdout_t_ms: tuple[int, int]
    fit_rows: int
    holdout_rows: int
    incomplete_rows: int
    holdout_scores: NDArray[np.float64]
    fit_median: float
    threshold: ThresholdChoice

    @property
    def holdout_shift(self) -> float:
        """Median held-back score / median fit score: ≈ 1-2 when the held-back rows behave
        like the fit rows, far more when the period changes state between them (a fault or
        a change of regime the per-channel checks do not see)."""
        return float(np.median(self.holdout_scores)) / max(self.fit_median, 1e-12)


def _distinct(x: NDArray[np.float64], names: tuple[str, ...]) -> tuple[list[int], dict[str, str]]:
    keep: list[int] = []
    dup: dict[str, str] = {}
    sd = x.std(axis=0)
    for j, name in enumerate(names):
        if sd[j] <= 0:
            dup[name] = "(constant)"
            continue
        for k in keep:
            c = float(np.corrcoef(x[:, j], x[:, k])[0, 1])
            if abs(c) >= DUPLICATE_CORR:
                dup[name] = names[k]
                break
        else:
            keep.append(j)
    return keep, dup


def _fit_scaled(x: NDArray[np.float64]) -> MahalanobisFit:
    """:func:`fit_mahalanobis` (Ledoit-Wolf) on per-channel standardised rows, mapped back
    to raw units (``W_raw = diag(1/sd) W_z``, ``m_raw = mu + sd * m_z``): the score is the
    same, but channels of very different scales (volts next to g) no longer trip its
    singularity check, which is relative to the largest eigenvalue in raw units."""
    mu, sd = x.mean(axis=0), x.std(axis=0)
    z = fit_mahalanobis((x - mu) / sd, ledoit_wolf=True)
    return MahalanobisFit(
        mean=mu + sd * z.mean,
        whitening=z.whitening / sd[:, None],
        n_features=z.n_features,
        shrinkage=z.shrinkage,
    )


def fit_commission(
    table: FeatureTable,
    channels: tuple[str, ...],
    *,
    holdout_fraction: float,
    target_per_day: float,
    min_holdout_rows: int,
    mean_rows: int = 1,
) -> CommissionFit:
    """Fit and threshold a model on a checked period (see the module docstring).

    Args:
        table: the period's rows, oldest first.
        channels: candidate inputs (the checks' kept channels).
        holdout_fraction: share of the complete rows held back, in (0, 1).
        target_per_day: allowed alarm onsets per day on normal data.
        min_holdout_rows: fewest held-back rows.
        mean_rows: trailing-mean length W of the inputs, rows (≥ 1).

    Raises:
        ValueError: no channel, a held-back part too small, fewer fit rows than channels,
            or a singular covariance (message names the cause).
    """
    if not 0.0 < holdout_fraction < 1.0:
        raise ValueError(f"holdout fraction must be in (0, 1), got {holdout_fraction}")
    if not channels:
        raise ValueError("no channel left to fit after the checks (all flat, drifting or sparse)")
    sub = table.columns(channels)
    complete: NDArray[np.bool_] = np.asarray(np.isfinite(sub.x).all(axis=1))
    rows = sub.take(complete)
    n = len(rows)
    n_hold = round(n * holdout_fraction)
    if n_hold < min_holdout_rows:
        raise ValueError(
            f"held-back part has {n_hold} rows ({holdout_fraction:.0%} of {n} complete rows), "
            f"at least {min_holdout_rows} needed"
        )
    if mean_rows < 1:
        raise ValueError(f"mean_rows must be >= 1, got {mean_rows}")
    n_fit = n - n_hold
    keep, dup = _distinct(rows.x[:n_fit], channels)
    if mean_rows == 1:
        for j in [j for j in keep if HISTORY_NAME_RE.match(channels[j])]:
            dup[channels[j]] = "(name reads as a history feature)"
            keep.remove(j)
    if not keep:
        raise ValueError(f"no usable channel on the fit rows: {dup}")
    fields = tuple(channels[j] for j in keep)
    if mean_rows > 1:
        config = HistoryConfig(mean_rows=(mean_rows,))
        feats = history_features(rows.x[:, keep], config)
        names = tuple(history_feature_names(fields, config))
    else:
        feats, names = rows.x[:, keep], fields
    warm = mean_rows - 1
    if n_fit - warm <= len(names):
        raise ValueError(f"{n_fit - warm} fit rows for {len(names)} channels: period too short")
    fit = _fit_scaled(feats[warm:n_fit])
    onnx_bytes = to_onnx_bytes(fit, doc="Renkei commissioned Mahalanobis score; see manifest.json")
    session = make_session(onnx_bytes)
    scores = run_outputs(session, feats[n_fit:])["score"]
    fit_scores = run_outputs(session, feats[warm:n_fit])["score"]
    choice = alarm_threshold(
        scores,
        spacing_s=table.spacing_s(),
        target_per_day=target_per_day,
        min_rows=min_holdout_rows,
    )
    return CommissionFit(
        channels=names,
        fields=fields,
        mean_rows=mean_rows,
        duplicates=dup,
        fit=fit,
        onnx_bytes=onnx_bytes,
        fit_t_ms=(int(rows.t_ms[warm]), int(rows.t_ms[n_fit - 1])),
        holdout_t_ms=(int(rows.t_ms[n_fit]), int(rows.t_ms[-1])),
        fit_rows=n_fit - warm,
        holdout_rows=n_hold,
        incomplete_rows=int((~complete).sum()),
        holdout_scores=scores,
        fit_median=float(np.median(fit_scores)),
        threshold=choice,
    )
