"""The outbox's boot epoch on the wire: in every packed payload, optional for old gateways."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from pydantic import ValidationError

from renkei.core.wire import GatewayHealth, MachineKind, MachinePayload, decode_machine_payload
from renkei.edge.transport.outbox import Outbox, OutboxSettings
from renkei.edge.transport.packing import RowBuffer

TOPIC = "renkei/v1/acme/s1/a1/l1/m1/telemetry"


def test_packed_payloads_carry_the_epoch_of_the_outbox_that_numbers_them(tmp_path: Path) -> None:
    s = OutboxSettings(path=tmp_path / "o.sqlite3")
    Outbox(settings=s).close()
    with Outbox(settings=s) as ob:
        buf = RowBuffer(
            kind=MachineKind.TELEMETRY, gateway_id="gw-1", tags={}, epoch=lambda: ob.epoch
        )
        for i in range(25):
            buf.add(1_700_000_000_000 + i, {"temp_C": 20.0 + i})
        seqs = ob.enqueue_many([(TOPIC, b) for b in buf.drain(10)])
        payloads = [decode_machine_payload(r.payload) for r in ob.peek(-1, 10)]
    assert seqs == [0, 1, 2]
    assert [(p.seq, p.epoch) for p in payloads] == [(0, 2), (1, 2), (2, 2)]


def test_epoch_is_optional_and_validated() -> None:
    base = {"v": 1, "gw": "gw-1", "seq": 5, "sent_ms": 1_700_000_000_000, "kind": "telemetry"}
    assert decode_machine_payload(orjson.dumps(base)).epoch == 0  # an older gateway
    assert MachinePayload.model_validate(base | {"epoch": 7}).epoch == 7
    with pytest.raises(ValidationError, match="epoch"):
        MachinePayload.model_validate(base | {"epoch": -1})


def test_health_loss_fields_are_optional_with_zero_defaults() -> None:
    old = {
        "v": 1,
        "gw": "gw-1",
        "seq": 1,
        "sent_ms": 1_700_000_000_000,
        "outbox_backlog": 0,
        "outbox_bytes": 0,
        "dropped_total": 0,
        "published_total": 0,
    }
    h = GatewayHealth.model_validate(old)
    assert (h.epoch, h.lost_total, h.gap_total, h.quarantined_total) == (0, 0, 0, 0)
    assert (h.disk_full, h.publisher_restarts) == (False, 0)
    with pytest.raises(ValidationError, match="lost_total"):
        GatewayHealth.model_validate(old | {"lost_total": -3})
