"""End-to-end test rigs: a gateway config and a running pipeline (witness, ingest, agents).

The processes and the witness that proves zero loss are in :mod:`harness.procs` and
:mod:`harness.witness` (the benchmarks start them too).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.procs import Proc, start_agent, start_ingest
from harness.services import REPO, InfluxDB, Mosquitto
from harness.witness import Witness


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
