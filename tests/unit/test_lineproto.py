"""Line protocol: exact format, escaping, and round trips through the embedded parser."""

from __future__ import annotations

import math
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from renkei.cloud.ingest.lineproto import encode_deadletter_point, encode_message
from renkei.core.influx.lineparse import LineParseError, parse_lines
from renkei.core.influx.lineproto import (
    escape_key,
    escape_measurement,
    format_point,
    format_value,
    quote_string,
)
from renkei.core.wire import reserved_name_problem

T0 = 1_700_000_000_000
NOW = T0 + 1000
TOPIC = "renkei/v1/acme/plant1/a1/l1/m7/telemetry"
HEAD = "telemetry,area=a1,firm=acme,gw=gw-01,line=l1,machine=m7,site=plant1"


def payload(**over: Any) -> bytes:
    p: dict[str, Any] = {
        "v": 1,
        "gw": "gw-01",
        "seq": 3,
        "sent_ms": T0,
        "kind": "telemetry",
        "ts_ms": [T0, T0 + 100],
        "fields": {"oil_temp_C": [41.2, 41.3], "clamp_force_kN": [1200.0, 1201.5]},
    }
    p.update(over)
    return orjson.dumps(p)


def test_machine_message_exact_lines() -> None:
    enc = encode_message(TOPIC, payload(), now_ms=NOW)
    assert enc.body.decode() == (
        f"{HEAD} oil_temp_C=41.2,clamp_force_kN=1200.0 {T0}\n"
        f"{HEAD} oil_temp_C=41.3,clamp_force_kN=1201.5 {T0 + 100}\n"
    )
    assert (enc.points, enc.values) == (2, 4)


def test_payload_tags_are_merged_and_sorted() -> None:
    enc = encode_message(TOPIC, payload(tags={"model": "cell-t2", "zone": "z1"}), now_ms=NOW)
    first = enc.body.split(b"\n")[0].decode()
    assert first.startswith(
        "telemetry,area=a1,firm=acme,gw=gw-01,line=l1,machine=m7,model=cell-t2,site=plant1,zone=z1 "
    )


def test_nulls_are_left_out_and_all_null_rows_skipped() -> None:
    fields = {"a": [1.5, None, None, 4.0], "b": [None, 2.0, None, None]}
    enc = encode_message(
        TOPIC, payload(ts_ms=[T0, T0 + 1, T0 + 2, T0 + 3], fields=fields), now_ms=NOW
    )
    assert enc.body.decode() == (
        f"{HEAD} a=1.5 {T0}\n{HEAD} b=2.0 {T0 + 1}\n{HEAD} a=4.0 {T0 + 3}\n"
    )
    assert (enc.points, enc.values) == (3, 3)


def test_column_without_nulls_goes_first() -> None:
    fields = {"a": [None, 1.0], "b": [2.0, 3.0]}
    enc = encode_message(TOPIC, payload(fields=fields), now_ms=NOW)
    assert enc.body.decode() == f"{HEAD} b=2.0 {T0}\n{HEAD} b=3.0,a=1.0 {T0 + 100}\n"


def test_empty_messages_have_no_lines() -> None:
    assert encode_message(TOPIC, payload(ts_ms=[], fields={}), now_ms=NOW).body == b""
    enc = encode_message(TOPIC, payload(fields={"a": [None, None]}), now_ms=NOW)
    assert (enc.body, enc.points, enc.values) == (b"", 0, 0)


def test_events_are_string_fields() -> None:
    topic = "renkei/v1/acme/plant1/a1/l1/m7/event"
    events = [{"t_ms": T0, "code": "anomaly.onset", "severity": "alarm", "message": 'a "b"\\c'}]
    raw = payload(kind="event", ts_ms=[], fields={}, events=events)
    enc = encode_message(topic, raw, now_ms=NOW)
    head = HEAD.replace("telemetry", "event")
    assert enc.body.decode() == (
        f'{head} code="anomaly.onset",message="a \\"b\\"\\\\c",severity="alarm" {T0}\n'
    )
    [p] = parse_lines(enc.body, precision="ms")
    assert p.fields == {"code": "anomaly.onset", "message": 'a "b"\\c', "severity": "alarm"}


