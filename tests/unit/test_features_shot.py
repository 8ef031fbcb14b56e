"""Per-shot features: pass-through values and EWMA deviations."""

from __future__ import annotations

import numpy as np
import pytest

from renkei.edge.features import ShotConfig, ShotFeatures, shot_feature_names
from renkei.edge.sources import SampleBlock


def _shots(
    t_ms: list[int], weight: list[float], count: list[float], labels: list[int] | None = None
) -> SampleBlock:
    return SampleBlock(
        stream="shot",
        t_ms=np.array(t_ms, dtype=np.int64),
        fields={"part_weight_g": np.array(weight), "shot_count": np.array(count, dtype=np.float64)},
        labels=None if labels is None else np.array(labels, dtype=np.int16),
        sample_rate_hz=None,
    )


def test_names() -> None:
    assert shot_feature_names(["part_weight_g", "shot_count"]) == [
        "part_weight_g",
        "shot_count",
        "part_weight_g_dev",
    ]


def test_ewma_deviation_and_labels() -> None:
    ex = ShotFeatures(config=ShotConfig(alpha=0.5))
    rows = ex.push(_shots([1, 2, 3], [10.0, 12.0, np.nan], [1, 2, 3], [0, 0, 4]))
    rows += ex.push(_shots([4], [13.0], [4]))
    assert [r.t_ms for r in rows] == [1, 2, 3, 4]
    assert [r.label for r in rows] == [0, 0, 4, None]
    devs = [r.values["part_weight_g_dev"] for r in rows]
    assert np.isnan(devs[0])  # no reference yet
    assert devs[1] == 2.0  # 12 - 10; reference -> 11
    assert np.isnan(devs[2])  # NaN value does not move the reference
    assert devs[3] == 2.0  # 13 - 11
    assert rows[3].values["shot_count"] == 4.0
    assert "shot_count_dev" not in rows[3].values
    assert ex.feature_names == list(rows[0].values)
    assert ex.flush() == []


def test_update_matches_push() -> None:
    a, b = ShotFeatures(), ShotFeatures()
    rows = a.push(_shots([1, 2], [10.0, 11.0], [1, 2]))
    dicts = [
        b.update({"part_weight_g": 10.0, "shot_count": 1.0}),
        b.update({"part_weight_g": 11.0, "shot_count": 2.0}),
    ]
    for r, d in zip(rows, dicts, strict=True):
        assert r.values.keys() == d.keys()
        assert np.allclose(list(r.values.values()), list(d.values()), equal_nan=True)


def test_errors() -> None:
    with pytest.raises(ValueError, match="alpha"):
        ShotConfig(alpha=0.0)
    ex = ShotFeatures(fields=["part_weight_g", "cushion_mm"])
    with pytest.raises(ValueError, match="cushion_mm"):
        ex.push(_shots([1], [10.0], [1]))
