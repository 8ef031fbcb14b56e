"""Gateway-side model rollout: desired state in, verified atomic model switch, report out.

:class:`ModelRollout` is created by :class:`renkei.edge.agent.GatewayAgent` when the config has a
``rollout`` section. Its MQTT connection (a second client,
``{client_id}-rollout``) is :class:`renkei.edge.rollout.link.RolloutLink`: it receives the
gateway's retained desired state and publishes its retained report (:mod:`renkei.core.wire`,
"Model rollout"). This module is the other half: one worker thread that handles each
``(model name, deployment)`` entry once:

1. **verify** -- the Ed25519 signature of the entry (:mod:`renkei.core.signing`) by a key in
   ``rollout.trusted_keys`` (never the registry's word); a ``model.sha256`` pinned in the
   gateway config must equal the entry's digest;
2. **download** -- manifest and ONNX over HTTP from ``rollout.api_url``
   (:mod:`renkei.edge.rollout.fetch`), unless the release is already in the local store; the
   ONNX and manifest digests must equal the *signed* ones (a tampered artifact stops here);
3. **load** -- from the store directory, re-checking both digests, the manifest's name,
   version and hash, the graph (:meth:`renkei.edge.model.inference.AnomalyModel.load`) and the fit
   to every machine that runs the model (window length);
4. **shadow** -- :func:`renkei.edge.rollout.shadow.shadow_check` on the machines' recent rows
   (waits up to ``shadow.wait_s`` for ``shadow.min_windows`` of them);
5. **switch** -- on the agent's main thread, between two rows, for every machine running
   the model at once (:meth:`renkei.edge.pipeline.MachinePipeline.set_model`): the pipeline never
   sees a half-loaded model;
6. **probation** -- the next ``probation_windows`` live rows (at most ``probation_s``)
   must score finite without errors, else the previous model is switched back
   (``rolled_back``);
7. **done** -- the store's ``state.json`` records the new active release (it replaces the
   config's model at the next start, after the same verification) and the result.

Any failure keeps (or restores) the previous model; the report says which stage failed
and why. The outcome of every attempt is persisted, so a retained desired state that was
already attempted is not attempted again after a reconnect or restart.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any, Final, Literal, Protocol, TypeVar

from renkei.core.errors import RenkeiError
from renkei.core.wire import (
    DeployResult,
    DesiredModel,
    ModelDesired,
    ModelReport,
    RunningModel,
)
from renkei.edge.config import GatewayConfig, MachineConfig
from renkei.edge.model.inference import (
    AnomalyModel,
    ModelInputError,
)
from renkei.edge.pipeline import MachinePipeline
from renkei.edge.rollout.calls import MainThreadCalls
from renkei.edge.rollout.link import RolloutLink
from renkei.edge.rollout.release import Outcome, Releases, Stage, Status
from renkei.edge.rollout.shadow import shadow_check
from renkei.edge.rollout.store import ActiveModel, ModelStore

__all__ = ["MainThreadCalls", "ModelRollout"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Longest wait for the agent's main loop to run a call (swap, snapshot), seconds.
_MAIN_TIMEOUT_S: Final = 30.0
_POLL_S: Final = 0.2


class _AgentLike(Protocol):
    """What the rollout needs of :class:`renkei.edge.agent.GatewayAgent`."""

    config: GatewayConfig
    models: dict[str, AnomalyModel]
    pipelines: dict[str, MachinePipeline]


class _Stopped(RenkeiError):
    """The agent is stopping; abandon the attempt without recording it."""


class ModelRollout:
    """See the module docstring.

    Args:
        config: gateway config with a ``rollout`` section.
        api_key: API key for downloads (the CLI reads ``rollout.api_key_env``).
        password: MQTT password (as for the data publisher; used by :attr:`link`).
        now_ms: clock, UTC epoch ms.

    Raises:
        ValueError: the config has no ``rollout`` section.
        OSError: the model store directory cannot be created.
        renkei.core.mqtt.BrokerSettingsError: the MQTT TLS files cannot be loaded.
    """

    def __init__(
        self,
        *,
        config: GatewayConfig,
        api_key: str | None = None,
        password: str | None = None,
        now_ms: Callable[[], int] | None = None,
    ) -> None:
        if config.rollout is None:
            raise ValueError("ModelRollout needs a config with a rollout section")
        self.config = config
        self.cfg = config.rollout
        self.store = ModelStore(config.models_dir)
        self.releases = Releases(cfg=self.cfg, store=self.store, api_key=api_key)
        """Signature, digest and download checks of the deployed releases."""
        self.trusted = self.releases.trusted
        self.calls = MainThreadCalls()
        self._now_ms = now_ms or (lambda: time.time_ns() // 1_000_000)
        self._agent: _AgentLike | None = None
        self._source: dict[str, Literal["config", "deployed"]] = {}
        self._restored: dict[str, AnomalyModel | None] = {}
        self._desired: ModelDesired | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.attempts = 0
        self.link = RolloutLink(
            config=config, password=password, on_desired=self._on_desired, report=self.report
        )
        """The MQTT connection (desired state in, report out)."""

    # ------------------------------------------------------------------ start-up

    def restore(self, machine: MachineConfig, config_model: AnomalyModel) -> AnomalyModel:
        """The model ``machine`` should start with: the active deployed release of the same
        name if it verifies and fits, else ``config_model`` (called by the agent)."""
        name = config_model.name
        active = self.store.state.active.get(name)
        self._source.setdefault(name, "config")
        if active is None:
            return config_model
        if name not in self._restored:
            try:
                self._restored[name] = self.releases.load_verified(
                    name, active.entry, self.store.root / active.dir
                )
            except Outcome as exc:
                log.error(
                    "deployed model %s %s does not verify (%s); using the config's %s",
                    name,
                    active.entry.version,
                    exc.reason,
                    config_model.version,
                )
                self._restored[name] = None
        model = self._restored[name]
        if model is None:
            return config_model
        pin = machine.model.sha256 if machine.model is not None else None
        w = model.manifest.window_s
        if pin is not None and pin != model.sha256:
            log.error("machine %s pins %s; using the config's model", machine.id, pin[:12])
            return config_model
        if model.manifest.feature_kind == "window" and w is not None and w != machine.window_s:
            log.error("deployed %s needs window_s %s; using the config's model", name, w)
            return config_model
        self._source[name] = "deployed"
        log.info("machine %s runs deployed model %s %s", machine.id, name, model.version)
        return model

    def attach(self, agent: _AgentLike) -> None:
        """Bind to the agent whose pipelines this rollout switches."""
        self._agent = agent

    def start(self) -> None:
        """Connect to the broker and start the worker thread; returns at once."""
        self.link.start()
        self._thread = threading.Thread(target=self._work, name="renkei-rollout", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the worker (an unfinished attempt is abandoned, not recorded) and
        disconnect. Call from the agent's main thread (it runs the worker's pending calls
        meanwhile)."""
        self._stop.set()
        self._wake.set()
        deadline = time.monotonic() + timeout_s
        while self._thread is not None and self._thread.is_alive():
            self.calls.run_pending()
            if time.monotonic() >= deadline:
                log.warning("rollout worker did not stop within %.0f s", timeout_s)
                break
            self._thread.join(0.05)
        self.link.stop()

    # ------------------------------------------------------------------ MQTT

    def _on_desired(self, desired: ModelDesired) -> None:
        """A desired state of this gateway arrived (paho's network thread)."""
        with self._lock:
            self._desired = desired
        self._wake.set()

    def report(self) -> ModelReport:
        """The current report: models running, their previous versions, last results."""
        running: dict[str, dict[str, Any]] = {}
        agent = self._agent
        for mid, m in list(agent.models.items()) if agent is not None else []:
            entry = running.get(m.name)
            if entry is None:
                running[m.name] = {
                    "version": m.version,
                    "sha256": m.sha256,
                    "previous_version": self.store.state.previous_version.get(m.name),
                    "machines": [mid],
                    "source": self._source.get(m.name, "config"),
                }
            else:
                entry["machines"].append(mid)
        return ModelReport(
            v=1,
            gw=self.config.gateway_id,
            sent_ms=self._now_ms(),
            groups=list(self.cfg.groups),
            models={name: RunningModel(**e) for name, e in running.items()},
            results=dict(self.store.state.results),
        )

    def publish_report(self) -> None:
        """Publish :meth:`report` retained (QoS 1); a no-op while disconnected (every
        connect publishes the latest one)."""
        self.link.publish_report()

    # ------------------------------------------------------------------ worker

    def _work(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(1.0)
            self._wake.clear()
            with self._lock:
                desired = self._desired
            if desired is None or self._agent is None:
                continue
            for name, entry in sorted(desired.models.items()):
                if self._stop.is_set():
                    return
                if self.store.state.attempted.get(name) == entry.deployment:
                    continue
                try:
                    result = self._attempt(name, entry)
                except _Stopped:
                    return
                except Exception:  # never let the worker die; the entry is retried later
                    log.exception(
                        "deployment %d of %s: cannot record the result", entry.deployment, name
                    )
                    continue
                st = self.store.state
                st.attempted[name] = entry.deployment
                st.results[name] = result
                try:
                    self.store.save()
                except OSError as exc:
                    log.error("cannot save the rollout state: %s", exc)
                self.attempts += 1
                log.log(
                    logging.INFO if result.status == "succeeded" else logging.WARNING,
                    "deployment %d of %s %s: %s at %s%s",
                    entry.deployment,
                    name,
                    entry.version,
                    result.status,
                    result.stage,
                    f" ({result.reason})" if result.reason else "",
                )
                self.publish_report()

    def _attempt(self, name: str, entry: DesiredModel) -> DeployResult:
        status: Status = "succeeded"
        stage: Stage = "done"
        reason = ""
        checks: dict[str, float] = {}
        try:
            checks = self._apply(name, entry)
        except Outcome as out:
            status, stage, reason, checks = out.status, out.stage, out.reason, out.checks
        except _Stopped:
            raise
        except Exception as exc:  # a bug must not kill the worker; the model stays as is
            log.exception("deployment %d of %s failed unexpectedly", entry.deployment, name)
            status, stage, reason = "rejected", "load", f"unexpected error: {exc!r}"
        return DeployResult(
            deployment=entry.deployment,
            version=entry.version,
            status=status,
            stage=stage,
            reason=reason[:2000],
            finished_ms=self._now_ms(),
            checks={k: float(v) for k, v in checks.items() if math.isfinite(v)},
        )

    def _apply(self, name: str, entry: DesiredModel) -> dict[str, float]:
        agent = self._agent
        assert agent is not None
        machines = [mid for mid, m in list(agent.models.items()) if m.name == name]
        if not machines:
            raise Outcome(
                "rejected",
                "verify",
                f"no machine of gateway {self.config.gateway_id} runs model {name}",
            )
        current = agent.models[machines[0]]
        if current.version == entry.version and current.sha256 == entry.sha256:
            self.releases.verify_signature(name, entry)
            return {"already_running": 1.0}
        self.releases.verify_signature(name, entry)
        by_id = {m.id: m for m in self.config.machines}
        for mid in machines:
            mc = by_id[mid].model
            if mc is not None and mc.sha256 is not None and mc.sha256 != entry.sha256:
                raise Outcome(
                    "rejected",
                    "verify",
                    f"machine {mid}: the gateway config pins model sha256 {mc.sha256}; "
                    f"refusing {entry.sha256}",
                )
        release_dir = self.store.cached(name, entry)
        if release_dir is None:
            release_dir = self.releases.download(name, entry)
        model = self.releases.load_verified(name, entry, release_dir)
        for mid in machines:
            try:
                agent.pipelines[mid].check_model(model)
            except ModelInputError as exc:
                raise Outcome("rejected", "load", str(exc)) from None
        rows = self._recent_rows(machines, model)
        shadow = shadow_check(model, current, rows, self.cfg.shadow)
        if not shadow.ok:
            raise Outcome("rejected", "shadow", shadow.reason, shadow.checks)
        checks = dict(shadow.checks)
        previous = {mid: agent.models[mid] for mid in machines}
        before = self._main(lambda: self._switch(agent, dict.fromkeys(machines, model)), "switch")
        try:
            checks |= self._probation(agent, machines, before)
        except Outcome as out:
            self._main(lambda: self._switch(agent, previous), "switch")
            out.checks = checks | out.checks
            raise
        st = self.store.state
        st.previous_version[name] = current.version
        st.active[name] = ActiveModel(name=name, entry=entry, dir=self.store.relative(release_dir))
        self._source[name] = "deployed"
        self.store.prune(name)
        return checks

    # ------------------------------------------------------------------ steps

    def _recent_rows(self, machines: list[str], model: AnomalyModel) -> list[dict[str, float]]:
        agent = self._agent
        assert agent is not None
        names = model.input_names
        need = self.cfg.shadow.min_windows
        deadline = time.monotonic() + self.cfg.shadow.wait_s

        def snapshot() -> list[dict[str, float]]:
            # the candidate's inputs on each machine's recent rows (history features too)
            return [r for mid in machines for r in agent.pipelines[mid].shadow_rows(model)]

        while True:
            rows = self._main(snapshot, "shadow")
            usable = sum(
                all(n in r and r[n] == r[n] and abs(r[n]) != float("inf") for n in names)
                for r in rows
            )
            if usable >= need or time.monotonic() >= deadline:
                return rows
            self._sleep(0.5)

    @staticmethod
    def _switch(
        agent: _AgentLike, targets: dict[str, AnomalyModel]
    ) -> dict[str, tuple[int, int, int]]:
        """Main thread: machine ``mid`` scores with ``targets[mid]`` from its next row on;
        all or nothing. Returns the pipelines' (scored, non-finite, errors) counters."""
        previous = {mid: agent.models[mid] for mid in targets}
        done: list[str] = []
        try:
            for mid, model in targets.items():
                agent.pipelines[mid].set_model(model)
                agent.models[mid] = model
                done.append(mid)
        except BaseException:
            for mid in done:
                agent.pipelines[mid].set_model(previous[mid])
                agent.models[mid] = previous[mid]
            raise
        return {
            mid: (p.scored, p.nonfinite_scores, p.model_errors)
            for mid, p in ((mid, agent.pipelines[mid]) for mid in targets)
        }

    def _probation(
        self, agent: _AgentLike, machines: list[str], before: dict[str, tuple[int, int, int]]
    ) -> dict[str, float]:
        want = self.cfg.probation_windows
        if want == 0:
            return {}
        deadline = time.monotonic() + self.cfg.probation_s

        def counts() -> dict[str, tuple[int, int, int]]:
            return {
                mid: (
                    agent.pipelines[mid].scored,
                    agent.pipelines[mid].nonfinite_scores,
                    agent.pipelines[mid].model_errors,
                )
                for mid in machines
            }

        while True:
            now = self._main(counts, "probation")
            scored = sum(now[m][0] - before[m][0] for m in machines)
            nonfinite = sum(now[m][1] - before[m][1] for m in machines)
            errors = sum(now[m][2] - before[m][2] for m in machines)
            checks = {
                "probation_scored": float(scored),
                "probation_nonfinite": float(nonfinite),
                "probation_errors": float(errors),
            }
            if nonfinite or errors:
                raise Outcome(
                    "rolled_back",
                    "probation",
                    f"in live use the model gave {nonfinite} non-finite scores and "
                    f"{errors} errors; previous model restored",
                    checks,
                )
            if scored >= want or time.monotonic() >= deadline:
                return checks
            self._sleep(_POLL_S)

    # ------------------------------------------------------------------ helpers

    def _main(self, fn: Callable[[], T], stage: Stage) -> T:
        """Run ``fn`` on the agent's main thread and wait for it."""
        fut = self.calls.submit(fn)
        deadline = time.monotonic() + _MAIN_TIMEOUT_S
        while True:
            try:
                return fut.result(timeout=0.1)
            except TimeoutError:
                if self._stop.is_set() and fut.cancel():
                    raise _Stopped() from None
                if time.monotonic() >= deadline and fut.cancel():
                    raise Outcome(
                        "rejected", stage, "the agent's main loop did not respond"
                    ) from None

    def _sleep(self, seconds: float) -> None:
        if self._stop.wait(seconds):
            raise _Stopped()
