"""The gateway agent: sources → features → model → outbox → MQTT.

Why this module is long: :class:`GatewayAgent` is the gateway's one main loop --
pacing sources, running the pipelines, flushing to the outbox, supervising the publisher,
health/state messages and the orderly stop share its clock, its stop flag and the outbox
transaction, and each step is short; the stages it drives (sources, pipeline, model,
transport, rollout) live in their own packages. :func:`build_source` stays beside it
because tests replace ``renkei.edge.agent.build_live_source`` at this address.

One :class:`GatewayAgent` serves all machines of a gateway config. Its main thread paces
every machine's source to the wall clock, runs each :class:`~renkei.edge.pipeline.MachinePipeline`
(features, anomaly model, packing), and every ``publish.flush_interval_s`` writes the packed
messages to the durable :class:`~renkei.edge.transport.outbox.Outbox` in one transaction. The
:class:`~renkei.edge.transport.publisher.Publisher` thread sends them at QoS 1 and deletes each one
only after its PUBACK. A reading is therefore either still in memory for at most one flush interval
(lost only if the process dies within it; sources replay/resample from their device), or on
disk until the broker has it.

Supervision: the publisher thread stops when it hits an error it cannot handle (its pump
re-raises it). The main loop checks it on every turn: a dead publisher is logged at ERROR
and replaced by a new one (new MQTT connection, same outbox), at most
``_MAX_PUBLISHER_RESTARTS`` times per ``_RESTART_WINDOW_S``; beyond that :meth:`run` raises
:class:`AgentError` and ``renkei edge run`` exits 1, so systemd (``Restart=on-failure``)
restarts the whole service. A live process therefore never hides a dead publisher, and
health messages (``publisher_restarts``) say it happened.

Outbox damage and a full disk (:meth:`renkei.edge.transport.outbox.Outbox.take_incidents`) are
logged at ERROR by the outbox, reported in the health message, and sent as ``event`` messages
(``outbox_lost``, ``outbox_gap``, ``outbox_quarantined``, ``outbox_disk_full``) on every
machine of the gateway, whose data they concern. Every payload carries the outbox's boot
``epoch``.

With a ``rollout`` section in the config, a :class:`~renkei.edge.rollout.ModelRollout` receives
model deployments; its model switches run on the main thread between two blocks
(:meth:`~renkei.edge.rollout.MainThreadCalls.run_pending` in the loop).
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

from renkei import __version__
from renkei.core.errors import RenkeiError
from renkei.core.wire import GatewayHealth, GatewayState, encode, gateway_topic
from renkei.edge.config import (
    GatewayConfig,
    LiveSourceConfig,
    MachineConfig,
    ReplaySourceConfig,
    WaveformReplaySourceConfig,
)
from renkei.edge.model.inference import AnomalyModel
from renkei.edge.pipeline import MachinePipeline
from renkei.edge.sources.base import SampleBlock, Source
from renkei.edge.sources.live import LiveSource, build_live_source
from renkei.edge.transport.outbox import Outbox, OutboxFullError, OutboxIncident
from renkei.edge.transport.publisher import MqttSettings, Publisher, PublisherError
from renkei.edge.watchdog import Notifier

if TYPE_CHECKING:
    from renkei.edge.credentials import CredentialsWatch
    from renkei.edge.rollout import ModelRollout

__all__ = ["AgentError", "AgentStats", "GatewayAgent", "build_source", "source_streams"]

log = logging.getLogger(__name__)

_IDLE_SLEEP_S: Final = 0.5
#: On a clean stop, how long the agent waits for the outbox to be delivered, seconds.
_STOP_DRAIN_S: Final = 5.0
#: A failed publisher thread is replaced at most this many times per window ...
_MAX_PUBLISHER_RESTARTS: Final = 5
#: ... of this many seconds; one more failure stops the agent (exit 1, systemd restarts).
_RESTART_WINDOW_S: Final = 600.0
#: Longest event message (``renkei.core.wire.Event.message``), characters.
_EVENT_MESSAGE_MAX: Final = 512
_INCIDENT_SEVERITY: Final = {
    "lost": "alarm",
    "gap": "alarm",
    "quarantined": "alarm",
    "disk_full": "warning",
}
#: Shortest interval between two polls of the live sources after a wake-up, seconds.
_LIVE_BATCH_S: Final = 0.02
_WATCHDOG_TICK_S: Final = 5.0
"""Longest wait of the main loop, so systemd keep-alives (``WatchdogSec=60``) keep flowing
even when ``publish.flush_interval_s`` is long."""


class AgentError(RenkeiError, RuntimeError):
    """The agent cannot go on (e.g. its publisher keeps failing); the message says why."""


@dataclass
class AgentStats:
    """Counters of a running agent (read by the demo's live view and health messages)."""

    blocks: int = 0
    rows_enqueued: int = 0
    messages_enqueued: int = 0
    sources_finished: int = 0
    publisher_restarts: int = 0
    machines: dict[str, dict[str, float | int | str | None]] = field(default_factory=dict)


def source_streams(source: Source | LiveSource) -> set[str]:
    """The streams a source yields (``slow``, ``vibration``, ``shot``)."""
    from renkei.edge.sources.base import STREAMS
    from renkei.edge.sources.replay import ReplaySource
    from renkei.edge.sources.simulated import SimulatedCell
    from renkei.edge.sources.waveform import WaveformSource

    if isinstance(source, LiveSource):
        return source.streams
    if isinstance(source, ReplaySource | WaveformSource):
        return {source.stream}
    if isinstance(source, SimulatedCell):
        return {s for s in STREAMS if source.stream_fields(s)}
    raise TypeError(f"unknown source type {type(source).__name__}")


def build_source(
    machine: MachineConfig,
    *,
    start_ms: int | None = None,
    wake: Callable[[], None] = lambda: None,
) -> Source | LiveSource:
    """Create the source a machine config describes (a :class:`LiveSource` for a live
    machine; ``wake`` is called from its driver thread when data arrived).

    Raises:
        renkei.edge.sources.SourceError: the data file is missing or malformed, or a live source
            cannot be built (:class:`renkei.edge.sources.live.LiveSourceError`).
    """
    src = machine.source
    if isinstance(src, LiveSourceConfig):
        return build_live_source(src, wake=wake)
    if isinstance(src, ReplaySourceConfig):
        from renkei.edge.sources.replay import ReplayOptions, ReplaySource

        return ReplaySource(
            ReplayOptions(
                path=src.path,
                preset=src.preset,
                # Features are computed in the recording's own time scale (the models were
                # trained on it); re-basing to "now" happens at publish time (TimeMap).
                timestamps="keep",
                loop=src.loop,
            )
        )
    if isinstance(src, WaveformReplaySourceConfig):
        from renkei.edge.sources.waveform import WaveformOptions, WaveformSource

        return WaveformSource(
            WaveformOptions(
                path=src.path,
                sample_rate_hz=src.sample_rate_hz,
                variable=src.variable,
                decimate=src.decimate,
                label=src.label,
                loop=src.loop,
            )
        )
    from renkei.edge.sources.simulated import FaultSpec, SimulatedCell, SimulatorOptions, StopSpec

    assert not isinstance(src, LiveSourceConfig)
    return SimulatedCell(
        SimulatorOptions(
            seed=src.seed,
            streams=tuple(src.streams),
            duration_s=src.duration_s,
            slow_rate_hz=src.slow_rate_hz,
            vibration_rate_hz=src.vibration_rate_hz,
            extra_slow_channels=src.extra_slow_channels,
            cycle_time_s=src.cycle_time_s,
            start_ms=start_ms,
            faults=tuple(
                FaultSpec(kind=f.kind, start_s=f.start_s, ramp_s=f.ramp_s, severity=f.severity)
                for f in src.faults
            ),
            stops=tuple(
                StopSpec(state=s.state, start_s=s.start_s, duration_s=s.duration_s)
                for s in src.stops
            ),
            machine_state=src.machine_state,
        )
    )


class _Stream:
    """A machine's block iterator with its pacing state."""

    def __init__(self, machine: MachineConfig, blocks: Iterator[SampleBlock]) -> None:
        self.machine = machine
        self.blocks = blocks
        self.pace = machine.source.speed
        self.first_ms: float | None = None
        self.wall0 = time.monotonic()

    def due(self, block: SampleBlock) -> float:
        end = block.end_ms
        if self.first_ms is None:
            self.first_ms = float(block.t_ms[0])
        return self.wall0 + (end - self.first_ms) / 1000.0 / self.pace


class GatewayAgent:
    """Runs a gateway: every machine's pipeline plus the outbox and the MQTT publisher.

    Args:
        config: the validated gateway config.
        password: MQTT password (the config names an env var; the CLI resolves it).
        now_ms: clock used for rebased replay start times (tests may pin it).
        api_key: API key for model downloads (``rollout.api_key_env``; the CLI resolves it).

    Raises:
        renkei.edge.transport.outbox.OutboxError: the outbox database cannot be opened.
        renkei.edge.model.inference.ModelError: a model fails its integrity check or does not fit.
        renkei.edge.sources.SourceError: a source's data is missing or malformed.
    """

    def __init__(
        self,
        *,
        config: GatewayConfig,
        password: str | None = None,
        now_ms: Callable[[], int] | None = None,
        api_key: str | None = None,
        notifier: Notifier | None = None,
    ) -> None:
        self.config = config
        self.notifier = notifier if notifier is not None else Notifier.from_env()
        """systemd notifications (READY, WATCHDOG keep-alives); a no-op outside systemd."""
        self.stats = AgentStats()
        self._stop = threading.Event()
        self._wake = threading.Event()
        """Set by :meth:`stop` and by live sources' driver threads when data arrived."""
        self._last_live_poll = 0.0
        self.live_sources: dict[str, LiveSource] = {}
        """Machine id -> its live source, while :meth:`run` runs."""
        self._now_ms = now_ms or (lambda: time.time_ns() // 1_000_000)
        self._health_seq = 0
        self.models: dict[str, AnomalyModel] = {}
        self.rul_models: dict[str, list[AnomalyModel]] = {}
        """Machine id -> its remaining-useful-life models (config ``models:``)."""
        self.pipelines: dict[str, MachinePipeline] = {}
        self._credentials: CredentialsWatch | None = None
        rollout_password = password
        if config.mqtt.credentials_file is not None:
            from renkei.edge.credentials import CredentialsWatch, read_credentials

            creds = read_credentials(config.mqtt.credentials_file)
            if creds.rollout_password is not None:  # enrolled: the rollout user has its own
                rollout_password = creds.rollout_password.get_secret_value()
            self._credentials = CredentialsWatch(
                path=config.mqtt.credentials_file,
                current=creds,
                now=lambda: datetime.fromtimestamp(self._now_ms() / 1000, UTC),
                monotonic=time.monotonic,
            )
        self.rollout: ModelRollout | None = None
        if config.rollout is not None:
            from renkei.edge.rollout import ModelRollout

            self.rollout = ModelRollout(
                config=config, api_key=api_key, password=rollout_password, now_ms=self._now_ms
            )
        for m in config.machines:
            model = None
            if m.model is not None:
                model = AnomalyModel.load(model_dir=m.model.dir, expected_sha256=m.model.sha256)
                if self.rollout is not None:
                    model = self.rollout.restore(m, model)
                self.models[m.id] = model
            rul_models = [
                (r, AnomalyModel.load(model_dir=r.dir, expected_sha256=r.sha256)) for r in m.models
            ]
            self.rul_models[m.id] = [rm for _, rm in rul_models]
            self.pipelines[m.id] = MachinePipeline(
                machine=m,
                gateway=config,
                model=model,
                rul_models=rul_models,
                epoch=lambda: self.outbox.epoch,
            )
        if self.rollout is not None:
            self.rollout.attach(self)
        config.outbox_path.parent.mkdir(parents=True, exist_ok=True)
        self.outbox_settings = config.outbox.settings(config.outbox_path)
        self.outbox = Outbox(settings=self.outbox_settings)
        self.state_topic = gateway_topic(
            firm=config.firm, site=config.site, gateway=config.gateway_id, kind="state"
        )
        self._password = password
        self._restarts: list[float] = []
        self.publisher = self._make_publisher()
        self._report_incidents()

    def _make_publisher(self) -> Publisher:
        mq = self.config.mqtt
        return Publisher(
            # Every key of the ``mqtt:`` section is a publisher setting, but the password's
            # env var name: the password itself and the default client id are added.
            settings=MqttSettings.model_validate(
                mq.model_dump(exclude={"password_env", "credentials_file"})
                | {"client_id": mq.client_id or self.config.gateway_id, "password": self._password}
            ),
            outbox=self.outbox,
            outbox_settings=self.outbox_settings,
            state_topic=self.state_topic,
            birth=lambda: self._state(online=True),
            death=self._state(online=False),
            health=self._health,
            health_interval_s=self.config.publish.health_interval_s,
        )

    def _supervise_publisher(self) -> None:
        """Replace a publisher whose thread died (see "Supervision" in the module docstring).

        Raises:
            AgentError: it failed more than ``_MAX_PUBLISHER_RESTARTS`` times within
                ``_RESTART_WINDOW_S``.
        """
        if self.publisher.alive:
            return
        old = self.publisher
        error = old.stats().pump_error
        try:
            old.stop(timeout_s=1.0)
        except PublisherError as exc:
            error = str(exc)
        now = time.monotonic()
        self._restarts = [t for t in self._restarts if now - t < _RESTART_WINDOW_S]
        if len(self._restarts) >= _MAX_PUBLISHER_RESTARTS:
            raise AgentError(
                f"gateway {self.config.gateway_id}: the publisher failed "
                f"{len(self._restarts) + 1} times within {_RESTART_WINDOW_S:.0f} s (last: "
                f"{error}); stopping so that the service manager restarts the agent"
            )
        self._restarts.append(now)
        self.stats.publisher_restarts += 1
        log.error(
            "publisher thread died (%s); starting a new one (restart %d); the outbox keeps "
            "every unacknowledged message",
            error,
            self.stats.publisher_restarts,
        )
        self.publisher = self._make_publisher()
        self.publisher.start()

    def _switch_credentials(self) -> None:
        """Rotation: once ``mqtt.credentials_file`` holds other credentials, stop the
        publisher (in-flight PUBACKs awaited; the rest stays in the outbox) and start one
        with them (:class:`renkei.edge.credentials.CredentialsWatch`)."""
        fresh = None if self._credentials is None else self._credentials.poll()
        if fresh is None:
            return
        old_user = self.config.mqtt.username
        try:
            self.publisher.stop(timeout_s=5.0)
        except PublisherError as exc:
            log.error("%s", exc)
        mqtt = self.config.mqtt.model_copy(update={"username": fresh.username})
        self.config = self.config.model_copy(update={"mqtt": mqtt})
        self._password = fresh.password.get_secret_value()
        log.warning(
            "MQTT credentials rotated: user %s -> %s; unacknowledged messages stay in the "
            "outbox and go out with the new user",
            old_user,
            fresh.username,
        )
        self.publisher = self._make_publisher()
        self.publisher.start()

    def _report_incidents(self) -> None:
        """Turn outbox incidents into ``event`` messages on every machine (already logged)."""
        incidents: list[OutboxIncident] = self.outbox.take_incidents()
        if not incidents:
            return
        t_ms = self._now_ms()
        for inc in incidents:
            for p in self.pipelines.values():
                p.add_event(
                    t_ms,
                    f"outbox_{inc.kind}",
                    _INCIDENT_SEVERITY[inc.kind],
                    inc.message[:_EVENT_MESSAGE_MAX],
                )

    # ----------------------------------------------------------------- state/health

    def _state(self, *, online: bool) -> bytes:
        return encode(
            GatewayState(
                v=1,
                gw=self.config.gateway_id,
                online=online,
                sent_ms=self._now_ms(),
                config_version=self.config.config_version,
                agent_version=__version__,
                models={
                    **{rm.name: rm.version for rms in self.rul_models.values() for rm in rms},
                    **{m.name: m.version for m in self.models.values()},
                },
                machines=[f"{m.area}/{m.line}/{m.id}" for m in self.config.machines],
            )
        )

    def _health(self) -> tuple[str, bytes]:
        st = self.outbox.stats()
        pub = self.publisher.stats()
        self._health_seq += 1
        topic = gateway_topic(
            firm=self.config.firm,
            site=self.config.site,
            gateway=self.config.gateway_id,
            kind="health",
        )
        return topic, encode(
            GatewayHealth(
                v=1,
                gw=self.config.gateway_id,
                seq=self._health_seq,
                sent_ms=self._now_ms(),
                outbox_backlog=st.backlog_msgs,
                outbox_bytes=st.backlog_bytes,
                dropped_total=st.dropped_total,
                published_total=pub.acked_total,
                epoch=st.epoch,
                lost_total=st.lost_total,
                gap_total=st.gap_total,
                quarantined_total=st.quarantined_total,
                disk_full=st.disk_full,
                publisher_restarts=self.stats.publisher_restarts,
            )
        )

    # ----------------------------------------------------------------- main loop

    def stop(self) -> None:
        """Ask :meth:`run` to finish (thread-safe)."""
        self._stop.set()
        self._wake.set()

    def _sleep(self, seconds: float) -> None:
        """Wait up to ``seconds``, or until :meth:`stop` or new live data. Hand-overs of
        many live sources are batched: after a wake-up the loop polls at most once per
        :data:`_LIVE_BATCH_S` (50 Modbus devices at 10 Hz wake it 500 times a second)."""
        start = time.monotonic()
        woke = self._wake.wait(seconds)
        if woke and not self._stop.is_set():
            gap = self._last_live_poll + _LIVE_BATCH_S - time.monotonic()
            remaining = seconds - (time.monotonic() - start)
            if gap > 0 and remaining > 0:
                self._stop.wait(min(gap, remaining))
        self._wake.clear()

    def _poll_live(self, *, max_polls: int = 8, final: bool = False) -> None:
        """Hand every live source's new readings, events and quality rows to its pipeline.

        A source with a backlog is polled up to ``max_polls`` times (each poll is bounded);
        what is still left wakes the next loop turn at once.
        """
        self._last_live_poll = time.monotonic()
        for mid, source in self.live_sources.items():
            pipeline = self.pipelines[mid]
            for _ in range(max_polls):
                batch = source.poll(final=final)
                for ev in batch.events:
                    pipeline.add_event(ev.t_ms, ev.code, ev.severity, ev.message)
                for t_ms, fields in batch.quality:
                    pipeline.add_quality(t_ms, fields)
                for block in batch.blocks:
                    self.stats.blocks += 1
                    pipeline.process(block)
                if not batch.more:
                    break
            else:
                self._wake.set()

    def run(self, *, duration_s: float | None = None) -> AgentStats:
        """Run until :meth:`stop`, ``duration_s`` elapses, or every source is exhausted.

        On the way out the pending rows are flushed to the outbox, the publisher gets up to
        5 s to deliver the outbox, and a clean offline state is published.

        Raises:
            AgentError: the publisher thread kept failing (see the module docstring).
            renkei.edge.transport.outbox.OutboxError: the outbox failed in a way it cannot recover
            from.
        """
        deadline = None if duration_s is None else time.monotonic() + duration_s
        self.publisher.start()
        if self.rollout is not None:
            self.rollout.start()
        self.notifier.ready(f"gateway {self.config.gateway_id} running")
        try:
            self._loop(deadline)
        finally:
            self.notifier.stopping()
            try:
                if self.rollout is not None:
                    self.rollout.stop()
                self._flush()
                self._await_delivery(timeout_s=_STOP_DRAIN_S)
                try:
                    self.publisher.stop(timeout_s=5.0)
                except PublisherError as exc:
                    log.error("%s", exc)
            finally:
                self.outbox.close()
        return self.stats

    def _await_delivery(self, *, timeout_s: float) -> None:
        """On a clean stop, give the publisher a bounded time to empty the outbox.

        Whatever is left stays on disk and is sent by the next start.
        """
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.publisher.stats().connected:
            if self.outbox.stats().backlog_msgs == 0:
                return
            self.publisher.notify()
            time.sleep(0.05)

    def _loop(self, deadline: float | None) -> None:
        try:
            self._run_sources(deadline)
        finally:
            for source in self.live_sources.values():
                source.stop()
            self._poll_live(max_polls=1_000_000, final=True)  # keep what arrived before stop
            self.live_sources = {}

    def _run_sources(self, deadline: float | None) -> None:
        start_ms = self._now_ms()
        heap: list[tuple[float, int, SampleBlock, _Stream]] = []
        tie = 0
        for m in self.config.machines:
            source = build_source(m, start_ms=start_ms, wake=self._wake.set)
            self.pipelines[m.id].start(publish_start_ms=start_ms, streams=source_streams(source))
            if isinstance(source, LiveSource):
                self.live_sources[m.id] = source
                source.start()
                continue
            stream = _Stream(m, iter(source.blocks()))
            block = next(stream.blocks, None)
            if block is not None:
                heapq.heappush(heap, (stream.due(block), tie, block, stream))
                tie += 1
        flush_every = self.config.publish.flush_interval_s
        next_flush = time.monotonic() + flush_every
        while not self._stop.is_set():
            # systemd's watchdog restarts the agent when the main loop or the publisher
            # thread hangs: keep-alives are sent only while both are alive
            self._supervise_publisher()
            self._switch_credentials()
            if self.publisher.alive:
                self.notifier.keepalive()
            if self.rollout is not None:
                self.rollout.calls.run_pending()
            if self.live_sources:
                self._poll_live()
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                break
            if now >= next_flush:
                self._flush()
                next_flush = now + flush_every
            if not heap:
                if self.live_sources:
                    idle = max(0.0, min(next_flush - now, _WATCHDOG_TICK_S))
                    if deadline is not None:
                        idle = min(idle, max(0.0, deadline - now))
                    self._sleep(idle)
                    continue
                self._stop.wait(min(_IDLE_SLEEP_S, _WATCHDOG_TICK_S))
                if deadline is None and all(p.finished for p in self.pipelines.values()):
                    break
                continue
            due, _, block, stream = heap[0]
            wait = min(due, next_flush, now + _WATCHDOG_TICK_S) - now
            if deadline is not None:
                wait = min(wait, deadline - now)
            if wait > 0:
                if self.live_sources:
                    self._sleep(wait)
                else:
                    self._stop.wait(wait)
                continue
            heapq.heappop(heap)
            self.stats.blocks += 1
            self.pipelines[stream.machine.id].process(block)
            nxt = next(stream.blocks, None)
            if nxt is None:
                self.pipelines[stream.machine.id].finish()
                self.stats.sources_finished += 1
            else:
                heapq.heappush(heap, (stream.due(nxt), tie, nxt, stream))
                tie += 1

    def _flush(self) -> None:
        self._report_incidents()
        max_rows = self.config.publish.max_rows_per_message
        items = []
        for p in self.pipelines.values():
            items.extend(p.drain(max_rows))
        if not items:
            return
        try:
            self.outbox.enqueue_many(items)
            self.stats.messages_enqueued += len(items)
        except OutboxFullError as exc:
            # reject_new policy: the outbox counted and logged the refused messages.
            self.stats.messages_enqueued += len(exc.accepted)
        self.publisher.notify()
        for mid, p in self.pipelines.items():
            self.stats.machines[mid] = p.status()
