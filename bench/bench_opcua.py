"""OPC UA source benchmark: many monitored items, end to end (issue 12).

Scenarios (``--scenario``):

- ``items`` (default): 5,000 monitored items, sampling interval 100 ms, publishing interval
  100 ms. The load server (:mod:`bench.opcua_load_server`, asyncua in a subprocess) changes a
  rotating share of its variables every 100 ms so that every item changes once per
  ``--change-s`` seconds (default 1: 5,000 data changes/s; 10: 500/s). The gateway
  groups readings into 100 ms rows (``row_merge_ms: 100``).
- ``reference``: the reference gateway load of :mod:`bench.bench_gateway` with its 32 slow
  channels at 10 Hz read from the OPC UA server instead of the simulator (every variable
  changes every 100 ms); 1 s feature windows. The simulator's 10 kHz vibration channel,
  shots and anomaly model have no OPC UA counterpart and are not part of it.

The gateway is a real ``renkei edge run`` process publishing at QoS 1 through its outbox to a
real Mosquitto, with a real ingest writing InfluxDB and end-to-end acks (as deployed).
Each value the server writes is its own wall clock at the change (UTC epoch ms), so:

- MQTT latency = arrival of the telemetry message at a subscriber − the value (server
  change → gateway → outbox → broker), every reading;
- InfluxDB latency = first time a query sees a new value of a sampled signal − the value
  (polling every 50 ms, so ±25 ms resolution).

Gateway CPU (user + system seconds per wall second of the agent process = share of one
core) and peak RSS are measured with psutil after a warm-up. The default
``publish.flush_interval_s`` (1 s) dominates both latencies; it is the knob.

Run: ``python -m bench.bench_opcua [--scenario items|reference] [--seconds 30]``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import psutil
import yaml

from harness.procs import Proc, ingest_argv
from harness.services import InfluxDB, Mosquitto, free_port

WARMUP_S = 20.0
DATABASE = "bench_opcua"
SAMPLED = 8  # signals whose InfluxDB latency is sampled


def _scenario(name: str, change_s: float) -> dict[str, Any]:
    if name == "items":
        return {"vars": 5000, "period_ms": 100.0, "fraction": 0.1 / change_s, "window_s": 10}
    return {"vars": 32, "period_ms": 100.0, "fraction": 1.0, "window_s": 1}


def gateway_config(
    path: Path, *, endpoint: str, port: int, state_dir: Path, sc: dict[str, Any]
) -> Path:
    """The gateway YAML of a scenario."""
    cfg = {
        "gateway_id": "gw-bench-opcua",
        "firm": "bench",
        "site": "lab",
        "state_dir": str(state_dir),
        "mqtt": {"host": "127.0.0.1", "port": port},
        "machines": [
            {
                "id": "imm-1",
                "area": "molding",
                "line": "line-1",
                "window_s": sc["window_s"],
                "source": {
                    "type": "opcua",
                    "endpoint": endpoint,
                    "mode": "subscribe",
                    "publishing_interval_ms": 100,
                    "row_merge_ms": 100,
                    "signals": [
                        {
                            "name": f"x{i}",
                            "node_id": f"nsu=urn:renkei:bench;s=x{i}",
                            "sampling_interval_ms": sc["period_ms"],
                        }
                        for i in range(sc["vars"])
                    ],
                },
            }
        ],
    }
    path.write_text(yaml.safe_dump(cfg))
    return path


class _InfluxProbe(threading.Thread):
    """Polls the latest values of the sampled signals; records when each new one appears."""

    def __init__(self, influx: InfluxDB) -> None:
        super().__init__(daemon=True)
        self.influx = influx
        self.latencies_ms: list[float] = []
        self.stop = threading.Event()
        self._seen: dict[str, float] = {}

    def run(self) -> None:
        fields = ", ".join(f'last("x{i}") AS "x{i}"' for i in range(SAMPLED))
        q = f"SELECT {fields} FROM telemetry"
        while not self.stop.wait(0.05):
            try:
                series = self.influx.query(q, db=DATABASE)
            except Exception:
                continue
            now = time.time_ns() / 1e6
            if not series:
                continue
            cols, row = series[0]["columns"], series[0]["values"][0]
            for name, v in zip(cols[1:], row[1:]):
                if v is None or self._seen.get(name) == v:
                    continue
                if name in self._seen:  # the first value may be old
                    self.latencies_ms.append(now - float(v))
                self._seen[name] = v


def _pct(a: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(a), q)) if a else float("nan")


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scenario", choices=("items", "reference"), default="items")
    parser.add_argument("--seconds", type=float, default=30.0, help="measured wall time")
    parser.add_argument(
        "--change-s",
        type=float,
        default=1.0,
        help="items: seconds between two changes of one item (1: 5,000 changes/s)",
    )
    args = parser.parse_args(argv if argv is not None else [])
    sc = _scenario(args.scenario, args.change_s)
    with tempfile.TemporaryDirectory(prefix="renkei-bench-opcua-") as tmp_s:
        tmp = Path(tmp_s)
        broker = Mosquitto(workdir=tmp / "mq")
        broker.start()
        influx = InfluxDB(workdir=tmp / "influx")
        influx.start()
        ingest = Proc(
            ingest_argv(
                broker_url=broker.url,
                influx_url=influx.url,
                database=DATABASE,
                client_id="bench-ingest",
            ),
            tmp / "ingest.log",
        )
        opc_port = free_port()
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.opcua_load_server",
                "--port",
                str(opc_port),
                "--vars",
                str(sc["vars"]),
                "--period-ms",
                str(sc["period_ms"]),
                "--fraction",
                str(sc["fraction"]),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert server.stdout is not None
        if server.stdout.readline().strip() != b"READY":
            raise RuntimeError("the OPC UA load server did not start")
        arrivals = _Arrivals(broker.port)
        cfg = gateway_config(
            tmp / "gw.yaml",
            endpoint=f"opc.tcp://127.0.0.1:{opc_port}/renkei/bench/",
            port=broker.port,
            state_dir=tmp / "state",
            sc=sc,
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
        probe = _InfluxProbe(influx)
        try:
            proc = psutil.Process(agent.proc.pid)
            time.sleep(WARMUP_S)
            arrivals.measuring = True
            probe.start()
            c0 = proc.cpu_times()
            t0 = time.monotonic()
            peak_rss = 0
            while time.monotonic() - t0 < args.seconds:
                peak_rss = max(peak_rss, proc.memory_info().rss)
                time.sleep(0.5)
            c1 = proc.cpu_times()
            wall = time.monotonic() - t0
            probe.stop.set()
            arrivals.measuring = False
            cpu = (c1.user - c0.user) + (c1.system - c0.system)
            mqtt_lat = arrivals.latencies()
            readings = len(mqtt_lat)
        finally:
            probe.stop.set()
            agent.kill9()
            arrivals.close()
            ingest.terminate()
            server.kill()
            influx.kill()
            broker.kill()
    share = cpu / wall
    result = {
        "core_share_pct": 100 * share,
        "peak_rss_MB": peak_rss / 1e6,
        "readings_per_s": readings / wall,
        "mqtt_latency_p50_ms": _pct(mqtt_lat, 50),
        "mqtt_latency_p99_ms": _pct(mqtt_lat, 99),
        "influx_latency_p50_ms": _pct(probe.latencies_ms, 50),
        "influx_latency_p99_ms": _pct(probe.latencies_ms, 99),
        "influx_samples": float(len(probe.latencies_ms)),
    }
    print(
        f"scenario {args.scenario}: {sc['vars']} items, each changing every "
        f"{sc['period_ms'] / sc['fraction'] / 1000:g} s, {args.seconds:.0f} s measured"
    )
    print("| metric | value |")
    print("|---|---|")
    for k, v in result.items():
        print(f"| {k} | {v:.2f} |")
    return result


class _Arrivals:
    """Subscribes to the telemetry and notes each message's arrival time (UTC ms)."""

    def __init__(self, port: int) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.items: list[tuple[float, bytes]] = []
        self.measuring = False
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-arrivals")
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe("renkei/v1/+/+/+/+/+/telemetry", qos=1)
        self.client.loop_start()

    def _on_message(self, _c: Any, _u: Any, msg: Any) -> None:
        if self.measuring:
            self.items.append((time.time_ns() / 1e6, bytes(msg.payload)))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def latencies(self) -> list[float]:
        """Arrival − value of every reading that arrived while measuring, ms."""
        out: list[float] = []
        for recv, payload in self.items:
            p = orjson.loads(payload)
            for col in p["fields"].values():
                out.extend(recv - v for v in col if v is not None)
        return out


if __name__ == "__main__":
    main(sys.argv[1:])
