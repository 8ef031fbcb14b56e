"""RUL models on the gateway (renkei.edge.model.rul): input plans, parity with the training rows of
renkei.models.profiles.mold, ``mold`` rows on the wire and in line protocol, config checks."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
import yaml

from renkei.cloud.ingest.lineproto import encode_message
from renkei.core.influx import contract
from renkei.core.manifest import read_manifest
from renkei.core.wire import MachineKind, WireError, decode_machine_payload, parse_topic
from renkei.edge.config import ConfigError, GatewayConfig, load_config
from renkei.edge.model.inference import AnomalyModel
from renkei.edge.model.rul import RulOutput, RulPlanError, RulRunner, plan_inputs
from renkei.edge.pipeline import MachinePipeline
from renkei.edge.sources import FaultSpec, SimulatedCell, SimulatorOptions
from renkei.models.artifact import make_session, run_outputs
from renkei.models.profiles import mold

REPO = Path(__file__).resolve().parents[2]
MOLD_MODEL = REPO / "models" / "artifacts" / "mold-maint-rul"
CMAPSS_MODEL = REPO / "models" / "artifacts" / "cmapss-fd001-rul"
CELL_MODEL = REPO / "models" / "artifacts" / "cell-t2"
PUB_START = 1_750_000_000_000
SEED = 2003  # an evaluation run of the recipe (never fitted)


@pytest.fixture(scope="module")
def mold_model() -> AnomalyModel:
    return AnomalyModel.load(model_dir=MOLD_MODEL)


def _gateway(mold_cfg: dict[str, Any] | None) -> GatewayConfig:
    entry: dict[str, Any] = {"dir": str(MOLD_MODEL)}
    if mold_cfg is not None:
        entry["mold"] = mold_cfg
    return GatewayConfig.model_validate(
        {
            "gateway_id": "gw-rul",
            "firm": "acme",
            "site": "osaka",
            "machines": [
                {
                    "id": "imm-1",
                    "area": "molding",
                    "line": "line-1",
                    "source": {"type": "simulated", "seed": SEED, "streams": ["shot"]},
                    "models": [entry],
                }
            ],
        }
    )


def _recipe_options(seed: int) -> SimulatorOptions:
    """The simulator options of ``mold.simulate_run(seed)`` (same draws, same order)."""
    rng = np.random.default_rng(seed)
    onset = int(rng.integers(*mold.ONSET_SHOTS))
    ramp = int(rng.integers(*mold.RAMP_SHOTS))
    return SimulatorOptions(
        seed=seed,
        start_ms=1_700_000_000_000,
        duration_s=(onset + ramp + mold.AFTER_DUE + 1) * mold.CYCLE_S,
        streams=("shot",),
        cycle_time_s=mold.CYCLE_S,
        faults=(FaultSpec("mold_wear", start_s=onset * mold.CYCLE_S, ramp_s=ramp * mold.CYCLE_S),),
    )


def _run_pipeline(
    gateway: GatewayConfig, model: AnomalyModel, seed: int
) -> tuple[MachinePipeline, list[RulOutput], list[Any]]:
    machine = gateway.machines[0]
    pipe = MachinePipeline(
        machine=machine, gateway=gateway, model=None, rul_models=[(machine.models[0], model)]
    )
    runner = pipe.rul[0].runner
    seen: list[RulOutput] = []
    push = runner.push

    def record(t_ms: int, row: Any) -> list[RulOutput]:
        out = push(t_ms, row)
        seen.extend(out)
        return out

    runner.push = record  # type: ignore[method-assign]
    pipe.start(publish_start_ms=PUB_START, streams={"shot"})
    for block in SimulatedCell(_recipe_options(seed)).blocks():
        pipe.process(block)
    pipe.finish()
    now = time.time_ns() // 1_000_000
    msgs = [
        (parse_topic(t), decode_machine_payload(b(0), now_ms=now)) for t, b in pipe.drain(10_000)
    ]
    return pipe, seen, msgs


def test_plan_of_the_mold_model_is_the_recipe_config() -> None:
    plan = plan_inputs(read_manifest(MOLD_MODEL))
    assert plan.history == mold.CONFIG
    assert plan.fields == mold.FIELDS


def test_plan_of_the_cmapss_model_rebuilds_its_inputs() -> None:
    manifest = read_manifest(CMAPSS_MODEL)
    plan = plan_inputs(manifest)
    # 2.0.0: history of the regime fields, no frozen baseline (a RUL from the first cycle)
    assert plan.history is not None and plan.history.baseline_rows == 0
    assert plan.names == manifest.input_names
    assert all(f.endswith(("_rn", "_rb")) for f in plan.fields)


def test_cmapss_plan_refuses_a_broken_regime_table() -> None:
    manifest = read_manifest(CMAPSS_MODEL)
    params = {**manifest.algorithm_params, "regime_sd": "1,2"}
    with pytest.raises(RulPlanError, match="regime_mean and regime_sd"):
        plan_inputs(manifest.model_copy(update={"algorithm_params": params}))


def test_pipeline_rows_equal_the_training_rows(mold_model: AnomalyModel) -> None:
    """Gateway inputs and outputs for a seed = the recipe's rows and the ONNX outputs."""
    run = mold.simulate_run(SEED)
    expected = mold.run_features(run)
    _, seen, msgs = _run_pipeline(
        _gateway({"id": "M-1", "maintenance_interval_shots": 20000}), mold_model, SEED
    )
    assert len(seen) == run.x.shape[0] == expected.shape[0]
    got = np.vstack([o.inputs for o in seen if o.inputs is not None])
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)
    ref = run_outputs(make_session((MOLD_MODEL / "model.onnx").read_bytes()), expected)
    np.testing.assert_allclose(np.array([o.rul for o in seen], dtype=float), ref["rul"], rtol=1e-6)
    assert [o.in_baseline for o in seen] == [i < mold.REFERENCE_SHOTS for i in range(len(seen))]

    # one mold row per shot, at the shots' published times, in order
    (_, payload), *rest = [(t, p) for t, p in msgs if t.kind is MachineKind.MOLD]
    assert not rest and payload.tags == {"mold": "M-1"}
    shots = [p for t, p in msgs if t.kind is MachineKind.SHOT]
    assert payload.ts_ms == [t for p in shots for t in p.ts_ms]
    f = payload.fields
    assert f["shot_count"] == [float(i + 1) for i in range(len(seen))]
    remaining = np.array(f["remaining_shots"], dtype=float)
    assert np.all(remaining[: run.onset] == 20000 - np.arange(1, run.onset + 1))
    assert remaining[run.due] < 10 and remaining[-1] < 5
    # from engagement on, remaining shots follow the truth within the model's error
    engaged = remaining < 20000 - np.arange(1, len(remaining) + 1)
    assert engaged.sum() > 100
    err = remaining[engaged] - run.remaining[engaged]
    assert float(np.sqrt(np.mean(err**2))) < 40


