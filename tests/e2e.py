"""Helpers for end-to-end tests: agent and ingest processes, a witness subscriber.

Zero loss is proven two ways:

1. A *witness* (a persistent-session QoS 1 subscriber of its own) records every message the
   broker accepted. Every gateway numbers its messages 0, 1, 2, … in its outbox (persisted
   across restarts), so a gap-free sequence proves nothing was lost between the gateway and
   the broker.
2. The exact number of points in InfluxDB equals the number of distinct (measurement,
   series, timestamp) rows in the witnessed messages: nothing lost, nothing duplicated by
   the ingest.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from renkei.core.wire import MachineTopic, parse_topic
from tests.services import InfluxDB, Mosquitto

REPO = Path(__file__).resolve().parents[1]


def wait_for(cond: Callable[[], bool], timeout_s: float, what: str, step_s: float = 0.1) -> None:
    """Poll ``cond`` until true; fail with ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(step_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


class Witness:
    """Records every message under ``renkei/#`` with its own persistent QoS 1 session."""

    def __init__(self, *, port: int, client_id: str = "witness") -> None:
        self.messages: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5,
        )
        self.client.on_message = self._on_message
        self.client.on_connect = self._on_connect
        self.client.reconnect_delay_set(1, 1)
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 3600
        self.client.connect("127.0.0.1", port, clean_start=False, properties=props)
        self.client.loop_start()
        wait_for(self.client.is_connected, 10, "witness connect")

    def _on_connect(self, client: mqtt.Client, *_: Any) -> None:
        client.subscribe("renkei/#", qos=1)

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload)))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def machine_messages(self) -> list[tuple[MachineTopic, dict[str, Any]]]:
        out = []
        with self._lock:
            msgs = list(self.messages)
        for topic, payload in msgs:
            if topic.startswith("renkei/v1/") and "/_gw/" not in topic:
                parsed = parse_topic(topic)
                assert isinstance(parsed, MachineTopic)
                out.append((parsed, orjson.loads(payload)))
        return out

    def seqs(self) -> dict[str, set[int]]:
        by_gw: dict[str, set[int]] = defaultdict(set)
        for _, p in self.machine_messages():
            by_gw[p["gw"]].add(int(p["seq"]))
        return by_gw

    def assert_gap_free(self) -> dict[str, int]:
        """Every gateway's sequence numbers are 0..max with no gap; returns max+1 per gw."""
        out = {}
        for gw, seqs in self.seqs().items():
            missing = set(range(max(seqs) + 1)) - seqs
            assert not missing, f"gateway {gw} lost messages with seq {sorted(missing)[:20]}"
            out[gw] = max(seqs) + 1
        return out

    def expected_points(self, kind: str, field: str) -> int:
        """Distinct rows of ``kind`` with ``field`` set (series + timestamp)."""
        keys = set()
        for topic, p in self.machine_messages():
            if topic.kind.value != kind or field not in p.get("fields", {}):
                continue
            series = (
                topic.firm,
                topic.site,
                topic.area,
                topic.line,
                topic.machine,
                p["gw"],
                tuple(sorted(p.get("tags", {}).items())),
            )
            for t, v in zip(p["ts_ms"], p["fields"][field]):
                if v is not None:
                    keys.add((series, t))
        return len(keys)


def write_gateway_config(path: Path, *, port: int, state_dir: Path, **overrides: Any) -> Path:
    """Write a gateway YAML (simulated cell by default) and return its path."""
    cfg: dict[str, Any] = {
        "gateway_id": "gw-e2e-01",
        "firm": "acme",
        "site": "osaka",
        "state_dir": str(state_dir),
        "mqtt": {"host": "127.0.0.1", "port": port, "keepalive_s": 5},
        "publish": {"flush_interval_s": 0.2, "health_interval_s": 1.0},
        "outbox": {"drain_rate_msgs_per_s": 500},
        "machines": [
            {
                "id": "imm-1",
                "area": "molding",
                "line": "line-1",
                "source": {
                    "type": "simulated",
                    "seed": 1,
                    "vibration_rate_hz": 10000,
                    "slow_rate_hz": 10,
                    "cycle_time_s": 2,
                },
                "window_s": 1,
                "model": {"dir": str(REPO / "models" / "artifacts" / "cell-t2")},
            }
        ],
    }
    cfg.update(overrides)
    path.write_text(yaml.safe_dump(cfg))
    return path


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


