"""MTConnect source benchmark (figures for the closing note; not a timed test).

Run: ``python -m bench.bench_mtconnect [--seconds 10] [--period-ms 5] [--drops 300]``.

1. Parse + decode: MTConnectStreams documents of 1,000 observations through the hardened
   parser and the decoder, observations/s (one core).
2. Live stream: the test agent (:mod:`harness.live.mtconnect_agent`, subprocess) generating
   ~5 observations per ``period_ms``; the driver in ``stream`` mode (interval 50 ms) maps 7
   signals for ``--seconds``: readings/s, gateway CPU (this process, % of one core), and the
   latency from the observation timestamp to the sink (p50/p99, ms; the agent stamps at
   generation, so it includes the stream interval).
3. Reconnect soak: ``--drops`` stream drops (the agent ends the stream, the driver
   reconnects and resumes): RSS before/after and its slope per 1,000 reconnects.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil

from harness.live.mtconnect_agent import Agent, AgentProcess, Obs
from renkei.edge.sources.datasets import find_data_dir
from renkei.edge.sources.live.base import LiveSink, now_ms
from renkei.edge.sources.live.mtconnect.config import MtconnectSignal, MtconnectSourceConfig
from renkei.edge.sources.live.mtconnect.driver import MtconnectDriver
from renkei.edge.sources.live.mtconnect.mapping import Decoder, resolve
from renkei.edge.sources.live.mtconnect.parse import parse_devices, parse_streams

SIGNALS = [
    {"name": "x_pos", "data_item": "x2"},
    {"name": "y_pos", "data_item": "y2"},
    {"name": "z_pos", "data_item": "z2"},
    {"name": "spindle_rpm", "data_item": "Sspeed"},
    {"name": "spindle_load", "data_item": "Cload"},
    {
        "name": "execution",
        "data_item": "execution",
        "states": {"ACTIVE": 1, "READY": 0.5, "STOPPED": 0},
    },
    {"name": "system_level", "data_item": "system"},
]


def _probe() -> Path:
    data = find_data_dir()
    if data is None:
        raise SystemExit("datasets folder not found (set RENKEI_DATA_DIR)")
    return data / "mtconnect" / "simulator" / "VMC-3Axis.xml"


def bench_parse(probe: Path) -> None:
    agent = Agent(probe, buffer_size=4096, period_ms=1000, instance=1)
    ids = ["x2", "y2", "z2", "c2", "cl3"]
    t = now_ms()
    obs = [Obs(1000 + i, ids[i % 5], t, f"{i * 0.1:.4f}") for i in range(1000)]
    doc = agent.streams_doc(obs, 2000)
    sigs = [MtconnectSignal.model_validate(s) for s in SIGNALS]
    items = parse_devices(probe.read_bytes()).data_items
    dec = Decoder(resolve(sigs, items), sigs, [i for i in items if i.category == "CONDITION"])
    reps = 200
    t0 = time.perf_counter()
    n = 0
    for _ in range(reps):
        readings, _ = dec.decode(parse_streams(doc).observations)
        n += len(readings)
    dt = time.perf_counter() - t0
    print(
        f"parse+decode: {len(doc) / 1024:.0f} KiB documents of 1000 observations: "
        f"{reps * 1000 / dt:,.0f} observations/s ({n / dt:,.0f} readings/s)"
    )


def _driver(url: str) -> MtconnectDriver:
    cfg = MtconnectSourceConfig.model_validate(
        {
            "type": "mtconnect",
            "url": url,
            "interval_ms": 50,
            "heartbeat_ms": 1000,
            "link": {"reconnect_min_s": 0.01, "reconnect_max_s": 0.05, "timeout_s": 2},
            "signals": SIGNALS,
        }
    )
    return MtconnectDriver(cfg)


def bench_stream(probe: Path, work: Path, seconds: float, period_ms: int) -> None:
    agent = AgentProcess(probe, work, period_ms=period_ms)
    agent.start()
    driver = _driver(agent.url)
    sink, stop = LiveSink(), threading.Event()
    th = threading.Thread(target=driver.run, args=(sink, stop), daemon=True)
    th.start()
    try:
        time.sleep(1.0)
        sink.take()
        proc = psutil.Process()
        cpu0, w0 = proc.cpu_times(), time.monotonic()
        lat: list[int] = []
        n = 0
        while time.monotonic() - w0 < seconds:
            time.sleep(0.05)
            readings, _, _ = sink.take()
            now = now_ms()
            n += len(readings)
            lat += [now - r.t_ms for r in readings]
        cpu1, w1 = proc.cpu_times(), time.monotonic()
        cpu = (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / (w1 - w0)
        p50, p99 = np.percentile(lat, [50, 99])
        print(
            f"stream: {n / (w1 - w0):,.0f} readings/s of 7 signals (agent ~{5000 // period_ms} "
            f"obs/s), gateway CPU {100 * cpu:.1f} % of one core, latency observation->sink "
            f"p50 {p50:.0f} ms, p99 {p99:.0f} ms"
        )
    finally:
        stop.set()
        th.join(5)
        agent.kill()


def bench_soak(probe: Path, work: Path, drops: int) -> None:
    agent = AgentProcess(probe, work, period_ms=20)
    agent.start()
    driver = _driver(agent.url)
    sink, stop = LiveSink(), threading.Event()
    th = threading.Thread(target=driver.run, args=(sink, stop), daemon=True)
    th.start()
    proc = psutil.Process()
    try:
        time.sleep(1.0)
        rss: list[tuple[int, float]] = []
        for i in range(drops):
            while agent.control("state")["streams"] < 1:
                time.sleep(0.002)
            before = sink.connects
            agent.control("drop")
            deadline = time.monotonic() + 10
            while sink.connects == before and time.monotonic() < deadline:
                time.sleep(0.005)
            sink.take()
            if i % 25 == 0:
                rss.append((i, proc.memory_info().rss / 2**20))
        rss.append((drops, proc.memory_info().rss / 2**20))
        xs, ys = np.array([r[0] for r in rss]), np.array([r[1] for r in rss])
        half = len(xs) // 2
        slope = np.polyfit(xs[half:], ys[half:], 1)[0] * 1000 if len(xs) > 3 else float("nan")
        print(
            f"soak: {sink.connects} connects over {drops} stream drops; RSS {ys[0]:.1f} -> "
            f"{ys[-1]:.1f} MiB, slope (second half) {slope:+.2f} MiB per 1000 reconnects; "
            f"lost observations {driver.lost}"
        )
    finally:
        stop.set()
        th.join(5)
        agent.kill()


def main() -> None:
    ap = argparse.ArgumentParser(description="MTConnect source benchmark")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--period-ms", type=int, default=5)
    ap.add_argument("--drops", type=int, default=300)
    args = ap.parse_args()
    probe = _probe()
    print(f"pid {os.getpid()}, {os.cpu_count()} CPUs")
    bench_parse(probe)
    with tempfile.TemporaryDirectory() as tmp:
        bench_stream(probe, Path(tmp), args.seconds, args.period_ms)
        bench_soak(probe, Path(tmp), args.drops)


if __name__ == "__main__":
    main()
