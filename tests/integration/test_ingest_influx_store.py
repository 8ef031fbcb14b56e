"""InfluxStore against a real InfluxDB, and parity with the embedded SQLite store."""

from __future__ import annotations

import pytest

from harness.loadgen import machine_message, machine_topic_for
from harness.services import InfluxDB, free_port
from renkei.cloud._exceptions import StoreRejected, StoreUnavailable
from renkei.cloud.ingest.lineproto import encode_message
from renkei.cloud.store.base import TimeSeriesStore
from renkei.cloud.store.influx import InfluxSettings, InfluxStore
from renkei.cloud.store.sqlite import SqliteStore

NOW = 1_800_000_000_000


def body_for(seqs: range) -> bytes:
    return b"".join(
        encode_message(
            machine_topic_for(seq % 2), machine_message(seq=seq, rows=20, fields=3), now_ms=NOW
        ).body
        for seq in seqs
    )


@pytest.fixture
def influx_store(influxdb: InfluxDB, database: str) -> InfluxStore:
    store = InfluxStore(settings=InfluxSettings(url=influxdb.url, database=database, gzip=True))
    store.ensure_database()
    store.ensure_database()  # idempotent
    return store


def test_write_count_last_and_parity_with_sqlite(influx_store: InfluxStore) -> None:
    sqlite = SqliteStore()
    extra = (
        b'event,machine=m0 code="x",message="a\\"b\nc",severity="info" 1700000000000\n'
        b"gateway_state,gw=g1 online=1i,ok=true 1700000000005\n"
    )
    stores: list[TimeSeriesStore] = [influx_store, sqlite]
    for store in stores:
        store.write_lines(body_for(range(10)))
        store.write_lines(body_for(range(5, 10)))  # redelivery: overwrites
        store.write_lines(extra)
    for store in stores:
        assert store.count("telemetry", "f0") == 200
        assert store.count("telemetry", "f2", where={"machine": "m1"}) == 100
        assert store.count("telemetry", "f2", where={"machine": "m1", "gw": "gw-01"}) == 100
        assert store.count("telemetry", "f2", where={"machine": "nope"}) == 0
        assert store.count("nothing", "f0") == 0
    for fields, group_by, measurement in [
        (["f0", "f2"], ["machine"], "telemetry"),
        (["f1"], [], "telemetry"),
        (["message", "severity"], ["machine"], "event"),
        (["online", "ok"], ["gw"], "gateway_state"),
        (["f0"], ["no_such_tag"], "telemetry"),
    ]:
        a = influx_store.last(measurement, fields, group_by=group_by)
        b = sqlite.last(measurement, fields, group_by=group_by)
        assert a == b, (measurement, a, b)
        assert a
    [row] = influx_store.last("event", ["message"], group_by=["machine"])
    assert row.values == {"message": 'a"b\nc'}


def test_type_conflict_is_rejected_with_influx_text(influx_store: InfluxStore) -> None:
    influx_store.write_lines(b"m f=1 1700000000000")
    with pytest.raises(StoreRejected) as info:
        influx_store.write_lines(b'm f="text" 1700000000001')
    assert not isinstance(info.value, StoreUnavailable)
    assert info.value.status == 400
    assert "field type conflict" in info.value.detail
    with pytest.raises(StoreRejected, match="unable to parse"):
        influx_store.write_lines(b"m f= 1")


def test_unreachable_and_missing_database_are_retryable(influxdb: InfluxDB, database: str) -> None:
    down = InfluxStore(
        settings=InfluxSettings(url=f"http://127.0.0.1:{free_port()}", database=database)
    )
    with pytest.raises(StoreUnavailable, match="unreachable"):
        down.write_lines(b"m f=1")
    with pytest.raises(StoreUnavailable):
        down.ensure_database()
    missing = InfluxStore(settings=InfluxSettings(url=influxdb.url, database=database))
    with pytest.raises(StoreUnavailable) as info:
        missing.write_lines(b"m f=1")
    assert info.value.status == 404
    missing.close()
    down.close()
