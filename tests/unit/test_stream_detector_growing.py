"""The streaming detector's growing scale and memory bound (``cad_ose`` kind, 3.0.0 of
``nab-stream-generic``): equal scores to an independent restatement of the rule on the plain
reference oracle (tests/cad_ose_reference.py); rebuilds on a widening range; the context
bound (fresh, muted start; a replay cut short); parameters checked and round-tripped."""

from __future__ import annotations

import dataclasses
import math
from collections import deque

import numpy as np
import pytest

from renkei.edge.model.cad_ose import CadOse
from renkei.edge.model.stream_detector import (
    StreamDetector,
    StreamDetectorConfig,
    StreamDetectorError,
)
from tests.cad_ose_reference import ReferenceCadOse

GROWING = StreamDetectorConfig(
    kind="cad_ose",
    value_bits=3,
    range_rows=60,
    rest_rows=20,
    range_margin=0.0,
    replay_rows=300,
    range_trigger=0.1,
    max_active=8,
)


def _reference_growing(x: np.ndarray, cfg: StreamDetectorConfig) -> tuple[list[float], int]:
    """The growing-scale rule restated on the whole-memory oracle (no memory bound)."""
    kept: deque[float] = deque(maxlen=cfg.replay_rows)
    lo, hi = math.inf, -math.inf
    det: ReferenceCadOse | None = None
    band = scale = (math.inf, -math.inf)
    out: list[float] = []
    rebuilds = 0

    def build() -> ReferenceCadOse:
        d = ReferenceCadOse(lo, hi, rest_period=float(cfg.rest_rows), max_active=cfg.max_active)
        for u in kept:
            d.score(min(max(u, lo), hi))
        return d

    for v in x.tolist():
        lo, hi = min(lo, v), max(hi, v)
        if det is None:
            if len(kept) + 1 >= cfg.range_rows:
                det, scale = build(), (lo, hi)
                det.score(v)
                band = (lo - 0.1 * (hi - lo), hi + 0.1 * (hi - lo))
            out.append(0.0)
        elif not band[0] <= v <= band[1]:
            det, scale = build(), (lo, hi)
            rebuilds += 1
            band = (lo - 0.1 * (hi - lo), hi + 0.1 * (hi - lo))
            out.append(det.score(v))
        else:
            out.append(det.score(min(max(v, scale[0]), scale[1])))
        kept.append(v)
    return out, rebuilds


def _stream(seed: int, n: int = 700) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    x = np.sin(t / 9.0) + 0.2 * rng.standard_normal(n)
    x[250:] += 1.5  # the range widens twice: a level shift, then a spike
    x[520] = 9.0
    return x


@pytest.mark.parametrize("seed", [0, 1])
def test_growing_scale_equals_the_rule_on_the_reference(seed: int) -> None:
    x = _stream(seed)
    det = StreamDetector(GROWING)
    got = det.run(x)
    expect, rebuilds = _reference_growing(x, GROWING)
    assert rebuilds >= 2 and det.rebuilds == rebuilds
    assert got == expect
    assert got[: GROWING.range_rows] == [0.0] * GROWING.range_rows
    lo, hi = float(x.min()), float(x.max())
    assert det.scale == pytest.approx((lo, (hi - lo) / 7.0))  # the range seen so far


def test_values_inside_the_trigger_band_do_not_rebuild() -> None:
    x = np.r_[np.linspace(0.0, 1.0, 60), 1.05, -0.08, 0.5]  # within 10 % of the span
    det = StreamDetector(GROWING)
    det.run(x)
    assert det.rebuilds == 0 and det.scale == pytest.approx((0.0, 1.0 / 7.0))
    det.push(1.2)  # 20 % beyond: rebuilt on [0, 1.2]
    assert det.rebuilds == 1 and det.scale == pytest.approx((-0.08, 1.28 / 7.0))


def test_the_memory_bound_restarts_fresh_and_mutes_while_learning() -> None:
    cfg = StreamDetectorConfig(
        kind="cad_ose", value_bits=3, range_rows=50, rest_rows=10, replay_rows=200,
        range_trigger=0.1, max_active=8, max_contexts=1500,
    )  # fmt: skip
    x = np.random.default_rng(5).standard_normal(3000)  # noise: contexts grow fast
    det = StreamDetector(cfg)
    out = np.empty(x.size)
    sizes = np.empty(x.size)
    restarts_at: list[int] = []
    for i, v in enumerate(x.tolist()):
        before = det.restarts
        out[i] = det.push(v)
        assert det._cad is not None or i < cfg.range_rows
        sizes[i] = det._cad.contexts if det._cad is not None else 0
        if det.restarts > before:
            restarts_at.append(i)
    assert len(restarts_at) >= 2
    assert sizes.max() <= cfg.max_contexts  # checked after every row
    # the fresh detector's first range_rows rows score 0 (the restart row's own value is
    # one of them when a rebuild's replay was cut short, else the next row is the first)
    for i in restarts_at:
        assert not out[i + 1 : i + cfg.range_rows].any()
    unbounded = StreamDetector(dataclasses.replace(cfg, max_contexts=0))
    unbounded.run(x)
    assert unbounded._cad is not None and unbounded._cad.contexts > 3 * cfg.max_contexts


def test_a_rebuild_replay_that_crosses_the_bound_is_cut_short() -> None:
    cfg = StreamDetectorConfig(
        kind="cad_ose", value_bits=3, range_rows=50, rest_rows=10, replay_rows=2000,
        range_trigger=0.1, max_active=8, max_contexts=1500,
    )  # fmt: skip
    x = np.random.default_rng(6).standard_normal(400)
    det = StreamDetector(cfg)
    det.run(x)
    rebuilds, restarts = det.rebuilds, det.restarts
    # rebuild on a range 30 % wider: replaying the 400 noise rows would pass 1,500 contexts
    det.push(float(x.max() + 0.3 * (x.max() - x.min())))
    assert det.rebuilds == rebuilds + 1 and det.restarts == restarts + 1
    assert det._cad is not None and det._cad.contexts <= cfg.max_contexts
    assert det.push(0.0) == 0.0  # muted


def test_max_active_reaches_cad_ose() -> None:
    det = StreamDetector(GROWING)
    det.run(_stream(0)[:100])
    assert isinstance(det._cad, CadOse) and det._cad.max_active == 8


def _fields(cfg: StreamDetectorConfig) -> dict[str, object]:
    return dataclasses.asdict(cfg)


def test_parameters_round_trip_and_are_checked() -> None:
    cfg = StreamDetectorConfig(**{**_fields(GROWING), "max_contexts": 8000})  # type: ignore[arg-type]
    assert StreamDetectorConfig.from_params(cfg.to_params()) == cfg
    params = {**cfg.to_params(), "stream_detector.range_trigger": 1}  # JSON int accepted
    assert StreamDetectorConfig.from_params(params).range_trigger == 1.0
    base = _fields(GROWING)
    for key, bad, match in (
        ("replay_rows", 10, "replay_rows"),  # fewer than range_rows
        ("range_trigger", -0.5, "range_trigger"),
        ("max_active", 0, "max_active"),
        ("max_contexts", -1, "max_contexts"),
    ):
        with pytest.raises(StreamDetectorError, match=match):
            StreamDetectorConfig(**{**base, key: bad})  # type: ignore[arg-type]
    with pytest.raises(StreamDetectorError, match="replay_rows"):
        StreamDetectorConfig(kind="transition_novelty", replay_rows=500)
