"""Ingest benchmark: CPU cost per field value and sustained end-to-end throughput.

Run by hand (needs /usr/sbin/mosquitto and /usr/bin/influxd, like the tests)::

    python -m bench.bench_ingest [--duration 30] [--shapes 8x100,16x300,32x600]

Set-up: a real Mosquitto, a real InfluxDB 1.x and the ingest as its own OS process
(``python -m renkei.cloud.ingest``, exactly what is deployed), all on this machine. This process
publishes realistic packed telemetry messages (``fields x rows`` per message, distinct
timestamps, four-decimal sensor-like values) at QoS 1 with a plain paho client.

1. **Ingest cost**, per payload shape: CPU seconds (user + sys, from psutil) the ingest
   process spends from "subscribed and idle" to "every point of the run is in InfluxDB",
   divided by the number of field values; reported in microseconds per field value (the
   target is <= 4 us). Publishing and the servers run in other processes and are not
   counted.
2. **Sustained throughput**: publish for ``--duration`` seconds as fast as the pipeline
   takes it (closed loop: at most ~2 M field values between the publisher and InfluxDB);
   field values per second from the first publish until the last point is queryable in
   InfluxDB.

Every run is verified to be loss-free: the exact point count of every field is checked in
InfluxDB afterwards.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import orjson
import psutil

from harness.loadgen import T0_MS, QoS1Publisher, machine_topic_for
from harness.procs import ingest_argv
from harness.services import REPO, InfluxDB, Mosquitto, ServiceError

STEP_MS = 10
MACHINES = 8


@dataclass(frozen=True)
class Shape:
    fields: int
    rows: int

    @property
    def values(self) -> int:
        return self.fields * self.rows

    def __str__(self) -> str:
        return f"{self.fields}x{self.rows}"


class Payloads:
    """Fast generator of distinct, valid machine messages of one shape.

    The field columns are serialised once; each message gets its own ``seq`` and its own
    timestamps (so no two messages share a point), which is all the ingest cares about.
    """

    def __init__(self, shape: Shape) -> None:
        self.shape = shape
        cols = {
            f"sensor_{j:02d}": [
                round(50.0 + 20.0 * math.sin(0.013 * i + j) + 0.001 * j, 4)
                for i in range(shape.rows)
            ]
            for j in range(shape.fields)
        }
        self._fields = orjson.dumps(cols)
        self._offsets = [i * STEP_MS for i in range(shape.rows)]

    def message(self, seq: int) -> tuple[str, bytes]:
        machine = seq % MACHINES
        base = T0_MS + (seq // MACHINES) * self.shape.rows * STEP_MS
        ts = orjson.dumps([base + o for o in self._offsets])
        payload = (
            b'{"v":1,"gw":"gw-%d","seq":%d,"sent_ms":%d,"kind":"telemetry","ts_ms":%b,"fields":%b}'
            % (machine, seq, base, ts, self._fields)
        )
        return machine_topic_for(machine), payload

    def last_ts(self, messages: int) -> int:
        seq = messages - 1
        return T0_MS + (seq // MACHINES) * self.shape.rows * STEP_MS + self._offsets[-1]


@contextmanager
def servers(workdir: Path) -> Iterator[tuple[Mosquitto, InfluxDB]]:
    broker = Mosquitto(workdir=workdir / "mosquitto")
    influx = InfluxDB(workdir=workdir / "influxdb")
    broker.start()
    influx.start()
    try:
        yield broker, influx
    finally:
        broker.kill()
        influx.stop()


@contextmanager
def ingest_process(
    broker: Mosquitto, influx: InfluxDB, database: str, log: Path
) -> Iterator[psutil.Process]:
    argv = ingest_argv(
        broker_url=broker.url,
        influx_url=influx.url,
        database=database,
        client_id=f"bench-{uuid.uuid4().hex[:6]}",
        # A fresh group per run: Mosquitto keeps routing a share of a group's messages to
        # the offline persistent sessions of earlier runs' workers.
        share_group=f"bench-{uuid.uuid4().hex[:6]}",
        extra=["--stats-interval-s", "0"],
    )
    with open(log, "ab") as out:
        proc = subprocess.Popen(argv, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while b"subscribed to" not in log.read_bytes():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ingest did not start:\n{log.read_text()}")
            time.sleep(0.05)
        time.sleep(0.5)  # let start-up work settle before measuring
        yield psutil.Process(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def cpu_seconds(p: psutil.Process) -> float:
    t = p.cpu_times()
    return float(t.user + t.system)


def is_written(influx: InfluxDB, database: str, payloads: Payloads, messages: int) -> bool:
    """Whether the first ``messages`` messages are all in InfluxDB.

    Checks only the last point of message ``messages - 1`` (a cheap, time-bounded query):
    one ingest worker writes and acknowledges in receive order, so it implies the rest.
    """
    if messages <= 0:
        return True
    last = payloads.last_ts(messages)
    machine = (messages - 1) % MACHINES
    q = (
        f"SELECT count(sensor_00) FROM telemetry WHERE machine = 'm{machine}' "
        f"AND time >= {last}ms AND time <= {last}ms"
    )
    try:
        series = influx.query(q, db=database)
    except (OSError, ServiceError):  # database not created yet
        return False
    return bool(series) and series[0]["values"][0][1] == 1


def wait_written(influx: InfluxDB, database: str, payloads: Payloads, messages: int) -> None:
    """Wait until all ``messages`` messages are in InfluxDB (at most 300 s)."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if is_written(influx, database, payloads, messages):
            return
        time.sleep(0.05)
    raise RuntimeError("ingest did not finish within 300 s")


