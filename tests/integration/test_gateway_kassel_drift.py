"""``kassel-shot-t2`` 2.x runs unchanged on the gateway: the real Kassel shots replayed
through the gateway's source, shot features, ONNX scoring and drift watch
(renkei.edge.pipeline.MachinePipeline) give the recipe's scores, drift statistic and drift
events (renkei.models.profiles.kassel_recipe / kassel_eval). Needs ../shared/datasets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson

from renkei.edge.agent import build_source, source_streams
from renkei.edge.config import GatewayConfig
from renkei.edge.model.drift import DRIFT_ONSET, drift_trace
from renkei.edge.model.inference import AnomalyModel
from renkei.edge.pipeline import MachinePipeline
from renkei.edge.sources.live import LiveSource
from renkei.models.artifact import make_session, run_outputs
from renkei.models.profiles.kassel_recipe import load
from tests.datasets import require_data_dir

ARTIFACT = Path(__file__).resolve().parents[2] / "models" / "artifacts" / "kassel-shot-t2"


def test_kassel_scores_and_drift_on_the_gateway_equal_the_recipe() -> None:
    data_dir = require_data_dir()
    gw = GatewayConfig.model_validate(
        {
            "gateway_id": "gw-kassel",
            "firm": "acme",
            "site": "lab",
            "machines": [
                {
                    "id": "imm",
                    "area": "molding",
                    "line": "line-1",
                    "source": {
                        "type": "replay",
                        "preset": "kassel",
                        "path": str(
                            data_dir / "molding/kassel_cpc_lower_workpiece/static_data.csv"
                        ),
                        "timestamps": "keep",
                    },
                }
            ],
        }
    )
    model = AnomalyModel.load(model_dir=ARTIFACT)
    pipe = MachinePipeline(machine=gw.machines[0], gateway=gw, model=model)
    src = build_source(pipe.machine, start_ms=0)
    assert not isinstance(src, LiveSource)
    pipe.start(publish_start_ms=0, streams=source_streams(src))
    scores: list[float] = []
    shares: list[float] = []
    events: list[str] = []
    for i, block in enumerate(src.blocks()):
        assert i < 10_000
        pipe.process(block)
        for topic, build in pipe.drain(1_000_000):
            msg = orjson.loads(build(0))
            if topic.endswith("/anomaly"):
                n = len(msg["ts_ms"])
                scores += msg["fields"]["score"]
                col = msg["fields"].get("drift_share", [None] * n)
                shares += [np.nan if v is None else v for v in col]
            elif topic.endswith("/event"):
                events += [e["code"] for e in msg["events"] if e["code"].startswith("drift")]
    shots = load(data_dir)
    manifest_drift = model.manifest.drift
    assert manifest_drift is not None
    session = make_session((ARTIFACT / "model.onnx").read_bytes())
    ref = run_outputs(session, shots.x[shots.ok])["score"]
    assert len(scores) == int(shots.ok.sum()) == 7829
    np.testing.assert_allclose(scores, ref, rtol=1e-6)
    ref_share, ref_state = drift_trace(ref, manifest_drift)
    np.testing.assert_array_equal(np.isnan(shares), np.isnan(ref_share))
    np.testing.assert_allclose(np.nan_to_num(shares), np.nan_to_num(ref_share), atol=1e-12)
    onsets = int(np.sum(np.diff(ref_state.astype(np.int8), prepend=np.int8(0)) == 1))
    assert events.count(DRIFT_ONSET) == onsets >= 1
    status = pipe.status()["drift"]
    assert status is not None and status["drifting"] == bool(ref_state[-1])
