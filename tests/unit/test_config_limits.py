"""Gateway config limits declared once, by the layer that enforces them (issue 13).

``outbox.max_inflight`` is the transport's :data:`renkei.edge.transport.outbox.MAX_INFLIGHT`
(it used to accept 65,535 in the config and only 65,000 in ``OutboxSettings``: a config of
65,500 validated, then start-up died with a raw pydantic traceback). ``mqtt.keepalive_s``
is the core's 5..65535; ``mqtt.password`` and ``mqtt.tls`` stay keys the file does not have.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from renkei.edge.agent import GatewayAgent
from renkei.edge.config import ConfigError, load_config
from renkei.edge.transport.outbox import MAX_INFLIGHT

BASE: dict[str, Any] = {
    "gateway_id": "gw-test",
    "firm": "acme",
    "site": "plant-1",
    "machines": [
        {
            "id": "m1",
            "area": "molding",
            "line": "line-1",
            "source": {"type": "simulated", "seed": 3},
            "window_s": 1,
        }
    ],
}


def _write(tmp_path: Path, **sections: Any) -> Path:
    cfg = copy.deepcopy(BASE) | {"state_dir": str(tmp_path / "state")} | sections
    path = tmp_path / "gw.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


def test_max_inflight_above_the_transport_limit_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, outbox={"max_inflight": 65_500}))
    problems = dict(info.value.problems)
    assert list(problems) == ["outbox.max_inflight"], info.value
    assert "65000" in problems["outbox.max_inflight"]
    assert "65500" in problems["outbox.max_inflight"]


def test_documented_max_inflight_loads_and_starts(tmp_path: Path) -> None:
    assert MAX_INFLIGHT == 65_000
    cfg = load_config(_write(tmp_path, outbox={"max_inflight": MAX_INFLIGHT}))
    assert cfg.outbox.max_inflight == MAX_INFLIGHT
    agent = GatewayAgent(config=cfg)
    try:
        assert agent.outbox_settings.max_inflight == MAX_INFLIGHT
        assert agent.outbox_settings.path == cfg.outbox_path
        assert agent.outbox_settings.max_bytes == cfg.outbox.max_bytes
    finally:
        agent.outbox.close()


def test_outbox_max_bytes_keeps_the_gateway_floor(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, outbox={"max_bytes": 4096}))
    assert [p for p, _ in info.value.problems] == ["outbox.max_bytes"]


@pytest.mark.parametrize(("value", "ok"), [(4, False), (5, True), (65_535, True), (65_536, False)])
def test_mqtt_keepalive_is_the_core_bound(tmp_path: Path, value: int, ok: bool) -> None:
    path = _write(tmp_path, mqtt={"keepalive_s": value})
    if ok:
        assert load_config(path).mqtt.keepalive_s == value
    else:
        with pytest.raises(ConfigError) as info:
            load_config(path)
        assert [p for p, _ in info.value.problems] == ["mqtt.keepalive_s"]


@pytest.mark.parametrize("key", ["password", "tls", "tls_insecure"])
def test_broker_keys_the_file_does_not_have_are_unknown(tmp_path: Path, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, mqtt={key: "secret" if key == "password" else True}))
    assert info.value.problems[0][0] == f"mqtt.{key}"
    assert "unknown key" in info.value.problems[0][1]


def test_mqtt_section_gives_the_publisher_its_settings(tmp_path: Path) -> None:
    cfg = load_config(
        _write(
            tmp_path,
            mqtt={"port": 1884, "username": "gw", "password_env": "X", "ack": "broker"},
        )
    )
    agent = GatewayAgent(config=cfg, password="pw")
    try:
        s = agent.publisher._settings
        assert (s.port, s.username, s.ack, s.client_id) == (1884, "gw", "broker", "gw-test")
        assert s.password is not None and s.password.get_secret_value() == "pw"
        assert s.wait_for_ingest == "renkei-ingest" and not s.uses_tls
    finally:
        agent.outbox.close()
