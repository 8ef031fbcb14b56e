"""SLMP source polling cost (issue 12): requests per poll against one request per signal,
gateway CPU, poll jitter.

A MELSEC stand-in (``harness/live/slmp_server.py``, a subprocess on loopback) holds
``--signals`` signals: int16 in D0.., int32 and float32 pairs, and M bits. One
:class:`~renkei.edge.sources.live.LiveSource` polls them every ``--interval-ms`` for ``--seconds``
while this process drains it as the agent would. Reported: requests per poll (batched)
against the naive one-request-per-signal count, the CPU of this process (driver thread +
row assembly; the server's CPU is not counted) as a share of one core, overruns, and the
p50/p99 of the interval between successive polls' timestamps (jitter).

``--soak N`` instead makes the server close every connection after one response (``drop`` mode) so
the driver reconnects N times, and reports the RSS of this process against reconnects
(slope by least squares, KiB per 1000 reconnects: flat means no growth per reconnect).

Run: ``python -m bench.bench_slmp [--signals 1000] [--interval-ms 100] [--seconds 20]``
or ``python -m bench.bench_slmp --soak 10000``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from harness.live.slmp_server import SlmpServer
from renkei.edge.sources.live import build_live_source
from renkei.edge.sources.live.slmp.config import SlmpSourceConfig
from renkei.edge.sources.live.slmp.driver import SlmpDriver


def _signals(n: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    addr = 0
    for i in range(n):
        kind = i % 4
        if kind == 3:
            out.append({"name": f"m{i}", "device": f"M{i}", "type": "bool"})
            continue
        dtype = ("int16", "int32", "float32")[kind]
        out.append({"name": f"d{i}", "device": f"D{addr}", "type": dtype})
        addr += 1 if dtype == "int16" else 2
    return out


def soak(reconnects: int) -> None:
    """Reconnect ``reconnects`` times; print the RSS slope."""
    import psutil

    proc = psutil.Process()
    with tempfile.TemporaryDirectory() as tmp:
        server = SlmpServer(Path(tmp) / "slmp.log", preset={"D0": [1, 2, 3]})
        server.start()
        try:
            cfg = SlmpSourceConfig.model_validate(
                {
                    "type": "slmp",
                    "host": "127.0.0.1",
                    "port": server.port,
                    "poll_interval_ms": 10,
                    "monitoring_timer_s": 0.25,
                    "link": {"reconnect_min_s": 0.0005, "reconnect_max_s": 0.001},
                    "signals": _signals(40),
                }
            )
            src = build_live_source(cfg)
            src.start()
            server.control(op="mode", mode="drop")
            points: list[tuple[int, int]] = []
            t0 = time.monotonic()
            while src.sink.outages < reconnects:
                time.sleep(0.2)
                src.poll()
                points.append((src.sink.outages, proc.memory_info().rss))
            wall = time.monotonic() - t0
            src.stop()
        finally:
            server.stop()
    xs = np.array([p[0] for p in points if p[0] > reconnects // 10], dtype=np.float64)
    ys = np.array([p[1] for p in points if p[0] > reconnects // 10], dtype=np.float64)
    slope = float(np.polyfit(xs, ys, 1)[0]) if len(xs) > 2 else float("nan")
    print(f"reconnects: {src.sink.outages} in {wall:.0f} s")
    print(
        f"RSS {ys[0] / 2**20:.1f} -> {ys[-1] / 2**20:.1f} MiB, slope "
        f"{slope * 1000 / 1024:.1f} KiB per 1000 reconnects (after a 10 % warm-up)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--signals", type=int, default=1000)
    ap.add_argument("--interval-ms", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--soak", type=int, default=0, help="reconnects (RSS soak instead)")
    args = ap.parse_args()
    if args.soak:
        soak(args.soak)
        return
    with tempfile.TemporaryDirectory() as tmp:
        server = SlmpServer(Path(tmp) / "slmp.log", preset={"D0": list(range(4000))})
        server.start()
        try:
            cfg = SlmpSourceConfig.model_validate(
                {
                    "type": "slmp",
                    "host": "127.0.0.1",
                    "port": server.port,
                    "poll_interval_ms": args.interval_ms,
                    "monitoring_timer_s": 1,
                    "signals": _signals(args.signals),
                }
            )
            src = build_live_source(cfg)
            drv = src.driver
            assert isinstance(drv, SlmpDriver)
            src.start()
            times: list[int] = []
            time.sleep(1.0)  # warm-up: connect, first polls
            src.poll()
            cpu0, wall0, polls0, req0 = (
                time.process_time(),
                time.monotonic(),
                drv.polls,
                drv.requests,
            )
            end = wall0 + args.seconds
            while time.monotonic() < end:
                time.sleep(0.05)
                for block in src.poll().blocks:
                    if block.stream == "slow":
                        times += [int(t) for t in block.t_ms]
            cpu = (time.process_time() - cpu0) / (time.monotonic() - wall0)
            polls, requests = drv.polls - polls0, drv.requests - req0
            src.stop()
        finally:
            server.stop()
    gaps = np.diff(np.array(times, dtype=np.int64))
    print(f"signals: {args.signals}, blocks per poll: {len(drv.blocks)}")
    print(f"polls: {polls}, requests: {requests} ({requests / max(polls, 1):.1f} per poll)")
    print(
        f"naive (one request per signal): {args.signals} per poll, ratio "
        f"{args.signals / max(requests / max(polls, 1), 1e-9):.0f}x fewer requests"
    )
    print(f"gateway CPU: {100 * cpu:.1f} % of one core; overruns: {drv.overruns}")
    if len(gaps):
        p50, p99 = np.percentile(gaps, [50, 99])
        print(f"poll interval p50 {p50:.0f} ms, p99 {p99:.0f} ms (target {args.interval_ms} ms)")


if __name__ == "__main__":
    main()
