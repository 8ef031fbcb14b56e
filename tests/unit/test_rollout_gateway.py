"""Gateway side of the rollout without a broker: verification, shadow check, atomic switch,
probation rollback, persistence and restore at start-up.

A real :class:`~renkei.edge.pipeline.MachinePipeline` (one slow signal ``v``, 1 s windows) is fed
by the test thread, which also plays the agent's main loop (it runs the rollout's pending
main-thread calls between blocks). Releases are put into the gateway's store beforehand,
so no download happens unless a test wants one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.wait import pause
from renkei.core.manifest import MANIFEST_FILE
from renkei.core.signing import generate_private_key, public_key_text
from renkei.core.wire import DeployResult, DesiredModel
from renkei.edge.config import GatewayConfig, ShadowConfig
from renkei.edge.model.inference import AnomalyModel
from renkei.edge.pipeline import MachinePipeline
from renkei.edge.rollout import ModelRollout, shadow_check
from renkei.edge.sources.base import SampleBlock
from tests.rollout_helpers import (
    abs_onnx,
    desired_entry,
    nan_onnx,
    sqrt_neg_onnx,
    synthetic_model,
)

NAME = "synth-t2"
KEY = generate_private_key()
OTHER_KEY = generate_private_key()


class FakeAgent:
    """The parts of GatewayAgent the rollout uses; the test thread is its main loop."""

    def __init__(self, config: GatewayConfig, model: AnomalyModel) -> None:
        self.config = config
        self.models = {"m1": model}
        self.pipelines = {
            "m1": MachinePipeline(machine=config.machines[0], gateway=config, model=model)
        }
        self.pipelines["m1"].start(publish_start_ms=1_700_000_000_000, streams={"slow"})
        self.t_ms = 1_700_000_000_000

    def feed(self, value: float, seconds: int = 1) -> None:
        """``seconds`` of the signal at 10 Hz (one 1 s window per second)."""
        for _ in range(seconds):
            t = self.t_ms + np.arange(10, dtype=np.int64) * 100
            self.t_ms += 1000
            self.pipelines["m1"].process(
                SampleBlock(
                    stream="slow",
                    t_ms=t,
                    fields={"v": np.full(10, value, dtype=np.float64)},
                    labels=None,
                    sample_rate_hz=None,
                )
            )


def _config(tmp_path: Path, v1: Path, **rollout: Any) -> GatewayConfig:
    machine: dict[str, Any] = {
        "id": "m1",
        "area": "a",
        "line": "l",
        "source": {"type": "simulated"},
        "window_s": 1,
        "model": {"dir": str(v1)} | rollout.pop("model", {}),
    }
    return GatewayConfig.model_validate(
        {
            "gateway_id": "gw-1",
            "firm": "acme",
            "site": "s1",
            "state_dir": str(tmp_path / "state"),
            "machines": [machine],
            "rollout": {
                "api_url": "http://127.0.0.1:9",
                "trusted_keys": [public_key_text(KEY)],
                "shadow": {"min_windows": 5, "wait_s": 5},
                "probation_windows": 3,
                "probation_s": 5,
            }
            | rollout,
        }
    )


@pytest.fixture
def v1(tmp_path: Path) -> Path:
    return synthetic_model(tmp_path / "v1", version="1.0.0", onnx=abs_onnx(1))


def _setup(
    tmp_path: Path, v1: Path, **rollout: Any
) -> tuple[GatewayConfig, FakeAgent, ModelRollout]:
    cfg = _config(tmp_path, v1, **rollout)
    base = AnomalyModel.load(model_dir=v1)
    r = ModelRollout(config=cfg)
    model = r.restore(cfg.machines[0], base)
    agent = FakeAgent(cfg, model)
    r.attach(agent)
    return cfg, agent, r


def _cache(r: ModelRollout, model_dir: Path, entry: DesiredModel) -> Path:
    """Put a release into the gateway's store as if it had been downloaded."""
    return r.store.put(
        NAME,
        entry,
        manifest=(model_dir / MANIFEST_FILE).read_bytes(),
        onnx_file="model.onnx",
        onnx=(model_dir / "model.onnx").read_bytes(),
        signature=None,
    )


