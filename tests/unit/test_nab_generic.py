"""NAB corpus scoring (renkei.models.nab_scoring: optimiser, normalisation), the streaming
detector (renkei.edge.model.stream_detector) and its gateway input plan
(renkei.edge.model.inputs). Synthetic data only; the real-data checks are in
tests/integration/test_gateway_nab_generic.py."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from renkei.core.manifest import read_manifest
from renkei.edge.model.inputs import (
    InputPlanError,
    ModelInputs,
    batch_inputs,
    plan_inputs,
)
from renkei.edge.model.stream_detector import (
    StreamDetector,
    StreamDetectorConfig,
    StreamDetectorError,
)
from renkei.models.nab_scoring import (
    PROFILES,
    NabFile,
    corpus_score,
    nab_score,
    optimize_threshold,
)

ARTIFACTS = Path(__file__).resolve().parents[2] / "models" / "artifacts"
FILES = (
    NabFile("a/one.csv", 1000, ((300, 349), (700, 749)), 150),
    NabFile("a/two.csv", 600, ((400, 459),), 90),
    NabFile("b/none.csv", 500, (), 75),
)


def _perfect() -> list[np.ndarray]:
    out = []
    for f in FILES:
        s = np.zeros(f.n)
        for a, _ in f.windows:
            s[a] = 1.0
        out.append(s)
    return out


def test_null_and_perfect_detectors_score_0_and_100_on_every_profile() -> None:
    for costs in PROFILES.values():
        null = corpus_score(FILES, [np.zeros(f.n) for f in FILES], costs)
        assert null.normalized == 0.0 and null.raw == null.null == -3 * costs.fn
        assert null.threshold == math.inf  # no threshold beats doing nothing
        perfect = corpus_score(FILES, _perfect(), costs)
        assert perfect.normalized == pytest.approx(100.0) and perfect.threshold == 1.0
        assert perfect.perfect == 3 * costs.tp


def test_optimised_threshold_is_the_best_of_a_brute_force_sweep() -> None:
    rng = np.random.default_rng(7)
    scores = [np.round(rng.random(f.n) ** 8, 2) for f in FILES]
    for s, f in zip(scores, FILES, strict=True):
        for a, _ in f.windows:
            s[a + 10] = 0.9  # a fairly early detection in every window
    for costs in PROFILES.values():
        threshold, total = optimize_threshold(FILES, scores, costs)
        brute = {
            t: corpus_score(FILES, scores, costs, threshold=t).raw
            for t in sorted({float(v) for s in scores for v in s}) + [math.inf]
        }
        best = max(brute.values())
        assert total == pytest.approx(best, abs=1e-9)
        assert brute[threshold] == pytest.approx(best, abs=1e-9)
        assert threshold == max(t for t, v in brute.items() if v >= best - 1e-9)


def test_corpus_sums_per_file_scores_and_skips_probation() -> None:
    s = [np.zeros(f.n) for f in FILES]
    s[0][10] = 1.0  # inside probation: never counted
    s[0][320] = 1.0
    s[2][200] = 1.0  # a false positive in a file without windows
    r = corpus_score(FILES, s, threshold=1.0)
    one = nab_score(s[0] >= 1.0, FILES[0].windows, probation=150)
    assert r.per_file[0] == one and one.windows_detected == 1 and one.false_positives == 0
    assert r.per_file[2].raw == pytest.approx(-0.11) and r.per_file[2].false_positives == 1
    assert r.raw == pytest.approx(sum(p.raw for p in r.per_file))
    assert r.normalized == pytest.approx(100 * (r.raw + 3) / 6)


def test_optimiser_input_errors() -> None:
    with pytest.raises(ValueError, match="3 files but 2"):
        optimize_threshold(FILES, [np.zeros(1000), np.zeros(600)])
    with pytest.raises(ValueError, match="a/two.csv: 5 scores for 600 rows"):
        optimize_threshold(FILES, [np.zeros(1000), np.zeros(5), np.zeros(500)])


def _series(n: int = 3000, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    x = np.sin(2 * np.pi * t / 288) + 0.05 * rng.standard_normal(n)
    x[2000:2050] += 3.0  # a level shift never seen before
    return x


def test_detector_is_deterministic_learns_and_flags_a_new_pattern() -> None:
    x = _series()
    a = StreamDetector(StreamDetectorConfig()).run(x)
    b = StreamDetector(StreamDetectorConfig()).run(x.tolist())
    assert a == b
    s = np.asarray(a)
    assert np.all(s[:150] == 0.0) and np.all((s >= 0) & (s <= 1))
    assert s[2000] == 1.0  # the shift is a new transition from established contexts
    assert s[2001:2100].max() == 0.0  # rest period after it
    assert (s[1000:1990] >= 1.0).sum() <= 2  # the learnt sine is (almost) never novel


def test_detector_nan_and_memory_bound() -> None:
    det = StreamDetector(StreamDetectorConfig(range_rows=2, max_transitions=100))
    assert det.push(math.nan) != det.push(math.nan)  # NaN out, not learnt
    det.run(range(500))  # a ramp: every row a new level -> new transitions
    assert det.restarts > 0 and det.scale == (0.0, 1.0 / 3.0)


def test_detector_config_round_trip_and_errors() -> None:
    cfg = StreamDetectorConfig(rest_rows=7)
    params = cfg.to_params()
    assert StreamDetectorConfig.from_params(params) == cfg
    as_json = {k: float(v) if isinstance(v, int) else v for k, v in params.items()}
    assert StreamDetectorConfig.from_params(as_json) == cfg  # 7.0 from JSON is 7
    with pytest.raises(StreamDetectorError, match="unknown"):
        StreamDetectorConfig.from_params({**params, "stream_detector.foo": 1})
    with pytest.raises(StreamDetectorError, match="rest_rows: -1"):
        StreamDetectorConfig(rest_rows=-1)
    with pytest.raises(StreamDetectorError, match="kind"):
        StreamDetectorConfig(kind="cad")
    with pytest.raises(StreamDetectorError, match="no 'stream_detector'"):
        StreamDetectorConfig.from_params({})


def test_gateway_plan_of_the_committed_artifact_runs_the_detector() -> None:
    manifest = read_manifest(ARTIFACTS / "nab-stream-generic")
    plan = plan_inputs(manifest)
    assert plan.stream == StreamDetectorConfig.from_params(manifest.algorithm_params)
    assert plan.fields == ("machine_temperature",) and plan.history is None
    x = _series(600)
    inputs = ModelInputs[int](plan)
    got = [inputs.push(i, {"machine_temperature_mean": v}, i)[0] for i, v in enumerate(x)]
    assert all(r.x is not None and r.x.shape == (1,) and not r.in_baseline for r in got)
    ref = StreamDetector(plan.stream).run(x)
    np.testing.assert_array_equal([r.x[0] for r in got if r.x is not None], ref)
    rows = batch_inputs(plan, [{"machine_temperature": v} for v in x])
    assert [r["machine_temperature_sdet"] for r in rows] == ref
    bad = manifest.model_copy(
        update={"inputs": [manifest.inputs[0].model_copy(update={"name": "temp"})]}
    )
    with pytest.raises(InputPlanError, match="'<field>_sdet'"):
        plan_inputs(bad)
    bad = manifest.model_copy(
        update={"algorithm_params": {**manifest.algorithm_params, "stream_detector.x": 1}}
    )
    with pytest.raises(InputPlanError, match="nab-stream-generic: .*unknown"):
        plan_inputs(bad)
