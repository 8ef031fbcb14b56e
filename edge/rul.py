"""Remaining-useful-life models on the gateway: inputs, scoring, ``rul`` and ``mold`` rows.

A RUL model (manifest ``task == "rul"``, :mod:`models.manifest`) scores rows of its
``feature_kind`` (one per shot / machine cycle, or one per feature window). Its inputs are
either those rows' features themselves, or row-history features of some of their fields
(:mod:`edge.features.history`); :func:`plan_inputs` reads which from the input names
(``{f}_m{w}``, ``{f}_e{a}``, ``{f}_s{w}``, ``{f}_zm{w}``, ``{f}_d{a}``, ``rows_seen``) and
checks that :func:`~edge.features.history.history_feature_names` rebuilds exactly the
manifest's column order. The gateway then computes the inputs with the streaming
:class:`~edge.features.history.HistoryFeatures`, which gives the numbers of the batch
:func:`~edge.features.history.history_features` the training recipes use
(e.g. :mod:`models.profiles.mold`). With a history baseline, nothing is scored during the
first ``baseline_rows`` rows; the row that completes the baseline releases all of them, each
with its own timestamp.

Outputs (manifest ``outputs``): ``rul`` (median), optional ``rul_lo``/``rul_hi`` (10 % / 90 %
band), in the manifest's units (cycles = shots for machine-cycle models). They become:

- ``rul`` rows (:func:`rul_fields`): ``rul_cycles``, ``rul_p10``, ``rul_p90`` (cycles) and,
  when the row has ``cycle_time_s``, ``rul_h`` = ``rul_cycles * cycle_time_s / 3600`` (h);
- ``mold`` rows (:class:`MoldTracker`), per shot: ``shot_count`` (the shot counter),
  ``shots_since_maintenance``, ``maintenance_interval_shots``, ``remaining_shots`` (shots)
  and, once the wear model is engaged, ``remaining_shots_p10``/``_p90``.

Names and fields are those of :mod:`dashboards.contract` (measurements ``rul`` and ``mold``).
"""

from __future__ import annotations

import logging
import math
import re
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray

from edge.features.history import HistoryConfig, HistoryFeatures, history_feature_names
from edge.inference import AnomalyModel
from models.manifest import ModelManifest

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

#: ``algorithm_params`` keys a manifest may state its history baseline length in (rows).
BASELINE_PARAM_KEYS: Final = ("baseline_rows", "reference_shots", "baseline_cycles")
_HISTORY_RE: Final = re.compile(
    r"^(?P<field>.+)_(?:(?P<wkind>zm|m|s)(?P<w>\d+)|(?P<akind>e|d)(?P<a>\d+(?:p\d+)?(?:e[m]?\d+)?))$"
)


class RulPlanError(ValueError):
    """A RUL model whose inputs or outputs the gateway cannot serve."""


@dataclass(frozen=True, slots=True)
class InputPlan:
    """How the gateway computes a RUL model's inputs from its rows.

    Attributes:
        names: the model's inputs, in column order.
        fields: row fields the history features are computed on (history plans only).
        history: the history features' settings; ``None`` = inputs are row features.
    """

    names: tuple[str, ...]
    fields: tuple[str, ...] = ()
    history: HistoryConfig | None = None


def _alpha(label: str) -> float:
    return float(label.replace("p", ".").replace("m", "-"))


