"""The anomaly models with history or envelope features run on the gateway exactly as
trained: the real recordings (SKAB valve1, NAB machine temperature, CWRU bearings) go
through the gateway's sources, windows, history inputs and ONNX scoring
(renkei.edge.pipeline.MachinePipeline) and must give the training recipes' numbers
(renkei.models.profiles.skab_z, nab_stream, cwru). Needs ../shared/datasets (fails in CI
without it, skips with a message elsewhere)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from renkei.core.manifest import read_manifest
from renkei.edge.agent import build_source, source_streams
from renkei.edge.config import GatewayConfig, ShadowConfig, load_config
from renkei.edge.features.history import history_features
from renkei.edge.model.inference import AnomalyModel
from renkei.edge.pipeline import MachinePipeline, OutboxItem
from renkei.edge.rollout.shadow import shadow_check
from renkei.edge.sources.live import LiveSource
from renkei.models.artifact import make_session, run_outputs
from renkei.models.profiles import cwru, nab_stream, skab_z
from tests.datasets import require_data_dir

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "models" / "artifacts"
CWRU_VIBRATION = {
    "bands_hz": [[0, 500], [500, 2000], [2000, 4500]],
    "envelope": {"demod_band_hz": [2000, 4500], "band_hz": [5, 500]},
}


def _pipeline(machine: dict[str, Any], model: str) -> tuple[MachinePipeline, GatewayConfig]:
    gw = GatewayConfig.model_validate(
        {"gateway_id": "gw-data", "firm": "acme", "site": "lab", "machines": [machine]}
    )
    m = gw.machines[0]
    pipe = MachinePipeline(
        machine=m, gateway=gw, model=AnomalyModel.load(model_dir=ARTIFACTS / model)
    )
    return pipe, gw


def _run(pipe: MachinePipeline, *, limit_blocks: int | None = None) -> list[OutboxItem]:
    src = build_source(pipe.machine, start_ms=0)
    assert not isinstance(src, LiveSource)
    pipe.start(publish_start_ms=1_750_000_000_000, streams=source_streams(src))
    for i, block in enumerate(src.blocks()):
        if limit_blocks is not None and i >= limit_blocks:
            return pipe.drain(1_000_000)
        pipe.process(block)
    pipe.finish()
    return pipe.drain(1_000_000)


def _rows(items: list[OutboxItem], kind: str) -> tuple[list[int], dict[str, list[Any]]]:
    ts: list[int] = []
    fields: dict[str, list[Any]] = {}
    for topic, build in items:
        if topic.endswith(f"/{kind}"):
            msg = orjson.loads(build(0))
            if kind == "event":
                ts += [e["t_ms"] for e in msg["events"]]
                fields.setdefault("code", []).extend(e["code"] for e in msg["events"])
                continue
            ts += msg["ts_ms"]
            for k, v in msg["fields"].items():
                fields.setdefault(k, []).extend(v)
    return ts, fields


def _onnx_scores(model: str, x: np.ndarray) -> np.ndarray:
    session = make_session((ARTIFACTS / model / "model.onnx").read_bytes())
    return np.asarray(run_outputs(session, x)["score"], dtype=np.float64)


def _skab_machine(data: Path, run: str = "1") -> dict[str, Any]:
    return {
        "id": "pump-1",
        "area": "utilities",
        "line": "loop",
        "window_s": 1,
        "source": {
            "type": "replay",
            "preset": "skab",
            "path": str(data / f"skab/data/valve1/{run}.csv"),
            "timestamps": "keep",
        },
    }


def test_skab_pump_mahal_on_the_gateway_equals_the_recipe() -> None:
    data = require_data_dir()
    pipe, _ = _pipeline(_skab_machine(data), "skab-pump-mahal")
    _, scores = _rows(_run(pipe), "anomaly")
    runs = {r.path: r for r in skab_z.build(data).runs}
    run = runs["skab/data/valve1/1.csv"]
    fields = [
        i.name.removesuffix("_zm10") for i in read_manifest(ARTIFACTS / "skab-pump-mahal").inputs
    ]
    kept = [skab_z.build(data).fields.index(f) for f in fields]
    ref = _onnx_scores("skab-pump-mahal", skab_z.run_features(run.x, kept))
    # the 400 baseline rows are not scored; every later row is, with the recipe's score
    assert pipe.scored == run.x.shape[0] - 400 and pipe.unscored == 0
    np.testing.assert_allclose(scores["score"], ref[400:], rtol=1e-6, atol=1e-6)
    flagged = np.asarray(scores["is_anomaly"], dtype=bool)
    labels = run.labels[400:].astype(bool)
    assert flagged[labels].mean() > 0.5 and flagged[~labels].mean() < 0.2


def test_a_history_model_switched_in_keeps_scoring_and_shadow_rows_are_its_inputs() -> None:
    data = require_data_dir()
    pipe, _ = _pipeline(_skab_machine(data), "skab-pump-mahal")
    src = build_source(pipe.machine, start_ms=0)
    assert not isinstance(src, LiveSource)
    pipe.start(publish_start_ms=1_750_000_000_000, streams=source_streams(src))
    blocks = iter(src.blocks())
    while len(pipe.recent_rows("window")) < 50:  # fewer rows than the 400-row baseline
        pipe.process(next(blocks))
    assert pipe.scored == 0 and 0 < pipe.baseline_pending < 400
    assert pipe.status()["baseline_pending"] == pipe.baseline_pending
    model = AnomalyModel.load(model_dir=ARTIFACTS / "skab-pump-mahal")
    assert pipe.shadow_rows(model) == []  # no baseline yet: nothing to shadow-check on
    while len(pipe.recent_rows("window")) < pipe.machine.recent_rows:
        pipe.process(next(blocks))
    shadow = pipe.shadow_rows(model)
    assert len(shadow) == pipe.machine.recent_rows - 400
    assert set(shadow[0]) == set(model.input_names)
    assert all(np.isfinite(list(r.values())).all() for r in shadow)
    check = shadow_check(model, pipe.model, shadow, ShadowConfig(min_windows=8))
    assert check.ok, check.reason
    assert check.checks["windows"] == len(shadow)
    scored = pipe.scored
    pipe.set_model(model)  # warmed up on the recent rows: no new 400-row wait
    assert pipe.baseline_pending == 0
    for _ in range(5):
        pipe.process(next(blocks))
    assert pipe.scored > scored


def test_nab_temp_stream_on_the_gateway_equals_the_recipe_and_alarms_4_times() -> None:
    data = require_data_dir()
    machine = {
        "id": "machine-7",
        "area": "assembly",
        "line": "line-2",
        "window_s": 300,
        "source": {
            "type": "replay",
            "preset": "nab",
            "path": str(data / nab_stream.FILE),
            "timestamps": "keep",
        },
    }
    pipe, _ = _pipeline(machine, "nab-temp-stream")
    items = _run(pipe)
    ts, scores = _rows(items, "anomaly")
    nd = nab_stream.build(data)
    ref = _onnx_scores("nab-temp-stream", history_features(nd.x[:, None], nab_stream.CONFIG))
    assert len(ts) == nd.x.size  # one 5 min window per sample
    np.testing.assert_allclose(scores["score"], ref, rtol=1e-6, atol=1e-6)
    threshold = read_manifest(ARTIFACTS / "nab-temp-stream").threshold
    onsets_ref = np.flatnonzero(nab_stream.detections(ref, threshold))
    ev_ts, ev = _rows(items, "event")
    onsets = [t for t, code in zip(ev_ts, ev["code"], strict=True) if code == "anomaly_onset"]
    assert len(onsets) == len(onsets_ref) == 4
    assert onsets == [ts[i] for i in onsets_ref]
    # each onset lies inside one of NAB's labelled windows (rows → times)
    for i in onsets_ref:
        assert any(a <= i <= b for a, b in nd.windows)


@pytest.mark.parametrize("cls", list(cwru.CLASSES))
def test_cwru_bearing_mahal_on_the_gateway_equals_the_recipe(cls: str) -> None:
    data = require_data_dir()
    rel = cwru.CLASSES[cls][0]
    normal = cls == "normal"  # the normal record is 48 kHz: decimated to 12 kHz like the recipe
    machine = {
        "id": "motor-1",
        "area": "pumps",
        "line": "test-rig",
        "window_s": 0.2,
        "vibration": CWRU_VIBRATION,
        "source": {
            "type": "waveform_replay",
            "path": str(data / rel),
            "sample_rate_hz": 48_000 if normal else 12_000,
            "decimate": 4 if normal else 1,
            "label": 0 if normal else 1,
        },
    }
    pipe, _ = _pipeline(machine, "cwru-bearing-mahal")
    items = _run(pipe)
    _, feats = _rows(items, "features")
    _, scores = _rows(items, "anomaly")
    record = cwru.build(data).records[cls]
    segs = cwru.windows(record.x)[::2]  # hop = half a window: the gateway's tumbling windows
    ref = cwru.window_features(segs)
    names = read_manifest(ARTIFACTS / "cwru-bearing-mahal").input_names
    got = np.array([feats[n][: len(segs)] for n in names]).T
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(
        scores["score"][: len(segs)], _onnx_scores("cwru-bearing-mahal", ref), rtol=1e-5
    )
    flagged = np.asarray(scores["is_anomaly"][: len(segs)], dtype=bool)
    assert (not flagged.any()) if normal else flagged.all()


def test_example_configs_run_the_new_models() -> None:
    data = require_data_dir()
    models = {}
    for name in ("skab-pump.yaml", "nab-machine.yaml", "cwru-bearing.yaml"):
        cfg = load_config(REPO / "firmware-config" / name, data_dir=data)
        for m in cfg.machines:
            assert m.model is not None
            models[m.id] = m.model.dir.name
            MachinePipeline(machine=m, gateway=cfg, model=AnomalyModel.load(model_dir=m.model.dir))
    assert set(models.values()) == {"skab-pump-mahal", "nab-temp-stream", "cwru-bearing-mahal"}