def test_rul_rows_without_a_mold(mold_model: AnomalyModel) -> None:
    pipe, seen, msgs = _run_pipeline(_gateway(None), mold_model, SEED)
    (_, payload), *rest = [(t, p) for t, p in msgs if t.kind is MachineKind.RUL]
    assert not rest and payload.tags == {"model": "mold-maint-rul"}
    assert len(payload.ts_ms) == len(seen) - mold.REFERENCE_SHOTS
    assert set(payload.fields) == {"rul_cycles", "rul_p10", "rul_p90", "rul_h"}
    assert payload.fields["rul_cycles"] == [o.rul for o in seen[mold.REFERENCE_SHOTS :]]
    assert pipe.rul[0].runner.model_errors == 0


def test_mold_row_line_protocol_equals_the_contract() -> None:
    now = time.time_ns() // 1_000_000
    fields = {
        "shot_count": [1234.0],
        "shots_since_maintenance": [234.0],
        "maintenance_interval_shots": [20000.0],
        "remaining_shots": [87.25],
        "remaining_shots_p10": [70.5],
        "remaining_shots_p90": [101.0],
    }
    payload = orjson.dumps(
        {
            "v": 1,
            "gw": "gw-1",
            "seq": 0,
            "sent_ms": now,
            "kind": "mold",
            "ts_ms": [now - 5],
            "fields": fields,
            "tags": {"mold": "M-7"},
        }
    )
    body = encode_message("renkei/v1/f/s/a/l/imm-1/mold", payload, now_ms=now).body
    tags = contract.MachineTags(firm="f", site="s", area="a", line="l", machine="imm-1", gw="gw-1")
    assert body == contract.mold_point(
        tags,
        time_ms=now - 5,
        mold="M-7",
        shot_count=1234,
        shots_since_maintenance=234,
        maintenance_interval_shots=20000,
        remaining_shots=87.25,
        remaining_shots_p10=70.5,
        remaining_shots_p90=101.0,
    )