def plan_inputs(manifest: ModelManifest, *, baseline_rows: int | None = None) -> InputPlan:
    """The :class:`InputPlan` of a ``task == "rul"`` manifest.

    Args:
        manifest: the model's manifest.
        baseline_rows: history baseline length, rows; default: the manifest's
            ``algorithm_params`` (:data:`BASELINE_PARAM_KEYS`).

    Raises:
        RulPlanError: not a RUL model, no ``rul`` output, history inputs in an order the
            gateway cannot rebuild, or baseline features without a baseline length.
    """
    if manifest.task != "rul" or manifest.rul_cap is None:
        raise RulPlanError(f"model {manifest.name} is not a RUL model (task {manifest.task!r})")
    if not any(o.name == "rul" for o in manifest.outputs):
        raise RulPlanError(f"model {manifest.name} has no 'rul' output")
    names = manifest.input_names
    fields: list[str] = []
    groups: dict[str, list[float]] = {k: [] for k in ("m", "e", "s", "zm", "d")}
    count = False
    plain = []
    for name in names:
        if name == "rows_seen":
            count = True
            continue
        match = _HISTORY_RE.match(name)
        if match is None:
            plain.append(name)
            continue
        field = match["field"]
        if field not in fields:
            fields.append(field)
        kind = match["wkind"] or match["akind"]
        value = float(match["w"]) if match["w"] else _alpha(match["a"])
        if value not in groups[kind]:
            groups[kind].append(value)
    if not fields and not count:
        return InputPlan(names=names)
    if plain:
        raise RulPlanError(
            f"model {manifest.name}: inputs {plain} are neither history features nor "
            "rows_seen; a model mixing both is not supported"
        )
    if baseline_rows is None and (groups["zm"] or groups["d"]):
        params = manifest.algorithm_params
        found = [params[k] for k in BASELINE_PARAM_KEYS if isinstance(params.get(k), int | float)]
        if not found:
            raise RulPlanError(
                f"model {manifest.name}: baseline features need a baseline length; the "
                f"manifest has none of algorithm_params {list(BASELINE_PARAM_KEYS)}, "
                "set baseline_rows"
            )
        baseline_rows = int(found[0])
    try:
        config = HistoryConfig(
            mean_rows=tuple(int(w) for w in groups["m"]),
            ewma_alphas=tuple(groups["e"]),
            slope_rows=tuple(int(w) for w in groups["s"]),
            baseline_rows=(baseline_rows or 0) if groups["zm"] or groups["d"] else 0,
            zmean_rows=tuple(int(w) for w in groups["zm"]),
            dev_alphas=tuple(groups["d"]),
            count=count,
        )
        rebuilt = tuple(history_feature_names(fields, config))
    except ValueError as exc:
        raise RulPlanError(f"model {manifest.name}: history inputs: {exc}") from None
    if rebuilt != names:
        raise RulPlanError(
            f"model {manifest.name}: inputs are not in the column order of "
            "edge.features.history (grouped by feature kind, then parameter, then field)"
        )
    return InputPlan(names=names, fields=tuple(fields), history=config)


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
            do not evaluate those (e.g. ``models.profiles.mold`` scores from row
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
        self._history = (
            None if plan.history is None else HistoryFeatures(len(plan.fields), plan.history)
        )
        self._pending: deque[tuple[int, dict[str, float]]] = deque()
        self.baseline_rows = 0 if plan.history is None else plan.history.baseline_rows
        self.rows = 0
        """Rows completed so far (scored or not)."""
        self.scored = 0
        self.unscored = 0
        self.model_errors = 0

    def push(self, t_ms: int, row: Mapping[str, float]) -> list[RulOutput]:
        """Add one row (published time ``t_ms``, UTC epoch ms); return the rows it completes
        (none while a history baseline is collected, then the whole backlog)."""
        if self._history is None:
            try:
                x = np.array([row[n] for n in self.plan.names], dtype=np.float64)
            except KeyError:
                return [self._unscored(t_ms, dict(row), None)]
            return [self._score(t_ms, dict(row), x)]
        self._pending.append((t_ms, dict(row)))
        values = [row.get(f, math.nan) for f in self.plan.fields]
        feats = self._history.push(np.array([values], dtype=np.float64))
        out = []
        for x in feats:
            t, r = self._pending.popleft()
            out.append(self._score(t, r, x))
        return out

    def _unscored(
        self, t_ms: int, row: dict[str, float], x: NDArray[np.float64] | None
    ) -> RulOutput:
        self.unscored += 1
        self.rows += 1
        return RulOutput(t_ms, row, x, None, None, None, self.rows <= self.baseline_rows)

    def _score(self, t_ms: int, row: dict[str, float], x: NDArray[np.float64]) -> RulOutput:
        if not np.all(np.isfinite(x)):
            return self._unscored(t_ms, row, x)
        try:
            out = self.model.run_outputs(x.reshape(1, -1))
        except Exception as exc:  # onnxruntime's errors derive from Exception only
            self.model_errors += 1
            if self.model_errors == 1:
                log.error("RUL model %s failed: %s", self.model.name, exc)
            return self._unscored(t_ms, row, x)
        vals = {k: float(v[0]) for k, v in out.items()}
        rul = vals.get("rul")
        if rul is None or not math.isfinite(rul):
            return self._unscored(t_ms, row, x)
        self.scored += 1
        self.rows += 1
        lo, hi = vals.get("rul_lo"), vals.get("rul_hi")
        return RulOutput(
            t_ms,
            row,
            x,
            rul,
            lo if lo is not None and math.isfinite(lo) else None,
            hi if hi is not None and math.isfinite(hi) else None,
            self.rows <= self.baseline_rows,
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