def _drive(
    r: ModelRollout, agent: FakeAgent, entry: DesiredModel, value: Callable[[], float]
) -> DeployResult:
    """Attempt ``entry`` on a worker thread while this thread plays the main loop."""
    out: list[DeployResult] = []
    t = threading.Thread(target=lambda: out.append(r._attempt(NAME, entry)), daemon=True)
    t.start()
    deadline = time.monotonic() + 30
    while t.is_alive() and time.monotonic() < deadline:
        r.calls.run_pending()
        agent.feed(value())
        pause(0.01, "one tick of the simulated main loop")
    t.join(1)
    assert out, "attempt did not finish"
    return out[0]


def test_switch_succeeds_persists_and_is_restored(tmp_path: Path, v1: Path) -> None:
    cfg, agent, r = _setup(tmp_path, v1)
    agent.feed(-1.0, seconds=8)
    v2 = synthetic_model(tmp_path / "v2", version="1.1.0", onnx=abs_onnx(1))
    entry = desired_entry(v2, KEY, deployment=4)
    _cache(r, v2, entry)
    res = _drive(r, agent, entry, lambda: -1.0)
    assert (res.status, res.stage, res.reason) == ("succeeded", "done", "")
    assert res.checks["windows"] >= 5 and res.checks["probation_scored"] >= 3
    assert res.checks["latency_p95_ms"] < 50
    assert agent.pipelines["m1"].model is agent.models["m1"]
    assert agent.models["m1"].version == "1.1.0"
    st = r.store.state
    assert st.active[NAME].entry == entry and st.previous_version[NAME] == "1.0.0"
    report = r.report()
    running = report.models[NAME]
    assert (running.version, running.previous_version, running.source) == (
        "1.1.0",
        "1.0.0",
        "deployed",
    )
    assert running.machines == ["m1"]

    # persisted: a restarted gateway starts with the deployed model (verified again)
    r.store.state.results[NAME] = res
    r.store.save()
    r2 = ModelRollout(config=cfg)
    restored = r2.restore(cfg.machines[0], AnomalyModel.load(model_dir=v1))
    assert restored.version == "1.1.0" and r2.store.state.results[NAME] == res
    # ... unless its files were tampered with on disk: back to the config's model
    onnx = r2.store.root / r2.store.state.active[NAME].dir / "model.onnx"
    onnx.write_bytes(onnx.read_bytes() + b"\x00")
    r3 = ModelRollout(config=cfg)
    assert r3.restore(cfg.machines[0], AnomalyModel.load(model_dir=v1)).version == "1.0.0"


def test_probation_failure_restores_the_previous_model(tmp_path: Path, v1: Path) -> None:
    """sqrt(-v_mean) is finite on the recent windows (v < 0) and NaN once v > 0 live."""
    _, agent, r = _setup(tmp_path, v1)
    agent.feed(-1.0, seconds=8)
    v2 = synthetic_model(tmp_path / "v2", version="1.2.0", onnx=sqrt_neg_onnx(1))
    entry = desired_entry(v2, KEY, deployment=5)
    _cache(r, v2, entry)
    res = _drive(r, agent, entry, lambda: 1.0 if agent.models["m1"].version == "1.2.0" else -1.0)
    assert (res.status, res.stage) == ("rolled_back", "probation")
    assert "non-finite" in res.reason and res.checks["probation_nonfinite"] >= 1
    assert agent.models["m1"].version == "1.0.0"
    assert agent.pipelines["m1"].model is agent.models["m1"]
    assert NAME not in r.store.state.active
    # scoring goes on with the restored model
    before = agent.pipelines["m1"].scored
    agent.feed(1.0, seconds=3)
    assert agent.pipelines["m1"].scored > before


def test_nan_model_is_stopped_by_the_shadow_check(tmp_path: Path, v1: Path) -> None:
    _, agent, r = _setup(tmp_path, v1)
    agent.feed(-1.0, seconds=8)
    v2 = synthetic_model(tmp_path / "v2", version="1.3.0", onnx=nan_onnx(1))
    entry = desired_entry(v2, KEY, deployment=6)
    _cache(r, v2, entry)
    res = _drive(r, agent, entry, lambda: -1.0)
    assert (res.status, res.stage) == ("rejected", "shadow")
    assert "not finite" in res.reason
    assert agent.models["m1"].version == "1.0.0"


