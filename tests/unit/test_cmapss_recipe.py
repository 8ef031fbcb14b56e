"""The C-MAPSS recipe (renkei.models.profiles.cmapss_recipe): regimes found by the fixed
rule, inputs for any history length, and the report data of the committed artifacts."""

from __future__ import annotations

import numpy as np
import pytest

from renkei.models import DEFAULT_ARTIFACTS_DIR
from renkei.models.profiles import cmapss, cmapss_fd002
from renkei.models.profiles import cmapss_recipe as recipe
from tests.datasets import require_data_dir


def test_fd002_has_six_regimes_and_the_usual_14_sensors() -> None:
    data = recipe.build(require_data_dir(), "FD002")
    table = recipe.fit_regimes(data.train)
    alt = sorted(round(c) for c in table.centroids[:, 0])
    assert alt == [0, 10, 20, 25, 35, 42]
    assert len(table.sensors) == 14 and "s1_T2" not in table.sensors
    # every training row is within half a grid step of its centroid
    s = np.vstack([e.settings for e in data.train])
    r = table.assign(s)
    assert np.all(np.abs(s - table.centroids[r]) <= 0.5 * table.grid + 1e-9)


def test_inputs_exist_from_the_first_cycle() -> None:
    data = recipe.build(require_data_dir(), "FD001")
    table = recipe.fit_regimes(data.train)
    one = recipe.engine_features(table, data.test[0].head(1))
    assert one.shape == (1, 2 * 14 * 4 + 1) and np.all(np.isfinite(one))
    assert data.test[0].head(1).rul_end == data.test[0].rul_end + data.test[0].cycles - 1


@pytest.mark.parametrize("module", [cmapss, cmapss_fd002])
def test_report_data_of_the_committed_artifact(module: object) -> None:
    name = module.NAME  # type: ignore[attr-defined]
    rep = module.report(require_data_dir(), DEFAULT_ARTIFACTS_DIR / name)  # type: ignore[attr-defined]
    assert rep.model == name and len(rep.ruls) == 3
    last = rep.ruls[0]
    assert np.all(np.diff(last.true) >= 0) and last.nominal == 0.8
    assert np.all(last.lower <= last.predicted) and np.all(last.predicted <= last.upper)
    titles = [t.title for t in rep.tables]
    assert any("history length" in t for t in titles) and any("published" in t for t in titles)
    assert rep.metrics["test.engines"] == len(last.true)
