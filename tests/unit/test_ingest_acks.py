"""Pure logic of the ingest's end-to-end acks and per-gateway accounting
(:mod:`renkei.cloud.ingest.acks`); the real broker/InfluxDB tests are in
tests/integration/test_e2e_ack.py and test_chaos.py."""

from __future__ import annotations

import orjson
import pytest

from renkei.cloud.ingest import acks
from renkei.cloud.ingest.acks import AckKey, AckTracker, identify
from renkei.core.wire import IngestAck, WireError, decode_ack_payload, seq_ranges

TOPIC = "renkei/v1/acme/osaka/molding/line-1/imm-1/telemetry"


def payload(**over: object) -> bytes:
    obj: dict[str, object] = {"v": 1, "gw": "gw-1", "seq": 7, "sent_ms": 1, "kind": "telemetry"}
    obj.update(over)
    return orjson.dumps(obj)


def test_identify_fast_and_slow_paths_agree() -> None:
    assert identify(TOPIC, payload()) == AckKey("acme", "osaka", "gw-1", 0, 7)
    assert identify(TOPIC, payload(epoch=3)) == AckKey("acme", "osaka", "gw-1", 3, 7)
    # epoch at the end (another field order), spaces, reordered keys: the slow path.
    tail = payload()[:-1] + b',"epoch":4}'
    assert identify(TOPIC, tail) == AckKey("acme", "osaka", "gw-1", 4, 7)
    spaced = b'{ "seq": 9, "v": 1, "gw": "gw-2" }'
    assert identify(TOPIC, spaced) == AckKey("acme", "osaka", "gw-2", 0, 9)


def test_identify_judges_a_repeated_key_by_its_last_occurrence() -> None:
    """A payload naming another gateway first must not make its seq acknowledged."""
    forged = b'{"v":1,"gw":"victim","seq":5,"sent_ms":1,"gw":"gw-1"}'
    assert identify(TOPIC, forged) == AckKey("acme", "osaka", "gw-1", 0, 5)


@pytest.mark.parametrize(
    ("topic", "raw"),
    [
        (None, payload()),
        ("renkei/v1/acme/osaka/_gw/gw-1/health", payload()),
        ("renkei/dlq/v1/x", payload()),
        (TOPIC, b"not json"),
        (TOPIC, b"[1]"),
        (TOPIC, payload(seq=-1)),
        (TOPIC, payload(seq=True)),
        (TOPIC, payload(seq="7")),
        (TOPIC, payload(gw="a b")),
        (TOPIC, payload(epoch=1.5)),
    ],
)
def test_identify_refuses_what_is_not_a_gateway_message(topic: str | None, raw: bytes) -> None:
    assert identify(topic, raw) is None


def test_only_bound_gateways_are_confirmed() -> None:
    sent: list[tuple[str, bytes]] = []

    def publish(topic: str, raw: bytes) -> bool:
        sent.append((topic, raw))
        return True

    bound = {("acme", "osaka", "molding/line-1/imm-1", "gw-1")}
    tracker = AckTracker(
        publish=publish,
        bound=lambda f, s, path, gw: (f, s, path, gw) in bound,
    )
    n = tracker.handled(
        [
            (TOPIC, payload(gw="gw-1", seq=1), None),
            (TOPIC, payload(gw="gw-2", seq=2), None),  # not bound to this machine
            (TOPIC, payload(gw="gw-2", seq=3), "invalid_payload"),  # nor when dead-lettered
        ]
    )
    assert n == 1 and tracker.unbound_total == 2
    assert [decode_ack_payload(p).gw for _, p in sent] == ["gw-1"]


def test_seq_ranges_and_ack_validation() -> None:
    assert seq_ranges([5, 1, 2, 3, 9, 2]) == [(1, 3), (5, 5), (9, 9)]
    ack = IngestAck(v=1, gw="g", ranges=[(1, 3), (5, 5)], sent_ms=0)
    assert ack.seq_count() == 4 and ack.epoch == 0
    for bad in ([[3, 1]], [[1, 3], [2, 5]], [[1, 3], [4, 5]], []):
        raw = orjson.dumps({"v": 1, "gw": "g", "ranges": bad, "sent_ms": 0})
        with pytest.raises(WireError) as exc:
            decode_ack_payload(raw)
        assert exc.value.reason == "invalid_payload"


def test_tracker_acks_per_gateway_and_epoch_and_counts() -> None:
    sent: list[tuple[str, bytes]] = []

    def publish(topic: str, raw: bytes) -> bool:
        sent.append((topic, raw))
        return True

    t = AckTracker(publish=publish)
    batch = [(TOPIC, payload(gw="gw-1", seq=s), None) for s in (0, 1, 2, 4)] + [
        (TOPIC, payload(gw="gw-2", seq=0), "invalid_payload"),  # dead-lettered: handled
        (TOPIC, payload(gw="gw-3", seq=0), "gateway_mismatch"),  # not trustworthy
        (TOPIC, payload(gw="gw-1", seq=0, epoch=1), None),
        ("renkei/v1/acme/osaka/_gw/gw-1/state", b"{}", None),
    ]
    assert t.handled(batch) == 3
    got = {
        (topic, a.gw, a.epoch): a.ranges for topic, raw in sent for a in [decode_ack_payload(raw)]
    }
    assert got == {
        ("renkei/ack/v1/acme/osaka/gw-1", "gw-1", 0): [(0, 2), (4, 4)],
        ("renkei/ack/v1/acme/osaka/gw-2", "gw-2", 0): [(0, 0)],
        ("renkei/ack/v1/acme/osaka/gw-1", "gw-1", 1): [(0, 0)],
    }
    t.handled([(TOPIC, payload(gw="gw-1", seq=s), None) for s in (2, 3, 9)])
    s = t.snapshot()["gw-1@0"]
    assert (s.handled, s.duplicates, s.jumps, s.missing, s.lowest, s.highest) == (7, 1, 2, 4, 0, 9)


def test_accounting_memory_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(acks, "MAX_INTERVALS", 4)
    monkeypatch.setattr(acks, "MAX_TRACKED", 2)
    t = AckTracker(publish=lambda *_: True, enabled=False)
    t.handled([(TOPIC, payload(seq=s), None) for s in (0, 2, 4, 6, 8, 10)])
    s = t.snapshot()["gw-1@0"]
    # 6 singletons > 4 intervals: the two lowest holes (1, 3) were given up.
    assert (s.missing, s.missing_given_up, s.highest) == (3, 2, 10)
    for gw in ("gw-a", "gw-b"):
        t.handled([(TOPIC, payload(gw=gw, seq=0), None)])
    assert set(t.snapshot()) == {"gw-a@0", "gw-b@0"}