class Proc:
    """A child process (agent or ingest) that can be stopped or killed."""

    def __init__(self, argv: list[str], log: Path) -> None:
        self.log = log
        with open(log, "ab") as fh:
            self.proc = subprocess.Popen(
                argv,
                stdout=fh,
                stderr=subprocess.STDOUT,
                env=_env(),
                cwd=REPO,
                start_new_session=True,
            )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def terminate(self, timeout_s: float = 30) -> int:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise AssertionError(f"process did not stop on SIGTERM; log:\n{self.tail()}") from None

    def kill9(self) -> None:
        if self.alive():
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)

    def tail(self, n: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])


def start_agent(config: Path, log: Path, *, duration_s: float | None = None) -> Proc:
    argv = [
        sys.executable,
        "-m",
        "renkei.cli",
        "edge",
        "run",
        "--config",
        str(config),
        "--log-level",
        "WARNING",
    ]
    if duration_s is not None:
        argv += ["--duration", str(duration_s)]
    return Proc(argv, log)


def ingest_argv(
    *,
    broker_url: str,
    influx_url: str,
    database: str,
    client_id: str,
    share_group: str | None = "renkei-ingest",
    extra: Sequence[str] = (),
) -> list[str]:
    """Command line of a real ingest process (``python -m renkei.cloud.ingest``)."""
    argv = [
        sys.executable,
        "-m",
        "renkei.cloud.ingest",
        "--broker",
        broker_url,
        "--influx",
        influx_url,
        "--database",
        database,
        "--client-id",
        client_id,
    ]
    argv += ["--share-group", share_group or ""]
    return argv + list(extra)


def start_ingest(
    *,
    broker_port: int,
    influx_url: str,
    database: str,
    log: Path,
    client_id: str = "ingest-1",
    share_group: str | None = "renkei-ingest",
) -> Proc:
    return Proc(
        ingest_argv(
            broker_url=f"mqtt://127.0.0.1:{broker_port}",
            influx_url=influx_url,
            database=database,
            client_id=client_id,
            share_group=share_group,
        ),
        log,
    )


@dataclass
class Rig:
    """A running pipeline for one end-to-end test: witness, ingest(s), agent(s)."""

    tmp: Path
    broker: Mosquitto
    influx: InfluxDB
    database: str
    witness: Witness
    configs: list[Path]
    ingests: list[Proc] = field(default_factory=list)
    agents: list[Proc] = field(default_factory=list)

    def start_ingest(self, client_id: str = "ingest-1") -> Proc:
        n = len(self.ingests)
        proc = start_ingest(
            broker_port=self.broker.port,
            influx_url=self.influx.url,
            database=self.database,
            log=self.tmp / f"ingest{n}.log",
            client_id=client_id,
        )
        self.ingests.append(proc)
        return proc

    def start_agent(self, index: int = 0) -> Proc:
        n = len(self.agents)
        proc = start_agent(self.configs[index], self.tmp / f"agent{n}.log")
        self.agents.append(proc)
        return proc

    def stop_all(self) -> None:
        for a in self.agents:
            a.kill9()
        for i in self.ingests:
            i.terminate()
        self.witness.close()


@contextmanager
def pipeline_rig(
    tmp: Path,
    broker: Mosquitto,
    influx: InfluxDB,
    database: str,
    *,
    gateways: Sequence[dict[str, Any]] = ({},),
    ingest_ids: Sequence[str] = ("ingest-1",),
) -> Iterator[Rig]:
    """Start a witness, the ingest worker(s) and one agent per gateway override dict."""
    witness = Witness(port=broker.port)
    configs = [
        write_gateway_config(
            tmp / f"gw{i}.yaml", port=broker.port, state_dir=tmp / f"state{i}", **overrides
        )
        for i, overrides in enumerate(gateways)
    ]
    rig = Rig(
        tmp=tmp, broker=broker, influx=influx, database=database, witness=witness, configs=configs
    )
    try:
        for cid in ingest_ids:
            rig.start_ingest(cid)
        for i in range(len(configs)):
            rig.start_agent(i)
        yield rig
    finally:
        rig.stop_all()
