"""The embedded SQLite store: InfluxDB's identity rules, dedup, types, queries."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from harness.loadgen import machine_message, machine_topic_for
from renkei.cloud._exceptions import LineProtocolError, StoreRejected, StoreUnavailable
from renkei.cloud.ingest.lineproto import encode_message
from renkei.cloud.store.base import Row, TimeSeriesStore
from renkei.cloud.store.sqlite import SqliteStore

T0 = 1_700_000_000_000


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    s = SqliteStore(path=tmp_path / "ts.sqlite")
    s.ensure_database()
    return s


def test_is_a_time_series_store(store: SqliteStore) -> None:
    assert isinstance(store, TimeSeriesStore)


def test_redelivery_creates_no_duplicates(store: SqliteStore) -> None:
    raw = machine_message(seq=4, rows=50, fields=8, t0_ms=T0)
    enc = encode_message(machine_topic_for(1), raw, now_ms=T0 + 10**9)
    store.write_lines(enc.body)
    store.write_lines(enc.body)  # MQTT redelivery
    for j in range(8):
        assert store.count("telemetry", f"f{j}") == 50
    assert store.count("telemetry", "f0", where={"machine": "m1"}) == 50
    assert store.count("telemetry", "f0", where={"machine": "m2"}) == 0


def test_same_series_and_time_overwrites_like_influxdb(store: SqliteStore) -> None:
    store.write_lines(b"m,tag=a f=1 1700000000000\nm,tag=a f=2 1700000000001")
    store.write_lines(b"m,tag=a f=3 1700000000001\nm,tag=b f=4 1700000000001")
    assert store.count("m", "f") == 3
    rows = store.last("m", ["f"], group_by=["tag"])
    assert rows == [
        Row(tags={"tag": "a"}, time_ms=1700000000001, values={"f": 3.0}),
        Row(tags={"tag": "b"}, time_ms=1700000000001, values={"f": 4.0}),
    ]


def test_tag_order_does_not_matter(store: SqliteStore) -> None:
    store.write_lines(b"m,a=1,b=2 f=1 10")
    store.write_lines(b"m,b=2,a=1 f=1 10")
    assert store.count("m", "f") == 1


def test_precision(store: SqliteStore) -> None:
    store.write_lines(b"m f=1 1700000000", precision="s")
    store.write_lines(b"m f=2 1700000000000", precision="ms")  # same instant: overwrite
    assert store.count("m", "f") == 1
    [row] = store.last("m", ["f"])
    assert row.time_ms == 1_700_000_000_000
    assert row.values == {"f": 2.0}


def test_last_takes_latest_value_per_field_and_group(store: SqliteStore) -> None:
    store.write_lines(
        b"t,machine=m1,gw=g a=1,b=10 100\n"
        b"t,machine=m1,gw=g a=2 200\n"
        b"t,machine=m1,gw=h b=30 150\n"
        b't,machine=m2,gw=g a=5,s="x",ok=true 50\n'
    )
    rows = store.last("t", ["a", "b", "s", "ok"], group_by=["machine"])
    assert rows == [
        Row(tags={"machine": "m1"}, time_ms=200, values={"a": 2.0, "b": 30.0}),
        Row(tags={"machine": "m2"}, time_ms=50, values={"a": 5.0, "s": "x", "ok": True}),
    ]
    assert store.last("t", ["nope"], group_by=["machine"]) == []
    assert store.last("missing", ["a"]) == []


def test_field_type_conflict_is_rejected_and_writes_nothing(store: SqliteStore) -> None:
    store.write_lines(b"m f=1 1")
    with pytest.raises(StoreRejected, match="field type conflict"):
        store.write_lines(b'm g=1 2\nm f="s" 3')
    assert store.count("m", "g") == 0
    with pytest.raises(StoreRejected, match="field type conflict"):
        store.write_lines(b"n x=1i 1\nn x=1 2")  # conflict inside one body
    store.write_lines(b"m f=4 4")
    assert store.count("m", "f") == 2


def test_bad_line_protocol_is_rejected(store: SqliteStore) -> None:
    with pytest.raises(LineProtocolError) as info:
        store.write_lines(b"m f=1 1\nm f=oops 2")
    assert info.value.line_no == 2
    assert isinstance(info.value, StoreRejected)
    assert store.count("m", "f") == 0


def test_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "db" / "ts.sqlite"
    s1 = SqliteStore(path=path)
    s1.write_lines(b"m,t=a f=1i 5")
    s1.close()
    s2 = SqliteStore(path=path)
    s2.write_lines(b"m,t=a f=1i 5")
    assert s2.count("m", "f") == 1
    with pytest.raises(StoreRejected):
        s2.write_lines(b"m,t=a f=1.5 6")  # type remembered across reopen
    s2.close()
    with pytest.raises(StoreUnavailable):
        s2.count("m", "f")


def test_event_and_gateway_strings(store: SqliteStore) -> None:
    event = orjson.dumps(
        {
            "v": 1,
            "gw": "gw-01",
            "seq": 1,
            "sent_ms": T0,
            "kind": "event",
            "events": [{"t_ms": T0, "code": "x", "severity": "alarm", "message": 'a\nb "c"'}],
        }
    )
    enc = encode_message(machine_topic_for(1, kind="event"), event, now_ms=T0)
    store.write_lines(enc.body)
    [row] = store.last("event", ["message", "severity"], group_by=["machine"])
    assert row.values == {"message": 'a\nb "c"', "severity": "alarm"}
    assert row.time_ms == T0
