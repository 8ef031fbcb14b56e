"""Chaos: overlapping crashes of every part, then exact accounting by sequence number.

Three gateways (``tests.seq_gateway`` processes: the real outbox and publisher with
``ack: ingest``, each message one countable point), one ingest process, a real Mosquitto
and a real InfluxDB. For about a minute a seeded schedule of faults runs, overlapping:
gateway ``kill -9`` and restart, ingest ``kill -9`` and restart, broker ``kill -9`` and
clean restarts, InfluxDB paused with SIGSTOP/SIGCONT. Then every part runs again, the
gateways stop producing, and the test waits (bounded) until every outbox is empty.

Accounting: every seq a gateway accepted into its outbox (``0 .. next_seq - 1``, from the
outbox's persisted counters; ``dropped_total`` must be 0) is in InfluxDB exactly once:
lost 0, duplicated points 0.
"""

from __future__ import annotations

import heapq
import os
import random
import signal
import sqlite3
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness.procs import Proc, ingest_argv
from harness.services import InfluxDB, Mosquitto, ServiceError
from harness.wait import pause, wait_for
from tests.seq_gateway import seqs_in_influx

pytestmark = pytest.mark.slow

SEED = 11
GATEWAYS = 3
RATE = 15.0  # messages/s per gateway
CHAOS_S = 60.0
FAULTS = 24  # scheduled; some are skipped when their part is already down
MIN_APPLIED = 15


def _outbox_meta(path: Path) -> tuple[int, int, int]:
    """``(backlog_msgs, next_seq, dropped_total)`` read from a (live) outbox file."""
    conn = sqlite3.connect(path, timeout=10)
    try:
        row = conn.execute("SELECT backlog_msgs, next_seq, dropped_total FROM meta").fetchone()
    finally:
        conn.close()
    return int(row[0]), int(row[1]), int(row[2])


@dataclass
class Cluster:
    tmp: Path
    broker: Mosquitto
    influx: InfluxDB
    database: str
    t0_ms: int
    stop_file: Path
    gateways: list[Proc | None] = field(default_factory=list)
    ingest: Proc | None = None
    broker_up: bool = True
    influx_paused: bool = False
    starts: dict[str, int] = field(default_factory=dict)

    def gw_id(self, i: int) -> str:
        return f"gw-chaos-{i}"

    def outbox(self, i: int) -> Path:
        return self.tmp / f"{self.gw_id(i)}.sqlite3"

    def _log(self, name: str) -> Path:
        self.starts[name] = self.starts.get(name, 0) + 1
        return self.tmp / f"{name}.log"

    def start_gateway(self, i: int) -> None:
        argv = [
            sys.executable,
            "-m",
            "tests.seq_gateway",
            "--port",
            str(self.broker.port),
            "--outbox",
            str(self.outbox(i)),
            "--gw",
            self.gw_id(i),
            "--t0-ms",
            str(self.t0_ms),
            "--rate",
            str(RATE),
            "--stop-file",
            str(self.stop_file),
            "--confirm-timeout-s",
            "5",
        ]
        self.gateways[i] = Proc(argv, self._log(self.gw_id(i)))

    def start_ingest(self) -> None:
        argv = ingest_argv(
            broker_url=self.broker.url,
            influx_url=self.influx.url,
            database=self.database,
            client_id="ingest-chaos-1",
            extra=["--batch-max-delay-s", "0.05", "--retry-max-s", "1", "--stats-interval-s", "0"],
        )
        self.ingest = Proc(argv, self._log("ingest"))

    def tails(self) -> str:
        out = []
        for name in [self.gw_id(i) for i in range(GATEWAYS)] + ["ingest"]:
            p = self.tmp / f"{name}.log"
            if p.exists():
                lines = p.read_text(errors="replace").splitlines()[-15:]
                out.append(f"--- {name}\n" + "\n".join(lines))
        return "\n".join(out)


Plan = list[tuple[float, str, Callable[[], bool]]]
Recoveries = list[tuple[float, int, Callable[[], None]]]


