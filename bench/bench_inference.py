"""Gateway inference latency of every committed model (onnxruntime, 1 intra-op thread).

Run: ``python -m bench.bench_inference [--iterations 3000] [--batch 32] [--models a,b]``.
Target: p99 ≤ 2 ms per single-row inference for the window models.

Each model in ``models/artifacts/`` is loaded exactly as the gateway loads it
(:meth:`renkei.edge.model.inference.AnomalyModel.load`: hash check, CPU provider, one intra-op and
one inter-op thread, sequential execution). Timed with ``time.perf_counter_ns`` around
``AnomalyModel.score`` (input checks + ``session.run``), after 200 warm-up calls:

- ``single``: one row per call, as the pipeline scores each window / shot;
- ``batch``: ``--batch`` rows per call, reported per call and per row (what a gateway
  catching up on a backlog, or scoring several machines at once, would pay).

Rows are drawn from a standard normal (inputs are not realistic values, but the graphs'
cost does not depend on them, except the trees' paths, which this samples broadly).
Also timed: one streaming step of :class:`renkei.edge.features.history.HistoryFeatures` with
the SKAB, NAB and C-MAPSS configurations (the per-row feature cost the new models add),
and the whole per-row path of the history anomaly models (inputs + score).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterator

import numpy as np

from renkei.edge.features.history import HistoryFeatures
from renkei.edge.model.inference import AnomalyModel
from renkei.models import DEFAULT_ARTIFACTS_DIR

_WARMUP = 200


def _percentiles(fn: Callable[[], object], iterations: int) -> tuple[float, float, float]:
    """(p50, p99, max) of ``fn`` in microseconds."""
    for _ in range(_WARMUP):
        fn()
    ns = np.empty(iterations, dtype=np.int64)
    for i in range(iterations):
        t0 = time.perf_counter_ns()
        fn()
        ns[i] = time.perf_counter_ns() - t0
    us = ns / 1000.0
    return float(np.percentile(us, 50)), float(np.percentile(us, 99)), float(us.max())


def main(argv: list[str] | None = None) -> int:
    """Time every artifact; print a markdown table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--models", default="", help="comma-separated names (default: all)")
    args, extra = ap.parse_known_args(argv)
    if any(e.startswith("-") for e in extra):
        ap.error(f"unrecognized arguments: {' '.join(extra)}")
    wanted = {m for m in args.models.split(",") if m}
    dirs = sorted(p.parent for p in DEFAULT_ARTIFACTS_DIR.glob("*/manifest.json"))
    rng = np.random.default_rng(0)
    print(
        f"{args.iterations} timed calls each after {_WARMUP} warm-up; onnxruntime, "
        "1 intra-op + 1 inter-op thread (the gateway's session options)\n"
    )
    print(
        "| model | kind | inputs | single p50 µs | single p99 µs | single max µs | "
        f"batch {args.batch} p50 µs | batch p99 µs | per row µs | p99 ≤ 2 ms |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for model_dir in dirs:
        if wanted and model_dir.name not in wanted:
            continue
        model = AnomalyModel.load(model_dir=model_dir)
        f = len(model.input_names)
        pool = rng.normal(size=(1024, f)).astype(np.float32)
        counter = iter(range(10**9))

        def single_row(
            model: AnomalyModel = model, pool: np.ndarray = pool, counter: Iterator[int] = counter
        ) -> object:
            i = next(counter) % 1024
            return model.score(pool[i : i + 1])

        batch_rows = pool[: args.batch]

        def batch(model: AnomalyModel = model, rows: np.ndarray = batch_rows) -> object:
            return model.score(rows)

        s50, s99, smax = _percentiles(single_row, args.iterations)
        b50, b99, _ = _percentiles(batch, max(200, args.iterations // 4))
        kind = model.manifest.feature_kind + ("/rul" if model.manifest.task == "rul" else "")
        print(
            f"| {model.name} | {kind} | {f} | {s50:.1f} | {s99:.1f} | {smax:.0f} | "
            f"{b50:.1f} | {b99:.1f} | {b50 / args.batch:.2f} | "
            f"{'yes' if s99 <= 2000 else 'NO'} |"
        )
    print("\nStreaming history features, one row per push (renkei.edge.features.history):\n")
    print("| configuration | fields | p50 µs | p99 µs |")
    print("|---|---|---|---|")
    from renkei.models.profiles import cmapss, nab_stream, skab_z

    for label, n_fields, cfg in (
        ("SKAB (baseline 400, 10-row z-mean)", 6, skab_z.CONFIG),
        ("NAB (288-row trailing mean)", 1, nab_stream.CONFIG),
        ("C-MAPSS (regime fields: EWMA, slopes 20/40/80, count)", 28, cmapss.CONFIG),
    ):
        hist = HistoryFeatures(n_fields, cfg)
        hist.push(rng.normal(size=(max(cfg.baseline_rows, cfg.history_rows) + 1, n_fields)))
        rows = rng.normal(size=(1024, n_fields))
        steps = iter(range(10**9))

        def step(
            hist: HistoryFeatures = hist, rows: np.ndarray = rows, steps: Iterator[int] = steps
        ) -> object:
            return hist.push(rows[next(steps) % 1024])

        p50, p99, _ = _percentiles(step, args.iterations)
        print(f"| {label} | {n_fields} | {p50:.1f} | {p99:.1f} |")
    _model_rows(args.iterations, rng)
    return 0


def _model_rows(iterations: int, rng: np.random.Generator) -> None:
    """Per row on the gateway for the history models: inputs + score, as the pipeline does."""
    from renkei.edge.model.inputs import ModelInputs, plan_inputs

    print(
        "\nHistory model, one row = ModelInputs.push + AnomalyModel.score (renkei.edge.pipeline):\n"
    )
    print("| model | p50 µs | p99 µs | p99 ≤ 2 ms |")
    print("|---|---|---|---|")
    for name in ("skab-pump-mahal", "nab-temp-stream"):
        model = AnomalyModel.load(model_dir=DEFAULT_ARTIFACTS_DIR / name)
        plan = plan_inputs(model.manifest)
        inputs: ModelInputs[None] = ModelInputs(plan)
        rows = [
            {f"{f}_mean": float(v) for f, v in zip(plan.fields, r, strict=True)}
            for r in rng.normal(size=(1024, len(plan.fields)))
        ]
        for i in range(plan.rows_needed + 1):
            inputs.push(0, rows[i % 1024], None)
        steps = iter(range(10**9))

        def one(
            inputs: ModelInputs[None] = inputs,
            model: AnomalyModel = model,
            steps: Iterator[int] = steps,
            rows: list[dict[str, float]] = rows,
        ) -> object:
            (done,) = inputs.push(0, rows[next(steps) % 1024], None)
            assert done.x is not None
            return model.score(done.x.astype(np.float32).reshape(1, -1))

        p50, p99, _ = _percentiles(one, iterations)
        print(f"| {name} | {p50:.1f} | {p99:.1f} | {'yes' if p99 <= 2000 else 'NO'} |")


if __name__ == "__main__":
    raise SystemExit(main())
