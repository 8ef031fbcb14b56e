"""Gateway inference latency of every committed model (onnxruntime, 1 intra-op thread).

Run: ``python -m bench.bench_inference [--iterations 3000] [--batch 32] [--models a,b]
[--rows 2000] [--data-dir DIR]`` (about 30 s for the committed models).
Target (issue 14): p99 ≤ 2 ms per row on the gateway path, for every model.

Each model in ``models/artifacts/`` is loaded exactly as the gateway loads it
(:meth:`renkei.edge.model.inference.AnomalyModel.load`: hash check, CPU provider, one intra-op and
one inter-op thread, sequential execution). Timed with ``time.perf_counter_ns`` around
``AnomalyModel.score`` (input checks + ``session.run``), after 200 warm-up calls:

- ``single``: one row per call, as the pipeline scores each window / shot;
- ``batch``: ``--batch`` rows per call, reported per call and per row (what a gateway
  catching up on a backlog, or scoring several machines at once, would pay).

Rows are drawn from a standard normal (inputs are not realistic values, but the graphs'
cost does not depend on them, except the trees' paths, which this samples broadly).

Then the **gateway path per row** (:func:`gateway_path`) for every artifact found at run
time under ``models/artifacts/`` (so new models are included without editing this file):
what :class:`renkei.edge.pipeline.MachinePipeline` does per window / shot row once the row
exists: the model's streaming inputs (:class:`renkei.edge.model.inputs.ModelInputs`: row
features, history features, any input kind planned by
:func:`renkei.edge.model.inputs.plan_inputs`), the ONNX run
(:class:`renkei.edge.model.inference.AnomalyModel`) and the scoring
(:class:`renkei.edge.model.scoring.AnomalyScorer`; RUL models:
:class:`renkei.edge.model.rul.RulRunner` + :func:`renkei.edge.model.rul.rul_fields`). Rows
are the model's real data when its recipe module offers ``gateway_rows(data_dir, n) ->
list[dict[str, float]]`` (rows as the pipeline pushes them) and the data are present,
otherwise synthetic N(0, 1) rows of the manifest's fields; the table says which. Feature
extraction from raw samples (the windowing and vibration / shot features) is not included:
it is shared by all models of a machine and measured by ``bench/bench_gateway.py``.
"""

from __future__ import annotations

import argparse
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from renkei.edge.model.inference import AnomalyModel, ModelError
from renkei.edge.model.inputs import InputPlan
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
    ap.add_argument("--rows", type=int, default=2000, help="timed rows per model, gateway path")
    ap.add_argument("--data-dir", type=Path, default=None, help="datasets folder (real rows)")
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
    gateway_path(rows=args.rows, data_dir=args.data_dir, wanted=wanted)
    return 0


def _rows_for(
    name: str, plan_fields: tuple[str, ...], names: tuple[str, ...], n: int, data_dir: Path | None
) -> tuple[list[dict[str, float]], str]:
    """Rows to push: the recipe's real rows (``gateway_rows(data_dir, n)`` of its profile
    module) when it offers them and the data are there, else synthetic N(0, 1) rows of the
    manifest's fields (history plans) or inputs (row-feature plans). Returns (rows, source).
    """
    import importlib

    from renkei.models import PROFILES

    profile = PROFILES.get(name)
    hook = (
        None
        if profile is None
        else getattr(importlib.import_module(profile.module), "gateway_rows", None)
    )
    why = "no gateway_rows in its recipe"
    if hook is not None:
        if data_dir is None and profile is not None and profile.data_paths:
            why = "datasets folder not found"
        else:
            try:
                rows = list(hook(data_dir or Path("."), n))
            except FileNotFoundError as exc:
                why = f"data missing: {exc}"
            else:
                if rows:
                    return rows, f"real ({len(rows)} rows, cycled)" if len(rows) < n else "real"
                why = "recipe gave no rows"
    keys = plan_fields or names
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    values = rng.normal(size=(n, len(keys)))
    return [dict(zip(keys, map(float, r), strict=True)) for r in values], f"synthetic ({why})"


def _rul_step(model: AnomalyModel, plan: InputPlan) -> Callable[[int, dict[str, float]], None]:
    """One row of a RUL model on the gateway: ``RulRunner.push`` and its ``rul`` fields."""
    from renkei.edge.model.rul import RulRunner, rul_fields

    runner = RulRunner(model, plan)

    def step(t_ms: int, row: dict[str, float]) -> None:
        for out in runner.push(t_ms, row):
            rul_fields(out)

    return step