@pytest.mark.parametrize("case", ["unsigned", "untrusted", "bad_signature", "tampered"])
def test_verification_failures(tmp_path: Path, v1: Path, case: str) -> None:
    _, agent, r = _setup(tmp_path, v1)
    agent.feed(-1.0, seconds=8)
    v2 = synthetic_model(tmp_path / "v2", version="1.1.0", onnx=abs_onnx(1))
    entry = desired_entry(v2, KEY, deployment=7)
    expect = {
        "unsigned": "unsigned",
        "untrusted": "untrusted_key",
        "bad_signature": "bad_signature",
        "tampered": "sha256 mismatch",
    }[case]
    if case == "unsigned":
        entry = desired_entry(v2, None, deployment=7)
    elif case == "untrusted":
        entry = desired_entry(v2, OTHER_KEY, deployment=7)
    elif case == "bad_signature":
        # a valid signature of another release, pasted onto this one
        v3 = synthetic_model(tmp_path / "v3", version="1.1.1", onnx=abs_onnx(1))
        entry = entry.model_copy(update={"signature": desired_entry(v3, KEY, 7).signature})
    _cache(r, v2, entry)
    if case == "tampered":
        onnx = r.store.release_dir(NAME, entry) / "model.onnx"
        onnx.write_bytes(abs_onnx(1) + b"\x00")
    res = _drive(r, agent, entry, lambda: -1.0)
    assert (res.status, res.stage) == ("rejected", "verify"), res
    assert expect in res.reason
    assert agent.models["m1"].version == "1.0.0"


def test_config_pin_download_failure_misfit_and_unknown_model(tmp_path: Path, v1: Path) -> None:
    _, agent, r = _setup(tmp_path, v1, model={"sha256": "0" * 64})
    agent.feed(-1.0, seconds=8)
    v2 = synthetic_model(tmp_path / "v2", version="1.1.0", onnx=abs_onnx(1))
    res = _drive(r, agent, desired_entry(v2, KEY, 8), lambda: -1.0)
    assert (res.status, res.stage) == ("rejected", "verify") and "pins" in res.reason

    _, agent, r = _setup(tmp_path / "b", v1)
    agent.feed(-1.0, seconds=8)
    res = _drive(r, agent, desired_entry(v2, KEY, 9), lambda: -1.0)  # nothing cached
    assert (res.status, res.stage) == ("rejected", "download")
    assert "127.0.0.1:9" in res.reason

    v4 = synthetic_model(tmp_path / "v4", version="1.4.0", onnx=abs_onnx(1), window_s=2.0)
    entry = desired_entry(v4, KEY, 10)
    _cache(r, v4, entry)
    res = _drive(r, agent, entry, lambda: -1.0)
    assert (res.status, res.stage) == ("rejected", "load") and "window_s" in res.reason

    other = synthetic_model(tmp_path / "o", name="other-model", version="1.0.0", onnx=abs_onnx(1))
    out = r._attempt("other-model", desired_entry(other, KEY, 11))
    assert (out.status, out.stage) == ("rejected", "verify") and "runs model" in out.reason

    same = r._attempt(NAME, desired_entry(v1, KEY, 12))  # what already runs
    assert same.status == "succeeded" and same.checks == {"already_running": 1.0}


def test_shadow_check_bounds(v1: Path, tmp_path: Path) -> None:
    model = AnomalyModel.load(model_dir=v1)
    rows = [{"v_mean": -1.0 - 0.1 * i} for i in range(20)]
    cfg = ShadowConfig(min_windows=5)
    ok = shadow_check(model, model, rows, cfg)
    assert ok.ok and ok.checks["windows"] == 20 and ok.checks["alarm_fraction"] == 0
    assert not shadow_check(model, model, rows[:3], cfg).ok
    assert "lack" in shadow_check(model, None, [{"x": 1.0}] * 10, cfg).reason
    slow = shadow_check(model, None, rows, ShadowConfig(min_windows=5, latency_budget_ms=1e-9))
    assert not slow.ok and "latency" in slow.reason
    noisy = AnomalyModel.load(
        model_dir=synthetic_model(
            tmp_path / "noisy", version="2.0.0", onnx=abs_onnx(1), threshold=0.5
        )
    )
    bad = shadow_check(noisy, model, rows, cfg)
    assert not bad.ok and "100.0%" in bad.reason
    # no noisier than the running model: allowed
    assert shadow_check(noisy, noisy, rows, cfg).ok
    # rows with non-finite inputs are not scored (the pipeline skips them too)
    assert shadow_check(model, None, rows + [{"v_mean": float("nan")}], cfg).checks["windows"] == 20
