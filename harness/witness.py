"""A witness subscriber: proof of zero loss between gateways, broker and InfluxDB.

Zero loss is proven two ways:

1. A *witness* (a persistent-session QoS 1 subscriber of its own) records every message the
   broker accepted. Every gateway numbers its messages 0, 1, 2, … in its outbox (persisted
   across restarts), so a gap-free sequence proves nothing was lost between the gateway and
   the broker.
2. The exact number of points in InfluxDB equals the number of distinct (measurement,
   series, timestamp) rows in the witnessed messages: nothing lost, nothing duplicated by
   the ingest.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from harness.wait import wait_for
from renkei.core.wire import MachineTopic, parse_topic

__all__ = ["Witness"]


class Witness:
    """Records every message under ``renkei/#`` with its own persistent QoS 1 session."""

    def __init__(self, *, port: int, client_id: str = "witness") -> None:
        self.messages: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5,
        )
        self.client.on_message = self._on_message
        self.client.on_connect = self._on_connect
        self.client.reconnect_delay_set(1, 1)
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 3600
        self.client.connect("127.0.0.1", port, clean_start=False, properties=props)
        self.client.loop_start()
        wait_for(self.client.is_connected, 10, "witness connect")

    def _on_connect(self, client: mqtt.Client, *_: Any) -> None:
        client.subscribe("renkei/#", qos=1)

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload)))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def machine_messages(self) -> list[tuple[MachineTopic, dict[str, Any]]]:
        out = []
        with self._lock:
            msgs = list(self.messages)
        for topic, payload in msgs:
            if topic.startswith("renkei/v1/") and "/_gw/" not in topic:
                parsed = parse_topic(topic)
                assert isinstance(parsed, MachineTopic)
                out.append((parsed, orjson.loads(payload)))
        return out

    def seqs(self) -> dict[str, set[int]]:
        by_gw: dict[str, set[int]] = defaultdict(set)
        for _, p in self.machine_messages():
            by_gw[p["gw"]].add(int(p["seq"]))
        return by_gw

    def assert_gap_free(self) -> dict[str, int]:
        """Every gateway's sequence numbers are 0..max with no gap; returns max+1 per gw."""
        out = {}
        for gw, seqs in self.seqs().items():
            missing = set(range(max(seqs) + 1)) - seqs
            assert not missing, f"gateway {gw} lost messages with seq {sorted(missing)[:20]}"
            out[gw] = max(seqs) + 1
        return out

    def expected_points(self, kind: str, field: str) -> int:
        """Distinct rows of ``kind`` with ``field`` set (series + timestamp)."""
        keys = set()
        for topic, p in self.machine_messages():
            if topic.kind.value != kind or field not in p.get("fields", {}):
                continue
            series = (
                topic.firm,
                topic.site,
                topic.area,
                topic.line,
                topic.machine,
                p["gw"],
                tuple(sorted(p.get("tags", {}).items())),
            )
            for t, v in zip(p["ts_ms"], p["fields"][field]):
                if v is not None:
                    keys.add((series, t))
        return len(keys)
