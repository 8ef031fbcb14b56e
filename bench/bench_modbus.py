"""Modbus polling benchmark: 50 devices x 100 registers at 10 Hz.

Run by hand::

    python -m bench.bench_modbus [--devices 50] [--seconds 20] [--rate-hz 10]

Devices: pymodbus ``ModbusTcpServer`` instances on loopback, ``--per-process`` of them in
each server subprocess (so the servers' CPU is not the gateway's). Each device has the
same register map, 100 registers in three clusters as PLC maps usually are:

- holding registers 0..39: 40 ``int16`` (scaled 0.1);
- holding registers 100..139: 20 ``float32`` (word order little);
- input registers 300..338, every other one: 20 ``uint16``.

The gateway side is this process: one :class:`~renkei.edge.sources.live.LiveSource` per device
(the ``modbus`` driver on its thread, one TCP connection each) and a main loop that drains
every source every 100 ms like the agent does (row assembly, scale/offset, quality).

Reported after a warm-up:

- read requests per poll (planned) against the naive poller's one request per register
  and one per signal, and the ratio; the servers' own request counters must agree;
- gateway CPU: process CPU time (all threads of this process) / wall time, % of one core;
- poll jitter: how late each poll started against its monotonic schedule, p50/p99/max, ms;
- overruns (polls that missed their slot) and bad readings.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import numpy as np

from harness.live.modbus_server import ModbusServer
from harness.services import free_port
from renkei.edge.sources.live import LiveSource
from renkei.edge.sources.live.modbus.config import ModbusSourceConfig
from renkei.edge.sources.live.modbus.driver import ModbusDriver, make_driver


def register_map() -> list[dict[str, Any]]:
    """The 80 signals (100 registers) of one device."""
    sigs: list[dict[str, Any]] = [
        {"name": f"t{i}", "table": "holding_register", "address": i, "type": "int16", "scale": 0.1}
        for i in range(40)
    ]
    sigs += [
        {
            "name": f"f{i}",
            "table": "holding_register",
            "address": 100 + 2 * i,
            "type": "float32",
            "word_order": "little",
        }
        for i in range(20)
    ]
    sigs += [
        {"name": f"u{i}", "table": "input_register", "address": 300 + 2 * i, "type": "uint16"}
        for i in range(20)
    ]
    return sigs


def registers(sigs: list[dict[str, Any]]) -> int:
    """Registers the map spans (the naive poller reads each alone)."""
    return sum(2 if s["type"] == "float32" else 1 for s in sigs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    ap.add_argument("--devices", type=int, default=50)
    ap.add_argument("--per-process", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--rate-hz", type=float, default=10.0)
    args = ap.parse_args()

    ports = [free_port() for _ in range(args.devices)]
    servers = [
        ModbusServer({"ports": ports[i : i + args.per_process], "size": 400}).start()
        for i in range(0, args.devices, args.per_process)
    ]
    sigs = register_map()
    sources: list[LiveSource] = []
    try:
        for port in ports:
            cfg = ModbusSourceConfig.model_validate(
                {
                    "type": "modbus",
                    "host": "127.0.0.1",
                    "port": port,
                    "poll_interval_ms": round(1000 / args.rate_hz),
                    "signals": sigs,
                }
            )
            sources.append(LiveSource(config=cfg, driver=make_driver(cfg)))
        for s in sources:
            s.start()
        drivers = [d for s in sources if isinstance(d := s.driver, ModbusDriver)]
        assert len(drivers) == len(sources)

        main_cpu = [0.0]

        def drain(until: float) -> None:
            while time.monotonic() < until:
                t0 = time.thread_time()
                for s in sources:
                    s.poll()
                main_cpu[0] += time.thread_time() - t0
                time.sleep(0.1)

        drain(time.monotonic() + args.warmup)
        for srv in servers:
            srv.reset()
        base = [(d.stats.polls, d.stats.requests, d.stats.overruns) for d in drivers]
        for d in drivers:
            d.stats.jitter_ms.clear()
        main_cpu[0] = 0.0
        cpu0, wall0 = time.process_time(), time.monotonic()
        drain(wall0 + args.seconds)
        cpu1, wall1 = time.process_time(), time.monotonic()
        end = [(d.stats.polls, d.stats.requests, d.stats.overruns) for d in drivers]
        jitter = np.concatenate(
            [np.array(d.stats.jitter_ms.values(), dtype=np.float64) for d in drivers]
        )
        counted = sum(sum(srv.counts().values()) for srv in servers)
    finally:
        for s in sources:
            s.stop()
        for srv in servers:
            srv.stop()

    polls, requests, overruns = (
        sum(e[k] - b[k] for e, b in zip(end, base, strict=True)) for k in range(3)
    )
    bad = sum(s.totals["bad"] for s in sources)
    per_poll = requests / max(polls, 1)
    n_regs = registers(sigs)
    wall = wall1 - wall0
    rows = [
        ("devices x registers (signals)", f"{args.devices} x {n_regs} ({len(sigs)})"),
        ("poll rate", f"{args.rate_hz:g} Hz for {wall:.1f} s"),
        ("polls (all devices)", f"{polls} ({polls / wall / args.devices:.2f}/s per device)"),
        ("reads per poll (planned)", f"{per_poll:.2f}"),
        ("naive reads per poll", f"{n_regs} per register, {len(sigs)} per signal"),
        (
            "ratio naive/planned",
            f"{n_regs / per_poll:.1f}x (per signal {len(sigs) / per_poll:.1f}x)",
        ),
        ("requests seen by servers", f"{counted} (gateway sent {requests} in the window)"),
        ("gateway CPU, % of one core", f"{100 * (cpu1 - cpu0) / wall:.1f}"),
        ("  of which LiveSource.poll (rows)", f"{100 * main_cpu[0] / wall:.1f}"),
        ("  of which drivers (I/O + decode)", f"{100 * (cpu1 - cpu0 - main_cpu[0]) / wall:.1f}"),
        (
            "poll jitter p50 / p99 / max, ms",
            " / ".join(f"{x:.2f}" for x in (*np.percentile(jitter, [50, 99]), jitter.max())),
        ),
        ("overruns", str(overruns)),
        ("bad readings", str(bad)),
        ("cpu count (shared machine)", str(os.cpu_count())),
    ]
    w = max(len(k) for k, _ in rows)
    print("\nModbus polling benchmark")
    print("-" * (w + 40))
    for k, v in rows:
        print(f"{k:<{w}}  {v}")


if __name__ == "__main__":
    main()
