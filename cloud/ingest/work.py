"""What the ingest worker's parts hand each other: a received message (:class:`Inbound`),
its processing state (:class:`Work`), the stop request (:class:`StopControl`) and
:class:`Abandon`."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import paho.mqtt.client as mqtt

from renkei.core.errors import RenkeiError

__all__ = ["Abandon", "Inbound", "StopControl", "Work"]


@dataclass(slots=True)
class Inbound:
    """One message as received on the network thread.

    Attributes:
        gen: the connection generation it arrived on (see :mod:`.session`).
        mid, qos: its MQTT packet id and QoS (for the PUBACK).
        topic: the topic, ``None`` when it was not valid UTF-8.
        raw_topic: the topic's raw bytes.
        payload: the payload.
        received_ms: receipt time, UTC epoch ms.
    """

    gen: int
    mid: int
    qos: int
    topic: str | None
    raw_topic: bytes
    payload: bytes
    received_ms: int


@dataclass(slots=True)
class Work:
    """One message of a batch: its line protocol, or its dead letter.

    Attributes:
        msg: the message.
        body: line protocol to write (data, or the dead-letter counter point).
        points, values: data points / field values in ``body`` (0 for a dead letter).
        reason, detail: dead-letter reason and text; ``reason`` ``None`` = valid.
        dl_info: the dead letter's publish, once published.
    """

    msg: Inbound
    body: bytes = b""
    points: int = 0
    values: int = 0
    reason: str | None = None
    detail: str = ""
    dl_info: mqtt.MQTTMessageInfo | None = None


class Abandon(RenkeiError):
    """The current batch cannot complete (stop deadline passed or connection lost)."""


class StopControl:
    """The worker's stop request, shared by its parts.

    Attributes:
        event: set once a stop was asked for.
        deadline: ``time.monotonic()`` after which a stopping worker gives up flushing
            (``inf`` until the stop).
    """

    __slots__ = ("deadline", "event")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.deadline = float("inf")

    def request(self, timeout_s: float) -> None:
        """Ask for a stop; flushing may go on for ``timeout_s`` seconds."""
        self.deadline = time.monotonic() + timeout_s
        self.event.set()

    def is_set(self) -> bool:
        """Whether a stop was asked for."""
        return self.event.is_set()
