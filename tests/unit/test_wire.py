"""The v1 wire contract: topic tree round trips and payload validation reasons."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from renkei.core.wire import (
    FUTURE_SLACK_MS,
    MAX_PAYLOAD_BYTES,
    MIN_TS_MS,
    Event,
    GatewayTopic,
    MachineKind,
    MachinePayload,
    MachineTopic,
    WireError,
    decode_machine_payload,
    encode,
    gateway_topic,
    machine_topic,
    parse_topic,
    reserved_name_problem,
)

NOW = 1_800_000_000_000  # fixed "now" for timestamp checks
T0 = 1_700_000_000_000

levels = st.from_regex(r"[A-Za-z0-9_.\-]{1,64}", fullmatch=True)
field_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,63}", fullmatch=True).filter(
    lambda n: reserved_name_problem(n) is None
)
kinds = st.sampled_from(list(MachineKind))
LEVEL_NAMES = ("firm", "site", "area", "line", "machine")
GOOD = {"firm": "acme", "site": "plant-1", "area": "molding", "line": "l1", "machine": "m_1"}


def _payload(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "v": 1,
        "gw": "gw-01",
        "seq": 7,
        "sent_ms": NOW,
        "kind": "telemetry",
        "ts_ms": [T0, T0 + 100],
        "fields": {"a": [1.5, None], "b": [0.0, -2.0]},
    }
    base.update(over)
    return base


def _reason(raw: bytes) -> str:
    with pytest.raises(WireError) as info:
        decode_machine_payload(raw, now_ms=NOW)
    return info.value.reason


# --------------------------------------------------------------------------- topics


@given(firm=levels, site=levels, area=levels, line=levels, machine=levels, kind=kinds)
def test_machine_topic_round_trip(
    firm: str, site: str, area: str, line: str, machine: str, kind: MachineKind
) -> None:
    topic = machine_topic(firm=firm, site=site, area=area, line=line, machine=machine, kind=kind)
    parsed = parse_topic(topic)
    assert parsed == MachineTopic(
        firm=firm, site=site, area=area, line=line, machine=machine, kind=kind
    )


@given(firm=levels, site=levels, gateway=levels, kind=st.sampled_from(["state", "health"]))
def test_gateway_topic_round_trip(firm: str, site: str, gateway: str, kind: Any) -> None:
    topic = gateway_topic(firm=firm, site=site, gateway=gateway, kind=kind)
    assert parse_topic(topic) == GatewayTopic(firm=firm, site=site, gateway=gateway, kind=kind)


def test_machine_topic_shape() -> None:
    topic = machine_topic(**GOOD, kind="shot")
    assert topic == "renkei/v1/acme/plant-1/molding/l1/m_1/shot"


BAD_LEVELS = ["", "a/b", "a+b", "#", "a b", "x" * 65, "é", "tab\t", "new\nline"]


@pytest.mark.parametrize("bad", BAD_LEVELS)
@pytest.mark.parametrize("name", LEVEL_NAMES)
def test_machine_topic_rejects_bad_level(name: str, bad: str) -> None:
    with pytest.raises(WireError) as info:
        machine_topic(**{**GOOD, name: bad}, kind="telemetry")
    assert info.value.reason == "bad_topic"
    assert name in info.value.detail


@pytest.mark.parametrize("bad", BAD_LEVELS)
def test_gateway_topic_rejects_bad_level(bad: str) -> None:
    with pytest.raises(WireError) as info:
        gateway_topic(firm="acme", site="s", gateway=bad, kind="state")
    assert info.value.reason == "bad_topic"


def test_machine_topic_rejects_unknown_kind() -> None:
    with pytest.raises(ValueError, match="bogus"):
        machine_topic(**GOOD, kind="bogus")


def test_level_of_64_chars_is_fine() -> None:
    topic = machine_topic(**{**GOOD, "machine": "m" * 64}, kind="label")
    parsed = parse_topic(topic)
    assert isinstance(parsed, MachineTopic)
    assert parsed.machine == "m" * 64


@pytest.mark.parametrize(
    "topic",
    [
        "",
        "renkei",
        "renkei/v1",
        "renkei/v2/acme/s/a/l/m/telemetry",
        "other/v1/acme/s/a/l/m/telemetry",
        "renkei/v1/acme/s/a/l/m",  # 7 levels, not a gateway topic
        "renkei/v1/acme/s/a/l/m/telemetry/extra",
        "renkei/v1/acme/s/a/l/m/bogus",
        "renkei/v1/acme/s/a/l/m/Telemetry",
        "renkei/v1/acme/s/a/l/m/",
        "renkei/v1/acme//a/l/m/telemetry",
        "renkei/v1/acme/s/a b/l/m/telemetry",
        "renkei/v1/acme/s/a/l/+/telemetry",
        "renkei/v1/acme/s/a/l/#/telemetry",
        f"renkei/v1/acme/s/a/l/{'m' * 65}/telemetry",
        "renkei/v1/acme/s/_gw/g/bogus",
        "renkei/v1/acme/s/_gw/g",
        "renkei/v1/acme/s/_gw/g/state/extra/x",
        "renkei/v1/acme/s/_gw//state",
        "renkei/v1/ac me/s/_gw/g/health",
        "/renkei/v1/acme/s/a/l/m/telemetry",
    ],
)
def test_parse_topic_rejects(topic: str) -> None:
    with pytest.raises(WireError) as info:
        parse_topic(topic)
    assert info.value.reason == "bad_topic"


@given(st.text(max_size=200))
def test_parse_topic_never_raises_anything_else(topic: str) -> None:
    try:
        parsed: MachineTopic | GatewayTopic | WireError = parse_topic(topic)
    except WireError as exc:
        parsed = exc
    if isinstance(parsed, WireError):
        assert parsed.reason == "bad_topic"
    else:
        assert isinstance(parsed, MachineTopic | GatewayTopic)


# --------------------------------------------------------------------------- payloads


def test_valid_minimal_payload() -> None:
    raw = orjson.dumps({"v": 1, "gw": "gw-01", "seq": 0, "sent_ms": NOW, "kind": "telemetry"})
    msg = decode_machine_payload(raw, now_ms=NOW)
    assert msg.ts_ms == []
    assert msg.fields == {}
    assert msg.tags == {}
    assert msg.events == []


def test_valid_payload_with_rows_and_tags() -> None:
    raw = orjson.dumps(_payload(kind="anomaly", tags={"model": "cell-t2"}))
    msg = decode_machine_payload(raw, now_ms=NOW)
    assert msg.kind is MachineKind.ANOMALY
    assert msg.fields["a"] == [1.5, None]
    assert msg.tags == {"model": "cell-t2"}


def test_valid_event_payload() -> None:
    events = [{"t_ms": T0, "code": "anomaly_onset", "severity": "warning", "message": "x"}]
    raw = orjson.dumps(_payload(kind="event", ts_ms=[], fields={}, events=events))
    msg = decode_machine_payload(raw, now_ms=NOW)
    assert msg.events == [Event(t_ms=T0, code="anomaly_onset", severity="warning", message="x")]


def test_default_clock_is_used_without_now() -> None:
    assert decode_machine_payload(orjson.dumps(_payload())).seq == 7


BAD_PAYLOADS: list[tuple[str, str, bytes]] = [
    # (id, reason, raw)
    ("not-json", "malformed_json", b"{nope"),
    ("empty", "malformed_json", b""),
    ("array", "malformed_json", b"[1, 2]"),
    ("number", "malformed_json", b"42"),
    ("bad-utf8", "malformed_json", b'{"v": 1, "gw": "\xff"}'),
    ("nan-literal", "malformed_json", orjson.dumps(_payload()).replace(b"1.5", b"NaN")),
    ("infinity-literal", "malformed_json", orjson.dumps(_payload()).replace(b"1.5", b"Infinity")),
    (
        "minus-infinity-literal",
        "malformed_json",
        orjson.dumps(_payload()).replace(b"1.5", b"-Infinity"),
    ),
    ("1e999", "malformed_json", orjson.dumps(_payload()).replace(b"1.5", b"1e999")),
    ("nan-string", "invalid_payload", orjson.dumps(_payload(fields={"a": ["NaN", 1.0]}))),
    ("v2", "schema_version", orjson.dumps(_payload(v=2))),
    ("v0", "schema_version", orjson.dumps(_payload(v=0))),
    ("v-string", "schema_version", orjson.dumps(_payload(v="1"))),
    ("v-null", "schema_version", orjson.dumps(_payload(v=None))),
    (
        "v-missing",
        "schema_version",
        orjson.dumps({k: v for k, v in _payload().items() if k != "v"}),
    ),
    ("ragged-short", "invalid_payload", orjson.dumps(_payload(fields={"a": [1.0]}))),
    ("ragged-long", "invalid_payload", orjson.dumps(_payload(fields={"a": [1.0, 2.0, 3.0]}))),
    ("extra-key", "invalid_payload", orjson.dumps(_payload(extra=1))),
    (
        "missing-gw",
        "invalid_payload",
        orjson.dumps({k: v for k, v in _payload().items() if k != "gw"}),
    ),
    (
        "missing-seq",
        "invalid_payload",
        orjson.dumps({k: v for k, v in _payload().items() if k != "seq"}),
    ),
    (
        "missing-kind",
        "invalid_payload",
        orjson.dumps({k: v for k, v in _payload().items() if k != "kind"}),
    ),
    (
        "missing-sent",
        "invalid_payload",
        orjson.dumps({k: v for k, v in _payload().items() if k != "sent_ms"}),
    ),
    ("bad-kind", "invalid_payload", orjson.dumps(_payload(kind="state"))),
    ("bad-gw", "invalid_payload", orjson.dumps(_payload(gw="gw/1"))),
    ("negative-seq", "invalid_payload", orjson.dumps(_payload(seq=-1))),
    ("bad-field-name", "invalid_payload", orjson.dumps(_payload(fields={"1a": [1.0, 2.0]}))),
    ("bad-tag", "invalid_payload", orjson.dumps(_payload(tags={"model": "a b"}))),
    (
        "too-many-tags",
        "invalid_payload",
        orjson.dumps(_payload(tags={f"t{i}": "x" for i in range(9)})),
    ),
    (
        "events-on-telemetry",
        "invalid_payload",
        orjson.dumps(_payload(events=[{"t_ms": T0, "code": "x", "severity": "info"}])),
    ),
    ("rows-on-event", "invalid_payload", orjson.dumps(_payload(kind="event"))),
    (
        "bad-severity",
        "invalid_payload",
        orjson.dumps(
            _payload(
                kind="event",
                ts_ms=[],
                fields={},
                events=[{"t_ms": T0, "code": "x", "severity": "fatal"}],
            )
        ),
    ),
    (
        "bad-event-code",
        "invalid_payload",
        orjson.dumps(
            _payload(
                kind="event",
                ts_ms=[],
                fields={},
                events=[{"t_ms": T0, "code": "Bad Code", "severity": "info"}],
            )
        ),
    ),
    ("ts-before-1990", "bad_timestamp", orjson.dumps(_payload(ts_ms=[MIN_TS_MS - 1, T0]))),
    ("ts-zero", "bad_timestamp", orjson.dumps(_payload(ts_ms=[0, 1]))),
    ("ts-future", "bad_timestamp", orjson.dumps(_payload(ts_ms=[T0, NOW + FUTURE_SLACK_MS + 1]))),
    (
        "event-before-1990",
        "bad_timestamp",
        orjson.dumps(
            _payload(
                kind="event",
                ts_ms=[],
                fields={},
                events=[{"t_ms": 5, "code": "x", "severity": "info"}],
            )
        ),
    ),
    (
        "event-future",
        "bad_timestamp",
        orjson.dumps(
            _payload(
                kind="event",
                ts_ms=[],
                fields={},
                events=[{"t_ms": NOW + FUTURE_SLACK_MS + 1, "code": "x", "severity": "info"}],
            )
        ),
    ),
    ("oversize", "oversize", b" " * (MAX_PAYLOAD_BYTES + 1)),
    ("oversize-valid-json", "oversize", orjson.dumps(_payload()) + b" " * MAX_PAYLOAD_BYTES),
]


@pytest.mark.parametrize(
    ("reason", "raw"), [(r, b) for _, r, b in BAD_PAYLOADS], ids=[i for i, _, _ in BAD_PAYLOADS]
)
def test_bad_payload_reason(reason: str, raw: bytes) -> None:
    assert _reason(raw) == reason


def test_timestamp_bounds_are_inclusive() -> None:
    raw = orjson.dumps(_payload(ts_ms=[MIN_TS_MS, NOW + FUTURE_SLACK_MS]))
    assert decode_machine_payload(raw, now_ms=NOW).ts_ms == [MIN_TS_MS, NOW + FUTURE_SLACK_MS]


def test_payload_of_exactly_max_bytes_is_accepted() -> None:
    raw = orjson.dumps(_payload())
    raw += b" " * (MAX_PAYLOAD_BYTES - len(raw))
    assert len(raw) == MAX_PAYLOAD_BYTES
    assert decode_machine_payload(raw, now_ms=NOW).seq == 7


def test_wire_error_carries_reason_and_detail() -> None:
    with pytest.raises(WireError) as info:
        decode_machine_payload(orjson.dumps(_payload(fields={"a": [1.0]})), now_ms=NOW)
    err = info.value
    assert isinstance(err, ValueError)
    assert "fields.a" in err.detail or "fields" in err.detail
    assert str(err).startswith("invalid_payload: ")


@pytest.mark.parametrize(
    "over",
    [
        {"v": True},
        {"v": 1.0},
        {"fields": {"a": [True, None]}},
        {"fields": {"a": ["1.5", None]}},
        {"ts_ms": [str(T0), str(T0 + 1)]},
        {"seq": "7"},
    ],
    ids=["v-true", "v-float", "bool-value", "string-value", "string-ts", "string-seq"],
)
def test_non_json_numbers_are_rejected(over: dict[str, Any]) -> None:
    with pytest.raises(WireError):
        decode_machine_payload(orjson.dumps(_payload(**over)), now_ms=NOW)


# --------------------------------------------------------------------------- properties


@settings(max_examples=300)
@given(st.binary(max_size=512))
def test_any_bytes_decode_or_wire_error(raw: bytes) -> None:
    try:
        msg: MachinePayload | WireError = decode_machine_payload(raw, now_ms=NOW)
    except WireError as exc:
        msg = exc
    if isinstance(msg, WireError):
        assert msg.reason in {
            "malformed_json",
            "schema_version",
            "invalid_payload",
            "bad_timestamp",
        }
    else:
        assert isinstance(msg, MachinePayload)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
PAYLOAD_KEYS = ["v", "gw", "seq", "sent_ms", "kind", "ts_ms", "fields", "tags", "events", "x"]


@given(
    st.dictionaries(st.sampled_from(PAYLOAD_KEYS), json_values, max_size=4),
    st.lists(st.sampled_from(PAYLOAD_KEYS), max_size=3),
)
def test_mutated_payload_decodes_or_wire_error(override: dict[str, Any], drop: list[str]) -> None:
    """Near-valid JSON objects (the interesting inputs) also only raise WireError."""
    obj = {k: v for k, v in _payload().items() if k not in drop}
    obj.update(override)
    try:
        raw = orjson.dumps(obj)
    except orjson.JSONEncodeError:  # e.g. ints beyond 64 bits: not a JSON test input
        return
    try:
        msg = decode_machine_payload(raw, now_ms=NOW)
    except WireError:
        pass
    else:
        assert isinstance(msg, MachinePayload)


@st.composite
def machine_payloads(draw: st.DrawFn) -> MachinePayload:
    kind = draw(kinds)
    ts_strategy = st.integers(min_value=MIN_TS_MS, max_value=NOW + FUTURE_SLACK_MS)
    common: dict[str, Any] = {
        "v": 1,
        "gw": draw(levels),
        "seq": draw(st.integers(min_value=0, max_value=2**63 - 1)),
        "sent_ms": draw(st.integers(min_value=0, max_value=2**63 - 1)),
        "kind": kind,
        "tags": draw(st.dictionaries(field_names, levels, max_size=8)),
    }
    if kind is MachineKind.EVENT:
        text = st.text(alphabet=st.characters(codec="utf-8"), max_size=40)
        common["events"] = draw(
            st.lists(
                st.builds(
                    Event,
                    t_ms=ts_strategy,
                    code=st.from_regex(r"[a-z0-9_.\-]{1,64}", fullmatch=True),
                    severity=st.sampled_from(["info", "warning", "alarm"]),
                    message=text,
                ),
                max_size=5,
            )
        )
        return MachinePayload(**common)
    ts = draw(st.lists(ts_strategy, max_size=20))
    value = st.none() | st.floats(allow_nan=False, allow_infinity=False)
    names = draw(st.lists(field_names, max_size=6, unique=True))
    common["ts_ms"] = ts
    common["fields"] = {n: draw(st.lists(value, min_size=len(ts), max_size=len(ts))) for n in names}
    return MachinePayload(**common)


@given(machine_payloads())
def test_encode_decode_round_trip(msg: MachinePayload) -> None:
    raw = encode(msg)
    assert decode_machine_payload(raw, now_ms=NOW) == msg
