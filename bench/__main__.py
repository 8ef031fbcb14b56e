"""Run every benchmark in order: ``python -m bench`` (or ``./dev bench``).

Each benchmark starts its own real Mosquitto / InfluxDB on free loopback ports, is bounded
in time, and prints a table; ``bench/RESULTS.md`` records the figures of the last run on
the reference machine (2 cores).
"""

from __future__ import annotations

import importlib
import sys

BENCHES = (
    "bench.bench_ingest",
    "bench.bench_ingest_scaleout",
    "bench.bench_gateway",
    "bench.bench_outbox",
    "bench.bench_planner",
    "bench.bench_capacity_search",
    "bench.bench_api_import",
    "bench.bench_inference",
    "bench.bench_stream_detector",
    "bench.bench_opcua",
    "bench.bench_modbus",
    "bench.bench_slmp",
    "bench.bench_mtconnect",
    "bench.bench_sparkplug",
    "bench.bench_site_bridge",
)
"""Soaks (``bench_opcua_soak``: ~10 min, ``bench_modbus_soak``) run by hand:
``python -m bench.bench_opcua_soak``."""


def main() -> int:
    only = sys.argv[1:]
    for name in BENCHES:
        if only and not any(o in name for o in only):
            continue
        print(f"\n=== {name} ===", flush=True)
        module = importlib.import_module(name)
        # Each benchmark parses only its own options; the names given here select them.
        sys.argv = [name]
        module.main()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