def verify(influx: InfluxDB, database: str, payloads: Payloads, messages: int) -> bool:
    expected = messages * payloads.shape.rows
    return all(
        influx.count_points(database, "telemetry", f"sensor_{j:02d}") == expected
        for j in range(payloads.shape.fields)
    )


@dataclass(frozen=True)
class Result:
    label: str
    shape: Shape
    messages: int
    values: int
    wall_s: float
    cpu_s: float
    exact: bool

    @property
    def us_per_value(self) -> float:
        return self.cpu_s / self.values * 1e6

    @property
    def values_per_s(self) -> float:
        return self.values / self.wall_s


def run(
    label: str,
    broker: Mosquitto,
    influx: InfluxDB,
    workdir: Path,
    shape: Shape,
    *,
    messages: int | None = None,
    duration_s: float | None = None,
) -> Result:
    database = f"bench_{uuid.uuid4().hex[:8]}"
    payloads = Payloads(shape)
    with (
        ingest_process(broker, influx, database, workdir / f"{database}.log") as proc,
        QoS1Publisher(host="127.0.0.1", port=broker.port, window=200) as pub,
    ):
        cpu0 = cpu_seconds(proc)
        t0 = time.monotonic()
        sent = 0
        chunk = 50
        backlog = max(chunk, 2_000_000 // shape.values)  # ~2 s of work in flight
        while True:
            if messages is not None and sent >= messages:
                break
            if duration_s is not None:
                if time.monotonic() - t0 >= duration_s:
                    break
                # Closed loop: keep at most ~backlog messages between publisher and
                # InfluxDB, so the run measures what the pipeline sustains, not how
                # fast the broker can queue.
                while not is_written(influx, database, payloads, sent - backlog):
                    time.sleep(0.01)
            n = chunk if messages is None else min(chunk, messages - sent)
            pub.publish_many(payloads.message(seq) for seq in range(sent, sent + n))
            sent += n
        wait_written(influx, database, payloads, sent)
        wall = time.monotonic() - t0
        cpu = cpu_seconds(proc) - cpu0
    return Result(
        label=label,
        shape=shape,
        messages=sent,
        values=sent * shape.values,
        wall_s=wall,
        cpu_s=cpu,
        exact=verify(influx, database, payloads, sent),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default="8x100,16x300,32x600", help="FIELDSxROWS,...")
    parser.add_argument(
        "--values-per-shape", type=int, default=3_000_000, help="field values per cost run"
    )
    parser.add_argument("--duration", type=float, default=30.0, help="sustained run, seconds")
    parser.add_argument("--sustained-shape", default="16x300")
    args = parser.parse_args(argv)

    def parse(s: str) -> Shape:
        f, r = s.lower().split("x")
        return Shape(fields=int(f), rows=int(r))

    results: list[Result] = []
    with (
        tempfile.TemporaryDirectory(prefix="renkei-bench-") as tmp,
        servers(Path(tmp)) as (broker, influx),
    ):
        for text in args.shapes.split(","):
            shape = parse(text)
            n = max(1, args.values_per_shape // shape.values)
            results.append(run("cost", broker, influx, Path(tmp), shape, messages=n))
            print(f"  done: cost {shape}", file=sys.stderr)
        results.append(
            run(
                "sustained",
                broker,
                influx,
                Path(tmp),
                parse(args.sustained_shape),
                duration_s=args.duration,
            )
        )

    print()
    cpus = psutil.cpu_count()
    print(f"Renkei ingest benchmark ({cpus} CPUs; broker, ingest and InfluxDB co-located)")
    header = (
        f"{'run':<10} {'shape':>7} {'msgs':>6} {'values':>11} {'wall s':>7} "
        f"{'ingest CPU s':>12} {'us/value':>8} {'values/s':>11} {'exact':>5}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.label:<10} {r.shape!s:>7} {r.messages:>6} {r.values:>11,} {r.wall_s:>7.1f} "
            f"{r.cpu_s:>12.2f} {r.us_per_value:>8.3f} {r.values_per_s:>11,.0f} "
            f"{'yes' if r.exact else 'NO':>5}"
        )
    print("\nus/value = ingest-process CPU (user+sys) per field value; target <= 4 us.")
    return 0 if all(r.exact for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
