"""Gateway footprint at the reference load (issue #2, benchmark 3).

Reference load: one vibration channel at 10 kHz, 32 slow channels at 10 Hz, one molding
shot every 20 s, the anomaly model on every (1 s) window — the simulated cell with
``extra_slow_channels: 21`` — publishing at QoS 1 through the durable outbox to a real
Mosquitto on loopback.

Measured on the agent process (``renkei edge run``) with psutil after a warm-up:
CPU seconds (user + sys) per wall second = share of one core, and peak RSS.
Targets: ≤ 3 % of one core here (a Raspberry Pi 4 core is ~7× slower) and ≤ 150 MB RSS.

With ``--ack ingest`` (the default, as deployed) a real ingest process and InfluxDB run
too, so the gateway keeps each message until the ingest confirms it (end-to-end
acknowledgement, issue 11) and its CPU includes the acks; ``--ack broker`` deletes on
PUBACK with no ingest (the figures before issue 11).

Run: ``python -m bench.bench_gateway [--seconds 60] [--ack ingest|broker]``.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import psutil
import yaml

from harness.procs import Proc, ingest_argv
from harness.services import REPO, InfluxDB, Mosquitto
from harness.witness import Witness

WARMUP_S = 10.0


def reference_config(path: Path, *, port: int, state_dir: Path, ack: str = "ingest") -> Path:
    """Write the reference-load gateway config (``ack``: ``ingest`` or ``broker``)."""
    gate = "renkei-ingest" if ack == "ingest" else None
    cfg = {
        "gateway_id": "gw-bench-01",
        "firm": "bench",
        "site": "lab",
        "state_dir": str(state_dir),
        "mqtt": {"host": "127.0.0.1", "port": port, "wait_for_ingest": gate, "ack": ack},
        "machines": [
            {
                "id": "imm-1",
                "area": "molding",
                "line": "line-1",
                "source": {
                    "type": "simulated",
                    "seed": 7,
                    "slow_rate_hz": 10,
                    "vibration_rate_hz": 10000,
                    "extra_slow_channels": 21,
                    "cycle_time_s": 20,
                },
                "window_s": 1,
                "model": {"dir": str(REPO / "models" / "artifacts" / "cell-t2")},
            }
        ],
    }
    path.write_text(yaml.safe_dump(cfg))
    return path


def _outbox_backlog(path: Path) -> int:
    """Messages left in the (closed) outbox: 0 when every one was confirmed."""
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT backlog_msgs FROM meta").fetchone()[0])
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0, help="measured wall time")
    parser.add_argument("--ack", choices=("ingest", "broker"), default="ingest")
    args = parser.parse_args(argv if argv is not None else [])
    with tempfile.TemporaryDirectory(prefix="renkei-bench-gw-") as tmp_s:
        tmp = Path(tmp_s)
        broker = Mosquitto(workdir=tmp / "mq")
        broker.start()
        influx: InfluxDB | None = None
        ingest: Proc | None = None
        if args.ack == "ingest":
            influx = InfluxDB(workdir=tmp / "influx")
            influx.start()
            ingest = Proc(
                ingest_argv(
                    broker_url=broker.url,
                    influx_url=influx.url,
                    database="bench_gw",
                    client_id="bench-ingest",
                ),
                tmp / "ingest.log",
            )
        witness = Witness(port=broker.port, client_id="bench-witness")
        cfg = reference_config(
            tmp / "gw.yaml", port=broker.port, state_dir=tmp / "state", ack=args.ack
        )
        agent = Proc(
            [
                sys.executable,
                "-m",
                "renkei.cli",
                "edge",
                "run",
                "--config",
                str(cfg),
                "--log-level",
                "WARNING",
                "--duration",
                str(WARMUP_S + args.seconds + 5),
            ],
            tmp / "agent.log",
        )
        try:
            proc = psutil.Process(agent.proc.pid)
            time.sleep(WARMUP_S)
            c0 = proc.cpu_times()
            t0 = time.monotonic()
            peak_rss = 0
            while time.monotonic() - t0 < args.seconds:
                peak_rss = max(peak_rss, proc.memory_info().rss)
                time.sleep(0.5)
            c1 = proc.cpu_times()
            wall = time.monotonic() - t0
            cpu = (c1.user - c0.user) + (c1.system - c0.system)
            agent.terminate()
            n_msgs = len(witness.machine_messages())
            witness.assert_gap_free()
            backlog = _outbox_backlog(tmp / "state" / "gw-bench-01" / "outbox.sqlite3")
        finally:
            agent.kill9()
            witness.close()
            if ingest is not None:
                ingest.terminate()
            if influx is not None:
                influx.kill()
            broker.kill()
    share = cpu / wall
    result = {
        "wall_s": wall,
        "cpu_s": cpu,
        "core_share_pct": 100 * share,
        "pi4_core_share_pct_est": 100 * share * 7,
        "peak_rss_MB": peak_rss / 1e6,
        "messages": float(n_msgs),
        "backlog_after_stop": float(backlog),
    }
    print("| metric | value | target |")
    print("|---|---|---|")
    print(f"| CPU share of one core | {100 * share:.2f} % | ≤ 3 % |")
    print(f"| est. Raspberry Pi 4 core (×7) | {700 * share:.1f} % | |")
    print(f"| peak RSS | {peak_rss / 1e6:.0f} MB | ≤ 150 MB |")
    print(f"| messages published (gap-free) | {n_msgs} in {wall + WARMUP_S:.0f} s | |")
    print(f"| ack mode / outbox backlog after the clean stop | {args.ack} / {backlog} | |")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