def _anomaly_step(model: AnomalyModel, plan: InputPlan) -> Callable[[int, dict[str, float]], None]:
    """One row of an anomaly model on the gateway: ``ModelInputs.push`` + ``AnomalyScorer``."""
    from renkei.edge.model.inputs import ModelInputs
    from renkei.edge.model.scoring import AnomalyScorer

    inputs: ModelInputs[int | None] = ModelInputs(plan)
    scorer = AnomalyScorer(model, machine_id="bench")

    def step(t_ms: int, row: dict[str, float]) -> None:
        for r in inputs.push(t_ms, row, None):
            scorer.score(r)

    return step


def gateway_path(*, rows: int, data_dir: Path | None, wanted: set[str]) -> None:
    """Per row, the gateway's own path for every artifact: anomaly models
    ``ModelInputs.push`` + ``AnomalyScorer.score`` (``renkei.edge.pipeline`` ``_model_row``);
    RUL models ``RulRunner.push`` (inputs + all outputs) + ``rul_fields``
    (``renkei.edge.model.rul_sink``). The rows before the first scored one (a history
    baseline) are pushed untimed, except the row that completes the baseline, which releases
    the whole backlog and is reported on its own; then 200 warm-up rows and ``rows`` timed.
    """
    from renkei.edge.model.inputs import InputPlanError, plan_inputs
    from renkei.edge.model.rul import plan_inputs as plan_rul_inputs

    if data_dir is None:
        try:
            from renkei.models import default_data_dir

            data_dir = default_data_dir()
        except FileNotFoundError:
            data_dir = None
    print(
        "\nGateway path per row, every artifact (inputs + ONNX + scoring, as the pipeline "
        f"does); {rows} timed rows after the baseline and {_WARMUP} warm-up rows:\n"
    )
    print(
        "| model | task | rows | baseline rows | baseline release ms | p50 µs | p99 µs | "
        "max µs | CPU p99 µs | p99 ≤ 2 ms |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    over = []
    dirs = sorted(p.parent for p in DEFAULT_ARTIFACTS_DIR.glob("*/manifest.json"))
    for model_dir in dirs:
        name = model_dir.name
        if wanted and name not in wanted:
            continue
        try:
            model = AnomalyModel.load(model_dir=model_dir)
            rul = model.manifest.task == "rul"
            plan = plan_rul_inputs(model.manifest) if rul else plan_inputs(model.manifest)
        except (ModelError, InputPlanError) as exc:
            print(f"| {name} | – | – | – | – | – | – | – | skipped: {exc} |")
            continue
        need = plan.rows_needed + _WARMUP + rows
        pool, source = _rows_for(name, plan.fields, plan.names, need, data_dir)
        step = _rul_step(model, plan) if rul else _anomaly_step(model, plan)
        i = 0
        for i in range(plan.rows_needed - 1 if plan.rows_needed else 0):
            step(i * 1000, pool[i % len(pool)])
        release_ms = float("nan")
        k = max(plan.rows_needed - 1, 0)
        if plan.rows_needed:
            t0 = time.perf_counter_ns()
            step(k * 1000, pool[k % len(pool)])
            release_ms = (time.perf_counter_ns() - t0) / 1e6
            k += 1
        for _ in range(_WARMUP):
            step(k * 1000, pool[k % len(pool)])
            k += 1
        ns = np.empty(rows, dtype=np.int64)
        cpu = np.empty(rows, dtype=np.int64)
        for j in range(rows):
            row = pool[k % len(pool)]
            c0 = time.thread_time_ns()
            t0 = time.perf_counter_ns()
            step(k * 1000, row)
            ns[j] = time.perf_counter_ns() - t0
            cpu[j] = time.thread_time_ns() - c0
            k += 1
        us, cpu_us = ns / 1000.0, cpu / 1000.0
        p50, p99, mx = (float(np.percentile(us, 50)), float(np.percentile(us, 99)), float(us.max()))
        cpu99 = float(np.percentile(cpu_us, 99))
        verdict = "yes" if p99 <= 2000 else ("preempted" if cpu99 <= 2000 else "**NO**")
        if verdict != "yes":
            over.append(f"{name} ({verdict.strip('*')})")
        release = "–" if plan.rows_needed == 0 else f"{release_ms:.2f}"
        print(
            f"| {name} | {model.manifest.task} | {source} | {plan.rows_needed} | {release} | "
            f"{p50:.0f} | {p99:.0f} | {mx:.0f} | {cpu99:.0f} | {verdict} |"
        )
    print("\nover 2 ms p99 (wall clock): " + (", ".join(over) if over else "none"))
    print(
        "(CPU p99 = the row's own thread CPU time, time.thread_time_ns: 'preempted' = the wall "
        "clock p99 is over 2 ms but the work is not, i.e. the scheduler ran something else)"
    )


if __name__ == "__main__":
    raise SystemExit(main())
