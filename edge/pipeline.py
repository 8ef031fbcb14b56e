"""One machine's pipeline: sample blocks → features → anomaly model → packed messages.

:class:`MachinePipeline` is one machine's stream of work (windows, events, packing into
messages) whose steps share the machine's window state, model and publish clock. What it
calls lives below it: feature extraction in :mod:`renkei.edge.features`; model inputs in
:mod:`renkei.edge.model.inputs`; anomaly scoring (score, threshold, onset/clear events and
the scoring counters) in :mod:`renkei.edge.model.scoring`; RUL models in
:mod:`renkei.edge.model.rul` and :mod:`renkei.edge.model.rul_sink`; packing in
:mod:`renkei.edge.transport.packing`.

Data flow per stream of a :class:`~renkei.edge.sources.base.SampleBlock`:

- ``slow``: raw rows → ``telemetry`` messages (if enabled); window statistics → features.
- ``vibration``: waveform → window features (never published raw).
- ``shot``: one row per shot → ``shot`` messages (raw values + per-shot features).
- all streams → OEE accounting (:mod:`renkei.edge.features.oee`) → ``oee`` rows.

Completed feature windows (slow and vibration windows of the same end time are merged) go to
``features`` messages, are scored by the machine's ONNX model when its inputs are window
features (:class:`renkei.edge.model.scoring.AnomalyScorer`), and produce ``anomaly`` rows
(``score``, ``threshold``, ``is_anomaly``) plus ``event`` messages at anomaly onset/clear.
Shots are scored instead when the model's inputs are shot features. A model whose inputs are
history features of the rows' fields (e.g. ``skab-pump-mahal``: 10-row means of baseline
z-scores; ``nab-temp-stream``: a 288-row mean) gets them from
:class:`renkei.edge.model.inputs.ModelInputs`; rows of a history baseline are not scored
(``baseline_pending`` in the status counts down; a baseline refused by
:mod:`renkei.edge.model.baseline_check` is not frozen: ``baseline_suspect``, an event).
Ground-truth labels, when the source has them, go to ``label`` messages.

Remaining-useful-life models (machine ``models:``, :mod:`renkei.edge.model.rul`, one
:class:`~renkei.edge.model.rul_sink.RulSink` each) run next to the anomaly model on the rows of
their manifest's ``feature_kind`` (shots, or feature windows): their inputs are computed with
:class:`~renkei.edge.features.history.HistoryFeatures` where the manifest asks for history
features, and their outputs go to ``mold`` rows (tag ``mold``) when the config names a mold,
else to ``rul`` rows (tag ``model``, optional ``component``), each with the published time of
the row it scored.

Model switch (:mod:`renkei.edge.rollout`): the pipeline keeps its last ``recent_rows`` (machine
config, default :data:`RECENT_ROWS`) feature windows and shots
(:meth:`MachinePipeline.shadow_rows` turns them into a candidate's inputs for its shadow
check) and :meth:`MachinePipeline.set_model` replaces the model between two rows, on the
agent's main thread, so scoring never sees a half-loaded model. A score that is not finite,
or a model that raises while scoring, leaves the row unscored and is counted
(``nonfinite_scores``, ``model_errors``) for the new model's probation.

Timestamps: features are computed in the source's own time scale (what the models were
trained on); with ``timestamps: rebase`` published times are ``start + (t - t0) / speed``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import numpy as np

from renkei.core.wire import MachineKind, machine_topic
from renkei.edge.config import (
    GatewayConfig,
    LiveSourceConfig,
    MachineConfig,
    ReplaySourceConfig,
    RulModelConfig,
)
from renkei.edge.features import ShotFeatures, Windower, vibration_windower
from renkei.edge.features.oee import OeeAccumulator
from renkei.edge.model.inference import AnomalyModel, ModelInputError
from renkei.edge.model.inputs import InputPlan, InputPlanError, ModelInputs, batch_inputs
from renkei.edge.model.inputs import plan_inputs as plan_model_inputs
from renkei.edge.model.rul_sink import RulSink, rul_sink
from renkei.edge.model.scoring import AnomalyScorer
from renkei.edge.oee_plan import oee_plan
from renkei.edge.sources.base import SampleBlock, field_matrix
from renkei.edge.transport.packing import RowBuffer, event_message

__all__ = ["RECENT_ROWS", "MachinePipeline", "OutboxItem", "RulSink"]

#: (topic, payload builder taking the sequence number) — what the outbox enqueues.
OutboxItem = tuple[str, Callable[[int], bytes]]

#: Default of the feature windows (and shots) kept per machine for the shadow check of a
#: new model (machine ``recent_rows``).
RECENT_ROWS: Final = 512


def _source_name(src: object) -> str:
    preset = getattr(src, "preset", None)
    if preset is not None:
        return str(preset)
    path = getattr(src, "path", None)
    return "cell" if path is None else str(getattr(path, "name", path))


class MachinePipeline:
    """Features, inference and packing for one machine. Owned by the agent's main thread.

    Args:
        machine: the machine's config.
        gateway: the gateway's config (topic levels, gateway id).
        model: the anomaly model, if any.
        rul_models: the machine's ``models:`` entries with their loaded models (see
            :mod:`renkei.edge.model.rul`).
        epoch: returns the outbox's boot epoch, put into every payload (``0`` = unknown).

    Raises:
        ModelInputError: a model does not fit the machine.
    """

    def __init__(
        self,
        *,
        machine: MachineConfig,
        gateway: GatewayConfig,
        model: AnomalyModel | None,
        rul_models: Sequence[tuple[RulModelConfig, AnomalyModel]] = (),
        epoch: Callable[[], int] = lambda: 0,
    ) -> None:
        self.machine = machine
        self._epoch = epoch
        self.scorer = AnomalyScorer(model, machine_id=machine.id)
        """The anomaly model's scorer and its counters (:attr:`model` is its model)."""
        self._topics = {
            kind: machine_topic(
                firm=gateway.firm,
                site=gateway.site,
                area=machine.area,
                line=machine.line,
                machine=machine.id,
                kind=kind,
            )
            for kind in MachineKind
        }
        gw = gateway.gateway_id
        model_tags = {"model": model.name} if model is not None else {}
        self._buffers = {
            kind: RowBuffer(
                kind=kind,
                gateway_id=gw,
                tags=model_tags if kind is MachineKind.ANOMALY else {},
                epoch=epoch,
            )
            for kind in MachineKind
            if kind not in (MachineKind.EVENT, MachineKind.RUL, MachineKind.MOLD)
        }
        # Shot labels have their own buffer: sharing one with window labels would nudge a
        # window label emitted after a later shot label off its window's timestamp.
        self._shot_labels = RowBuffer(kind=MachineKind.LABEL, gateway_id=gw, tags={}, epoch=epoch)
        self._gw = gw
        self._events: list[dict[str, Any]] = []
        self._windowers: dict[str, Windower] = {}
        self._shot_features = ShotFeatures()
        self._pending: dict[int, dict[str, float]] = {}
        self._pending_label: dict[int, int] = {}
        self._reported: dict[int, set[str]] = {}
        self._window_streams: set[str] = set()
        self._last_window: dict[str, int] = {}
        src = machine.source
        # Live sources carry real UTC times (device or gateway clock): never re-based.
        self._rebase = not (
            (isinstance(src, ReplaySourceConfig) and src.timestamps == "keep")
            or isinstance(src, LiveSourceConfig)
        )
        self._speed = src.speed
        self._t0: int | None = None
        self._pub0 = 0
        self._started = False
        self._model_on_shots = False
        self._inputs: ModelInputs[int | None] | None = None
        self._recent: dict[str, deque[dict[str, float]]] = {
            "window": deque(maxlen=machine.recent_rows),
            "shot": deque(maxlen=machine.recent_rows),
        }
        if model is not None:
            self._inputs = self._model_inputs(model)
            self._model_on_shots = model.manifest.feature_kind == "shot"
        self.rul: list[RulSink[RowBuffer]] = [
            rul_sink(m, cfg, machine_id=machine.id, check=self.check_model, buffer=self._rul_buffer)
            for cfg, m in rul_models
        ]
        scale = 1.0 / src.speed if self._rebase else 1.0  # OEE is accounted in published time
        self._oee = OeeAccumulator(oee_plan(machine, has_model=model is not None, time_scale=scale))
        # status for health / live view (the scoring counters are the scorer's)
        self.rows = 0
        self.finished = False

    def _rul_buffer(self, kind: MachineKind, tags: dict[str, str]) -> RowBuffer:
        return RowBuffer(kind=kind, gateway_id=self._gw, tags=tags, epoch=self._epoch)

    @property
    def model(self) -> AnomalyModel | None:
        """The anomaly model (:meth:`set_model` replaces it)."""
        return self.scorer.model

    @property
    def scored(self) -> int:
        """Rows scored (:attr:`AnomalyScorer.scored <renkei.edge.model.scoring.AnomalyScorer>`)."""
        return self.scorer.scored

    @property
    def unscored(self) -> int:
        """Rows left unscored (non-finite inputs or score, model errors)."""
        return self.scorer.unscored

    @property
    def nonfinite_scores(self) -> int:
        """Rows whose score was not finite."""
        return self.scorer.nonfinite_scores

    @property
    def model_errors(self) -> int:
        """Rows the model raised on."""
        return self.scorer.model_errors

    @property
    def anomalies(self) -> int:
        """Anomaly onsets."""
        return self.scorer.anomalies

    # ----------------------------------------------------------------- model switch

    def check_model(self, model: AnomalyModel) -> None:
        """Raise :class:`ModelInputError` if ``model`` cannot serve this machine: a window
        model trained on another ``window_s``, or inputs the gateway cannot compute
        (:func:`renkei.edge.model.inputs.plan_inputs`)."""
        self._plan(model)

    def _plan(self, model: AnomalyModel) -> InputPlan:
        trained_w = model.manifest.window_s
        on_shots = model.manifest.feature_kind == "shot"
        if not on_shots and trained_w is not None and trained_w != self.machine.window_s:
            raise ModelInputError(
                f"machine {self.machine.id}: model {model.name} was trained on {trained_w} s "
                f"windows but window_s is {self.machine.window_s}; set window_s: {trained_w}"
            )
        if model.manifest.task == "rul":
            return InputPlan(names=model.input_names)  # planned by renkei.edge.model.rul
        try:
            return plan_model_inputs(model.manifest)
        except InputPlanError as exc:
            raise ModelInputError(f"machine {self.machine.id}: {exc}") from None

    def _model_inputs(self, model: AnomalyModel) -> ModelInputs[int | None]:
        """Streaming inputs of ``model``, warmed up on the recent rows of its kind (so a
        history model switched in keeps scoring; its baseline = the oldest recent rows)."""
        check = self.machine.model is None or self.machine.model.baseline_check
        inputs: ModelInputs[int | None] = ModelInputs(self._plan(model), check=check)
        if inputs.plan.history is not None:
            for row in self._recent[model.manifest.feature_kind]:
                inputs.push(0, row, None)
        return inputs

    def set_model(self, model: AnomalyModel) -> None:
        """Score with ``model`` from the next row on. Call between rows (agent main thread).

        A model with history inputs starts from the machine's recent rows (see
        :meth:`shadow_rows`): its baseline is then the oldest of them.

        Raises:
            ModelInputError: ``model`` does not fit the machine; nothing was changed.
        """
        inputs = self._model_inputs(model)
        self._inputs = inputs
        self._model_on_shots = model.manifest.feature_kind == "shot"
        self._buffers[MachineKind.ANOMALY].tags["model"] = model.name
        self.scorer.model = model

    def recent_rows(self, kind: str) -> list[dict[str, float]]:
        """Copies of the last ``recent_rows`` (machine config) feature rows of ``kind``
        (``window`` or ``shot``), oldest first. Call on the agent main thread."""
        return [dict(r) for r in self._recent[kind]]

    def shadow_rows(self, model: AnomalyModel) -> list[dict[str, float]]:
        """``model``'s inputs on the recent rows of its kind, oldest first (for the shadow
        check, :mod:`renkei.edge.rollout.shadow`): the rows themselves for a row-feature model, the
        history features after the baseline (taken from the oldest recent rows) for a
        history model (:func:`renkei.edge.model.inputs.batch_inputs`). Call on the agent main
        thread.

        Raises:
            ModelInputError: as :meth:`check_model`.
        """
        plan = self._plan(model)
        return batch_inputs(plan, self.recent_rows(model.manifest.feature_kind))

    @property
    def baseline_pending(self) -> int:
        """Rows the anomaly model's history baseline still waits for (0 = scoring)."""
        if self._inputs is None or self._inputs.ready:
            return 0
        return self._inputs.baseline_rows - self._inputs.collecting

    # ----------------------------------------------------------------- time

    def start(self, *, publish_start_ms: int, streams: set[str]) -> None:
        """Prepare for a source run.

        Args:
            publish_start_ms: published time of the first sample when re-basing (UTC ms).
            streams: the streams the source yields; a feature window is complete once every
                windowed stream (``slow``, ``vibration``) among them has reported it.
        """
        self._pub0 = publish_start_ms
        self._started = True
        self._window_streams = {s for s in streams if s in ("slow", "vibration")}

    def _pub_ms(self, t_ms: int) -> int:
        if not self._rebase:
            return int(t_ms)
        if self._t0 is None:
            self._t0 = int(t_ms)
        return self._pub0 + round((int(t_ms) - self._t0) / self._speed)

    # ----------------------------------------------------------------- input

    def process(self, block: SampleBlock) -> None:
        """Consume one block of the machine's source.

        Raises:
            RuntimeError: :meth:`start` was not called first.
        """
        if not self._started:
            raise RuntimeError(f"machine {self.machine.id}: call start() before process()")
        if self._t0 is None and self._rebase:
            self._t0 = int(block.t_ms[0])
        self.rows += block.n_samples if block.stream != "vibration" else 0
        pub = np.array([self._pub_ms(t) for t in block.t_ms.tolist()], dtype=np.int64)
        self._oee.add_slow(pub, block.fields) if block.stream == "slow" else None
        self._oee.add_shots(pub.tolist()) if block.stream == "shot" else None
        self._oee.add_block_times(pub[:1].tolist()) if block.stream == "vibration" else None
        self._oee_rows(self._oee.close())
        if block.stream == "shot":
            self._process_shots(block)
            return
        if block.stream == "slow" and self.machine.publish_telemetry:
            self._telemetry(block)
        windower = self._windowers.get(block.stream)
        if windower is None:
            windower = self._windowers[block.stream] = (
                vibration_windower(self.machine.window_s, self.machine.vibration.features())
                if block.stream == "vibration"
                else Windower(stream=block.stream, window_s=self.machine.window_s)
            )
        for row in windower.push(block):
            self._add_window(block.stream, row.t_ms, row.values, row.label)

    def _telemetry(self, block: SampleBlock) -> None:
        """Buffer a slow block's rows as telemetry: only each row's finite values (a live
        source's rows are sparse: most of its signals have no reading at a given ms, and a
        missing field is ``null`` on the wire either way)."""
        buf = self._buffers[MachineKind.TELEMETRY]
        names = list(block.fields)
        if not names:
            return
        mat = field_matrix(block)
        finite = np.isfinite(mat)
        dense = bool(finite.all())
        for i, t in enumerate(block.t_ms.tolist()):
            if dense:
                buf.add(self._pub_ms(t), dict(zip(names, mat[:, i].tolist())))
                continue
            idx = np.flatnonzero(finite[:, i])
            buf.add(
                self._pub_ms(t), {names[j]: v for j, v in zip(idx.tolist(), mat[idx, i].tolist())}
            )

    def finish(self) -> None:
        """The source is exhausted: flush partial windows."""
        for stream, windower in self._windowers.items():
            for row in windower.flush():
                self._add_window(stream, row.t_ms, row.values, row.label)
        for key in sorted(self._pending):
            self._emit_window(key)
        self._oee_rows(self._oee.finish())
        self.finished = True

    def _oee_rows(self, rows: Sequence[tuple[int, dict[str, float]]]) -> None:
        for t_ms, fields in rows:
            self._buffers[MachineKind.OEE].add(t_ms, fields)

    def _process_shots(self, block: SampleBlock) -> None:
        shots = self._buffers[MachineKind.SHOT]
        labels = self._shot_labels
        names = list(block.fields)
        for i, t in enumerate(block.t_ms.tolist()):
            raw = {n: float(block.fields[n][i]) for n in names}
            feats = self._shot_features.update(raw)
            pub = self._pub_ms(t)
            row = {**raw, **feats}
            shots.add(pub, row)
            self._recent["shot"].append(row)
            label = None if block.labels is None else int(block.labels[i])
            if label is not None and self.machine.publish_labels:
                labels.add(pub, {"fault": float(label)})
            if self._model_on_shots:
                self._model_row(pub, row, label)
            for sink in self.rul:
                if sink.on_shots:
                    sink.push(pub, row)

    # ----------------------------------------------------------------- windows

    def _add_window(
        self, stream: str, t_ms: int, values: Mapping[str, float], label: int | None
    ) -> None:
        self._last_window[stream] = max(t_ms, self._last_window.get(stream, t_ms))
        self._pending.setdefault(t_ms, {}).update(values)
        if label is not None:
            self._pending_label[t_ms] = max(label, self._pending_label.get(t_ms, 0))
        self._reported.setdefault(t_ms, set()).add(stream)
        oldest_latest = min(self._last_window.values())
        for key in sorted(self._pending):
            complete = self._reported[key] >= self._window_streams
            if complete or key < oldest_latest:
                self._emit_window(key)
            else:
                break

    def _emit_window(self, key: int) -> None:
        values = self._pending.pop(key)
        label = self._pending_label.pop(key, None)
        self._reported.pop(key, None)
        pub = self._pub_ms(key)
        self._buffers[MachineKind.FEATURES].add(pub, values)
        self._recent["window"].append(values)
        if label is not None and self.machine.publish_labels:
            self._buffers[MachineKind.LABEL].add(pub, {"fault": float(label)})
        if self.model is not None and not self._model_on_shots:
            self._model_row(pub, values, label)
        for sink in self.rul:
            if not sink.on_shots:
                sink.push(pub, values)

    # ----------------------------------------------------------------- model

    def _model_row(self, pub_ms: int, values: Mapping[str, float], label: int | None) -> None:
        assert self._inputs is not None and self.model is not None
        rows = self._inputs.push(pub_ms, values, label)
        for event in self._inputs.baseline_events(self.model.name):
            self.add_event(pub_ms, *event)
        for row in rows:
            res = self.scorer.score(row)
            if res is not None:
                self._buffers[MachineKind.ANOMALY].add(row.t_ms, res.fields())
                self._oee.add_scored(row.t_ms, flagged=res.is_anomaly)
                if res.event is not None:
                    ev = res.event
                    self.add_event(row.t_ms, ev.code, ev.severity, ev.message)
                if res.drift_event is not None:  # process drift (renkei.edge.model.drift)
                    dv = res.drift_event
                    self.add_event(row.t_ms, dv.code, dv.severity, dv.message)

    # ----------------------------------------------------------------- output

    def drain(self, max_rows: int) -> list[OutboxItem]:
        """Pending rows packed into messages (at most ``max_rows`` rows each)."""
        items: list[OutboxItem] = []
        for kind, buf in self._buffers.items():
            topic = self._topics[kind]
            items.extend((topic, build) for build in buf.drain(max_rows))
        for sink in self.rul:
            topic = self._topics[sink.buffer.kind]
            items.extend((topic, build) for build in sink.buffer.drain(max_rows))
        label_topic = self._topics[MachineKind.LABEL]
        items.extend((label_topic, build) for build in self._shot_labels.drain(max_rows))
        if self._events:
            events, self._events = self._events, []
            items.append(
                (self._topics[MachineKind.EVENT], event_message(self._gw, self._epoch, events))
            )
        return items

    def add_quality(self, t_ms: int, fields: Mapping[str, float]) -> None:
        """Buffer one ``quality`` row of a live source (UTC epoch ms; see
        :mod:`renkei.edge.sources.live.source`)."""
        self._buffers[MachineKind.QUALITY].add(int(t_ms), fields)

    def add_event(self, t_ms: int, code: str, severity: str, message: str) -> None:
        """Queue an event for this machine's ``event`` topic (sent with the next drain),
        e.g. the agent's report of outbox damage that lost this gateway's data."""
        self._events.append({"t_ms": t_ms, "code": code, "severity": severity, "message": message})

    def status(self) -> dict[str, Any]:
        """A snapshot for the health message and the demo's live view."""
        src = self.machine.source
        return {
            "source": f"{src.type}:{_source_name(src)}",
            "rows": self.rows,
            "score": self.scorer.last_score,
            "threshold": None if self.model is None else float(self.model.threshold),
            "anomaly": self.scorer.anomalous,
            "drift": self.scorer.drift_status(),
            "anomalies": self.scorer.anomalies,
            "last_event": self.scorer.last_event,
            "events": list(self.scorer.recent_events[-3:]),
            "label": self.scorer.last_label,
            "baseline_pending": self.baseline_pending,
            **(ModelInputs.baseline_status(self._inputs)),
            "finished": self.finished,
        }
