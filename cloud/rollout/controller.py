"""The rollout controller: drives deployments between the registry database and MQTT.

One process (``python -m renkei.cloud.rollout``) with one MQTT client and the registry engine:

1. subscribes (QoS 1) to every gateway's model report,
   ``renkei/rollout/v1/+/+/+/report``; reports are retained, so after any (re)connect it
   sees each gateway's latest state, including results it missed while it was down;
2. every ``tick_s`` (and at once when a report arrives) stores the reports
   (:func:`renkei.cloud.rollout.service.record_report`), advances the active deployments
   (:func:`renkei.cloud.rollout.service.step`) and publishes the desired state
   (:func:`renkei.cloud.rollout.service.desired_state`) of every gateway whose desired state
   changed, retained at QoS 1 on ``renkei/rollout/v1/{firm}/{site}/{gateway}/desired``.
   The "changed" mark is cleared only after the broker's PUBACK, in the same transaction,
   so a broker outage delays desired states but never loses one. After every (re)connect
   all desired states are published again (cheap, and it restores them on a broker that
   lost its retained store).

The API only writes ``pending`` deployments; everything after that happens here, so the
canary logic keeps working while no engineer's CLI is waiting, and results reported while
the controller was down are picked up from the retained reports.

**Deployment outcomes in InfluxDB** (optional, ``RolloutSettings.influx``): every
:class:`renkei.core.wire.DeployResult` of a valid report becomes one ``model_deploy`` point
(:func:`renkei.core.influx.contract.model_deploy_point`: tags firm, site, gw, model, version,
result, stage; fields deployment, reason; time ``finished_ms``), written with
:class:`renkei.cloud.store.influx.InfluxStore` after the tick's registry transaction (also when
that transaction failed: the points are the gateway's facts, not the registry's). The
write never holds up the registry: the report's effect on the registry is stored first
(its transaction does not depend on InfluxDB), and a failed write is logged at ERROR,
kept in memory (at most ``influx_max_pending`` points, oldest dropped first) and retried
on the following ticks with exponential backoff (1 s doubling up to
``influx_retry_max_s``); a write InfluxDB rejects (HTTP 4xx other than auth/404) is
logged and dropped. A point
already written is not written again while the controller runs; after a restart the
retained reports are delivered again and their points rewritten, which is idempotent
(same series, same time). Points still held in memory when the controller stops are
therefore not lost either: the next start rewrites them from the retained reports. While
InfluxDB is unreachable each retry can block the tick for up to the InfluxDB timeout
(``InfluxSettings.timeout_s``, default 10 s), at most once per backoff period.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.properties import Properties
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from renkei.cloud._exceptions import StoreError, StoreRejected
from renkei.cloud.registry import FleetGateway, FleetModel, make_engine
from renkei.cloud.rollout import service
from renkei.cloud.store import InfluxSettings, InfluxStore
from renkei.core.influx.contract import model_deploy_point
from renkei.core.mqtt import BrokerSettings, MqttSession
from renkei.core.wire import (
    ROLLOUT_PREFIX,
    ModelReport,
    WireError,
    decode_rollout_payload,
    encode,
    parse_rollout_topic,
    rollout_topic,
)

__all__ = ["REPORT_FILTER", "ControllerStats", "RolloutController", "RolloutSettings"]

log = logging.getLogger(__name__)

#: Topic filter of every gateway's model report.
REPORT_FILTER: Final = f"{ROLLOUT_PREFIX}/+/+/+/report"
_PUBACK_WAIT_S: Final = 5.0
_INFLUX_FIRST_RETRY_S: Final = 1.0


class RolloutSettings(BaseModel):
    """Settings of the rollout controller (frozen).

    Attributes:
        database_url: SQLAlchemy URL of the registry (the API's ``RENKEI_API_DATABASE_URL``).
        broker: the broker connection (:class:`renkei.core.mqtt.BrokerSettings`: URL,
            credentials, TLS incl. mutual TLS, keep-alive, MQTT version). Its
            ``client_id`` (one controller per broker) defaults to ``renkei-rollout``
            (:attr:`client_id`).
        tick_s: period of the deployment step, seconds.
        influx: InfluxDB receiving the ``model_deploy`` points (the ``RENKEI_INFLUX_*``
            options of ``renkei cloud ingest``); ``None`` = no points are written.
        influx_retry_max_s: longest wait between two attempts to write held points after
            a failed write, seconds.
        influx_max_pending: most ``model_deploy`` points held in memory while InfluxDB is
            unavailable; beyond it the oldest are dropped (and logged).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    database_url: str
    broker: BrokerSettings = Field(default_factory=BrokerSettings)
    tick_s: float = Field(default=0.5, gt=0, le=60)
    influx: InfluxSettings | None = None
    influx_retry_max_s: float = Field(default=60.0, gt=0, le=3600)
    influx_max_pending: int = Field(default=10_000, ge=1)

    @property
    def client_id(self) -> str:
        """The MQTT client id: ``broker.client_id``, default ``renkei-rollout``."""
        return self.broker.client_id or "renkei-rollout"


@dataclass(frozen=True, slots=True)
class ControllerStats:
    """Counters since start (``deploy_points_*``: ``model_deploy`` points, see the module
    docstring; all 0 without InfluxDB)."""

    connected: bool
    reports: int
    malformed: int
    desired_published: int
    steps: int
    last_error: str | None
    deploy_points_written: int = 0
    deploy_points_pending: int = 0
    deploy_points_dropped: int = 0
    deploy_write_failures: int = 0


def _utcnow() -> datetime:
    return datetime.now(UTC)


class RolloutController:
    """See the module docstring.

    Args:
        settings: controller settings.
        engine: registry engine (default: ``make_engine(settings.database_url)``).
        clock: current UTC time (tests may pin it).

    Raises:
        ConfigError: the broker's TLS files cannot be loaded.
    """

    def __init__(
        self,
        settings: RolloutSettings,
        *,
        engine: Engine | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.settings = settings
        self._own_engine = engine is None
        self.engine = engine or make_engine(settings.database_url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._clock = clock
        self._inbox: queue.SimpleQueue[tuple[str, bytes]] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._resend_all = False
        self._thread: threading.Thread | None = None
        self._n = {
            "reports": 0,
            "malformed": 0,
            "desired": 0,
            "steps": 0,
            "points": 0,
            "dropped": 0,
            "write_failures": 0,
        }
        self._last_error: str | None = None
        self._store = None if settings.influx is None else InfluxStore(settings=settings.influx)
        # model_deploy points not yet accepted by InfluxDB (line -> its (firm, gw, model)),
        # oldest first, and the last line written per (firm, gw, model) (no rewrites).
        self._pending: dict[bytes, tuple[str, str, str]] = {}
        self._written: dict[tuple[str, str, str], bytes] = {}
        self._write_failures_in_row = 0
        self._retry_at = 0.0
        self._mqtt = MqttSession(
            settings.broker,
            name="rollout controller",
            client_id=settings.client_id,
            reconnect_min_s=1,
            reconnect_max_s=30,
            on_connected=self._on_connected,
            on_message=self._on_message,
        )

    # ------------------------------------------------------------------ MQTT

    def _on_connected(self, session_present: bool, properties: Properties | None) -> None:
        self._mqtt.client.subscribe(REPORT_FILTER, qos=1)
        self._resend_all = True
        self._wake.set()

    def _on_message(self, msg: mqtt.MQTTMessage) -> None:
        self._inbox.put((msg.topic, bytes(msg.payload)))
        self._wake.set()

    # ------------------------------------------------------------------ life cycle

    def start(self) -> None:
        """Connect and run the loop in a background thread; returns at once."""
        self._thread = threading.Thread(target=self.run, name="renkei-rollout", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the loop and disconnect (thread- and signal-safe)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)

    def run(self) -> None:
        """Run until :meth:`stop` (blocking)."""
        self._mqtt.start(clean_start=True)
        try:
            while not self._stop.is_set():
                self._wake.clear()
                try:
                    self.tick()
                except Exception as exc:  # keep driving; a DB hiccup must not end it
                    self._last_error = repr(exc)
                    log.exception("rollout controller step failed; retrying")
                self._wake.wait(self.settings.tick_s)
        finally:
            self._mqtt.stop()
            if self._own_engine:
                self.engine.dispose()
            if self._store is not None:
                if self._pending:
                    log.warning(
                        "rollout: stopping with %d model_deploy point(s) not written to "
                        "InfluxDB; they are rewritten from the retained reports at the next "
                        "start",
                        len(self._pending),
                    )
                self._store.close()

    def stats(self) -> ControllerStats:
        """A snapshot of the counters."""
        return ControllerStats(
            connected=self._mqtt.connected,
            reports=self._n["reports"],
            malformed=self._n["malformed"],
            desired_published=self._n["desired"],
            steps=self._n["steps"],
            last_error=self._last_error,
            deploy_points_written=self._n["points"],
            deploy_points_pending=len(self._pending),
            deploy_points_dropped=self._n["dropped"],
            deploy_write_failures=self._n["write_failures"],
        )

    # ------------------------------------------------------------------ one tick

    def tick(self) -> None:
        """Store queued reports, step the deployments, publish changed desired states, and
        write the reports' ``model_deploy`` points (after the registry transaction)."""
        now = self._clock()
        try:
            with self._sessions() as session, session.begin():
                while True:
                    try:
                        topic, payload = self._inbox.get_nowait()
                    except queue.Empty:
                        break
                    self._record(session, topic, payload, now)
                service.step(session, now=now)
                self._n["steps"] += 1
        finally:
            self._write_deploy_points()
        if self._mqtt.connected:
            self._publish_desired(resend_all=self._resend_all)

    def _record(self, session: Session, topic: str, payload: bytes, now: datetime) -> None:
        try:
            where = parse_rollout_topic(topic)
            if where.kind != "report":
                raise WireError("bad_topic", f"{topic!r} is not a report topic")
            report = decode_rollout_payload(payload, "report")
            if not isinstance(report, ModelReport):  # pragma: no cover - kind="report"
                raise WireError("invalid_payload", "not a report")
            if report.gw != where.gateway:
                raise WireError(
                    "invalid_payload",
                    f"payload gw {report.gw!r} differs from the topic's {where.gateway!r}",
                )
        except WireError as exc:
            self._n["malformed"] += 1
            log.warning("ignoring malformed model report on %r: %s", topic, exc)
            return
        self._queue_deploy_points(where.firm, where.site, report)
        service.record_report(
            session, firm_id=where.firm, site_id=where.site, report=report, now=now
        )
        self._n["reports"] += 1

    # ------------------------------------------------------------------ InfluxDB

    def _queue_deploy_points(self, firm: str, site: str, report: ModelReport) -> None:
        """Hold the ``model_deploy`` point of each result of ``report`` not yet written."""
        if self._store is None:
            return
        for model, res in report.results.items():
            line = model_deploy_point(
                firm=firm,
                site=site,
                gw=report.gw,
                model=model,
                version=res.version,
                result=res.status,
                stage=res.stage,
                deployment=res.deployment,
                finished_ms=res.finished_ms,
                reason=res.reason,
            )
            key = (firm, report.gw, model)
            if self._written.get(key) == line or line in self._pending:
                continue
            self._pending[line] = key
        excess = len(self._pending) - self.settings.influx_max_pending
        if excess > 0:
            for line in list(self._pending)[:excess]:
                del self._pending[line]
            self._n["dropped"] += excess
            log.error(
                "rollout: %d model_deploy point(s) dropped: more than %d held while InfluxDB "
                "is unavailable (influx_max_pending); they come back from the retained "
                "reports after a restart",
                excess,
                self.settings.influx_max_pending,
            )

    def _write_deploy_points(self) -> None:
        """Write the held ``model_deploy`` points, unless a failed write asks to wait."""
        if self._store is None or not self._pending or time.monotonic() < self._retry_at:
            return
        influx = self._store.settings
        lines = list(self._pending.items())
        try:
            self._store.write_lines(b"".join(line for line, _ in lines), precision="ms")
        except StoreRejected as exc:
            self._pending.clear()
            self._n["dropped"] += len(lines)
            self._last_error = repr(exc)
            log.error(
                "rollout: InfluxDB %s (database %r) rejected %d model_deploy point(s); dropped: %s",
                influx.url,
                influx.database,
                len(lines),
                exc,
            )
            return
        except StoreError as exc:
            self._n["write_failures"] += 1
            self._write_failures_in_row += 1
            delay = min(
                self.settings.influx_retry_max_s,
                _INFLUX_FIRST_RETRY_S * 2 ** min(self._write_failures_in_row - 1, 16),
            )
            self._retry_at = time.monotonic() + delay
            self._last_error = repr(exc)
            log.error(
                "rollout: writing %d model_deploy point(s) to InfluxDB %s (database %r) "
                "failed: %s; the registry is up to date, the points are held in memory and "
                "retried in %.0f s",
                len(lines),
                influx.url,
                influx.database,
                exc,
                delay,
            )
            return
        if self._write_failures_in_row:
            log.info(
                "rollout: InfluxDB %s writable again after %d failed attempt(s)",
                influx.url,
                self._write_failures_in_row,
            )
        self._write_failures_in_row = 0
        for line, key in lines:
            self._written[key] = line
            del self._pending[line]
        self._n["points"] += len(lines)

    def _publish_desired(self, *, resend_all: bool) -> None:
        with self._sessions() as session:
            query = select(FleetGateway)
            if resend_all:
                query = query.where(
                    FleetGateway.gateway_id.in_(
                        select(FleetModel.gateway_id).where(FleetModel.desired_version.is_not(None))
                    )
                    | FleetGateway.desired_dirty.is_(True)
                )
            else:
                query = query.where(FleetGateway.desired_dirty.is_(True))
            keys = [(g.firm_id, g.gateway_id) for g in session.scalars(query)]
        all_ok = True
        for firm_id, gateway_id in keys:
            all_ok &= self._publish_one(firm_id, gateway_id)
        if resend_all and all_ok:
            self._resend_all = False

    def _publish_one(self, firm_id: str, gateway_id: str) -> bool:
        # Only this thread changes desired states (service.step), so nothing can change
        # between reading it here and clearing the mark after the PUBACK.
        now_ms = int(self._clock().timestamp() * 1000)
        with self._sessions() as session:
            found = service.desired_state(
                session, firm_id=firm_id, gateway_id=gateway_id, now_ms=now_ms
            )
        if found is None:
            return True
        site_id, desired = found
        topic = rollout_topic(firm=firm_id, site=site_id, gateway=gateway_id, kind="desired")
        info = self._mqtt.client.publish(topic, encode(desired), qos=1, retain=True)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            return False
        deadline = time.monotonic() + _PUBACK_WAIT_S
        while not info.is_published() and time.monotonic() < deadline:
            if self._stop.is_set() or not self._mqtt.connected:
                return False
            try:
                info.wait_for_publish(0.1)
            except RuntimeError:  # connection lost meanwhile
                return False
        if not info.is_published():
            return False
        with self._sessions() as session, session.begin():
            gw = session.get(FleetGateway, (firm_id, gateway_id))
            if gw is not None:
                gw.desired_dirty = False
        self._n["desired"] += 1
        log.info(
            "desired state of %s/%s: %s",
            firm_id,
            gateway_id,
            {n: (m.version, m.deployment) for n, m in desired.models.items()},
        )
        return True
