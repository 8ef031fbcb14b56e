"""Per-row cost of the streaming detector on every NAB file (issue 14: p99 ≤ 2 ms per row).

Run: ``python -m bench.bench_stream_detector [--data-dir DIR] [--workers 1] [--params
manifest|v2]`` (about 2-4 min on the 2-core reference machine).

The detector of the committed ``nab-stream-generic`` artifact (its manifest's
``algorithm_params``, i.e. exactly what the gateway builds; ``--params v2`` times 2.0.0's
frozen-scale detector instead) runs on each of NAB's files from ``RENKEI_DATA_DIR`` /
``../shared/datasets`` (a fresh detector per file, rows pushed one by one as the gateway's
:class:`renkei.edge.model.inputs.ModelInputs` does). Each row is timed with
``time.thread_time_ns`` (this thread's CPU time: what the row costs, not the scheduler's
waits on a shared machine) and ``perf_counter_ns`` (wall). Per file: p50 / p99 / max µs,
the rows over 2 ms, rebuilds (growing scale), restarts (memory bound) and the contexts in
memory at the end. ``bench/bench_inference.py`` times the whole gateway path (inputs + ONNX +
scoring) on one file; this one covers every file, since the detector's cost depends on the
stream (it grows with the contexts CAD OSE learns).
"""

from __future__ import annotations

import argparse
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from renkei.core.manifest import read_manifest
from renkei.edge.model.stream_detector import StreamDetector, StreamDetectorConfig
from renkei.models import DEFAULT_ARTIFACTS_DIR, default_data_dir
from renkei.models.profiles import nab_generic

TARGET_US = 2000.0


def _one(job: tuple[str, NDArray[np.float64], StreamDetectorConfig]) -> dict[str, float | str]:
    name, x, config = job
    det = StreamDetector(config)
    cpu = np.empty(x.size)
    wall = np.empty(x.size)
    for i, v in enumerate(x.tolist()):
        t0, c0 = time.perf_counter_ns(), time.thread_time_ns()
        det.push(v)
        cpu[i] = time.thread_time_ns() - c0
        wall[i] = time.perf_counter_ns() - t0
    cpu /= 1e3
    wall /= 1e3
    return {
        "file": name,
        "rows": float(x.size),
        "cpu_p50": float(np.percentile(cpu, 50)),
        "cpu_p99": float(np.percentile(cpu, 99)),
        "cpu_max": float(cpu.max()),
        "wall_p99": float(np.percentile(wall, 99)),
        "over_2ms": float((cpu > TARGET_US).sum()),
        "rebuilds": float(det.rebuilds),
        "restarts": float(det.restarts),
        "contexts": float(det.contexts),
    }


def main(argv: list[str] | None = None) -> int:
    """Time the detector on every NAB file; print a markdown table and a summary."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=None)
    ap.add_argument("--workers", type=int, default=1, help="processes (1 = quietest)")
    ap.add_argument("--params", choices=("manifest", "v2"), default="manifest")
    args = ap.parse_args(argv)
    if args.params == "v2":
        config = nab_generic.V2_CONFIG
    else:
        manifest = read_manifest(DEFAULT_ARTIFACTS_DIR / nab_generic.NAME)
        config = StreamDetectorConfig.from_params(manifest.algorithm_params)
    try:
        corpus = nab_generic.build(args.data_dir or default_data_dir())
    except FileNotFoundError as exc:
        print(f"skipped: {exc}")
        return 0
    jobs = [(f.name, x, config) for f, x in zip(corpus.files, corpus.values, strict=True)]
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=max(args.workers, 1)) as pool:
        rows = list(pool.map(_one, jobs, chunksize=1))
    print(f"detector: {config}")
    print(f"{len(rows)} files, {time.perf_counter() - started:.0f} s wall, "
          f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    print()
    print("| file | rows | CPU p50 µs | CPU p99 µs | CPU max ms | wall p99 µs | rows > 2 ms "
          "| rebuilds | restarts | contexts | p99 ≤ 2 ms |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        ok = "yes" if float(r["cpu_p99"]) <= TARGET_US else "**no**"
        print(
            f"| {r['file']} | {r['rows']:.0f} | {r['cpu_p50']:.0f} | {r['cpu_p99']:.0f} | "
            f"{float(r['cpu_max']) / 1e3:.0f} | {r['wall_p99']:.0f} | {r['over_2ms']:.0f} | "
            f"{r['rebuilds']:.0f} | {r['restarts']:.0f} | {r['contexts']:.0f} | {ok} |"
        )
    p99 = [float(r["cpu_p99"]) for r in rows]
    worst = max(range(len(rows)), key=lambda i: p99[i])
    print()
    print(
        f"summary: files with CPU p99 > 2 ms: {sum(p > TARGET_US for p in p99)} of {len(rows)}; "
        f"worst CPU p99 {p99[worst]:.0f} µs ({rows[worst]['file']}); max contexts "
        f"{max(float(r['contexts']) for r in rows):.0f}; max row "
        f"{max(float(r['cpu_max']) for r in rows) / 1e3:.0f} ms CPU"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
