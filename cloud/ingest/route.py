"""One message's fate: its line protocol, or why it is dead-lettered (:func:`route_message`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Final

from renkei.cloud.ingest.binding import GatewayBindings
from renkei.cloud.ingest.lineproto import Encoded, TimeWindow, encode_message
from renkei.core.wire import WireError

__all__ = ["REASON_INGEST_ERROR", "REASON_STORE_REJECTED", "Rejected", "route_message"]

log = logging.getLogger("renkei.cloud.ingest")

#: Dead-letter reason for a message that made the encoder fail unexpectedly (a bug).
REASON_INGEST_ERROR: Final = "ingest_error"
#: Dead-letter reason for a message whose points the store refused (HTTP 4xx).
REASON_STORE_REJECTED: Final = "store_rejected"


@dataclass(frozen=True, slots=True)
class Rejected:
    """Why a message is dead-lettered (``reason`` is the dead-letter topic level)."""

    reason: str
    detail: str


def route_message(
    topic: str | None,
    payload: bytes,
    *,
    now_ms: int,
    window: TimeWindow | None = None,
    bindings: GatewayBindings | None = None,
) -> Encoded | Rejected:
    """Decide what happens to one message: its line protocol, or why it is rejected.

    Never raises for any input: contract violations become ``Rejected(reason=WireError
    reason)``; an unexpected encoder failure (a bug) becomes ``Rejected("ingest_error")``
    and is logged with its traceback, so one poison message cannot stall the stream.

    Args:
        topic: the MQTT topic, or ``None`` when it was not valid UTF-8.
        payload: the MQTT payload.
        now_ms: current UTC epoch ms (future-timestamp check).
        window: admission window of point times (``out_of_range_time``), or ``None``.
        bindings: machine -> gateway bindings (``gateway_mismatch``), or ``None``.
    """
    if topic is None:
        return Rejected("bad_topic", "topic is not valid UTF-8")
    try:
        return encode_message(topic, payload, now_ms=now_ms, window=window, bindings=bindings)
    except WireError as exc:
        return Rejected(exc.reason, exc.detail)
    except Exception as exc:  # a bug must dead-letter the message, not stall the stream
        log.exception("encoder failed on a message on %r; dead-lettering it", topic)
        return Rejected(REASON_INGEST_ERROR, f"{type(exc).__name__}: {exc}"[:1000])