def test_rul_row_line_protocol_equals_the_contract() -> None:
    now = time.time_ns() // 1_000_000
    fields = {"rul_cycles": [120.5], "rul_p10": [90.0], "rul_p90": [150.25], "rul_h": [0.5]}
    payload = orjson.dumps(
        {
            "v": 1,
            "gw": "gw-1",
            "seq": 0,
            "sent_ms": now,
            "kind": "rul",
            "ts_ms": [now],
            "fields": fields,
            "tags": {"model": "m-rul"},
        }
    )
    body = encode_message("renkei/v1/f/s/a/l/imm-1/rul", payload, now_ms=now).body
    tags = contract.MachineTags(firm="f", site="s", area="a", line="l", machine="imm-1", gw="gw-1")
    assert body == contract.rul_point(
        tags, time_ms=now, model="m-rul", rul_cycles=120.5, rul_p10=90.0, rul_p90=150.25, rul_h=0.5
    )


def test_mold_counters_must_be_whole_numbers() -> None:
    now = time.time_ns() // 1_000_000
    payload = orjson.dumps(
        {
            "v": 1,
            "gw": "gw-1",
            "seq": 0,
            "sent_ms": now,
            "kind": "mold",
            "ts_ms": [now],
            "fields": {"shot_count": [1.5]},
        }
    )
    with pytest.raises(WireError) as info:
        decode_machine_payload(payload, now_ms=now)
    assert info.value.reason == "invalid_payload" and "shot_count" in info.value.detail


def test_runner_without_history_takes_row_features(mold_model: AnomalyModel) -> None:
    plan = plan_inputs(mold_model.manifest)
    runner = RulRunner(mold_model, plan)
    assert runner.push(0, {"cycle_time_s": 20.0}) == []  # baseline being collected
    assert runner.baseline_rows == mold.REFERENCE_SHOTS


def _write(tmp_path: Path, models: list[dict[str, Any]]) -> Path:
    cfg = {
        "gateway_id": "gw-test",
        "firm": "acme",
        "site": "plant-1",
        "machines": [
            {
                "id": "m1",
                "area": "molding",
                "line": "line-1",
                "source": {"type": "simulated", "seed": 3},
                "models": models,
            }
        ],
    }
    path = tmp_path / "gw.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_config_accepts_a_mold_model(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        [{"dir": str(MOLD_MODEL), "mold": {"id": "M-1", "maintenance_interval_shots": 500}}],
    )
    cfg = load_config(path)
    assert cfg.machines[0].models[0].mold is not None


@pytest.mark.parametrize(
    ("entry", "key", "text"),
    [
        ({"dir": str(CELL_MODEL)}, "machines[0].models[0].dir", "not 'rul'"),
        ({"dir": "nowhere"}, "machines[0].models[0].dir", "no manifest.json"),
        (
            {"dir": str(MOLD_MODEL), "mold": {"id": "M-1"}},
            "machines[0].models[0].mold.maintenance_interval_shots",
            "Field required",
        ),
        ({"dir": str(MOLD_MODEL), "rul_cap": 3}, "machines[0].models[0].rul_cap", "unknown key"),
    ],
)
def test_config_rejects_bad_rul_models(
    tmp_path: Path, entry: dict[str, Any], key: str, text: str
) -> None:
    path = _write(tmp_path, [entry])
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value)
    assert any(k == key and text in msg for k, msg in info.value.problems), info.value.problems
