"""The gateway checks a history model's in-run baseline before freezing it
(renkei.edge.model.baseline_check via renkei.edge.model.inputs.ModelInputs): a real SKAB
recording whose first 400 rows start inside the closed-valve anomaly goes through the
gateway's replay source, windows, history inputs and ONNX scoring
(renkei.edge.pipeline.MachinePipeline) with ``skab-pump-mahal``. The contaminated baseline
must be refused (status ``baseline_suspect``, one event naming contamination, the flow
channel and a UTC time range), a fresh baseline collected after the anomaly, frozen, and
scoring resumed; every row is accounted for. Needs ../shared/datasets."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import orjson

from renkei.edge.agent import build_source, source_streams
from renkei.edge.config import GatewayConfig
from renkei.edge.model.inference import AnomalyModel
from renkei.edge.pipeline import MachinePipeline
from renkei.edge.sources.live import LiveSource
from tests.datasets import require_data_dir

REPO = Path(__file__).resolve().parents[2]
MODEL = REPO / "models" / "artifacts" / "skab-pump-mahal"


def _contaminated_csv(data: Path, out: Path) -> tuple[int, int]:
    """valve1/9.csv from 150 rows before its anomaly's end to the file's end, then the
    run's own normal start (as a looping replay would play it), re-timed at 1 s steps.
    Returns (rows, labelled anomaly rows at the start)."""
    with (data / "skab/data/valve1/9.csv").open(newline="") as fh:
        rows = list(csv.reader(fh, delimiter=";"))
    header, body = rows[0], rows[1:]
    labels = [float(r[9]) for r in body]
    end = max(i for i, v in enumerate(labels) if v == 1.0)
    onset = labels.index(1.0)
    sliced = body[end - 149 :] + body[:onset]
    t0 = 1_583_750_000  # 2020-03-09 10:33:20 UTC
    with out.open("w", newline="") as fh:
        w = csv.writer(fh, delimiter=";")
        w.writerow(header)
        for i, r in enumerate(sliced):
            stamp = _iso(t0 + i)
            w.writerow([stamp, *r[1:]])
    return len(sliced), 150


def _iso(t: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _pipeline(path: Path, *, check: bool = True) -> MachinePipeline:
    machine: dict[str, Any] = {
        "id": "pump-1",
        "area": "utilities",
        "line": "water-loop",
        "source": {"type": "replay", "preset": "skab", "path": str(path), "speed": 100},
        "window_s": 1,
        "model": {"dir": str(MODEL), "baseline_check": check},
    }
    gw = GatewayConfig.model_validate(
        {"gateway_id": "gw-data", "firm": "acme", "site": "lab", "machines": [machine]}
    )
    model = AnomalyModel.load(model_dir=MODEL)
    return MachinePipeline(machine=gw.machines[0], gateway=gw, model=model)


def _events(items: list[Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for topic, build in items:
        if topic.endswith("/event"):
            out += orjson.loads(build(0))["events"]
    return out


def test_a_contaminated_in_run_baseline_is_refused_then_a_clean_one_is_frozen(
    tmp_path: Path,
) -> None:
    n_rows, anomaly_rows = _contaminated_csv(require_data_dir(), tmp_path / "run.csv")
    pipe = _pipeline(tmp_path / "run.csv")
    src = build_source(pipe.machine, start_ms=0)
    assert not isinstance(src, LiveSource)
    pipe.start(publish_start_ms=1_750_000_000_000, streams=source_streams(src))
    suspect_status: dict[str, Any] | None = None
    events: list[dict[str, Any]] = []
    for block in src.blocks():
        pipe.process(block)
        status = pipe.status()
        if status["baseline_suspect"] and suspect_status is None:
            suspect_status = status
        events += _events(pipe.drain(100_000))
    pipe.finish()
    events += _events(pipe.drain(100_000))

    assert suspect_status is not None, "the contaminated baseline was frozen"
    assert suspect_status["baseline_pending"] > 0 and pipe.status()["baseline_suspect"] is False
    issue = suspect_status["baseline_issues"][0]
    assert issue.startswith("contamination [") and "flow_rate_l_min" in issue
    assert "2025-06-15T" in issue and "Z .. " in issue  # published (re-based) UTC times
    codes = [e["code"] for e in events]
    assert codes.count("baseline_suspect") == 1 and codes.count("baseline_frozen") == 1
    suspect = next(e for e in events if e["code"] == "baseline_suspect")
    assert suspect["severity"] == "warning" and "flow_rate_l_min" in suspect["message"]
    assert codes.index("baseline_suspect") < codes.index("baseline_frozen")
    discarded = pipe.unscored
    # the flow recovers ~100 rows in (the label stays 1 for 50 more rows): the rows up to
    # the recovery are discarded, not the whole candidate
    assert 90 <= discarded <= anomaly_rows + 25
    # every row: discarded (unscored), the frozen 400-row baseline, or scored
    assert discarded + 400 + pipe.scored == n_rows
    assert pipe.scored > 0


def test_with_the_check_switched_off_the_first_rows_are_frozen(tmp_path: Path) -> None:
    n_rows, _ = _contaminated_csv(require_data_dir(), tmp_path / "run.csv")
    pipe = _pipeline(tmp_path / "run.csv", check=False)
    src = build_source(pipe.machine, start_ms=0)
    assert not isinstance(src, LiveSource)
    pipe.start(publish_start_ms=1_750_000_000_000, streams=source_streams(src))
    for block in src.blocks():
        pipe.process(block)
    pipe.finish()
    codes = [e["code"] for e in _events(pipe.drain(100_000))]
    assert "baseline_suspect" not in codes and pipe.scored + 400 == n_rows
