"""``nab-stream-generic`` on real NAB files: the gateway (replay preset ``nab``, 5 min
windows, streaming detector input — CAD OSE since 2.0.0 —, ONNX pass-through, anomaly
scoring) gives the recipe's scores and alarms (renkei.models.profiles.nab_generic), and the
recipe's NAB-wrapper scores equal the plain CAD OSE oracle (tests/cad_ose_reference.py);
the corpus scorer reproduces NAB's published per-file figures where they can be checked
(null detector, window rows); the report data builds. Needs ../shared/datasets (fails in
CI without it, skips elsewhere)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from renkei.core.manifest import read_manifest
from renkei.models.nab_scoring import corpus_score, nab_score
from renkei.models.profiles import nab_generic
from tests.cad_ose_reference import ReferenceCadOse
from tests.datasets import require_data_dir
from tests.integration.test_gateway_dataset_models import _onnx_scores, _pipeline, _rows, _run

ARTIFACTS = Path(__file__).resolve().parents[2] / "models" / "artifacts"
MODEL = "nab-stream-generic"
FILES = (
    "artificialWithAnomaly/art_daily_jumpsup.csv",
    "realAWSCloudwatch/ec2_cpu_utilization_24ae8d.csv",
    "realKnownCause/machine_temperature_system_failure.csv",
    "realTweets/Twitter_volume_GOOG.csv",
)


@pytest.mark.parametrize("name", FILES)
def test_gateway_equals_the_recipe_on_a_real_nab_file(name: str) -> None:
    data = require_data_dir()
    machine = {
        "id": "machine-1",
        "area": "a",
        "line": "l",
        "window_s": 300,
        "source": {
            "type": "replay",
            "preset": "nab",
            "path": str(data / nab_generic.DATA / name),
            "timestamps": "keep",
        },
    }
    pipe, _ = _pipeline(machine, MODEL)
    items = _run(pipe)
    ts, got = _rows(items, "anomaly")
    corpus = nab_generic.build(data, (name,))
    f, x = corpus.files[0], corpus.values[0]
    ref = _onnx_scores(
        MODEL, np.asarray(nab_generic.detector_scores(corpus, progress=False))[0][:, None]
    )
    assert len(ts) == x.size  # one 5 min window per sample
    np.testing.assert_array_equal(np.asarray(got["score"], dtype=np.float64), ref)
    threshold = read_manifest(ARTIFACTS / MODEL).threshold
    alarms = np.flatnonzero(ref > threshold)
    ev_ts, ev = _rows(items, "event")
    onsets = [t for t, code in zip(ev_ts, ev["code"], strict=True) if code == "anomaly_onset"]
    starts = [i for i in alarms.tolist() if i == 0 or ref[i - 1] <= threshold]
    assert onsets == [ts[i] for i in starts]  # one onset event per run of alarm rows
    # the gateway's alarms score as the recipe's detections (NAB: score >= corpus threshold)
    nab_t = read_manifest(ARTIFACTS / MODEL).metrics["nab.standard.threshold"]
    recipe = nab_score(ref >= nab_t, f.windows, probation=f.probation)
    gateway = nab_score(np.isin(np.arange(x.size), alarms), f.windows, probation=f.probation)
    assert gateway == recipe


def test_recipe_wrapper_scores_equal_the_reference_cad_ose() -> None:
    """NAB's wrapper rule (whole-file min / max, restPeriod = probation / 5) through the
    recipe's indexed CAD OSE equals the plain reference, row for row (first 3,000 rows)."""
    data = require_data_dir()
    corpus = nab_generic.build(data, ("realTweets/Twitter_volume_GOOG.csv",))
    x = corpus.values[0]
    got = nab_generic.wrapper_scores(x)
    ref = ReferenceCadOse(
        float(x.min()), float(x.max()), rest_period=corpus.files[0].probation / 5.0
    )
    np.testing.assert_array_equal(got[:3000], [ref.score(v) for v in x[:3000].tolist()])


def _published(data: Path, detector: str) -> dict[str, dict[str, str]]:
    path = data / "nab" / "results" / detector / f"{detector}_standard_scores.csv"
    with path.open(encoding="utf-8", newline="") as fh:
        return {r["File"]: r for r in csv.DictReader(fh)}


def test_corpus_scorer_reproduces_the_published_null_scores_and_window_rows() -> None:
    data = require_data_dir()
    corpus = nab_generic.build(data)
    assert len(corpus.files) == 52 and sum(len(f.windows) for f in corpus.files) == 101
    null = corpus_score(corpus.files, [np.zeros(f.n) for f in corpus.files], threshold=math.inf)
    assert null.normalized == 0.0 and null.null == -101.0
    pub_null, pub_art = _published(data, "null"), _published(data, "ARTime")
    for f, r in zip(corpus.files, null.per_file, strict=True):
        assert r.raw == pytest.approx(float(pub_null[f.name]["Score"]), abs=1e-12), f.name
        rows = sum(b - max(a, f.probation) + 1 for a, b in f.windows if b >= f.probation)
        art = pub_art[f.name]
        assert int(art["TP"]) + int(art["FN"]) == rows, f.name  # NAB's window rows
        assert int(art["Total_Count"]) == f.n - f.probation, f.name  # NAB's probation


def test_report_data_of_the_committed_artifact() -> None:
    data = require_data_dir()
    rep = nab_generic.report(data, ARTIFACTS / MODEL)
    manifest = read_manifest(ARTIFACTS / MODEL)
    assert rep.metrics["nab.standard.normalized"] == pytest.approx(
        manifest.metrics["nab.standard.normalized"]
    )
    assert len(rep.traces) >= 5 and all(t.windows or "NoAnomaly" in t.name for t in rep.traces)
    per_file = next(t for t in rep.tables if t.title.startswith("Per file"))
    assert len(per_file.rows) == 52
