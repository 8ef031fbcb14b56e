"""The ingest worker's dead letters: building, publishing and awaiting them.

An invalid message (or one whose points the store rejects) is published as a
:class:`renkei.core.wire.DeadLetter` on ``renkei/dlq/v1/{reason}`` (QoS 1) and, with
``deadletter_points``, counted by one ``ingest_deadletters`` point; the original is
acknowledged only after the broker's PUBACK of its dead letter (the worker's
at-least-once guarantee).
"""

from __future__ import annotations

import base64
import hashlib
import time

from paho.mqtt.enums import MQTTErrorCode

from renkei.cloud.ingest.lineproto import encode_deadletter_point
from renkei.cloud.ingest.session import IngestSession
from renkei.cloud.ingest.settings import IngestSettings
from renkei.cloud.ingest.stats import Counters
from renkei.cloud.ingest.work import Abandon, Inbound, StopControl, Work
from renkei.core.wire import DeadLetter, deadletter_topic

__all__ = ["DeadLetters"]


class DeadLetters:
    """Builds, publishes and awaits dead letters (from the worker's writer thread only).

    Args:
        settings: worker settings (``deadletter_points``).
        session: the MQTT session (publishing, the broker's Maximum Packet Size, PUBACKs).
        counters: the worker's counters (dead letters by reason, errors).
        stop: the worker's stop request (waiting for PUBACKs ends at its deadline).
    """

    def __init__(
        self,
        *,
        settings: IngestSettings,
        session: IngestSession,
        counters: Counters,
        stop: StopControl,
    ) -> None:
        self.settings = settings
        self._client_id = settings.client_id
        self._session = session
        self._counters = counters
        self._stop = stop
        self._last_dl_ms = 0

    def mark(self, work: Work, reason: str, detail: str) -> None:
        """Make ``work`` a dead letter: ``reason``/``detail`` set, no data points, its body
        the dead-letter counter point (or empty without ``deadletter_points``)."""
        work.reason, work.detail, work.points, work.values = reason, detail, 0, 0
        work.body = b""
        if self.settings.deadletter_points:
            self._last_dl_ms = max(work.msg.received_ms, self._last_dl_ms + 1)
            work.body = encode_deadletter_point(
                reason=reason,
                worker=self._client_id,
                topic=self.topic_text(work.msg),
                detail=detail,
                time_ms=self._last_dl_ms,
            )

    @staticmethod
    def topic_text(msg: Inbound) -> str:
        """The message's topic, undecodable bytes as ``\\x..`` escapes."""
        if msg.topic is not None:
            return msg.topic
        return msg.raw_topic.decode("utf-8", "backslashreplace")

    def publish(self, work: Work) -> None:
        """Publish the dead letter of ``work`` (QoS 1; :meth:`await_acks` awaits its PUBACK)."""
        msg = work.msg
        assert work.reason is not None
        envelope = self.envelope(msg, work.reason, work.detail)
        info = self._session.client.publish(deadletter_topic(work.reason), envelope, qos=1)
        work.dl_info = info
        with self._counters.lock:
            self._counters.dead[work.reason] += 1

    def envelope(self, msg: Inbound, reason: str, detail: str) -> bytes:
        """The dead letter's JSON, never larger than the broker's Maximum Packet Size
        (a bigger publish would make an MQTT 5 broker drop the connection, and the
        original would come back forever)."""
        topic = _clip(self.topic_text(msg), 1024)
        detail = _clip(detail, 2048)
        payload = msg.payload
        # JSON escaping may turn one character into six bytes (\u00XX).
        overhead = 512 + 6 * (len(topic.encode()) + len(detail.encode())) + len(reason)
        room = self._session.max_packet - overhead
        if len(payload) * 4 // 3 + 4 > room:
            keep = max(0, room * 3 // 4 - 4)
            digest = hashlib.sha256(payload).hexdigest()
            detail = (
                f"{detail} [payload truncated to its first {keep} of {len(payload)} bytes; "
                f"sha256 of the original: {digest}]"
            )
            payload = payload[:keep]
        dl = DeadLetter(
            reason=reason,
            detail=detail,
            topic=topic,
            received_ms=msg.received_ms,
            payload_b64=base64.b64encode(payload).decode("ascii"),
        )
        return dl.model_dump_json().encode()

    def await_acks(self, works: list[Work]) -> None:
        """Wait for the broker's PUBACK of every dead letter of the batch.

        Raises:
            Abandon: the connection ended or the stop deadline passed first.
        """
        for w in works:
            info = w.dl_info
            if info is None:
                continue
            while True:
                if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS or not self._session.current(w.msg):
                    raise Abandon("connection lost before the dead letter was acknowledged")
                if info.is_published():
                    break
                if self._stop.is_set() and time.monotonic() > self._stop.deadline:
                    raise Abandon("stop timeout reached waiting for dead-letter PUBACKs")
                info.wait_for_publish(0.05)
            refused = self._session.refused(info.mid)
            if refused is not None:
                # The broker answered the dead letter with an error reason code (e.g. no
                # ACL for renkei/dlq/#). The original is invalid either way; it is acked
                # so it does not block the stream, and its counter point is written.
                self._counters.error(f"broker refused the dead letter on {w.msg.topic}: {refused}")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
