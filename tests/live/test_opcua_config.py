"""Validation of ``opcua`` source configs (pure pydantic; key paths in the errors)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from renkei.edge.config import ConfigError, load_config
from renkei.edge.sources.live.opcua.config import OpcuaSourceConfig
from renkei.edge.sources.live.opcua.driver import make_driver
from renkei.edge.sources.live.source import LiveSourceError

REPO = Path(__file__).resolve().parents[2]
EP = "opc.tcp://127.0.0.1:4840/x"
SIG = [{"name": "t", "node_id": "ns=2;s=T"}]


def _cfg(**kw: Any) -> OpcuaSourceConfig:
    return OpcuaSourceConfig.model_validate({"type": "opcua", "endpoint": EP, "signals": SIG, **kw})


@pytest.mark.parametrize(
    ("kw", "needle"),
    [
        ({"signals": [{"name": "t"}]}, "exactly one of 'node_id' or 'browse_path'"),
        ({"signals": [{"name": "t", "node_id": "ns=2;s=T", "browse_path": ["A"]}]}, "exactly one"),
        ({"signals": [{"name": "t", "node_id": "Temp"}]}, "is not a NodeId"),
        ({"signals": [{"name": "t", "browse_path": ["a/b"]}]}, "browse path segment"),
        ({"signals": []}, "list the 'signals'"),
        ({"endpoint": "http://x:1"}, "endpoint"),
        ({"security": {"policy": "Basic256Sha256"}}, "policy 'Basic256Sha256' with mode 'None'"),
        ({"security": {"policy": "Basic256Sha256", "mode": "Sign"}}, "'certificate' and"),
        ({"security": {"certificate": "c.der"}}, "policy is None"),
        ({"username": "u"}, "both 'username' and 'password'"),
        ({"password": {"value": "x"}}, "password"),
        (
            {
                "signals": [
                    {"name": "t", "node_id": "i=1", "deadband": {"type": "percent", "value": 101}}
                ]
            },
            "0-100",
        ),
        ({"preset": "euromap77"}, "supplies its own signals"),
    ],
)
def test_invalid(kw: dict[str, Any], needle: str) -> None:
    with pytest.raises(ValidationError) as err:
        _cfg(**kw)
    assert needle in str(err.value)


def test_valid_forms() -> None:
    cfg = _cfg(
        signals=[
            {"name": "a", "node_id": "nsu=urn:acme:imm;i=5", "sampling_interval_ms": 50},
            {"name": "b", "browse_path": ["nsu=urn:acme:imm;Machine", "2:Temp", "Speed"]},
            {"name": "c", "node_id": "i=2258", "deadband": {"type": "absolute", "value": 0.5}},
        ],
        mode="poll",
    )
    assert cfg.mode == "poll" and len(cfg.signals) == 3
    assert (
        OpcuaSourceConfig.model_validate(
            {"type": "opcua", "endpoint": EP, "preset": "euromap77"}
        ).preset
        == "euromap77"
    )


def test_make_driver_names_missing_secret_and_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPCUA_PW_UNSET", raising=False)
    with pytest.raises(LiveSourceError, match="password: environment variable OPCUA_PW_UNSET"):
        make_driver(_cfg(username="u", password={"env": "OPCUA_PW_UNSET"}))
    sec = {
        "policy": "Basic256Sha256",
        "mode": "SignAndEncrypt",
        "certificate": str(tmp_path / "nope.der"),
        "private_key": str(tmp_path / "k.pem"),
    }
    with pytest.raises(LiveSourceError, match="security.certificate: cannot read"):
        make_driver(_cfg(security=sec))


def test_example_config_loads() -> None:
    cfg = load_config(REPO / "firmware-config" / "opcua-press.yaml")
    src = cfg.machines[0].source
    assert isinstance(src, OpcuaSourceConfig) and src.security.mode == "SignAndEncrypt"


def test_gateway_config_error_names_key_path(tmp_path: Path) -> None:
    raw = yaml.safe_load((REPO / "firmware-config" / "opcua-press.yaml").read_text())
    raw["machines"][0]["source"]["signals"][1].pop("node_id")
    path = tmp_path / "gw.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "machines[0].source.signals[1]" in str(err.value)