def test_gateway_state_and_health() -> None:
    state = orjson.dumps(
        {
            "v": 1,
            "gw": "gw-01",
            "online": True,
            "sent_ms": T0,
            "agent_version": "0.1.0",
            "models": {"vib.iforest": "3", "t2": "1"},
        }
    )
    enc = encode_message("renkei/v1/acme/plant1/_gw/gw-01/state", state, now_ms=NOW)
    assert enc.body.decode() == (
        'gateway_state,firm=acme,gw=gw-01,site=plant1 online=1i,config_version="",'
        f'agent_version="0.1.0",model.vib.iforest="3",model.t2="1" {T0}\n'
    )
    health = orjson.dumps(
        {
            "v": 1,
            "gw": "gw-01",
            "seq": 9,
            "sent_ms": T0,
            "outbox_backlog": 5,
            "outbox_bytes": 1000,
            "dropped_total": 0,
            "published_total": 77,
        }
    )
    enc = encode_message("renkei/v1/acme/plant1/_gw/gw-01/health", health, now_ms=NOW)
    assert enc.body.decode() == (
        "gateway_health,firm=acme,gw=gw-01,site=plant1 seq=9i,outbox_backlog=5i,"
        f"outbox_bytes=1000i,dropped_total=0i,published_total=77i,epoch=0i,lost_total=0i,"
        f"gap_total=0i,quarantined_total=0i,disk_full=false,publisher_restarts=0i {T0}\n"
    )
    damaged = orjson.loads(health) | {
        "epoch": 3,
        "lost_total": 26,
        "gap_total": 1024,
        "quarantined_total": 1,
        "disk_full": True,
        "publisher_restarts": 2,
    }
    enc = encode_message(
        "renkei/v1/acme/plant1/_gw/gw-01/health", orjson.dumps(damaged), now_ms=NOW
    )
    assert (
        "epoch=3i,lost_total=26i,gap_total=1024i,quarantined_total=1i,disk_full=true,"
        "publisher_restarts=2i " in enc.body.decode()
    )


def test_escaping_primitives() -> None:
    assert escape_measurement("a b,c=d") == "a\\ b\\,c=d"
    assert escape_key("a b,c=d") == "a\\ b\\,c\\=d"
    assert quote_string('x"y\\z\n') == '"x\\"y\\\\z\n"'
    assert format_value(True) == "true"
    assert format_value(3) == "3i"
    assert format_value(0.1) == "0.1"
    assert format_value(1e16) == "1e+16"
    for bad in ("", "a\nb", "a\\b", "a\rb"):
        with pytest.raises(ValueError, match="line protocol|empty"):
            escape_key(bad)
    with pytest.raises(ValueError, match="comment"):
        escape_measurement("#m")
    with pytest.raises(ValueError, match="finite"):
        format_value(math.nan)
    with pytest.raises(ValueError, match="int64"):
        format_value(2**63)
    with pytest.raises(ValueError, match="at least one field"):
        format_point("m", {}, {})


def test_deadletter_point() -> None:
    line = encode_deadletter_point(
        reason="bad_topic", worker="w 1", topic="x/y", detail='say "no"', time_ms=T0
    )
    [p] = parse_lines(line, precision="ms")
    assert p.measurement == "ingest_deadletters"
    assert dict(p.tags) == {"reason": "bad_topic", "worker": "w 1"}
    assert p.fields == {"count": 1, "topic": "x/y", "detail": 'say "no"'}


# --------------------------------------------------------------------------- round trips

finite = st.floats(allow_nan=False, allow_infinity=False)
level = st.from_regex(r"[A-Za-z0-9_.\-]{1,12}", fullmatch=True)
field_name = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True).filter(
    lambda s: reserved_name_problem(s) is None
)


@st.composite
def machine_payloads(draw: st.DrawFn) -> tuple[dict[str, Any], list[int]]:
    rows = draw(st.integers(1, 20))
    ts = sorted(draw(st.sets(st.integers(T0, T0 + 10**6), min_size=rows, max_size=rows)))
    names = draw(st.lists(field_name, min_size=1, max_size=6, unique=True))
    cols = {n: draw(st.lists(st.none() | finite, min_size=rows, max_size=rows)) for n in names}
    tags = draw(
        st.dictionaries(
            field_name,
            level,
            max_size=3,
        )
    )
    p = {"v": 1, "gw": draw(level), "seq": 0, "sent_ms": T0, "kind": "features"}
    p.update(ts_ms=ts, fields=cols, tags=tags)
    return p, ts


