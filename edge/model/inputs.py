"""What a model's inputs are made of, and computing them row by row on the gateway.

A model scores rows of its manifest's ``feature_kind`` (one per feature window, or one per
shot). Its inputs are either

- **row features**: names of the row itself (``vib_rms_g``, ``temperature_C_mean``, ...);
- **history features** of some of the row's *fields* (:mod:`renkei.edge.features.history`):
  ``{f}_m{w}`` (trailing mean of ``w`` rows), ``{f}_e{a}`` (EWMA), ``{f}_s{w}`` (trailing
  OLS slope), ``{f}_zm{w}`` / ``{f}_d{a}`` (against a frozen baseline of the first
  ``baseline_rows`` rows; its sd floor relative to ``|mean|`` from the manifest's
  ``algorithm_params["sd_floor_rel"]``, default 1e-3) and ``rows_seen``.

:func:`plan_inputs` reads which from the input names and checks that
:func:`~renkei.edge.features.history.history_feature_names` rebuilds exactly the manifest's column
order, so the streaming :class:`~renkei.edge.features.history.HistoryFeatures` on the gateway gives
the numbers of the batch :func:`~renkei.edge.features.history.history_features` the training
recipes used (e.g. :mod:`renkei.models.profiles.skab_z`, :mod:`renkei.models.profiles.nab_stream`,
:mod:`renkei.models.profiles.mold`, :mod:`renkei.models.profiles.cmapss`).

Field values (:func:`field_value`): a history field ``f`` is the row's ``f`` (a shot's
value), else its ``f_mean`` (a feature window's mean of signal ``f``: with one sample per
window, as the 1 s SKAB and 5 min NAB models use, the sample itself), else NaN.

With a baseline, nothing is scored during the first ``baseline_rows`` rows (the training
recipes do not evaluate them either); the row that completes the baseline releases them all,
flagged :attr:`ModelRow.in_baseline`, each with its own time and payload.

Baseline check (``ModelInputs(plan, check=...)``, the pipeline's anomaly model): before the
baseline is frozen its rows' field values go through
:func:`renkei.edge.model.baseline_check.check_baseline` (the code and settings of
``renkei models commission``, with ``min_rows`` = the baseline length, so a NaN row in it
refuses it). A refused baseline is not frozen: its rows up to the end of the last refusing
issue are released unscored (``x`` is ``None``: the scorer counts them), the rows after it
start the next baseline, and :attr:`ModelInputs.suspect` holds the report until a clean one
is frozen.

Multi-condition models (a regime table in the manifest's ``algorithm_params``,
:mod:`renkei.edge.model.regimes`): each row is first regime-normalised (its ``{s}_rn`` /
``{s}_rb`` fields added), in :class:`ModelInputs` (streaming) and :func:`batch_inputs`
(shadow rows) alike, so both give the inputs the training recipe computed.
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Final, Generic, TypeVar

import numpy as np
from numpy.typing import NDArray

from renkei.core.errors import ModelError
from renkei.core.manifest import ModelManifest
from renkei.edge.features.history import (
    HistoryConfig,
    HistoryFeatures,
    history_feature_names,
    history_features,
)
from renkei.edge.model.baseline_check import BaselineCheckConfig, BaselineVerdict, check_baseline
from renkei.edge.model.regimes import RegimeNormaliser, RegimeParamsError, RegimeTable
from renkei.edge.model.stream_detector import PARAM_KEY as STREAM_PARAM_KEY
from renkei.edge.model.stream_detector import (
    StreamDetector,
    StreamDetectorConfig,
    StreamDetectorError,
)

__all__ = [
    "BASELINE_PARAM_KEYS",
    "SD_FLOOR_REL_KEY",
    "STREAM_PARAM_KEY",
    "InputPlan",
    "InputPlanError",
    "ModelInputs",
    "ModelRow",
    "batch_inputs",
    "field_value",
    "plan_inputs",
]

#: ``algorithm_params`` keys a manifest may state its history baseline length in (rows).
BASELINE_PARAM_KEYS: Final = ("baseline_rows", "reference_shots", "baseline_cycles")
#: ``algorithm_params`` key of the baseline sd floor relative to ``|mu|`` (default 1e-3).
SD_FLOOR_REL_KEY: Final = "sd_floor_rel"
_SD_FLOOR_REL_DEFAULT: Final = 1e-3  # HistoryConfig's default
HISTORY_NAME_RE: Final = re.compile(
    r"^(?P<field>.+)_(?:(?P<wkind>zm|m|s)(?P<w>\d+)|(?P<akind>e|d)(?P<a>\d+(?:p\d+)?(?:e[m]?\d+)?))$"
)

P = TypeVar("P")


class InputPlanError(ModelError, ValueError):
    """A model whose inputs the gateway cannot compute (message names model and inputs)."""


@dataclass(frozen=True, slots=True)
class InputPlan:
    """How the gateway computes a model's inputs from its rows.

    Attributes:
        names: the model's inputs, in column order.
        fields: row fields the history features are computed on (history plans only).
        history: the history features' settings; ``None`` = inputs are row features.
        regimes: regime table applied to each row before its inputs are computed
            (multi-condition models; ``None`` = rows are used as they come).
    """

    names: tuple[str, ...]
    fields: tuple[str, ...] = ()
    history: HistoryConfig | None = None
    stream: StreamDetectorConfig | None = None  # streaming-detector plan (see _stream_plan)
    regimes: RegimeTable | None = None

    @property
    def rows_needed(self) -> int:
        """Rows before the first input row is complete (the baseline; 0 without)."""
        return 0 if self.history is None else self.history.baseline_rows


def _alpha(label: str) -> float:
    return float(label.replace("p", ".").replace("m", "-"))


def plan_inputs(manifest: ModelManifest, *, baseline_rows: int | None = None) -> InputPlan:
    """The :class:`InputPlan` of a manifest (any task).

    Args:
        manifest: the model's manifest.
        baseline_rows: history baseline length, rows; default: the manifest's
            ``algorithm_params`` (:data:`BASELINE_PARAM_KEYS`).

    Raises:
        InputPlanError: inputs mixing row and history features, history inputs in an order
            the gateway cannot rebuild, baseline features without a baseline length, or
            malformed regime parameters.
    """
    if STREAM_PARAM_KEY in manifest.algorithm_params:
        return _stream_plan(manifest)
    try:
        regimes = RegimeTable.from_params(manifest.algorithm_params)
    except RegimeParamsError as exc:
        raise InputPlanError(f"model {manifest.name}: {exc}") from None
    plan = _history_plan(manifest, baseline_rows)
    return plan if regimes is None else replace(plan, regimes=regimes)


def _history_plan(manifest: ModelManifest, baseline_rows: int | None) -> InputPlan:
    """:func:`plan_inputs` of a row-feature or history-feature manifest (no regimes)."""
    names = manifest.input_names
    fields: list[str] = []
    groups: dict[str, list[float]] = {k: [] for k in ("m", "e", "s", "zm", "d")}
    count = False
    plain = []
    for name in names:
        if name == "rows_seen":
            count = True
            continue
        match = HISTORY_NAME_RE.match(name)
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
        raise InputPlanError(
            f"model {manifest.name}: inputs {plain} are neither history features nor "
            "rows_seen; a model mixing both is not supported"
        )
    if baseline_rows is None and (groups["zm"] or groups["d"]):
        params = manifest.algorithm_params
        found = [params[k] for k in BASELINE_PARAM_KEYS if isinstance(params.get(k), int | float)]
        if not found:
            raise InputPlanError(
                f"model {manifest.name}: baseline features need a baseline length; the "
                f"manifest has none of algorithm_params {list(BASELINE_PARAM_KEYS)}, "
                "set baseline_rows"
            )
        baseline_rows = int(found[0])
    floor = manifest.algorithm_params.get(SD_FLOOR_REL_KEY, _SD_FLOOR_REL_DEFAULT)
    if isinstance(floor, str):
        raise InputPlanError(
            f"model {manifest.name}: algorithm_params {SD_FLOOR_REL_KEY}={floor!r} is not a number"
        )
    try:
        floor_rel = float(floor)
        config = HistoryConfig(
            mean_rows=tuple(int(w) for w in groups["m"]),
            ewma_alphas=tuple(groups["e"]),
            slope_rows=tuple(int(w) for w in groups["s"]),
            baseline_rows=(baseline_rows or 0) if groups["zm"] or groups["d"] else 0,
            zmean_rows=tuple(int(w) for w in groups["zm"]),
            dev_alphas=tuple(groups["d"]),
            sd_floor_rel=floor_rel,
            count=count,
        )
        rebuilt = tuple(history_feature_names(fields, config))
    except ValueError as exc:
        raise InputPlanError(f"model {manifest.name}: history inputs: {exc}") from None
    if rebuilt != names:
        raise InputPlanError(
            f"model {manifest.name}: inputs are not in the column order of "
            "renkei.edge.features.history (grouped by feature kind, then parameter, then field)"
        )
    return InputPlan(names=names, fields=tuple(fields), history=config)


#: inputs of a streaming-detector model (``algorithm_params[STREAM_PARAM_KEY]`` set;
#: :mod:`renkei.edge.model.stream_detector`) are named ``{field}_{STREAM_SUFFIX}``.
STREAM_SUFFIX: Final = "sdet"


def _stream_plan(manifest: ModelManifest) -> InputPlan:
    """A streaming-detector plan: one detector per input ``{field}_sdet`` on that field."""
    try:
        config = StreamDetectorConfig.from_params(manifest.algorithm_params)
    except StreamDetectorError as exc:
        raise InputPlanError(f"model {manifest.name}: {exc}") from None
    suffix = f"_{STREAM_SUFFIX}"
    bad = [n for n in manifest.input_names if not n.endswith(suffix) or n == suffix]
    if bad:
        raise InputPlanError(
            f"model {manifest.name}: streaming-detector inputs must be named "
            f"'<field>{suffix}', got {bad}"
        )
    fields = tuple(n.removesuffix(suffix) for n in manifest.input_names)
    return InputPlan(names=manifest.input_names, fields=fields, stream=config)


def field_value(row: Mapping[str, float], field: str) -> float:
    """A history field's value in a row: ``row[field]``, else ``row[field + "_mean"]``,
    else NaN (see the module docstring)."""
    value = row.get(field)
    if value is None:
        value = row.get(f"{field}_mean")
    return math.nan if value is None else float(value)


@dataclass(frozen=True, slots=True)
class ModelRow(Generic[P]):
    """One row's model inputs.

    Attributes:
        t_ms: the row's time (as pushed), UTC epoch ms.
        row: the row's features.
        payload: what the caller pushed with the row (e.g. its label).
        x: (F,) float64 inputs in the plan's column order, or ``None`` when the row lacks
            one of them (row-feature plans). May hold NaN (a NaN field value).
        in_baseline: the row is one of the history baseline's rows (not to be scored).
    """

    t_ms: int
    row: Mapping[str, float]
    payload: P
    x: NDArray[np.float64] | None
    in_baseline: bool = False


class ModelInputs(Generic[P]):
    """Streaming inputs of one model: push rows, get the rows whose inputs are complete.

    Row-feature plans complete every row at once; history plans keep a
    :class:`~renkei.edge.features.history.HistoryFeatures` (memory O(history rows · fields)) and
    hold rows back while the baseline is collected. Not thread-safe.

    Args:
        plan: from :func:`plan_inputs`.
        check: check a history baseline before freezing it with these settings (``True``:
            the shipped :class:`~renkei.edge.model.baseline_check.BaselineCheckConfig`; see
            the module docstring); ``None``/``False`` = freeze it unchecked.
    """

    def __init__(self, plan: InputPlan, *, check: BaselineCheckConfig | bool | None = None) -> None:
        self.plan = plan
        self.check = BaselineCheckConfig() if check is True else (check or None)
        self._new: list[BaselineVerdict] = []
        self.suspect: BaselineVerdict | None = None
        """The last refused baseline, until a clean one is frozen."""
        self.refusals = 0
        """Baselines refused so far."""
        self.verdict: BaselineVerdict | None = None
        """The check of the frozen baseline (``None``: not frozen or not checked)."""
        self._history = (
            None if plan.history is None else HistoryFeatures(len(plan.fields), plan.history)
        )
        self._stream = (
            None if plan.stream is None else [StreamDetector(plan.stream) for _ in plan.fields]
        )
        self._pending: deque[tuple[int, Mapping[str, float], P]] = deque()
        self._regimes = None if plan.regimes is None else RegimeNormaliser(plan.regimes)
        self.rows = 0
        """Rows completed so far."""

    @property
    def baseline_rows(self) -> int:
        """Rows of the frozen baseline (0 without)."""
        return self.plan.rows_needed

    @property
    def ready(self) -> bool:
        """Whether rows are completed as they come (no baseline, or it is frozen)."""
        return self._history is None or self._history.ready

    @property
    def collecting(self) -> int:
        """Rows held back while the baseline is collected (0 once it is frozen)."""
        return len(self._pending)

    def push(self, t_ms: int, row: Mapping[str, float], payload: P) -> list[ModelRow[P]]:
        """Add one row; return the rows it completes, oldest first. With a regime table
        the row (also in the returned :attr:`ModelRow.row`) carries its regime fields."""
        if self._regimes is not None:
            row = {**row, **self._regimes.push(row)}
        if self._stream is not None:
            self.rows += 1
            values = [field_value(row, f) for f in self.plan.fields]
            x = np.array([d.push(v) for d, v in zip(self._stream, values, strict=True)])
            return [ModelRow(t_ms, row, payload, x)]
        if self._history is None:
            self.rows += 1
            try:
                x = np.array([row[n] for n in self.plan.names], dtype=np.float64)
            except KeyError:
                return [ModelRow(t_ms, row, payload, None)]
            return [ModelRow(t_ms, row, payload, x)]
        self._pending.append((t_ms, row, payload))
        was_ready = self._history.ready
        if not was_ready and self.check is not None and self.collecting == self.baseline_rows:
            refused = self._check_baseline()
            if refused:
                return refused
        values = [field_value(row, f) for f in self.plan.fields]
        feats = self._history.push(np.array([values], dtype=np.float64))
        out = []
        for i, x in enumerate(feats):
            t, r, p = self._pending.popleft()
            self.rows += 1
            out.append(ModelRow(t, r, p, x, not was_ready and i < self.baseline_rows))
        return out

    def _check_baseline(self) -> list[ModelRow[P]]:
        """Check the pending rows (the complete candidate baseline, the newest not yet in the
        history features); return the rows a refusal discards (``[]``: accepted)."""
        assert self.check is not None and self.plan.history is not None
        rows = list(self._pending)
        x = np.array([[field_value(r, f) for f in self.plan.fields] for _, r, _ in rows])
        t_s = np.array([t for t, _, _ in rows], dtype=np.float64) / 1000.0
        cfg = replace(self.check, min_rows=self.baseline_rows)
        report = check_baseline(x, self.plan.fields, t_s=t_s, config=cfg)
        if not report.refused:
            self.verdict, self.suspect = BaselineVerdict(report, t_s, 0), None
            self._new.append(self.verdict)
            return []
        cut = max(i.last_row for i in report.refusing) + 1
        self.suspect = BaselineVerdict(report, t_s, cut)
        self._new.append(self.suspect)
        self.refusals += 1
        out = []
        for _ in range(cut):
            t, r, p = self._pending.popleft()
            self.rows += 1
            out.append(ModelRow(t, r, p, None))
        self._history = HistoryFeatures(len(self.plan.fields), self.plan.history)
        kept = [[field_value(r, f) for f in self.plan.fields] for _, r, _ in self._pending]
        if kept:
            self._history.push(np.array(kept, dtype=np.float64))
        return out

    def baseline_events(self, model: str) -> list[tuple[str, str, str]]:
        """(code, severity, message) of the events of the checks since the last call
        (:meth:`BaselineVerdict.event <renkei.edge.model.baseline_check.BaselineVerdict.event>`:
        ``baseline_suspect`` for a refusal, ``baseline_frozen`` after one or with issues)."""
        new, self._new = self._new, []
        events = [v.event(model, after_refusal=self.refusals > 0) for v in new]
        return [e for e in events if e is not None]

    @staticmethod
    def baseline_status(inputs: ModelInputs[P] | None) -> dict[str, bool | list[str]]:
        """Status fields of a model's inputs (``inputs`` ``None``: no model):
        ``baseline_suspect`` (a refused baseline, a fresh one is being collected) and
        ``baseline_issues`` (its refusing issues, with UTC times)."""
        suspect = None if inputs is None else inputs.suspect
        issues = [] if suspect is None else suspect.describe()
        return {"baseline_suspect": suspect is not None, "baseline_issues": issues}


def batch_inputs(plan: InputPlan, rows: Sequence[Mapping[str, float]]) -> list[dict[str, float]]:
    """The inputs of ``rows`` (oldest first) as rows of ``{input name: value}``.

    Row-feature plans return the rows unchanged. History plans compute the batch
    :func:`~renkei.edge.features.history.history_features` over the rows, taking the baseline from
    the first ``baseline_rows`` of them, and return only the rows after it; nothing if there
    are not more rows than that. With a regime table the rows are regime-normalised first,
    as :class:`ModelInputs` does (one machine, from the oldest row). Used for the shadow
    check of a candidate model on the machine's recent rows
    (:mod:`renkei.edge.rollout.shadow`).
    """
    if plan.regimes is not None:
        norm = RegimeNormaliser(plan.regimes)
        rows = [{**r, **norm.push(r)} for r in rows]
    if plan.stream is not None:
        inputs = ModelInputs[None](plan)
        out = [inputs.push(0, r, None)[0].x for r in rows]
        return [dict(zip(plan.names, x.tolist(), strict=True)) for x in out if x is not None]
    if plan.history is None:
        return [dict(r) for r in rows]
    if len(rows) <= plan.rows_needed:
        return []
    x = np.array([[field_value(r, f) for f in plan.fields] for r in rows], dtype=np.float64)
    feats = history_features(x, plan.history)[plan.rows_needed :]
    return [dict(zip(plan.names, f.tolist(), strict=True)) for f in feats]
