"""Every kind of bad message maps to its dead-letter reason; nothing ever raises."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from renkei.cloud.ingest.lineproto import Encoded
from renkei.cloud.ingest.work import Inbound as _Inbound
from renkei.cloud.ingest.worker import (
    IngestSettings,
    IngestWorker,
    Rejected,
    route_message,
)
from renkei.cloud.store.sqlite import SqliteStore
from renkei.core.mqtt import BrokerSettings
from renkei.core.wire import MAX_PAYLOAD_BYTES, DeadLetter

T0 = 1_700_000_000_000
NOW = T0 + 60_000
TOPIC = "renkei/v1/acme/plant1/a1/l1/m7/telemetry"


def good(**over: Any) -> dict[str, Any]:
    p: dict[str, Any] = {
        "v": 1,
        "gw": "gw-01",
        "seq": 1,
        "sent_ms": T0,
        "kind": "telemetry",
        "ts_ms": [T0, T0 + 10],
        "fields": {"a": [1.0, 2.0]},
    }
    p.update(over)
    return p


def without(key: str) -> dict[str, Any]:
    p = good()
    del p[key]
    return p


BAD_CASES: list[tuple[str, str, bytes]] = [
    ("malformed_json", TOPIC, b"{not json"),
    ("malformed_json", TOPIC, b"[1, 2]"),
    ("malformed_json", TOPIC, b""),
    ("malformed_json", TOPIC, b'{"v": 1, "fields": {"a": [NaN]}}'),
    ("malformed_json", TOPIC, b'{"v": 1, "fields": {"a": [1e999]}}'),
    ("schema_version", TOPIC, orjson.dumps(good(v=2))),
    ("schema_version", TOPIC, orjson.dumps(without("v"))),
    ("invalid_payload", TOPIC, orjson.dumps(without("gw"))),
    ("invalid_payload", TOPIC, orjson.dumps(without("seq"))),
    ("invalid_payload", TOPIC, orjson.dumps(good(fields={"a": [1.0]}))),  # ragged
    ("invalid_payload", TOPIC, orjson.dumps(good(fields={"a": ["NaN", 1.0]}))),
    ("invalid_payload", TOPIC, orjson.dumps(good(fields={"a": ["inf", 1.0]}))),
    ("invalid_payload", TOPIC, orjson.dumps(good(extra=1))),
    ("invalid_payload", TOPIC, orjson.dumps(good(kind="features"))),  # topic says telemetry
    ("reserved_name", TOPIC, orjson.dumps(good(tags={"machine": "m9"}))),  # collides
    ("reserved_name", TOPIC, orjson.dumps(good(fields={"time": [1.0, 2.0]}))),  # reserved
    ("bad_timestamp", TOPIC, orjson.dumps(good(ts_ms=[0, 1]))),
    ("bad_timestamp", TOPIC, orjson.dumps(good(ts_ms=[T0, NOW + 2 * 86_400_000]))),
    ("oversize", TOPIC, b" " * (MAX_PAYLOAD_BYTES + 1)),
    ("bad_topic", "renkei/v1/acme/plant1/a1/l1/m7/nonsense", orjson.dumps(good())),
    ("bad_topic", "renkei/v1/acme/plant1/a1/l1/telemetry", orjson.dumps(good())),
    ("bad_topic", "renkei/v2/acme/plant1/a1/l1/m7/telemetry", orjson.dumps(good())),
    ("bad_topic", "renkei/v1/acme/pl ant/a1/l1/m7/telemetry", orjson.dumps(good())),
    ("bad_topic", "renkei/v1/acme/plant1/_gw/gw-01/other", b"{}"),
]


@pytest.mark.parametrize(("reason", "topic", "raw"), BAD_CASES)
def test_bad_message_reason(reason: str, topic: str, raw: bytes) -> None:
    result = route_message(topic, raw, now_ms=NOW)
    assert isinstance(result, Rejected), result
    assert result.reason == reason, result.detail
    assert result.detail


def test_undecodable_topic_is_bad_topic() -> None:
    assert route_message(None, orjson.dumps(good()), now_ms=NOW) == Rejected(
        "bad_topic", "topic is not valid UTF-8"
    )


def test_gateway_bad_cases() -> None:
    state = {"v": 1, "gw": "gw-01", "online": True, "sent_ms": T0}
    topic = "renkei/v1/acme/plant1/_gw/gw-01/state"
    assert isinstance(route_message(topic, orjson.dumps(state), now_ms=NOW), Encoded)
    for bad, reason in [
        ({**state, "sent_ms": 5}, "bad_timestamp"),
        ({**state, "models": {"a\nb": "1"}}, "invalid_payload"),
        ({**state, "online": "maybe"}, "invalid_payload"),
        ({**state, "v": 0}, "schema_version"),
    ]:
        result = route_message(topic, orjson.dumps(bad), now_ms=NOW)
        assert isinstance(result, Rejected)
        assert result.reason == reason
    health = {
        "v": 1,
        "gw": "gw-01",
        "seq": 1,
        "sent_ms": T0,
        "outbox_backlog": 2**63,
        "outbox_bytes": 0,
        "dropped_total": 0,
        "published_total": 0,
    }
    result = route_message(
        "renkei/v1/acme/plant1/_gw/gw-01/health", orjson.dumps(health), now_ms=NOW
    )
    assert isinstance(result, Rejected)
    assert result.reason == "invalid_payload"


topics = st.one_of(
    st.text(max_size=80),
    st.sampled_from(
        [
            TOPIC,
            "renkei/v1/acme/plant1/a1/l1/m7/event",
            "renkei/v1/acme/plant1/_gw/gw-01/state",
            "renkei/v1/acme/plant1/_gw/gw-01/health",
        ]
    ),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=30,
)


def _safe_dumps(value: object) -> bytes:
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:  # e.g. integers beyond 64 bits
        return b"null"


payloads = st.one_of(
    st.binary(max_size=300),
    json_values.map(_safe_dumps),
    st.fixed_dictionaries(
        {"v": st.just(1), "gw": st.text(max_size=5), "seq": st.integers(), "kind": st.text()},
        optional={
            "sent_ms": st.integers(),
            "ts_ms": st.lists(st.integers(), max_size=4),
            "fields": st.dictionaries(
                st.text(max_size=5), st.lists(st.none() | st.floats(), max_size=4), max_size=3
            ),
            "tags": st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
            "events": st.lists(json_values, max_size=2),
            "online": st.booleans(),
        },
    ).map(_safe_dumps),
)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(topic=topics, raw=st.one_of(st.binary(max_size=300), json_values.map(_safe_dumps)))
def test_any_input_is_written_or_dead_lettered(topic: str, raw: bytes) -> None:
    result = route_message(topic, raw, now_ms=NOW)
    assert isinstance(result, Encoded | Rejected)
    if isinstance(result, Rejected):
        assert result.reason in {
            "malformed_json",
            "schema_version",
            "invalid_payload",
            "bad_topic",
            "oversize",
            "bad_timestamp",
        }


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(topic=topics, raw=payloads)
def test_structured_garbage_is_written_or_dead_lettered(topic: str, raw: bytes) -> None:
    result = route_message(topic, raw, now_ms=NOW)
    assert isinstance(result, Encoded | Rejected)
    assert not (isinstance(result, Rejected) and result.reason == "ingest_error"), result


@settings(max_examples=200, deadline=None)
@given(topic=topics, raw=st.binary(max_size=200))
def test_worker_prepare_and_envelope_never_raise(topic: str, raw: bytes) -> None:
    """The worker's own message path (prepare + dead-letter envelope) on any input."""
    worker = _worker()
    item = _Inbound(
        gen=1, mid=1, qos=1, topic=topic, raw_topic=topic.encode(), payload=raw, received_ms=NOW
    )
    work = worker._prepare(item)
    if work.reason is not None:
        envelope = DeadLetter.model_validate_json(
            worker._deadletters.envelope(item, work.reason, work.detail)
        )
        assert envelope.reason == work.reason
        assert base64.b64decode(envelope.payload_b64) == raw
        assert envelope.topic == topic
        assert work.body.startswith(b"ingest_deadletters,")


_WORKER: IngestWorker | None = None


def _worker() -> IngestWorker:
    global _WORKER
    if _WORKER is None:
        _WORKER = IngestWorker(
            settings=IngestSettings(broker=BrokerSettings(client_id="unit")),
            store=SqliteStore(path=":memory:"),
        )
    return _WORKER


def test_oversize_dead_letter_is_truncated_to_the_packet_limit() -> None:
    worker = IngestWorker(
        settings=IngestSettings(
            broker=BrokerSettings(client_id="unit"), deadletter_max_bytes=64 * 1024
        ),
        store=SqliteStore(),
    )
    raw = bytes(range(256)) * 1024  # 256 KiB
    item = _Inbound(
        gen=1, mid=1, qos=1, topic=TOPIC, raw_topic=TOPIC.encode(), payload=raw, received_ms=NOW
    )
    envelope = worker._deadletters.envelope(item, "oversize", "too big")
    assert len(envelope) <= 64 * 1024
    dl = DeadLetter.model_validate_json(envelope)
    kept = base64.b64decode(dl.payload_b64)
    assert raw.startswith(kept) and len(kept) > 32 * 1024
    assert "sha256" in dl.detail and str(len(raw)) in dl.detail
