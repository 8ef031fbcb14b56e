"""``sparkplug`` live source: throughput, latency, and memory over reconnects.

1. Host logic alone: DDATA payloads (``--metrics`` aliased Double metrics each, all mapped
   to signals) decoded and turned into readings per second of one core.
2. Through a real Mosquitto on loopback: an Edge Node (``harness/live/sparkplug_node.py``)
   publishes DDATA at ``--rate`` messages/s for ``--seconds``; the gateway process's CPU
   share of one core (driver + LiveSource polling), and publish→LiveSource latency
   p50/p99 (metric timestamp to the poll that saw it; includes the 20 ms poll period).
3. Reconnects: the broker drops the source's connection ``--reconnects`` times (another
   client takes over its client id); RSS before/after and its slope per reconnect.

Run: ``python -m bench.bench_sparkplug [--seconds 10] [--rate 200] [--metrics 20]
[--reconnects 2000]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
import psutil
import pysparkplug as spb
from paho.mqtt.enums import CallbackAPIVersion

from harness.live.sparkplug_node import EdgeNode, MetricDef
from harness.services import Mosquitto
from harness.wait import wait_for
from renkei.edge.sources.live import LiveSource, build_live_source
from renkei.edge.sources.live.base import LiveSink, now_ms
from renkei.edge.sources.live.sparkplug.config import SparkplugSourceConfig
from renkei.edge.sources.live.sparkplug.host import SparkplugHost

DT = spb.DataType


def _config(port: int, n: int, **over: Any) -> SparkplugSourceConfig:
    raw: dict[str, Any] = {
        "type": "sparkplug",
        "port": port,
        "client_id": "bench-host",
        "group_id": "G",
        "edge_node_id": "N",
        "link": {"reconnect_min_s": 0.01, "reconnect_max_s": 0.05},
        "rebirth_min_interval_s": 0.1,
        "signals": [{"name": f"m{i}", "device": "D", "metric": f"M{i}"} for i in range(n)],
    }
    raw.update(over)
    return SparkplugSourceConfig.model_validate(raw)


def bench_host(n_metrics: int, messages: int = 20_000) -> None:
    cfg = _config(1883, n_metrics)
    sink = LiveSink()
    host = SparkplugHost(cfg, sink, lambda _n: True)
    bd = spb.Metric(timestamp=1, name="bdSeq", datatype=DT.UINT64, value=0)
    host.on_message("spBv1.0/G/NBIRTH/N", spb.NBirth(1, 0, (bd,)).encode(include_dtypes=True))
    birth = tuple(
        spb.Metric(timestamp=1, name=f"M{i}", datatype=DT.DOUBLE, value=0.0, alias=i)
        for i in range(n_metrics)
    )
    host.on_message("spBv1.0/G/DBIRTH/N/D", spb.DBirth(1, 1, birth).encode(include_dtypes=True))
    payloads = []
    for k in range(256):
        metrics = tuple(
            spb.Metric(timestamp=k, name=None, datatype=DT.DOUBLE, value=float(i), alias=i)
            for i in range(n_metrics)
        )
        payloads.append(spb.DData(k, k, metrics).encode())
    sink.take()
    t0 = time.process_time()
    for j in range(messages):
        host.on_message("spBv1.0/G/DDATA/N/D", payloads[(j + 2) % 256])
        if j % 1000 == 999:
            sink.take()
    cpu = time.process_time() - t0
    print(
        f"host logic: {messages / cpu:,.0f} DDATA/s, {messages * n_metrics / cpu:,.0f} "
        f"metrics/s per core ({n_metrics} metrics per DDATA)"
    )


def bench_broker(workdir: Path, seconds: float, rate: float, n_metrics: int) -> None:
    broker = Mosquitto(workdir=workdir / "m1")
    broker.start()
    source: LiveSource = build_live_source(_config(broker.port, n_metrics))
    defs = [MetricDef(f"M{i}", i, DT.DOUBLE, 0.0) for i in range(n_metrics)]
    node = EdgeNode(port=broker.port, group="G", node_id="N", devices={"D": defs})
    proc = psutil.Process()
    try:
        source.start()
        wait_for(lambda: source.sink.connects >= 1, 10, "source up")
        node.start()
        lat: list[int] = []
        seen = 0
        period = 1.0 / rate
        cpu0 = proc.cpu_times()
        w0 = time.monotonic()
        next_t = w0
        while time.monotonic() - w0 < seconds:
            now = time.monotonic()
            if now >= next_t:
                node.publish_data({f"M{i}": float(i) for i in range(n_metrics)}, device="D")
                next_t += period
            batch = source.poll()
            t_poll = now_ms()
            for block in batch.blocks:
                lat.extend(int(t_poll - t) for t in block.t_ms)
                seen += len(block.t_ms)
            time.sleep(min(0.02, max(0.0, next_t - time.monotonic())))
        wall = time.monotonic() - w0
        cpu1 = proc.cpu_times()
        cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
        p50, p99 = np.percentile(np.asarray(lat), [50, 99]) if lat else (float("nan"),) * 2
        print(
            f"through Mosquitto: {seen} rows in {wall:.1f} s at {rate:g} DDATA/s x "
            f"{n_metrics} metrics; process CPU {100 * cpu / wall:.1f} % of one core "
            f"(includes the test Edge Node); latency p50 {p50:.0f} ms, p99 {p99:.0f} ms"
        )
    finally:
        source.stop(timeout_s=3)
        node.client.loop_stop()
        node.client.disconnect()
        broker.kill()


def _more_connects(source: LiveSource, before: int) -> Callable[[], bool]:
    return lambda: source.sink.connects > before


def bench_reconnects(workdir: Path, reconnects: int) -> None:
    broker = Mosquitto(workdir=workdir / "m2")
    broker.start()
    source: LiveSource = build_live_source(_config(broker.port, 10))
    proc = psutil.Process()
    thief = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-host")
    try:
        source.start()
        wait_for(lambda: source.sink.connects >= 1, 10, "source up")
        rss: list[tuple[int, int]] = []
        for k in range(reconnects):
            before = source.sink.connects
            thief.connect("127.0.0.1", broker.port)  # session takeover drops the source
            thief.disconnect()
            wait_for(_more_connects(source, before), 10, "reconnect", interval_s=0.002)
            if k % 100 == 0:
                source.poll()
                rss.append((k, proc.memory_info().rss))
        source.poll()
        ks = np.asarray([k for k, _ in rss], dtype=float)
        mb = np.asarray([r for _, r in rss], dtype=float) / 2**20
        half = len(ks) // 2
        slope = np.polyfit(ks[half:], mb[half:], 1)[0] * 1000 if half >= 2 else float("nan")
        print(
            f"reconnects: {reconnects} (outages counted {source.sink.outages}); RSS "
            f"{mb[0]:.1f} -> {mb[-1]:.1f} MiB; slope over the second half "
            f"{slope:+.3f} MiB per 1000 reconnects"
        )
    finally:
        source.stop(timeout_s=3)
        broker.kill()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--metrics", type=int, default=20)
    ap.add_argument("--reconnects", type=int, default=2000)
    args = ap.parse_args()
    bench_host(args.metrics)
    with tempfile.TemporaryDirectory() as tmp:
        bench_broker(Path(tmp), args.seconds, args.rate, args.metrics)
        bench_reconnects(Path(tmp), args.reconnects)


if __name__ == "__main__":
    main()