@settings(max_examples=300, deadline=None)
@given(machine_payloads())
def test_machine_round_trip_through_parser(case: tuple[dict[str, Any], list[int]]) -> None:
    p, ts = case
    topic = "renkei/v1/f/s/a/l/m/features"
    enc = encode_message(topic, orjson.dumps(p), now_ms=NOW)
    points = parse_lines(enc.body, precision="ms")
    expected = []
    for i, t in enumerate(ts):
        values = {n: col[i] for n, col in p["fields"].items() if col[i] is not None}
        if values:
            expected.append((t * 1_000_000, values))
    assert [(pt.time_ns, pt.fields) for pt in points] == expected
    assert enc.points == len(expected)
    assert enc.values == sum(len(v) for _, v in expected)
    tags = dict(firm="f", site="s", area="a", line="l", machine="m", gw=p["gw"], **p["tags"])
    for pt in points:
        assert pt.measurement == "features"
        assert dict(pt.tags) == tags
        for v in pt.fields.values():  # floats survive exactly (repr round trip)
            assert isinstance(v, float)


any_name = st.text(st.characters(codec="utf-8", exclude_characters="\n\r\\"), min_size=1)
field_values = st.one_of(
    finite,
    st.integers(-(2**63), 2**63 - 1),
    st.booleans(),
    st.text(st.characters(codec="utf-8")),
)


@settings(max_examples=300, deadline=None)
@given(
    measurement=any_name.filter(lambda s: not s.startswith(("#", "\t"))),
    tags=st.dictionaries(any_name, any_name, max_size=4),
    fields=st.dictionaries(any_name, field_values, min_size=1, max_size=4),
    time=st.none() | st.integers(-(10**18), 10**18),
)
def test_format_point_round_trip(
    measurement: str,
    tags: dict[str, str],
    fields: dict[str, Any],
    time: int | None,
) -> None:
    line = format_point(measurement, tags, fields, time)
    [p] = parse_lines(line, precision="ns")
    assert p.measurement == measurement
    assert dict(p.tags) == tags
    assert p.fields == fields
    for k, v in fields.items():
        assert type(p.fields[k]) is type(v)
    assert p.time_ns == time


def test_parser_spec_cases() -> None:
    body = (
        b"# comment\n"
        b"\n"
        b'm,t=a f=1i,g=2u,h=t,i=FALSE,j=-1.5e3,k="x y" 10\r\n'
        b"m f=1\n"
        b"m\\,x\\ y,t\\=k=v\\,w f\\ g=.5 -7\n"
    )
    pts = parse_lines(body, precision="s")
    assert pts[0].fields == {"f": 1, "g": 2, "h": True, "i": False, "j": -1500.0, "k": "x y"}
    assert pts[0].time_ns == 10 * 10**9
    assert pts[1].time_ns is None and pts[1].fields == {"f": 1.0}
    assert pts[2].measurement == "m,x y"
    assert pts[2].tags == (("t=k", "v,w"),)
    assert pts[2].fields == {"f g": 0.5}
    assert pts[2].time_ns == -7 * 10**9


@pytest.mark.parametrize(
    "line",
    [
        b"m",
        b"m f",
        b"m f=",
        b"m f=nan",
        b"m f=inf",
        b"m f=1e999",
        b"m f=1x",
        b"m f=9223372036854775808i",
        b"m f=-1u",
        b"m,t f=1",
        b"m,t=a,t=b f=1",
        b"m f=1 1.5",
        b"m f=1 99999999999999999999",
        b'm f="unterminated',
        b"m f=1 2 3",
        b"\xff f=1",
    ],
)
def test_parser_rejects(line: bytes) -> None:
    with pytest.raises(LineParseError):
        parse_lines(line)


def test_escaped_equals_before_quote_is_not_a_string() -> None:
    line = format_point("m", {}, {'="': "v\nw", "k": 1.0}, 5) + format_point("m", {}, {"x": 2}, 6)
    pts = parse_lines(line)
    assert [p.fields for p in pts] == [{'="': "v\nw", "k": 1.0}, {"x": 2}]
