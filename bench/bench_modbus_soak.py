"""Modbus reconnect soak: 10,000 reconnects with the gateway's RSS sampled (week-long
behaviour in minutes).

Run by hand::

    python -m bench.bench_modbus_soak [--reconnects 10000]

The device is pymodbus's ``ModbusTcpServer`` in a subprocess that closes the connection
after every response (``drop_after_response``). The gateway side (this process) is a
:class:`~renkei.edge.sources.live.LiveSource` with the ``modbus`` driver reading two blocks per
poll: the first is answered, the second finds the connection closed, so every poll is one
``link_down`` (``source_down`` event), a backoff of 1-2 ms, a reconnect, a ``source_up``
event. The main thread drains the source every 50 ms like the agent.

Reported: reconnects, their rate, RSS (``VmRSS``) at start and end, and the least-squares
slope of RSS against reconnects after the first 1,000 (warm-up: allocator arenas, imports),
in KiB per 1,000 reconnects. Flat memory is a slope near 0 (noise of a few KiB).
"""

from __future__ import annotations

import argparse
import gc
import time
from pathlib import Path

import numpy as np

from harness.live.modbus_server import ModbusServer
from harness.services import free_port
from renkei.edge.sources.live import LiveSource
from renkei.edge.sources.live.modbus.config import ModbusSourceConfig
from renkei.edge.sources.live.modbus.driver import ModbusDriver, make_driver


def rss_kib() -> int:
    """This process's resident set size, KiB (Linux ``/proc``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    ap.add_argument("--reconnects", type=int, default=10_000)
    ap.add_argument("--sample-every", type=int, default=250)
    ap.add_argument("--warmup", type=int, default=1_000)
    args = ap.parse_args()

    port = free_port()
    server = ModbusServer({"port": port, "size": 100, "drop_after_response": True}).start()
    cfg = ModbusSourceConfig.model_validate(
        {
            "type": "modbus",
            "host": "127.0.0.1",
            "port": port,
            "poll_interval_ms": 10,
            "max_gap": 0,
            "link": {"reconnect_min_s": 0.001, "reconnect_max_s": 0.002, "timeout_s": 1},
            "signals": [
                {"name": "a", "table": "holding_register", "address": 0},
                {"name": "b", "table": "holding_register", "address": 50},
            ],
        }
    )
    source = LiveSource(config=cfg, driver=make_driver(cfg))
    driver = source.driver
    assert isinstance(driver, ModbusDriver)
    samples: list[tuple[int, int]] = []
    events = 0
    t0 = time.monotonic()
    source.start()
    try:
        next_sample = 0
        while driver.stats.connects < args.reconnects:
            batch = source.poll()
            events += len(batch.events)
            n = driver.stats.connects
            if n >= next_sample:
                gc.collect()
                samples.append((n, rss_kib()))
                next_sample = n + args.sample_every
            time.sleep(0.05)
        source.poll()
    finally:
        source.stop()
        server.stop()
    wall = time.monotonic() - t0
    xs = np.array([n for n, _ in samples if n >= args.warmup], dtype=np.float64)
    ys = np.array([r for n, r in samples if n >= args.warmup], dtype=np.float64)
    slope = float(np.polyfit(xs, ys, 1)[0]) * 1000 if len(xs) >= 2 else float("nan")
    rows = [
        (
            "reconnects",
            f"{driver.stats.connects} in {wall:.0f} s ({driver.stats.connects / wall:.0f}/s)",
        ),
        ("outages (source_down)", str(source.sink.outages)),
        ("events drained", str(events)),
        ("polls / requests", f"{driver.stats.polls} / {driver.stats.requests}"),
        ("RSS start -> end, KiB", f"{samples[0][1]} -> {samples[-1][1]}"),
        (
            f"RSS slope after {args.warmup} reconnects",
            f"{slope:+.1f} KiB per 1,000 reconnects ({len(xs)} samples)",
        ),
    ]
    w = max(len(k) for k, _ in rows)
    print("\nModbus reconnect soak")
    print("-" * (w + 50))
    for k, v in rows:
        print(f"{k:<{w}}  {v}")


if __name__ == "__main__":
    main()
