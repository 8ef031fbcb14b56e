"""Ingest scale-out: 1, 2 and 4 workers on one shared subscription, exact counts.

Run by hand or by ``./dev bench`` (needs /usr/sbin/mosquitto and /usr/bin/influxd)::

    python -m bench.bench_ingest_scaleout [--workers 1,2,4] [--shapes 16x300,4x10]

Set-up as :mod:`bench.bench_ingest`: a real Mosquitto and InfluxDB 1.x, each ingest worker
its own OS process (``python -m renkei.cloud.ingest``) in one ``$share`` group (MQTT 5
shared subscription, §4.8.2), and one QoS 1 publisher in this process. For every worker
count and payload shape, a fixed number of messages is published (closed loop: at most
``--backlog-values`` field values between the publisher and InfluxDB) and the run ends
when the exact point count of every field is in InfluxDB.

Reported: wall time, field values per second end to end, CPU (user + sys) of all ingest
workers together per field value (µs) and the busiest worker's share of one core. Two
shapes: packed messages (16 fields × 300 rows, as gateways send) where InfluxDB is the
limit, and tiny ones (4 × 10) where the per-message cost of the ingest (paho receive,
decode) dominates, so extra workers pay off up to the number of cores.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil

from bench.bench_ingest import Payloads, Shape, cpu_seconds, servers, verify
from harness.loadgen import QoS1Publisher
from harness.procs import ingest_argv
from harness.services import REPO, InfluxDB, Mosquitto, ServiceError


@contextmanager
def workers(
    n: int, broker: Mosquitto, influx: InfluxDB, database: str, logdir: Path
) -> Iterator[list[psutil.Process]]:
    """``n`` ingest processes in one fresh share group, subscribed and idle."""
    group = f"scale-{uuid.uuid4().hex[:6]}"
    procs: list[subprocess.Popen[bytes]] = []
    logs: list[Path] = []
    try:
        for i in range(n):
            log = logdir / f"{database}-w{i}.log"
            argv = ingest_argv(
                broker_url=broker.url,
                influx_url=influx.url,
                database=database,
                client_id=f"{group}-w{i}",
                share_group=group,
                extra=["--stats-interval-s", "0"],
            )
            with open(log, "ab") as out:
                procs.append(subprocess.Popen(argv, cwd=REPO, stdout=out, stderr=subprocess.STDOUT))
            logs.append(log)
        deadline = time.monotonic() + 60
        for proc, log in zip(procs, logs, strict=True):
            while b"subscribed to" not in log.read_bytes():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"ingest did not start:\n{log.read_text()}")
                time.sleep(0.05)
        time.sleep(0.5)
        yield [psutil.Process(p.pid) for p in procs]
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)


def points_in(influx: InfluxDB, database: str) -> int:
    """Points of field ``sensor_00`` in the run's database (0 before the first write)."""
    try:
        series = influx.query("SELECT count(sensor_00) FROM telemetry", db=database)
    except (OSError, ServiceError):
        return 0
    return int(series[0]["values"][0][1]) if series else 0


@dataclass(frozen=True)
class Result:
    workers: int
    shape: Shape
    messages: int
    wall_s: float
    cpu_s: float
    busiest_share: float
    exact: bool

    @property
    def values(self) -> int:
        return self.messages * self.shape.values

    @property
    def us_per_value(self) -> float:
        return self.cpu_s / self.values * 1e6

    @property
    def values_per_s(self) -> float:
        return self.values / self.wall_s


def run(
    n: int,
    broker: Mosquitto,
    influx: InfluxDB,
    workdir: Path,
    shape: Shape,
    *,
    messages: int,
    backlog_values: int,
) -> Result:
    database = f"scale_{uuid.uuid4().hex[:8]}"
    payloads = Payloads(shape)
    backlog_points = max(1, backlog_values // shape.fields)
    with (
        workers(n, broker, influx, database, workdir) as procs,
        QoS1Publisher(host="127.0.0.1", port=broker.port, window=200) as pub,
    ):
        cpu0 = [cpu_seconds(p) for p in procs]
        t0 = time.monotonic()
        sent = 0
        chunk = 50
        while sent < messages:
            # closed loop: the broker's queues stay far below their limits
            while sent * shape.rows - points_in(influx, database) > backlog_points:
                time.sleep(0.01)
            k = min(chunk, messages - sent)
            pub.publish_many(payloads.message(seq) for seq in range(sent, sent + k))
            sent += k
        deadline = time.monotonic() + 300
        while points_in(influx, database) < sent * shape.rows:
            if time.monotonic() > deadline:
                raise RuntimeError("ingest did not finish within 300 s")
            time.sleep(0.02)
        wall = time.monotonic() - t0
        used = [cpu_seconds(p) - c for p, c in zip(procs, cpu0, strict=True)]
    return Result(
        workers=n,
        shape=shape,
        messages=sent,
        wall_s=wall,
        cpu_s=sum(used),
        busiest_share=max(used) / wall,
        exact=verify(influx, database, payloads, sent),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2,4", help="worker counts, comma-separated")
    parser.add_argument("--shapes", default="16x300,4x10", help="FIELDSxROWS,...")
    parser.add_argument("--values", type=int, default=6_000_000, help="field values per run")
    parser.add_argument("--backlog-values", type=int, default=2_000_000)
    parser.add_argument(
        "--max-messages", type=int, default=40_000, help="cap on messages per run (tiny shapes)"
    )
    args = parser.parse_args(argv)
    counts = [int(w) for w in args.workers.split(",")]
    shapes = [
        Shape(fields=int(f), rows=int(r)) for f, r in (s.split("x") for s in args.shapes.split(","))
    ]
    results: list[Result] = []
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="renkei-bench-")))
        broker, influx = stack.enter_context(servers(tmp))
        for shape in shapes:
            messages = min(args.max_messages, max(1, args.values // shape.values))
            for n in counts:
                results.append(
                    run(
                        n,
                        broker,
                        influx,
                        tmp,
                        shape,
                        messages=messages,
                        backlog_values=args.backlog_values,
                    )
                )
                print(f"  done: {n} worker(s), {shape}", file=sys.stderr)
    load = psutil.getloadavg()[0]
    print()
    print(
        f"Renkei ingest scale-out ({psutil.cpu_count()} CPUs, load {load:.1f}; broker, "
        "workers and InfluxDB co-located)"
    )
    header = (
        f"{'workers':>7} {'shape':>7} {'msgs':>6} {'values':>11} {'wall s':>7} "
        f"{'us/value':>8} {'busiest':>7} {'values/s':>11} {'msgs/s':>7} {'exact':>5}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.workers:>7} {r.shape!s:>7} {r.messages:>6} {r.values:>11,} {r.wall_s:>7.1f} "
            f"{r.us_per_value:>8.3f} {r.busiest_share:>7.0%} {r.values_per_s:>11,.0f} "
            f"{r.messages / r.wall_s:>7,.0f} {r.messages / r.cpu_s:>11,.0f} "
            f"{'yes' if r.exact else 'NO':>5}"
        )
    print(
        "\nus/value = CPU (user+sys) of all workers per field value; busiest = the busiest "
        "worker's share of one core;\nmsgs/s/core = messages per CPU second of the workers "
        "(what one "
        "core of ingest sustains); exact = every field's point count in InfluxDB."
    )
    return 0 if all(r.exact for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
