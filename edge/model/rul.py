"""Remaining-useful-life models on the gateway: inputs, scoring, ``rul`` and ``mold`` rows.

A RUL model (manifest ``task == "rul"``, :mod:`renkei.core.manifest`) scores rows of its
``feature_kind`` (one per shot / machine cycle, or one per feature window). Its inputs are
those rows' features or history features of their fields, computed row by row by
:class:`renkei.edge.model.inputs.ModelInputs` (the same path the anomaly models use); with a
history baseline nothing is scored during the first ``baseline_rows`` rows, and the row that
completes the baseline releases all of them, each with its own timestamp.

Outputs (manifest ``outputs``): ``rul`` (median), optional ``rul_lo``/``rul_hi`` (10 % / 90 %
band), in the manifest's units (cycles = shots for machine-cycle models). They become:

- ``rul`` rows (:func:`rul_fields`): ``rul_cycles``, ``rul_p10``, ``rul_p90`` (cycles) and,
  when the row has ``cycle_time_s``, ``rul_h`` = ``rul_cycles * cycle_time_s / 3600`` (h);
- ``mold`` rows (:class:`MoldTracker`), per shot: ``shot_count`` (the shot counter),
  ``shots_since_maintenance``, ``maintenance_interval_shots``, ``remaining_shots`` (shots)
  and, once the wear model is engaged, ``remaining_shots_p10``/``_p90``.

Names and fields are those of :mod:`renkei.core.influx.contract` (measurements ``rul`` and
``mold``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from renkei.core.manifest import ModelManifest
from renkei.edge.model.inference import AnomalyModel, ModelError
from renkei.edge.model.inputs import (
    BASELINE_PARAM_KEYS,
    InputPlan,
    InputPlanError,
    ModelInputs,
    ModelRow,
)
from renkei.edge.model.inputs import plan_inputs as _plan_inputs
from renkei.edge.model.regimes import RegimeParamsError, RegimeTable

__all__ = [
    "BASELINE_PARAM_KEYS",
    "InputPlan",
    "MoldTracker",
    "RulOutput",
    "RulPlanError",
    "RulRunner",
    "plan_inputs",
    "rul_fields",
]

log = logging.getLogger(__name__)


class RulPlanError(InputPlanError):
    """A RUL model whose inputs or outputs the gateway cannot serve."""


def plan_inputs(manifest: ModelManifest, *, baseline_rows: int | None = None) -> InputPlan:
    """The :class:`~renkei.edge.model.inputs.InputPlan` of a ``task == "rul"`` manifest.

    Args:
        manifest: the model's manifest.
        baseline_rows: history baseline length, rows; default: the manifest's
            ``algorithm_params`` (:data:`~renkei.edge.model.inputs.BASELINE_PARAM_KEYS`).

    Raises:
        RulPlanError: not a RUL model, no ``rul`` output, history inputs in an order the
            gateway cannot rebuild, or baseline features without a baseline length.
    """
    if manifest.task != "rul" or manifest.rul_cap is None:
        raise RulPlanError(f"model {manifest.name} is not a RUL model (task {manifest.task!r})")
    if not any(o.name == "rul" for o in manifest.outputs):
        raise RulPlanError(f"model {manifest.name} has no 'rul' output")
    try:
        RegimeTable.from_params(manifest.algorithm_params)  # validates regime parameters
    except RegimeParamsError as exc:
        raise RulPlanError(f"model {manifest.name}: {exc}") from None
    try:
        return _plan_inputs(manifest, baseline_rows=baseline_rows)
    except InputPlanError as exc:
        raise RulPlanError(str(exc)) from None


@dataclass(frozen=True, slots=True)
class RulOutput:
    """One scored (or unscoreable) row.

    Attributes:
        t_ms: published time of the row, UTC epoch ms.
        row: the row's features (a shot's values or a window's features).
        inputs: the model inputs (F,), or ``None`` when the row lacks one.
        rul, rul_lo, rul_hi: model outputs in the manifest's units (cycles); ``None`` when
            the row could not be scored (missing/non-finite input, model error) or the
            model has no band.
        in_baseline: the row is one of the history baseline's rows; the training recipes
            do not evaluate those (e.g. ``renkei.models.profiles.mold`` scores from row
            ``REFERENCE_SHOTS`` on), so their outputs are not published.
    """

    t_ms: int
    row: Mapping[str, float]
    inputs: NDArray[np.float64] | None
    rul: float | None
    rul_lo: float | None
    rul_hi: float | None
    in_baseline: bool = False


class RulRunner:
    """Computes a RUL model's inputs row by row and scores them. Not thread-safe.

    Args:
        model: the verified model (``task == "rul"``).
        plan: from :func:`plan_inputs` of the model's manifest.
    """

    def __init__(self, model: AnomalyModel, plan: InputPlan) -> None:
        self.model = model
        self.plan = plan
        self.rul_cap = float(model.manifest.rul_cap or 0.0)
        self._inputs: ModelInputs[None] = ModelInputs(plan)
        self.baseline_rows = plan.rows_needed
        self.scored = 0
        self.unscored = 0
        self.model_errors = 0
        # Multi-condition models: the plan's regime table (renkei.edge.model.regimes) makes
        # ModelInputs normalise each row before the history features, as batch_inputs does
        # for the shadow check.

    @property
    def rows(self) -> int:
        """Rows completed so far (scored or not)."""
        return self._inputs.rows

    def push(self, t_ms: int, row: Mapping[str, float]) -> list[RulOutput]:
        """Add one row (published time ``t_ms``, UTC epoch ms); return the rows it completes
        (none while a history baseline is collected, then the whole backlog)."""
        return [self._score(r) for r in self._inputs.push(t_ms, row, None)]

    def _score(self, r: ModelRow[None]) -> RulOutput:
        row, x = dict(r.row), r.x
        unscored = RulOutput(r.t_ms, row, x, None, None, None, r.in_baseline)
        if x is None or not np.all(np.isfinite(x)):
            self.unscored += 1
            return unscored
        try:
            out = self.model.run_outputs(x.reshape(1, -1))
        except ModelError as exc:  # onnxruntime's errors arrive as ModelRunError
            self.model_errors += 1
            self.unscored += 1
            if self.model_errors == 1:
                log.error("RUL model %s failed: %s", self.model.name, exc)
            return unscored
        vals = {k: float(v[0]) for k, v in out.items()}
        rul = vals.get("rul")
        if rul is None or not math.isfinite(rul):
            self.unscored += 1
            return unscored
        self.scored += 1
        lo, hi = vals.get("rul_lo"), vals.get("rul_hi")
        return RulOutput(
            r.t_ms,
            row,
            x,
            rul,
            lo if lo is not None and math.isfinite(lo) else None,
            hi if hi is not None and math.isfinite(hi) else None,
            r.in_baseline,
        )


def rul_fields(out: RulOutput) -> dict[str, float] | None:
    """Fields of a ``rul`` row (cycles, and hours when the row has ``cycle_time_s``), or
    ``None`` for an unscored or baseline row. A missing band is reported as the median."""
    if out.rul is None or out.in_baseline:
        return None
    fields = {
        "rul_cycles": out.rul,
        "rul_p10": out.rul if out.rul_lo is None else out.rul_lo,
        "rul_p90": out.rul if out.rul_hi is None else out.rul_hi,
    }
    cycle_s = out.row.get("cycle_time_s")
    if cycle_s is not None and math.isfinite(cycle_s) and cycle_s > 0:
        fields["rul_h"] = out.rul * cycle_s / 3600.0
    return fields


class MoldTracker:
    """Turns a remaining-shots model's outputs into ``mold`` rows for one mold.

    ``remaining_shots`` = ``maintenance_interval_shots - shots_since_maintenance`` (not below
    0) until the wear model *engages*, then the smaller of that and the model's ``rul``. The
    model engages at the first shot whose 90 % bound ``rul_hi`` is below ``rul_cap`` (the
    model is 90 % sure fewer than ``rul_cap`` shots remain) and stays engaged until the
    tracker is reset: a model capped at ``rul_cap`` cannot tell "300 shots left" from
    "50 000 left", so its median alone is not used on a healthy mold (it would hold
    ``remaining_shots`` near ``rul_cap`` for the mold's whole life). Once engaged,
    ``remaining_shots_p10``/``_p90`` are the model's band (also capped by the interval).
    Outputs on the history baseline's rows (:attr:`RulOutput.in_baseline`) are not used.

    Args:
        rul_cap: the model's ``rul_cap``, shots.
        maintenance_interval_shots: planned interval, shots.
        shot_count_at_maintenance: the shot counter at the last maintenance.
        ideal_cycle_time_s: nominal cycle time, s (published when set).
    """

    def __init__(
        self,
        *,
        rul_cap: float,
        maintenance_interval_shots: int,
        shot_count_at_maintenance: int = 0,
        ideal_cycle_time_s: float | None = None,
    ) -> None:
        self.rul_cap = rul_cap
        self.interval = int(maintenance_interval_shots)
        self.at_maintenance = int(shot_count_at_maintenance)
        self.ideal_cycle_time_s = ideal_cycle_time_s
        self.engaged = False
        self._shots = 0

    def fields(self, out: RulOutput) -> dict[str, float]:
        """The ``mold`` fields of one shot (call once per shot, in order)."""
        self._shots += 1
        counter = out.row.get("shot_count")
        if counter is None or not math.isfinite(counter):
            shot_count = self.at_maintenance + self._shots
        else:
            shot_count = round(counter)
        since = max(0, shot_count - self.at_maintenance)
        by_interval = float(max(0, self.interval - since))
        fields: dict[str, float] = {
            "shot_count": float(shot_count),
            "shots_since_maintenance": float(since),
            "maintenance_interval_shots": float(self.interval),
            "remaining_shots": by_interval,
        }
        if out.in_baseline:
            pass  # the model's outputs on baseline rows are not evaluated: not used
        elif out.rul_hi is not None and out.rul_hi < self.rul_cap:
            self.engaged = True
        if self.engaged and out.rul is not None and not out.in_baseline:
            fields["remaining_shots"] = min(by_interval, max(0.0, out.rul))
            if out.rul_lo is not None:
                fields["remaining_shots_p10"] = min(by_interval, max(0.0, out.rul_lo))
            if out.rul_hi is not None:
                fields["remaining_shots_p90"] = min(by_interval, max(0.0, out.rul_hi))
        if self.ideal_cycle_time_s is not None:
            fields["ideal_cycle_time_s"] = float(self.ideal_cycle_time_s)
        return fields
