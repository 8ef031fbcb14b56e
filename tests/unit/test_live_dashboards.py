"""The ``quality`` measurement in the dashboards: contract line protocol = the ingest's, and
the machine board's "Data quality" row."""

from __future__ import annotations

import pytest

from renkei.cloud.ingest.lineproto import encode_machine
from renkei.core.influx import contract
from renkei.core.wire import MachineKind, MachinePayload, MachineTopic
from renkei.dashboards.boards import build_boards
from renkei.dashboards.queries import MACHINE_FILTER
from renkei.edge.sources.live.signals import QUALITY_FIELDS

TAGS = contract.MachineTags(
    firm="acme", site="osaka", area="molding", line="line-1", machine="imm-1", gw="gw-1"
)


def test_quality_counters_are_the_gateways_quality_fields() -> None:
    assert contract.QUALITY_COUNTERS == QUALITY_FIELDS
    assert MachineKind.QUALITY.value == contract.QUALITY


def test_quality_point_is_what_the_ingest_writes_for_a_quality_row() -> None:
    counters = {"link_up": 1.0, "readings": 40.0, "bad": 2.0, "gateway_time": 40.0}
    worst = {"barrel_temp_C": 2}
    ours = contract.quality_point(TAGS, time_ms=1_767_225_600_000, counters=counters, worst=worst)
    topic = MachineTopic(
        firm="acme",
        site="osaka",
        area="molding",
        line="line-1",
        machine="imm-1",
        kind=MachineKind.QUALITY,
    )
    msg = MachinePayload(
        v=1,
        gw="gw-1",
        seq=0,
        sent_ms=1_767_225_600_000,
        kind=MachineKind.QUALITY,
        ts_ms=[1_767_225_600_000],
        fields={k: [v] for k, v in {**counters, "barrel_temp_C": 2.0}.items()},
    )
    assert ours == encode_machine(topic, msg).body
    assert ours.startswith(b"quality,area=molding,firm=acme,gw=gw-1,line=line-1,machine=imm-1,")
    with pytest.raises(ValueError, match="not quality counters"):
        contract.quality_point(TAGS, time_ms=1, counters={"bogus": 1.0})


def test_machine_board_has_the_data_quality_row() -> None:
    board = next(b for b in build_boards() if b.uid == "renkei-machine-detail")
    model = board.to_json()
    rows = [p["title"] for p in model["panels"] if p["type"] == "row"]
    assert any("Data quality" in r for r in rows)
    quality = [p for p in board.panels if any('FROM "quality"' in t.query for t in p.targets)]
    titles = [p.title.split(" / ")[1] for p in quality]
    assert titles == ["Link state", "Bad and uncertain readings", "Gateway-stamped share"]
    for p in quality:
        for t in p.targets:
            assert MACHINE_FILTER in t.query and '"machine"::tag fill(' in t.query
            assert t.tags == ("machine",)
    link = next(p for p in model["panels"] if p.get("title", "").endswith("Link state"))
    assert link["type"] == "state-timeline"
    share = next(p for p in model["panels"] if p.get("title", "").endswith("stamped share"))
    assert share["fieldConfig"]["defaults"]["unit"] == "percentunit"
