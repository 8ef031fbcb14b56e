"""``skab_report.report`` builds the report data of the committed ``skab-pump-mahal``
artifact and its figures equal the manifest's (needs ../shared/datasets)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from renkei.core.manifest import read_manifest
from renkei.models.profiles import skab_report
from tests.datasets import require_data_dir

MODEL_DIR = Path(__file__).resolve().parents[2] / "models" / "artifacts" / "skab-pump-mahal"


def test_report_data_matches_the_manifest() -> None:
    data = skab_report.report(require_data_dir(), MODEL_DIR)
    manifest = read_manifest(MODEL_DIR)
    for key in ("all_test.point.f1", "all_test.point.far", "valve2_test.point.mar"):
        assert data.metrics[key] == pytest.approx(manifest.metrics[key], abs=1e-6)
    assert [t.name for t in data.traces] == list(skab_report.TRACE_RUNS)
    for trace in data.traces:
        assert np.isnan(trace.score[:400]).all() and len(trace.windows) == 1
    (roc,) = data.classifications
    assert (
        roc.y_true.size
        == manifest.metrics["all_test.point.n_pos"] + manifest.metrics["all_test.point.n_neg"]
    )
    per_run = next(t for t in data.tables if t.title.startswith("Per run"))
    assert len(per_run.rows) == 20
    cross = next(t for t in data.tables if t.title.startswith("Cross-check"))
    assert cross.rows[0][1] == pytest.approx(
        manifest.metrics["cross.valve1_to_valve2.f1"], abs=1e-3
    )
