"""MachinePipeline on the simulated cell with the cell-t2 model: blocks -> wire messages."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from renkei.core.wire import (
    MachineKind,
    MachinePayload,
    MachineTopic,
    decode_machine_payload,
    parse_topic,
)
from renkei.edge.config import GatewayConfig, load_config
from renkei.edge.model.inference import AnomalyModel, ModelInputError
from renkei.edge.pipeline import MachinePipeline
from renkei.edge.sources import FAULT_CODES, FaultSpec, SampleBlock, SimulatedCell, SimulatorOptions

REPO = Path(__file__).resolve().parents[2]
CELL_MODEL = REPO / "models" / "artifacts" / "cell-t2"
SRC_START = 1_700_000_000_000  # data time of the simulator's t = 0
PUB_START = 1_750_000_000_000  # published time of the first sample (re-basing)
STREAMS = {"slow", "vibration", "shot"}
SECONDS = 30


def _gateway(**machine: Any) -> GatewayConfig:
    m: dict[str, Any] = {
        "id": "imm-1",
        "area": "molding",
        "line": "line-1",
        "source": {"type": "simulated", "seed": 7},
        "window_s": 1,
        "model": {"dir": str(CELL_MODEL)},
    }
    m.update(machine)
    return GatewayConfig.model_validate(
        {"gateway_id": "gw-pipe", "firm": "acme", "site": "osaka", "machines": [m]}
    )


@pytest.fixture(scope="module")
def cell_model() -> AnomalyModel:
    return AnomalyModel.load(model_dir=CELL_MODEL)


def _blocks(
    *,
    seed: int = 7,
    start_ms: int = SRC_START,
    seconds: float = SECONDS,
    faults: tuple[FaultSpec, ...] = (),
    extra: int = 0,
) -> list[SampleBlock]:
    opts = SimulatorOptions(
        seed=seed, start_ms=start_ms, duration_s=seconds, faults=faults, extra_slow_channels=extra
    )
    return list(SimulatedCell(opts).blocks())


@dataclass
class Run:
    pipeline: MachinePipeline
    blocks: list[SampleBlock]
    messages: list[tuple[MachineTopic, MachinePayload]]

    def of(self, kind: MachineKind) -> list[MachinePayload]:
        return [p for t, p in self.messages if t.kind is kind]

    def ts(self, kind: MachineKind) -> list[int]:
        return [t for p in self.of(kind) for t in p.ts_ms]

    def column(self, kind: MachineKind, name: str) -> list[float | None]:
        return [v for p in self.of(kind) for v in p.fields[name]]


def _run(
    model: AnomalyModel | None,
    blocks: Iterable[SampleBlock],
    *,
    gateway: GatewayConfig | None = None,
    drain_every: int = 7,
    finish: bool = False,
    pub_start: int = PUB_START,
    max_rows: int = 1_000,
) -> Run:
    """Feed blocks like the agent does, draining every few blocks; decode every message."""
    gw = gateway or _gateway()
    pipe = MachinePipeline(machine=gw.machines[0], gateway=gw, model=model)
    pipe.start(publish_start_ms=pub_start, streams=STREAMS)
    blocks = list(blocks)
    items = []
    for i, block in enumerate(blocks, 1):
        pipe.process(block)
        if i % drain_every == 0:
            items.extend(pipe.drain(max_rows))
    if finish:
        pipe.finish()
    items.extend(pipe.drain(max_rows))
    messages = []
    for seq, (topic, build) in enumerate(items):
        parsed = parse_topic(topic)
        assert isinstance(parsed, MachineTopic)
        payload = decode_machine_payload(build(seq))
        assert payload.seq == seq
        messages.append((parsed, payload))
    return Run(pipe, blocks, messages)


@pytest.fixture(scope="module")
def normal_run(cell_model: AnomalyModel) -> Run:
    return _run(cell_model, _blocks())


def _pub(t_ms: int, src_start: int = SRC_START, pub_start: int = PUB_START) -> int:
    return pub_start + (t_ms - src_start)


# --------------------------------------------------------------------------- construction


def test_window_mismatch_with_manifest_raises(cell_model: AnomalyModel) -> None:
    gw = _gateway(window_s=10)
    with pytest.raises(ModelInputError, match=r"window_s"):
        MachinePipeline(machine=gw.machines[0], gateway=gw, model=cell_model)


def test_config_file_to_pipeline(tmp_path: Path, cell_model: AnomalyModel) -> None:
    path = tmp_path / "gw.yaml"
    path.write_text(
        "gateway_id: gw-yaml\nfirm: acme\nsite: osaka\nmachines:\n"
        "  - id: imm-1\n    area: molding\n    line: line-1\n"
        "    source: {type: simulated, seed: 7}\n    window_s: 1\n"
        f"    model: {{dir: {CELL_MODEL}}}\n",
        encoding="utf-8",
    )
    gw = load_config(path)
    run = _run(cell_model, _blocks(seconds=5), gateway=gw)
    assert run.of(MachineKind.ANOMALY)
    assert all(p.gw == "gw-yaml" for _, p in run.messages)


# --------------------------------------------------------------------------- normal run


def test_topics_and_payloads(normal_run: Run) -> None:
    kinds = {t.kind for t, _ in normal_run.messages}
    assert kinds == {
        MachineKind.TELEMETRY,
        MachineKind.FEATURES,
        MachineKind.ANOMALY,
        MachineKind.SHOT,
        MachineKind.LABEL,
        MachineKind.OEE,
    }
    for topic, payload in normal_run.messages:
        assert (topic.firm, topic.site, topic.area, topic.line, topic.machine) == (
            "acme",
            "osaka",
            "molding",
            "line-1",
            "imm-1",
        )
        assert payload.kind is topic.kind
        assert payload.gw == "gw-pipe"


def test_each_window_once_in_features_and_anomaly(normal_run: Run) -> None:
    feats = normal_run.ts(MachineKind.FEATURES)
    # windows [k s, (k+1) s) stamped at their end; the last one is still open (no finish)
    assert feats == [_pub(SRC_START + 1000 * k) for k in range(1, SECONDS)]
    assert normal_run.ts(MachineKind.ANOMALY) == feats


def test_model_scores_every_window(normal_run: Run, cell_model: AnomalyModel) -> None:
    pipe = normal_run.pipeline
    assert pipe.unscored == 0
    assert pipe.scored == len(normal_run.ts(MachineKind.FEATURES))
    for payload in normal_run.of(MachineKind.FEATURES):
        for name in cell_model.input_names:
            assert all(v is not None for v in payload.fields[name]), name


def test_anomaly_rows(normal_run: Run, cell_model: AnomalyModel) -> None:
    for payload in normal_run.of(MachineKind.ANOMALY):
        assert set(payload.fields) == {"score", "threshold", "is_anomaly"}
        assert payload.tags == {"model": "cell-t2"}
    scores = normal_run.column(MachineKind.ANOMALY, "score")
    thresholds = normal_run.column(MachineKind.ANOMALY, "threshold")
    flags = normal_run.column(MachineKind.ANOMALY, "is_anomaly")
    assert all(t == pytest.approx(cell_model.threshold) for t in thresholds)
    for s, t, f in zip(scores, thresholds, flags, strict=True):
        assert s is not None and t is not None
        assert f == float(s > t)
    # a healthy simulated cell stays below the threshold and raises no event
    assert flags == [0.0] * len(flags)
    assert normal_run.of(MachineKind.EVENT) == []


def test_telemetry_rows_are_the_slow_samples(normal_run: Run) -> None:
    slow = [b for b in normal_run.blocks if b.stream == "slow"]
    times = [t for b in slow for t in b.t_ms.tolist()]
    assert len(times) == SECONDS * 10
    assert normal_run.ts(MachineKind.TELEMETRY) == [_pub(t) for t in times]
    names = set(slow[0].fields)
    for payload in normal_run.of(MachineKind.TELEMETRY):
        assert set(payload.fields) == names
    for name in ("oil_temp_C", "clamp_force_kN"):
        want = [float(v) for b in slow for v in b.fields[name].tolist()]
        assert normal_run.column(MachineKind.TELEMETRY, name) == want


def test_shots_carry_shot_count(normal_run: Run) -> None:
    shots = [b for b in normal_run.blocks if b.stream == "shot"]
    assert shots
    assert normal_run.ts(MachineKind.SHOT) == [_pub(int(b.t_ms[0])) for b in shots]
    counts = normal_run.column(MachineKind.SHOT, "shot_count")
    assert counts == [float(i) for i in range(1, len(shots) + 1)]
    for payload in normal_run.of(MachineKind.SHOT):
        assert "cavity_pressure_peak_bar" in payload.fields


def test_labels_published(normal_run: Run) -> None:
    n_windows = len(normal_run.ts(MachineKind.FEATURES))
    n_shots = len(normal_run.ts(MachineKind.SHOT))
    labels = normal_run.column(MachineKind.LABEL, "fault")
    assert len(labels) == n_windows + n_shots
    assert set(labels) == {0.0}
    assert set(normal_run.ts(MachineKind.FEATURES)) <= set(normal_run.ts(MachineKind.LABEL))


def test_status_snapshot(normal_run: Run) -> None:
    status = normal_run.pipeline.status()
    assert status["source"] == "simulated:cell"
    assert status["anomaly"] is False
    assert status["anomalies"] == 0
    assert status["rows"] == SECONDS * 10 + len(normal_run.ts(MachineKind.SHOT))
    assert status["finished"] is False


# --------------------------------------------------------------------------- variations


@pytest.mark.parametrize("offset_ms", [1, 123, 500, 950, 999])
def test_unaligned_start_each_window_once(cell_model: AnomalyModel, offset_ms: int) -> None:
    """Windows are aligned to epoch multiples of window_s, so the first one is partial."""
    start = SRC_START + offset_ms
    run = _run(cell_model, _blocks(start_ms=start, seconds=12), drain_every=3)
    feats = run.ts(MachineKind.FEATURES)
    # a window is complete once slow data at/after its end was seen (vibration ends later)
    last_slow = max(int(b.t_ms[-1]) for b in run.blocks if b.stream == "slow")
    ends = range(SRC_START + 1000, last_slow + 1, 1000)
    assert len(ends) >= 11
    assert feats == [_pub(e, start) for e in ends]
    anomaly = run.ts(MachineKind.ANOMALY)
    # only the first, partial window may lack a complete feature set
    assert run.pipeline.unscored <= 1
    assert anomaly == feats[run.pipeline.unscored :]


def test_finish_flushes_last_window_once(cell_model: AnomalyModel) -> None:
    run = _run(cell_model, _blocks(seconds=10), drain_every=2, finish=True)
    feats = run.ts(MachineKind.FEATURES)
    assert feats == [_pub(SRC_START + 1000 * k) for k in range(1, 11)]
    assert run.ts(MachineKind.ANOMALY) == feats
    assert run.pipeline.finished


def test_small_max_rows_splits_messages(cell_model: AnomalyModel) -> None:
    run = _run(cell_model, _blocks(seconds=6), drain_every=100, max_rows=7)
    assert all(len(p.ts_ms) <= 7 for _, p in run.messages)
    assert len(run.ts(MachineKind.TELEMETRY)) == 60


def test_without_model_no_anomaly_rows() -> None:
    gw = _gateway(model=None)
    run = _run(None, _blocks(seconds=5), gateway=gw)
    assert run.of(MachineKind.ANOMALY) == []
    assert len(run.ts(MachineKind.FEATURES)) == 4


def test_publish_switches(cell_model: AnomalyModel) -> None:
    gw = _gateway(publish_telemetry=False, publish_labels=False)
    run = _run(cell_model, _blocks(seconds=25), gateway=gw)
    assert run.of(MachineKind.TELEMETRY) == []
    assert run.of(MachineKind.LABEL) == []
    assert run.of(MachineKind.FEATURES)
    assert run.of(MachineKind.SHOT)


# --------------------------------------------------------------------------- faults

FAULT_AT_S = 5.0


@pytest.fixture(scope="module")
def fault_run(cell_model: AnomalyModel) -> Run:
    faults = (FaultSpec("bearing_wear", start_s=FAULT_AT_S),)
    return _run(cell_model, _blocks(faults=faults))


def test_bearing_wear_raises_anomaly_onset(fault_run: Run) -> None:
    events = [e for p in fault_run.of(MachineKind.EVENT) for e in p.events]
    onsets = [e for e in events if e.code == "anomaly_onset"]
    assert onsets
    assert onsets[0].severity == "warning"
    assert "cell-t2" in onsets[0].message
    assert all(e.t_ms in fault_run.ts(MachineKind.ANOMALY) for e in events)
    assert fault_run.pipeline.anomalies >= 1
    assert fault_run.pipeline.status()["last_event"] is not None
    # once the fault is established every window is flagged
    flags = dict(
        zip(
            fault_run.ts(MachineKind.ANOMALY),
            fault_run.column(MachineKind.ANOMALY, "is_anomaly"),
            strict=True,
        )
    )
    late = {t: f for t, f in flags.items() if t > _pub(SRC_START + 7_000)}
    assert late
    assert set(late.values()) == {1.0}


def test_bearing_wear_labels(fault_run: Run) -> None:
    code = float(FAULT_CODES["bearing_wear"])
    feats = set(fault_run.ts(MachineKind.FEATURES))
    labels = {
        t: v
        for t, v in zip(
            fault_run.ts(MachineKind.LABEL),
            fault_run.column(MachineKind.LABEL, "fault"),
            strict=True,
        )
        if t in feats
    }
    fault_pub = _pub(SRC_START + int(FAULT_AT_S * 1000))
    assert {v for t, v in labels.items() if t <= fault_pub} == {0.0}
    assert {v for t, v in labels.items() if t > fault_pub} == {code}


def test_no_alarm_before_fault_starts(fault_run: Run) -> None:
    fault_pub = _pub(SRC_START + int(FAULT_AT_S * 1000))
    flags = zip(
        fault_run.ts(MachineKind.ANOMALY),
        fault_run.column(MachineKind.ANOMALY, "is_anomaly"),
        strict=True,
    )
    assert [t for t, f in flags if t <= fault_pub and f] == []


def test_window_labels_at_window_times(cell_model: AnomalyModel) -> None:
    # seed 9: first shot ends at 20.124 s, before window [19 s, 20 s) is emitted
    run = _run(cell_model, _blocks(seed=9))
    stray = (
        set(run.ts(MachineKind.LABEL))
        - set(run.ts(MachineKind.FEATURES))
        - set(run.ts(MachineKind.SHOT))
    )
    assert stray == set()


def test_wide_cell_features_are_valid_messages() -> None:
    gw = _gateway(model=None, source={"type": "simulated", "seed": 7, "extra_slow_channels": 60})
    run = _run(None, _blocks(seconds=3, extra=60), gateway=gw)
    assert run.of(MachineKind.FEATURES)


def test_label_kinds_cover_windows_and_shots(fault_run: Run) -> None:
    by_kind: dict[MachineKind, int] = defaultdict(int)
    for topic, payload in fault_run.messages:
        by_kind[topic.kind] += len(payload.ts_ms) or len(payload.events)
    assert by_kind[MachineKind.LABEL] == by_kind[MachineKind.FEATURES] + by_kind[MachineKind.SHOT]
    assert by_kind[MachineKind.ANOMALY] == by_kind[MachineKind.FEATURES]
