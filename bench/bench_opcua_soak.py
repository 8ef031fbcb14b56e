"""Soak of the ``opcua`` driver's session code: week-long reconnect behaviour in minutes.

Against the asyncua test server in a subprocess (``harness/live/opcua_server.py``, ``items``
Double variables changing every 100 ms), the client process (this one) performs ``N``
subscription re-creations (delete + create ONE subscription with ``items`` monitored items,
wait for its first data) on one session, and every ``N / reconnects`` iterations a full
session reconnect (close the session and connection, connect, resolve the NodeIds, read
EngineeringUnits, subscribe again) -- exactly the code the driver runs
(:class:`renkei.edge.sources.live.opcua.session.OpcuaSession`). It samples this process's RSS
every ``K`` iterations and reports the least-squares slope (KiB per 1,000 re-creations) and
the first/last RSS. Flat memory means nothing of a deleted subscription or closed session
is kept.

Run: ``python -m bench.bench_opcua_soak [N] [--reconnects R] [--items I] [--every K]``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import tempfile
import time
from pathlib import Path

from harness.live.opcua_fixtures import NS, OpcuaServer
from renkei.edge.sources.live.base import Reading
from renkei.edge.sources.live.opcua.config import OpcuaSourceConfig
from renkei.edge.sources.live.opcua.session import Credentials, OpcuaSession


def rss_kib() -> float:
    """Resident set size of this process, KiB (Linux ``/proc/self/statm``)."""
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1024


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ys over xs."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else 0.0


async def soak(endpoint: str, n: int, reconnects: int, items: int, every: int) -> dict[str, float]:
    cfg = OpcuaSourceConfig.model_validate(
        {
            "type": "opcua",
            "endpoint": endpoint,
            "publishing_interval_ms": 50,
            "link": {"timeout_s": 5},
            "signals": [{"name": f"v{i}", "node_id": f"nsu={NS};s=v{i}"} for i in range(items)],
        }
    )
    got = 0

    def deliver(readings: list[Reading]) -> None:
        nonlocal got
        got += len(readings)

    async def new_session() -> OpcuaSession:
        s = OpcuaSession(cfg, Credentials(), deliver)
        await s.connect()
        problems = await s.resolve(cfg.signals)
        assert not problems, problems
        await s.units()
        return s

    async def first_data(s: OpcuaSession) -> None:
        s.data_seen.clear()
        await asyncio.wait_for(s.data_seen.wait(), 10)

    session = await new_session()
    await session.subscribe()
    await first_data(session)
    reconnect_every = max(1, n // max(1, reconnects))
    xs: list[float] = []
    ys: list[float] = []
    done_reconnects = 0
    t0 = time.monotonic()
    for i in range(1, n + 1):
        if i % reconnect_every == 0:
            await session.close()
            session = await new_session()
            done_reconnects += 1
        else:
            await session.unsubscribe()
        await session.subscribe()
        await first_data(session)
        session.check()
        if i % every == 0:
            gc.collect()
            xs.append(i)
            ys.append(rss_kib())
    await session.close()
    elapsed = time.monotonic() - t0
    return {
        "recreations": n,
        "reconnects": done_reconnects,
        "items": items,
        "readings": got,
        "elapsed_s": elapsed,
        "rss_first_kib": ys[0],
        "rss_last_kib": ys[-1],
        "slope_kib_per_1000": slope(xs, ys) * 1000,
        "slope_second_half_kib_per_1000": slope(xs[len(xs) // 2 :], ys[len(ys) // 2 :]) * 1000,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("n", nargs="?", type=int, default=10_000)
    parser.add_argument("--reconnects", type=int, default=300)
    parser.add_argument("--items", type=int, default=50)
    parser.add_argument("--every", type=int, default=100)
    args = parser.parse_args(argv)
    logging.getLogger("asyncua").setLevel(logging.ERROR)  # stale publishes of deleted subs
    with tempfile.TemporaryDirectory() as tmp:
        srv = OpcuaServer(Path(tmp), {"period_ms": 100, "items": args.items})
        srv.start()
        try:
            res = asyncio.run(
                soak(srv.endpoint, args.n, args.reconnects, args.items, min(args.every, args.n))
            )
        finally:
            srv.stop()
    print(f"{'metric':<34} value")
    for k, v in res.items():
        print(f"{k:<34} {v:,.1f}" if isinstance(v, float) else f"{k:<34} {v:,}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
