"""Wires the demo together: embedded broker + store, gateway agents, ingest."""

from __future__ import annotations

import logging
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from renkei.cloud.ingest import IngestSettings, IngestWorker
from renkei.cloud.store import SqliteStore
from renkei.core.mqtt import BrokerSettings
from renkei.demo.broker import EmbeddedBroker
from renkei.edge.agent import GatewayAgent
from renkei.edge.config import GatewayConfig, MqttConfig, load_config

__all__ = ["DEMO_CONFIGS", "DemoRun", "demo_configs"]

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
FIRMWARE_CONFIG = REPO / "firmware-config"
#: The example gateway configs the demo runs (those needing datasets are skipped without).
DEMO_CONFIGS: tuple[tuple[str, bool], ...] = (
    ("skab-pump.yaml", True),
    ("nab-machine.yaml", True),
    ("cwru-bearing.yaml", True),
    ("kassel-molding.yaml", True),
    ("sim-cell.yaml", False),
)


def demo_configs(
    *, data_dir: Path | None, broker_port: int, state_dir: Path
) -> list[GatewayConfig]:
    """Load the example gateway configs, pointed at the embedded broker and a temp state dir.

    Configs that replay datasets are left out when ``data_dir`` is None.
    """
    out = []
    for name, needs_data in DEMO_CONFIGS:
        if needs_data and data_dir is None:
            continue
        cfg = load_config(FIRMWARE_CONFIG / name, data_dir=data_dir)
        mqtt = MqttConfig(host="127.0.0.1", port=broker_port, protocol="3.1.1")
        out.append(cfg.model_copy(update={"mqtt": mqtt, "state_dir": state_dir}))
    return out


@dataclass
class DemoRun:
    """A running demo; :meth:`start` then :meth:`stop`."""

    data_dir: Path | None
    state_dir: Path | None = None
    broker: EmbeddedBroker = field(default_factory=EmbeddedBroker)
    agents: list[GatewayAgent] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)
    worker: IngestWorker | None = None
    store: SqliteStore | None = None
    _tmp: tempfile.TemporaryDirectory[str] | None = None

    def start(self) -> None:
        """Start broker, store, ingest and every gateway agent (each in its own thread)."""
        if self.state_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="renkei-demo-")
            self.state_dir = Path(self._tmp.name)
        self.broker.start()
        self.store = SqliteStore(path=self.state_dir / "timeseries.sqlite3")
        self.store.ensure_database()
        self.worker = IngestWorker(
            settings=IngestSettings(
                broker=BrokerSettings(
                    host="127.0.0.1",
                    port=self.broker.port,
                    client_id="renkei-demo-ingest",
                    protocol="3.1.1",
                ),
                share_group=None,
            ),
            store=self.store,
        )
        self._spawn("ingest", self.worker.run)
        for cfg in demo_configs(
            data_dir=self.data_dir, broker_port=self.broker.port, state_dir=self.state_dir
        ):
            agent = GatewayAgent(config=cfg)
            self.agents.append(agent)
            self._spawn(cfg.gateway_id, agent.run)

    def _spawn(self, name: str, target: object) -> None:
        t = threading.Thread(target=target, name=name, daemon=True)  # type: ignore[arg-type]
        t.start()
        self.threads.append(t)

    def stop(self) -> None:
        """Stop agents (they flush and publish offline state), then ingest and broker."""
        for agent in self.agents:
            agent.stop()
        for t in self.threads:
            if t.name != "ingest":
                t.join(15)
        if self.worker is not None:
            self.worker.stop()
        for t in self.threads:
            t.join(15)
        self.broker.stop()
        if self.store is not None:
            self.store.close()
        if self._tmp is not None:
            self._tmp.cleanup()
