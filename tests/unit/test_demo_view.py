"""The demo's live view fits the terminal (issue 15): at 80 columns no line is longer than
80 characters and every machine stays on one line (cells end in an ellipsis instead of
wrapping letter by letter); from 120 columns on the source and threshold come back, from
160 every column. Rendered with rich's
recording console on a realistic state (the five example gateways' machines)."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from rich.console import Console

from renkei.cloud.ingest.stats import IngestStats
from renkei.demo.view import LiveView


@dataclass
class _Source:
    type: str


@dataclass
class _Machine:
    id: str
    source: _Source


@dataclass
class _Config:
    gateway_id: str
    machines: list[_Machine]


@dataclass
class _OutboxStats:
    backlog_msgs: int
    dropped_total: int


@dataclass
class _Outbox:
    st: _OutboxStats

    def stats(self) -> _OutboxStats:
        return self.st


@dataclass
class _AgentStats:
    machines: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class _Agent:
    config: _Config
    outbox: _Outbox
    stats: _AgentStats


@dataclass
class _Worker:
    def stats(self) -> IngestStats:
        return IngestStats(
            messages=1_234_567,
            points=2_345_678,
            field_values=98_765_432,
            dead_letters={"schema": 3, "unknown_gateway": 12, "too_old": 1},
        )


@dataclass
class _Run:
    agents: list[_Agent]
    worker: _Worker


def _status(source: str, rows: int, **kw: Any) -> dict[str, Any]:
    return {
        "source": source,
        "rows": rows,
        "score": kw.get("score"),
        "threshold": kw.get("threshold"),
        "anomaly": kw.get("anomaly", False),
        "anomalies": kw.get("anomalies", 0),
        "last_event": kw.get("last_event"),
        "events": kw.get("events", []),
        "baseline_pending": kw.get("baseline_pending", 0),
        "finished": kw.get("finished", False),
    }


def _agent(gw: str, backlog: int, dropped: int, **machines: dict[str, Any]) -> _Agent:
    ms = [_Machine(mid, _Source(st["source"].split(":")[0])) for mid, st in machines.items()]
    return _Agent(
        _Config(gw, ms), _Outbox(_OutboxStats(backlog, dropped)), _AgentStats(dict(machines))
    )


def _run() -> _Run:
    onset = "anomaly_onset: score 14.2 above threshold 3.91 for 5 consecutive windows (drift)"
    return _Run(
        agents=[
            _agent(
                "gw-skab-01",
                12,
                0,
                **{"pump-1": _status("replay:1.csv", 1_203, baseline_pending=397)},
            ),
            _agent(
                "gw-nab-01",
                0,
                0,
                **{
                    "machine-7": _status(
                        "replay:machine_temperature_system_failure.csv",
                        22_695,
                        score=2.718281828,
                        threshold=3.5,
                        anomalies=4,
                        last_event="anomaly_cleared",
                        events=[onset, "anomaly_cleared: score back below the threshold"],
                    )
                },
            ),
            _agent(
                "gw-cwru-01",
                4_321,
                17,
                **{
                    "motor-healthy": _status("replay:97.mat", 1_440_000, score=0.8, threshold=4.0),
                    "motor-worn": _status(
                        "replay:105.mat",
                        1_440_000,
                        score=123.456,
                        threshold=4.0,
                        anomaly=True,
                        anomalies=1_234,
                        last_event="anomaly_onset",
                        events=[onset],
                    ),
                },
            ),
            _agent(
                "gw-kassel-01",
                0,
                0,
                **{"imm-265995": _status("replay:kassel.csv", 5_000, finished=True)},
            ),
            _agent(
                "gw-sim-01",
                88,
                0,
                **{"imm-sim-1": _status("simulated:cell", 98_765, score=1.0, threshold=3.0)},
            ),
        ],
        worker=_Worker(),
    )


MACHINES = ["pump-1", "machine-7", "motor-healthy", "motor-worn", "imm-265995", "imm-sim-1"]


def _text(renderable: Any, width: int) -> list[str]:
    console = Console(width=width, record=True, file=io.StringIO(), color_system=None)
    console.print(renderable)
    return console.export_text().splitlines()


@pytest.mark.parametrize("width", [80, 100, 120, 160])
def test_view_fits_the_width_and_rows_never_wrap(width: int) -> None:
    view = LiveView(cast(Any, _run()))
    lines = _text(view, width)  # as rich.live renders it: the console's width
    too_long = [line for line in lines if len(line) > width]
    assert not too_long, too_long
    table, _, _ = view.machine_table(width)
    table_lines = _text(table, width)
    # One line per machine: the same count as with room for everything.
    same_table, _, _ = view.machine_table(width)
    assert len(table_lines) == len(_text(same_table, 400)) == len(MACHINES) + 3
    for mid in MACHINES:
        rows = [line for line in table_lines if f" {mid} " in line]
        assert len(rows) == 1, (mid, table_lines)
    # Event lines are cut with an ellipsis, never continued on the next line.
    assert not any(line.strip("│ ").startswith("windows (drift)") for line in lines)


def test_compact_at_80_drops_low_value_columns_and_keeps_the_key_ones() -> None:
    lines = _text(LiveView(cast(Any, _run())), 80)
    header = next(line for line in lines if "machine" in line and "state" in line)
    for kept in ("machine", "rows", "state", "score", "backlog"):
        assert kept in header, header
    for dropped in ("gateway", "source", "threshold", "dropped"):
        assert dropped not in header, header
    text = "\n".join(lines)
    assert "ANOMALY" in text and "baseline 397" in text and "finished" in text
    assert "4321" in text  # a backlog is never abbreviated away
    assert "outboxes dropped 17 messages" in text
    assert "…" in text  # something was cut with an ellipsis, not wrapped


def test_120_adds_source_and_threshold() -> None:
    lines = _text(LiveView(cast(Any, _run())), 120)
    header = next(line for line in lines if "machine" in line and "state" in line)
    for col in ("machine", "source", "rows", "state", "score", "threshold", "last event"):
        assert col in header, header
    assert "gateway" not in header
    assert any("motor-worn" in line and "replay:105.mat" in line for line in lines)
    assert any("anomaly_onset" in line for line in lines)


def test_wide_shows_every_column() -> None:
    lines = _text(LiveView(cast(Any, _run())), 160)
    header = next(line for line in lines if "machine" in line and "state" in line)
    for col in ("gateway", "machine", "source", "rows", "score", "threshold", "dropped"):
        assert col in header, header
    assert "baseline (397 rows to go)" in "\n".join(lines)
    assert any("gw-cwru-01" in line and "motor-worn" in line for line in lines)