def _faults(c: Cluster, rng: random.Random) -> tuple[Plan, Recoveries]:
    """A seeded schedule ``(start_s, name, apply)`` and the heap its recoveries go to:
    ``apply`` returns False when skipped (its part already down), else it pushes its
    own recovery (restart, SIGCONT) onto the heap."""
    plan: Plan = []
    recover: Recoveries = []
    seq = [0]

    def later(delay: float, fn: Callable[[], None]) -> None:
        seq[0] += 1
        heapq.heappush(recover, (time.monotonic() + delay, seq[0], fn))

    def kill_gateway(i: int, down_s: float) -> Callable[[], bool]:
        def apply() -> bool:
            proc = c.gateways[i]
            if proc is None:
                return False
            proc.kill9()
            c.gateways[i] = None
            later(down_s, lambda: c.start_gateway(i))
            return True

        return apply

    def kill_ingest(down_s: float) -> Callable[[], bool]:
        def apply() -> bool:
            if c.ingest is None:
                return False
            c.ingest.kill9()
            c.ingest = None
            later(down_s, c.start_ingest)
            return True

        return apply

    def broker_down(down_s: float, hard: bool) -> Callable[[], bool]:
        def apply() -> bool:
            if not c.broker_up:
                return False
            if hard:
                c.broker.kill()
            else:
                c.broker.stop()
            c.broker_up = False

            def up() -> None:
                c.broker.start()
                c.broker_up = True

            later(down_s, up)
            return True

        return apply

    def pause_influx(pause_s: float) -> Callable[[], bool]:
        def apply() -> bool:
            if c.influx_paused or c.influx.pid is None:
                return False
            os.kill(c.influx.pid, signal.SIGSTOP)
            c.influx_paused = True

            def resume() -> None:
                assert c.influx.pid is not None
                os.kill(c.influx.pid, signal.SIGCONT)
                c.influx_paused = False

            later(pause_s, resume)
            return True

        return apply

    kinds = ["gateway", "ingest", "broker_kill", "broker_restart", "influx_pause"]
    for _ in range(FAULTS):
        at = rng.uniform(1.0, CHAOS_S - 8.0)
        kind = rng.choice(kinds)
        if kind == "gateway":
            i = rng.randrange(GATEWAYS)
            plan.append((at, f"kill -9 {c.gw_id(i)}", kill_gateway(i, rng.uniform(0.5, 3.0))))
        elif kind == "ingest":
            plan.append((at, "kill -9 ingest", kill_ingest(rng.uniform(0.5, 4.0))))
        elif kind == "broker_kill":
            plan.append((at, "kill -9 broker", broker_down(rng.uniform(0.3, 3.0), hard=True)))
        elif kind == "broker_restart":
            plan.append((at, "restart broker", broker_down(rng.uniform(0.1, 2.0), hard=False)))
        else:
            plan.append((at, "SIGSTOP influxd", pause_influx(rng.uniform(2.0, 7.0))))
    plan.sort(key=lambda p: p[0])
    return plan, recover


def test_chaos_overlapping_faults_lose_and_duplicate_nothing(
    tmp_path: Path, influxdb_own: InfluxDB, database: str
) -> None:
    broker = Mosquitto(workdir=tmp_path / "mq")
    broker.start()
    t0 = (time.time_ns() // 1_000_000 // 1000) * 1000 - 3_600_000
    c = Cluster(
        tmp=tmp_path,
        broker=broker,
        influx=influxdb_own,
        database=database,
        t0_ms=t0,
        stop_file=tmp_path / "stop",
        gateways=[None] * GATEWAYS,
    )
    rng = random.Random(SEED)
    applied: list[str] = []
    overlaps = 0
    try:
        c.start_ingest()
        for i in range(GATEWAYS):
            c.start_gateway(i)
        plan, recover = _faults(c, rng)
        start = time.monotonic()
        for at, name, apply in plan:
            while True:
                now = time.monotonic()
                while recover and recover[0][0] <= now:
                    heapq.heappop(recover)[2]()
                if now - start >= at:
                    break
                nxt = start + at
                if recover:
                    nxt = min(nxt, recover[0][0])
                pause(max(0.0, min(0.05, nxt - now)), "until the next fault or recovery is due")
            overlapping = bool(recover)  # another fault is not recovered yet
            if apply():
                overlaps += overlapping
                applied.append(f"{time.monotonic() - start:5.1f}s {name}")
        while time.monotonic() - start < CHAOS_S or recover:
            now = time.monotonic()
            while recover and recover[0][0] <= now:
                heapq.heappop(recover)[2]()
            pause(0.05, "the chaos phase runs its course; faults recover when due")
        assert len(applied) >= MIN_APPLIED, applied
        assert overlaps >= 5, (overlaps, applied)
        # Everything runs again; the gateways stop producing and drain.
        assert c.broker_up and not c.influx_paused and c.ingest is not None
        assert all(g is not None and g.alive() for g in c.gateways), c.tails()
        c.stop_file.touch()

        def drained() -> bool:
            for i in range(GATEWAYS):
                g = c.gateways[i]
                assert g is not None and g.alive(), c.tails()
                if _outbox_meta(c.outbox(i))[0] != 0:
                    return False
            return True

        try:
            wait_for(drained, 150, "every outbox to be confirmed empty", interval_s=0.5)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{applied}\n{c.tails()}") from None
        for g in c.gateways:
            assert g is not None
            assert g.terminate() == 0, g.tail()
        report = []
        for i in range(GATEWAYS):
            backlog, next_seq, dropped = _outbox_meta(c.outbox(i))
            assert backlog == 0 and dropped == 0, (i, backlog, dropped)
            try:
                seqs = seqs_in_influx(c.influx, database, c.gw_id(i))
            except ServiceError as exc:
                raise AssertionError(f"{exc}\n{c.tails()}") from None
            lost = sorted(set(range(next_seq)) - set(seqs))
            dup = len(seqs) - len(set(seqs))
            report.append((c.gw_id(i), next_seq, len(lost), dup))
            assert not lost, f"{c.gw_id(i)} lost {len(lost)} seqs: {lost[:20]}"
            assert dup == 0 and seqs == list(range(next_seq))
            assert next_seq > RATE * CHAOS_S * 0.5, (c.gw_id(i), next_seq, c.tails())
        print(f"\nchaos: {len(applied)} faults, {overlaps} overlapping:\n  " + "\n  ".join(applied))
        print("per gateway (gw, enqueued, lost, duplicated):", report)
    finally:
        if c.influx_paused and c.influx.pid is not None:
            os.kill(c.influx.pid, signal.SIGCONT)
        for g in c.gateways:
            if g is not None:
                g.kill9()
        if c.ingest is not None:
            c.ingest.kill9()
        broker.kill()
