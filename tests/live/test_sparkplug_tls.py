"""``sparkplug`` source over TLS with a username and a password (a :class:`Secret`) to a real
Mosquitto; a wrong password or an unknown CA is an outage with a clear reason, never a crash."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.services import Mosquitto, free_port
from harness.wait import wait_for
from renkei.edge.sources.live import LiveSource, build_live_source
from renkei.edge.sources.live.sparkplug.config import SparkplugSourceConfig
from tests.integration.test_broker_security import make_ca, make_server_cert


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[tuple[Mosquitto, int, Path]]:
    pki = tmp_path / "pki"
    ca, ca_key = make_ca(pki, "plant-ca")
    make_server_cert(pki, ca, ca_key)
    subprocess.run(
        ["mosquitto_passwd", "-b", "-c", str(pki / "passwd"), "renkei", "s3cret"],
        check=True,
        capture_output=True,
    )
    tls_port = free_port()
    broker = Mosquitto(
        workdir=tmp_path / "mosquitto",
        extra_conf=(
            f"allow_anonymous false\npassword_file {pki}/passwd\n"
            f"listener {tls_port} 127.0.0.1\ncafile {pki}/ca.crt\n"
            f"certfile {pki}/server.crt\nkeyfile {pki}/server.key\n"
        ),
    )
    broker.start()
    try:
        yield broker, tls_port, pki
    finally:
        broker.kill()


def _source(port: int, ca: Path, pw_file: Path) -> LiveSource:
    raw: dict[str, Any] = {
        "type": "sparkplug",
        "port": port,
        "username": "renkei",
        "password": {"file": str(pw_file)},
        "tls": {"ca": str(ca)},
        "group_id": "Plant1",
        "edge_node_id": "press-line",
        "link": {"reconnect_min_s": 0.1, "reconnect_max_s": 0.3, "timeout_s": 3},
        "signals": [{"name": "p", "device": "imm-7", "metric": "P"}],
    }
    source = build_live_source(SparkplugSourceConfig.model_validate(raw))
    source.start()
    return source


def _messages(source: LiveSource, code: str) -> list[str]:
    return [e.message for e in source.poll().events if e.code == code]


def _wait_down(source: LiveSource) -> list[str]:
    down: list[str] = []

    def check() -> bool:
        down.extend(_messages(source, "source_down"))
        return bool(down)

    wait_for(check, 10, "source_down event")
    return down


def test_tls_with_username_and_password(
    tls_broker: tuple[Mosquitto, int, Path], tmp_path: Path
) -> None:
    _, port, pki = tls_broker
    (tmp_path / "pw").write_text("s3cret\n")
    source = _source(port, pki / "ca.crt", tmp_path / "pw")
    try:
        wait_for(lambda: source.sink.connects >= 1, 10, "TLS connection and SUBACK")
        assert not source.sink.down
    finally:
        source.stop(timeout_s=3)


def test_wrong_password_is_an_outage_with_a_reason(
    tls_broker: tuple[Mosquitto, int, Path], tmp_path: Path
) -> None:
    _, port, pki = tls_broker
    (tmp_path / "pw").write_text("wrong")
    source = _source(port, pki / "ca.crt", tmp_path / "pw")
    try:
        down = _wait_down(source)
        assert "refused" in down[0], down
        assert source.sink.connects == 0
        assert source.running  # keeps retrying with backoff
        assert source.driver_failures == 0
    finally:
        source.stop(timeout_s=3)


def test_unknown_server_ca_is_an_outage_with_a_reason(
    tls_broker: tuple[Mosquitto, int, Path], tmp_path: Path
) -> None:
    _, port, _ = tls_broker
    make_ca(tmp_path / "other", "someone-else")
    (tmp_path / "pw").write_text("s3cret")
    source = _source(port, tmp_path / "other" / "ca.crt", tmp_path / "pw")
    try:
        down = _wait_down(source)
        assert "CERTIFICATE_VERIFY_FAILED" in down[0] or "certificate" in down[0].lower()
        assert source.sink.connects == 0
    finally:
        source.stop(timeout_s=3)
