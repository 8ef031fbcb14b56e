"""``sparkplug`` source: config validation (key paths) and the Host Application's pure logic
(``seq`` wrap, Reorder Timeout, rebirth rate limit, bdSeq) on payloads built by pysparkplug."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pysparkplug as spb
import pytest
import yaml
from pydantic import ValidationError
from pysparkplug import _protobuf as spb_pb

from renkei.edge.config import ConfigError, load_config
from renkei.edge.sources.live import LiveSourceError
from renkei.edge.sources.live.base import LiveSink, Quality
from renkei.edge.sources.live.sparkplug.codec import (
    decode_payload,
    encode_rebirth,
    metric_value,
    type_name,
)
from renkei.edge.sources.live.sparkplug.config import SparkplugSourceConfig
from renkei.edge.sources.live.sparkplug.driver import make_driver
from renkei.edge.sources.live.sparkplug.host import SparkplugHost
from renkei.edge.sources.live.sparkplug.topic import parse_topic, subscriptions

REPO = Path(__file__).resolve().parents[2]
DT = spb.DataType


def _cfg(**over: Any) -> SparkplugSourceConfig:
    raw: dict[str, Any] = {
        "type": "sparkplug",
        "group_id": "G",
        "edge_node_id": "N",
        "reorder_timeout_s": 1.0,
        "rebirth_min_interval_s": 5.0,
        "signals": [{"name": "p", "device": "D", "metric": "P"}],
    }
    raw.update(over)
    return SparkplugSourceConfig.model_validate(raw)


# ----------------------------------------------------------------- config


def test_example_config_loads() -> None:
    cfg = load_config(REPO / "firmware-config" / "sparkplug-press-line.yaml")
    src = cfg.machines[0].source
    assert isinstance(src, SparkplugSourceConfig)
    assert src.edge_nodes == ["press-line"]


@pytest.mark.parametrize(
    ("over", "needle"),
    [
        ({"edge_node_id": None}, "give 'edge_node' or the source's 'edge_node_id'"),
        (
            {"signals": [{"name": "p", "edge_node": "X", "metric": "P"}]},
            "is not this source's edge_node_id 'N'",
        ),
        (
            {
                "signals": [
                    {"name": "p", "device": "D", "metric": "P"},
                    {"name": "q", "device": "D", "metric": "P"},
                ]
            },
            "is also signals[0]",
        ),
        ({"password": {"env": "X"}}, "'password' needs a 'username'"),
        ({"group_id": "a/b"}, "String should match pattern"),
        ({"tls": {"ca": "/x", "cert": "/c"}}, "both 'cert' and 'key'"),
        ({"signals": []}, "at least 1 item"),
        ({"password": "inline-secret", "username": "u"}, "password"),
    ],
)
def test_bad_config_is_refused_with_a_clear_message(over: dict[str, Any], needle: str) -> None:
    with pytest.raises(ValidationError) as err:
        _cfg(**over)
    assert needle in str(err.value)


def test_bad_config_names_the_key_path(tmp_path: Path) -> None:
    raw = yaml.safe_load((REPO / "firmware-config" / "sparkplug-press-line.yaml").read_text())
    raw["machines"][0]["source"]["signals"][1]["metrc"] = "typo"
    raw["machines"][0]["source"]["port"] = 0
    path = tmp_path / "gw.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    text = str(err.value)
    assert "machines[0].source.signals[1].metrc" in text
    assert "machines[0].source.port" in text


def test_missing_password_secret_stops_the_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SPB_TEST_PW", raising=False)
    with pytest.raises(LiveSourceError, match="SPB_TEST_PW"):
        make_driver(_cfg(username="u", password={"env": "SPB_TEST_PW"}))
    with pytest.raises(LiveSourceError, match=r"tls\.ca"):
        make_driver(_cfg(tls={"ca": "/nonexistent/ca.pem"}))


def test_topics() -> None:
    t = parse_topic("spBv1.0/G/DDATA/N/D")
    assert t is not None
    assert (t.group, t.message_type, t.edge_node, t.device) == ("G", "DDATA", "N", "D")
    assert parse_topic("spBv1.0/G/NDATA/N/D") is None
    assert parse_topic("spBv1.0/G/DDATA/N") is None
    assert parse_topic("spBv1.0/G/STATE/N") is None
    assert parse_topic("spAv1.0/G/NDATA/N") is None
    assert subscriptions("G", ["N"]) == [
        "spBv1.0/G/NBIRTH/N",
        "spBv1.0/G/NDATA/N",
        "spBv1.0/G/NDEATH/N",
        "spBv1.0/G/DBIRTH/N/+",
        "spBv1.0/G/DDATA/N/+",
        "spBv1.0/G/DDEATH/N/+",
    ]


def test_codec() -> None:
    ncmd = spb.NCmd.decode(encode_rebirth(123))
    assert [(m.name, m.datatype, m.value) for m in ncmd.metrics] == [
        ("Node Control/Rebirth", DT.BOOLEAN, True)
    ]
    assert metric_value(DT.INT8, 255) == -1.0
    assert metric_value(DT.BOOLEAN, True) == 1.0
    assert metric_value(DT.STRING, "x") is None
    assert metric_value(19, None) is None  # Template
    assert metric_value(DT.UINT8, 300) is None  # does not fit its type


# ----------------------------------------------------------------- host logic


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def _host(**over: Any) -> tuple[SparkplugHost, LiveSink, list[str], Clock]:
    sink = LiveSink()
    sent: list[str] = []
    clock = Clock()

    def send(node: str) -> bool:
        sent.append(node)
        return True

    return SparkplugHost(_cfg(**over), sink, send, monotonic=clock), sink, sent, clock


def _nbirth(bd_seq: int = 0) -> bytes:
    m = [spb.Metric(timestamp=1, name="bdSeq", datatype=DT.UINT64, value=bd_seq)]
    return spb.NBirth(timestamp=1, seq=0, metrics=tuple(m)).encode(include_dtypes=True)


def _dbirth(seq: int) -> bytes:
    m = spb.Metric(timestamp=1, name="P", datatype=DT.DOUBLE, value=1.0, alias=7)
    return spb.DBirth(timestamp=1, seq=seq, metrics=(m,)).encode(include_dtypes=True)


def _ddata(seq: int, value: float = 2.0, alias: int = 7) -> bytes:
    m = spb.Metric(timestamp=5, name=None, datatype=DT.DOUBLE, value=value, alias=alias)
    return spb.DData(timestamp=5, seq=seq, metrics=(m,)).encode()


def _codes(sink: LiveSink) -> list[str]:
    return [e.code for e in sink.take()[1]]


def test_seq_wraps_from_255_to_0_without_a_gap() -> None:
    host, sink, sent, _ = _host()
    host.on_message("spBv1.0/G/NBIRTH/N", _nbirth())
    host.on_message("spBv1.0/G/DBIRTH/N/D", _dbirth(1))
    for i in range(2, 600):
        host.on_message("spBv1.0/G/DDATA/N/D", _ddata(i % 256, float(i)))
    readings, events, _ = sink.take()
    assert "sequence_gap" not in [e.code for e in events]
    assert len(readings) == 1 + 598
    assert sent == []


def test_reorder_timeout_then_one_rate_limited_rebirth() -> None:
    host, sink, sent, clock = _host()
    host.on_message("spBv1.0/G/NBIRTH/N", _nbirth())
    host.on_message("spBv1.0/G/DBIRTH/N/D", _dbirth(1))
    host.on_message("spBv1.0/G/DDATA/N/D", _ddata(3))  # 2 is missing
    assert "sequence_gap" in _codes(sink)
    clock.t += 0.5
    host.tick()
    assert sent == []  # still within the Reorder Timeout
    clock.t += 0.6
    host.tick()
    assert sent == ["N"]
    assert "rebirth_requested" in _codes(sink)
    # more trouble right away: held back by rebirth_min_interval_s, then sent once
    host.on_message("spBv1.0/G/DDATA/N/D", _ddata(4, alias=99))  # unknown alias
    host.tick()
    assert sent == ["N"]
    clock.t += 5.0
    host.tick()
    host.tick()
    assert sent == ["N", "N"]


def test_ndeath_bdseq_rules_and_stale_signals() -> None:
    host, sink, _, _ = _host()
    host.on_message("spBv1.0/G/NBIRTH/N", _nbirth(bd_seq=3))
    host.on_message("spBv1.0/G/DBIRTH/N/D", _dbirth(1))
    sink.take()
    death = spb.NDeath(
        timestamp=1,
        bd_seq_metric=spb.Metric(timestamp=None, name="bdSeq", datatype=DT.UINT64, value=2),
    ).encode(include_dtypes=True)
    host.on_message("spBv1.0/G/NDEATH/N", death)
    readings, events, _ = sink.take()
    assert readings == []
    assert [e.code for e in events] == ["ndeath_ignored"]
    death = spb.NDeath(
        timestamp=1,
        bd_seq_metric=spb.Metric(timestamp=None, name="bdSeq", datatype=DT.UINT64, value=3),
    ).encode(include_dtypes=True)
    host.on_message("spBv1.0/G/NDEATH/N", death)
    readings, events, _ = sink.take()
    assert [(r.signal, r.quality, r.reason, r.device_time) for r in readings] == [
        ("p", Quality.BAD, "stale (NDEATH)", False)
    ]
    assert [e.code for e in events] == ["node_death"]


def test_garbage_and_oversized_payloads_are_counted() -> None:
    host, sink, _, _ = _host(max_payload_bytes=1024)
    host.on_message("spBv1.0/G/DDATA/N/D", b"\xff" * 10)
    host.on_message("spBv1.0/G/DDATA/N/D", b"\x00" * 2000)
    host.on_message("spBv1.0/G/NDATA/N", b"\x18\x80\x02")  # seq 256
    assert host.malformed == 3
    assert _codes(sink) == ["malformed_payload"]  # one event per minute, with the count
    # a DBIRTH with a Template metric (which pysparkplug cannot decode) keeps its numbers
    pb = spb_pb.Payload(timestamp=1, seq=1)
    tm = pb.metrics.add(name="T", datatype=19)
    tm.template_value.version = "1"
    pb.metrics.add(name="P", alias=7, datatype=int(DT.DOUBLE), double_value=4.5)
    host.on_message("spBv1.0/G/DBIRTH/N/D", pb.SerializeToString())
    assert [r.value for r in sink.take()[0]] == [4.5]
    assert type_name(19) == "Template"
    with pytest.raises(ValueError, match=r"0\.\.255"):
        decode_payload(b"\x18\x80\x02")
