"""docker-compose.yml is well-formed and refers to files that exist (no Docker engine here)."""

from __future__ import annotations

from pathlib import Path

import yaml

from edge.config import load_config

REPO = Path(__file__).resolve().parents[2]


def test_compose_file_refers_to_existing_files() -> None:
    doc = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    assert {"mosquitto", "influxdb", "ingest-1", "ingest-2", "gateway-sim"} <= set(doc["services"])
    for name, cfg in doc["configs"].items():
        if "file" in cfg:
            assert (REPO / cfg["file"]).is_file(), name
    # The two ingest workers share one group with distinct, stable client ids.
    env1 = doc["services"]["ingest-1"]["environment"]
    env2 = doc["services"]["ingest-2"]["environment"]
    assert env1["RENKEI_SHARE_GROUP"] == env2["RENKEI_SHARE_GROUP"]
    assert env1["RENKEI_CLIENT_ID"] != env2["RENKEI_CLIENT_ID"]


def test_compose_gateway_config_is_valid(tmp_path: Path) -> None:
    text = (REPO / "deploy" / "compose" / "gateway-sim.yaml").read_text()
    # The image has the models under /app; point the check at this checkout instead.
    text = text.replace("/app/models", str(REPO / "models"))
    path = tmp_path / "gateway-sim.yaml"
    path.write_text(text)
    cfg = load_config(path)
    assert cfg.mqtt.host == "mosquitto"
