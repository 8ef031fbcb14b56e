"""Issue 11: reserved names, gateway-state strings, the admission window, gateway bindings."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from renkei.cloud.ingest.binding import GatewayBindings, learn_from_birth
from renkei.cloud.ingest.lineproto import Encoded, TimeWindow
from renkei.cloud.ingest.worker import Rejected, route_message
from renkei.core.wire import (
    MIN_TS_MS,
    PAYLOAD_TAG_KEYS,
    RESERVED_NAMES,
    TOPIC_TAG_KEYS,
    GatewayState,
    WireError,
    decode_gateway_payload,
    decode_machine_payload,
    parse_topic,
    reserved_name_problem,
)

NOW = 1_800_000_000_000
TOPIC = "renkei/v1/acme/plant1/a1/l1/m1/telemetry"
STATE_TOPIC = "renkei/v1/acme/plant1/_gw/gw-1/state"
WEEK_MS = 7 * 86_400_000
WINDOW = TimeWindow(14 * 86_400_000, 300_000)


def payload(**over: Any) -> dict[str, Any]:
    p: dict[str, Any] = {
        "v": 1,
        "gw": "gw-1",
        "seq": 1,
        "sent_ms": NOW,
        "kind": "telemetry",
        "ts_ms": [NOW - 1000, NOW],
        "fields": {"oil_temp_C": [41.0, 42.0]},
    }
    p.update(over)
    return p


def state(**over: Any) -> dict[str, Any]:
    s: dict[str, Any] = {"v": 1, "gw": "gw-1", "online": True, "sent_ms": NOW}
    s.update(over)
    return s


reserved = st.sampled_from(sorted(RESERVED_NAMES)) | st.from_regex(
    r"_[A-Za-z0-9_]{0,63}", fullmatch=True
)


# --------------------------------------------------------------------------- reserved names


def test_reserved_set_is_every_tag_key_the_ingest_writes() -> None:
    assert set(TOPIC_TAG_KEYS) == {"firm", "site", "area", "line", "machine", "gw"}
    assert set(TOPIC_TAG_KEYS) | PAYLOAD_TAG_KEYS | {"time"} == RESERVED_NAMES
    assert {"model", "mold", "component"} <= RESERVED_NAMES


@given(reserved)
def test_reserved_field_is_dead_lettered_naming_it(name: str) -> None:
    raw = orjson.dumps(payload(fields={"ok": [1.0, 2.0], name: [1.0, 2.0]}))
    result = route_message(TOPIC, raw, now_ms=NOW)
    assert isinstance(result, Rejected)
    assert result.reason == "reserved_name"
    assert f"fields.{name}:" in result.detail


@pytest.mark.parametrize("key", [*TOPIC_TAG_KEYS, "time", "_measurement", "_x"])
def test_payload_tag_may_not_override_a_topic_tag_or_be_reserved(key: str) -> None:
    raw = orjson.dumps(payload(tags={key: "victim"}))
    result = route_message(TOPIC, raw, now_ms=NOW)
    assert isinstance(result, Rejected)
    assert (result.reason, result.detail.split(":")[0]) == ("reserved_name", f"tags.{key}")


@pytest.mark.parametrize("key", sorted(PAYLOAD_TAG_KEYS))
def test_extra_tags_the_gateways_write_stay_allowed(key: str) -> None:
    result = route_message(TOPIC, orjson.dumps(payload(tags={key: "x-1"})), now_ms=NOW)
    assert isinstance(result, Encoded)
    assert f",{key}=x-1,".encode() in result.body


def test_reserved_name_problem_allows_ordinary_names() -> None:
    for name in ("score", "firmware_rev", "machine_temperature", "gw_count", "t"):
        assert reserved_name_problem(name) is None, name
    assert reserved_name_problem("model", tag=True) is None
    assert reserved_name_problem("firm", tag=True) is not None


# --------------------------------------------------------------------------- gateway state

BAD_STRINGS = ["a\tb", "a\x00b", "a\u2028b", "a b,c=d", "x" * 1_048_000, 'a"b', "a\nb"]


@pytest.mark.parametrize("bad", BAD_STRINGS, ids=lambda s: repr(s[:12]))
@pytest.mark.parametrize("where", ["config_version", "agent_version", "model_name", "model_ver"])
def test_gateway_state_strings_are_validated(where: str, bad: str) -> None:
    if where == "model_name":
        s = state(models={bad: "1.0.0"})
    elif where == "model_ver":
        s = state(models={"cell-t2": bad})
    else:
        s = state(**{where: bad})
    result = route_message(STATE_TOPIC, orjson.dumps(s), now_ms=NOW)
    assert isinstance(result, Rejected)
    assert result.reason in ("invalid_payload", "oversize"), result
    if len(bad) < 1000:
        assert result.reason == "invalid_payload"


def test_gateway_state_machines_are_bounded_paths() -> None:
    ok = state(machines=["a1/l1/m1", "a1/l1/m2"])
    assert isinstance(route_message(STATE_TOPIC, orjson.dumps(ok), now_ms=NOW), Encoded)
    for bad in (["a1/l1"], ["a1/l1/m 1"], ["a/b/c/d"], [f"a/l/m{i}" for i in range(1025)]):
        result = route_message(STATE_TOPIC, orjson.dumps(state(machines=bad)), now_ms=NOW)
        assert isinstance(result, Rejected) and result.reason == "invalid_payload", bad


# --------------------------------------------------------------------------- time window


def test_shard_bomb_message_is_out_of_range() -> None:
    # one point a week from 1990 to now: every timestamp passes the wire's absolute bounds
    ts = list(range(MIN_TS_MS, NOW, WEEK_MS))
    raw = orjson.dumps(payload(ts_ms=ts, fields={"f": [1.0] * len(ts)}))
    assert len(ts) > 1900
    assert isinstance(route_message(TOPIC, raw, now_ms=NOW), Encoded)  # no window: accepted
    result = route_message(TOPIC, raw, now_ms=NOW, window=WINDOW)
    assert isinstance(result, Rejected)
    assert result.reason == "out_of_range_time"
    assert result.detail.startswith(f"ts_ms[0]={ts[0]} ms is before the accepted window")


@pytest.mark.parametrize(
    ("offset_ms", "ok"),
    [(-14 * 86_400_000, True), (-14 * 86_400_000 - 1, False), (300_000, True), (300_001, False)],
)
def test_window_edges(offset_ms: int, ok: bool) -> None:
    raw = orjson.dumps(payload(ts_ms=[NOW, NOW + offset_ms]))
    result = route_message(TOPIC, raw, now_ms=NOW, window=WINDOW)
    assert isinstance(result, Encoded) is ok, result
    if not ok:
        assert isinstance(result, Rejected) and "ts_ms[1]=" in result.detail


def test_window_applies_to_events_and_gateway_messages() -> None:
    old = NOW - 15 * 86_400_000
    ev = payload(
        kind="event", ts_ms=[], fields={}, events=[{"t_ms": old, "code": "x", "severity": "info"}]
    )
    r = route_message(
        TOPIC.replace("telemetry", "event"), orjson.dumps(ev), now_ms=NOW, window=WINDOW
    )
    assert isinstance(r, Rejected) and r.detail.startswith("events.t_ms[0]=")
    r = route_message(STATE_TOPIC, orjson.dumps(state(sent_ms=old)), now_ms=NOW, window=WINDOW)
    assert isinstance(r, Rejected) and r.reason == "out_of_range_time"
    no_past = TimeWindow(None, 300_000)
    r = route_message(TOPIC, orjson.dumps(payload(ts_ms=[old, NOW])), now_ms=NOW, window=no_past)
    assert isinstance(r, Encoded)


# --------------------------------------------------------------------------- bindings


def _learn(b: GatewayBindings, gw: str, machines: list[str], *, online: bool = True) -> None:
    topic = f"renkei/v1/acme/plant1/_gw/{gw}/state"
    raw = orjson.dumps(state(gw=gw, machines=machines, online=online))
    assert learn_from_birth(b, topic, raw)


def _route(b: GatewayBindings, machine: str, gw: str) -> Encoded | Rejected:
    topic = f"renkei/v1/acme/plant1/a1/l1/{machine}/telemetry"
    return route_message(topic, orjson.dumps(payload(gw=gw)), now_ms=NOW, bindings=b)


def test_forged_gateway_is_gateway_mismatch() -> None:
    b = GatewayBindings()
    _learn(b, "gw-1", ["a1/l1/m1"])
    _learn(b, "gw-2", ["a1/l1/m2"])
    assert isinstance(_route(b, "m1", "gw-1"), Encoded)
    assert isinstance(_route(b, "m2", "gw-2"), Encoded)
    forged = _route(b, "m2", "gw-1")  # gw-2 writes on its own topic as gw-1
    assert isinstance(forged, Rejected) and forged.reason == "gateway_mismatch"
    assert "gw='gw-1'" in forged.detail and "a1/l1/m2" in forged.detail
    unknown = _route(b, "m3", "gw-9")  # nobody claims m3, gw-9 unknown: accepted
    assert isinstance(unknown, Encoded)
    claimed_unknown_gw = _route(b, "m1", "gw-9")
    assert isinstance(claimed_unknown_gw, Rejected)


def test_rebirth_moves_claims_and_will_keeps_them() -> None:
    b = GatewayBindings()
    _learn(b, "gw-1", ["a1/l1/m1", "a1/l1/m2"])
    _learn(b, "gw-1", ["a1/l1/m1"], online=False)  # Last Will with its list
    assert b.bound("acme", "plant1", "a1/l1/m2") == frozenset()
    _learn(b, "gw-2", ["a1/l1/m2", "a1/l1/m1"])  # claims m1 too: both accepted
    assert isinstance(_route(b, "m1", "gw-1"), Encoded)
    assert isinstance(_route(b, "m1", "gw-2"), Encoded)
    b.learn(
        parse_topic("renkei/v1/acme/plant1/_gw/gw-2/state"),  # type: ignore[arg-type]
        GatewayState.model_validate(state(gw="gw-2")),
    )  # older agent: no list
    assert b.bound("acme", "plant1", "a1/l1/m1") == frozenset({"gw-1"})
    assert isinstance(_route(b, "m2", "gw-2"), Encoded)  # unbound again


def test_state_of_another_gateway_id_is_not_learned() -> None:
    b = GatewayBindings()
    raw = orjson.dumps(state(gw="gw-2", machines=["a1/l1/m1"]))
    assert learn_from_birth(b, STATE_TOPIC, raw)  # topic says gw-1
    assert b.bound("acme", "plant1", "a1/l1/m1") == frozenset()
    assert not learn_from_birth(b, STATE_TOPIC, b"")  # cleared retained birth
    assert not learn_from_birth(b, TOPIC, orjson.dumps(payload()))


def test_decoders_raise_wire_errors() -> None:
    with pytest.raises(WireError, match="reserved_name"):
        decode_machine_payload(orjson.dumps(payload(fields={"gw": [1.0, 2.0]})), now_ms=NOW)
    with pytest.raises(WireError, match="invalid_payload"):
        decode_gateway_payload(orjson.dumps(state(config_version="a b")), "state")
