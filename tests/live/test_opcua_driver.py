"""The ``opcua`` driver against a real asyncua server in a subprocess (no mocks)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.live.opcua_fixtures import NS, OpcuaServer, Running, make_cert, opcua_server
from harness.wait import pause, wait_for
from renkei.edge.sources.live.base import Quality
from renkei.edge.sources.live.source import LiveSource, LiveSourceError

SPEC: dict[str, Any] = {
    "period_ms": 100,
    "vars": [
        {"name": "Temp", "start": 200, "step": 1, "unit": "°C"},
        {"name": "Count", "type": "int", "start": 0, "step": 1},
        {"name": "Run", "type": "bool"},
        {"name": "Label", "type": "string"},
        {"name": "Broken", "status": "BadSensorFailure"},
    ],
}

SIGNALS = [
    {"name": "temp_C", "node_id": f"nsu={NS};s=Temp", "scale": 0.1},
    {"name": "count", "browse_path": [f"nsu={NS};Machine", f"nsu={NS};Count"]},
    {"name": "run", "node_id": "ns=2;s=Run"},
    {"name": "label", "node_id": "ns=2;s=Label"},
    {"name": "broken", "node_id": "ns=2;s=Broken"},
    {"name": "missing", "node_id": "ns=2;s=NoSuchNode"},
]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[OpcuaServer]:
    with opcua_server(tmp_path, SPEC) as srv:
        yield srv


def _config(srv: OpcuaServer, **kw: Any) -> dict[str, Any]:
    return {
        "endpoint": srv.endpoint,
        "publishing_interval_ms": 100,
        "link": {"reconnect_min_s": 0.2, "reconnect_max_s": 1.0, "timeout_s": 2.0},
        "signals": SIGNALS,
        **kw,
    }


def _good_values(run: Running, signal: str) -> list[float]:
    return [r.value for r in run.values(signal) if r.quality is Quality.GOOD]


@pytest.mark.parametrize("mode", ["subscribe", "poll"])
def test_values_units_and_quality(server: OpcuaServer, mode: str) -> None:
    run = Running(_config(server, mode=mode, poll_interval_s=0.1))
    try:
        wait_for(lambda: len(_good_values(run, "temp_C")) >= 5, 10, "temp readings")
        wait_for(lambda: len(_good_values(run, "count")) >= 5, 10, "count readings")
        temps = _good_values(run, "temp_C")
        assert all(v >= 200 and v == int(v) for v in temps)  # raw; LiveSource scales
        assert all(r.device_time for r in run.values("temp_C"))
        assert set(_good_values(run, "run")) <= {0.0, 1.0}
        assert run.units.get("temp_C") == "°C" and "count" not in run.units
        broken = run.values("broken")
        assert broken and all(r.quality is Quality.BAD and math.isnan(r.value) for r in broken)
        assert broken[0].reason == "BadSensorFailure"
        missing = run.values("missing")
        assert missing and missing[0].quality is Quality.BAD
        assert missing[0].reason in {"BadNodeIdUnknown", "BadNodeIdInvalid"}
        labels = run.values("label")
        assert len(labels) == 1 and labels[0].reason == "not numeric (str)"  # once
        assert run.codes().count("source_up") == 1
        for name in ("temp_C", "count", "run"):  # no sample twice (polls of unchanged ones)
            times = [r.t_ms for r in run.values(name)]
            assert times == sorted(set(times)), name
    finally:
        assert run.close() < 1.5


def test_live_source_scales_and_counts_quality(server: OpcuaServer) -> None:
    from renkei.edge.sources.live.opcua.config import OpcuaSourceConfig
    from renkei.edge.sources.live.opcua.driver import make_driver

    cfg = OpcuaSourceConfig.model_validate(
        {"type": "opcua", **_config(server), "quality_interval_s": 1}
    )
    src = LiveSource(config=cfg, driver=make_driver(cfg))
    src.start()
    blocks, quality = [], []
    try:

        def got() -> bool:
            batch = src.poll()
            blocks.extend(batch.blocks)
            quality.extend(batch.quality)
            return sum(len(b.t_ms) for b in blocks) >= 10 and len(quality) >= 2

        wait_for(got, 10, "rows and quality rows")
    finally:
        src.stop()
    temps = [v for b in blocks for v in b.fields["temp_C"] if not math.isnan(v)]
    assert temps and all(20.0 <= v < 100 for v in temps)  # 200.. * 0.1
    assert all(math.isnan(v) for b in blocks for v in b.fields["broken"])
    assert src.fields["temp_C"] == "°C"
    assert sum(q["bad"] for _, q in quality) >= 1
    assert any(q.get("broken") == 2.0 for _, q in quality)


def test_server_killed_and_restarted(server: OpcuaServer) -> None:
    run = Running(_config(server))
    try:
        wait_for(lambda: len(_good_values(run, "count")) >= 3, 10, "first readings")
        server.kill9()
        wait_for(lambda: "source_down" in run.codes(), 10, "source_down")
        before = len(_good_values(run, "count"))
        pause(1.0, "an outage: the driver keeps retrying with backoff")
        assert len(_good_values(run, "count")) == before
        server.start(first_tick=1000)
        wait_for(lambda: "source_up" in run.codes()[run.codes().index("source_down") :], 15, "up")
        wait_for(lambda: any(v >= 1000 for v in _good_values(run, "count")), 10, "new data")
        counts = _good_values(run, "count")
        old, new = counts[:before], [v for v in counts[before:] if v >= 1000]
        assert len(new) == len(counts) - before  # nothing but the restarted server's values
        assert len(set(new)) == len(new) and new == sorted(new)  # no duplicates, in order
        assert old == sorted(old)
        assert run.codes().count("source_down") == 1
        assert run.opcua.sessions >= 2
    finally:
        run.close()


@pytest.fixture
def secure_server(tmp_path: Path) -> Iterator[tuple[OpcuaServer, Path]]:
    pki = tmp_path / "pki"
    scert, skey = make_cert(pki, "server", "urn:renkei:test:server", server=True)
    ccert, _ = make_cert(pki / "client", "gateway", "urn:renkei:gateway:test")
    trust = tmp_path / "trusted"
    trust.mkdir()
    (trust / "gateway.der").write_bytes(ccert.read_bytes())
    extra = ["--cert", str(scert), "--key", str(skey), "--trust", str(trust)]
    extra += ["--user", "operator:s3cret"]
    with opcua_server(tmp_path, SPEC, extra) as srv:
        yield srv, pki


def _secure(srv: OpcuaServer, pki: Path, cert: Path, key: Path, pw_file: Path) -> dict[str, Any]:
    return _config(
        srv,
        security={
            "policy": "Basic256Sha256",
            "mode": "SignAndEncrypt",
            "certificate": str(cert),
            "private_key": str(key),
            "server_certificate": str(pki / "server.der"),
        },
        username="operator",
        password={"file": str(pw_file)},
        signals=SIGNALS[:1],
    )


def test_sign_and_encrypt_with_user(
    secure_server: tuple[OpcuaServer, Path], tmp_path: Path
) -> None:
    srv, pki = secure_server
    pw = tmp_path / "pw"
    pw.write_text("s3cret\n")
    run = Running(_secure(srv, pki, pki / "client/gateway.der", pki / "client/gateway.pem", pw))
    try:
        wait_for(lambda: len(_good_values(run, "temp_C")) >= 3, 15, "encrypted readings")
        assert run.error is None
    finally:
        run.close()


def test_untrusted_certificate_refused(
    secure_server: tuple[OpcuaServer, Path], tmp_path: Path
) -> None:
    srv, pki = secure_server
    cert, key = make_cert(tmp_path / "rogue", "rogue", "urn:renkei:rogue")
    pw = tmp_path / "pw"
    pw.write_text("s3cret")
    run = Running(_secure(srv, pki, cert, key, pw))
    wait_for(lambda: not run.thread.is_alive(), 15, "driver gives up on the refused cert")
    assert isinstance(run.error, LiveSourceError)
    text = str(run.error)
    assert srv.endpoint in text and "rogue.der" in text and "trust" in text
    assert run.opcua.sessions == 1  # no tight reconnect loop inside the driver
    print(text)


def test_wrong_password_refused(secure_server: tuple[OpcuaServer, Path], tmp_path: Path) -> None:
    srv, pki = secure_server
    pw = tmp_path / "pw"
    pw.write_text("wrong")
    run = Running(_secure(srv, pki, pki / "client/gateway.der", pki / "client/gateway.pem", pw))
    wait_for(lambda: not run.thread.is_alive(), 15, "driver gives up on the wrong password")
    assert isinstance(run.error, LiveSourceError)
    assert "operator" in str(run.error) and "password" in str(run.error)
    print(run.error)


def test_stop_while_server_unreachable(tmp_path: Path) -> None:
    srv = OpcuaServer(tmp_path, SPEC)  # never started: connection refused
    run = Running(_config(srv))
    wait_for(lambda: "source_down" in run.codes(), 10, "source_down")
    assert run.close() < 1.5


class _HostileServer:
    """A TCP listener that either never answers or answers every request with garbage."""

    def __init__(self, garbage: bool) -> None:
        import socket
        import threading

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.garbage = garbage
        self.done = threading.Event()
        self.conns = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        import os

        held = []
        while not self.done.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.conns += 1
            held.append(conn)
            if self.garbage:
                try:
                    conn.recv(4096)
                    conn.sendall(b"ACKF" + (0xFFFFFFF0).to_bytes(4, "little") + os.urandom(4096))
                except OSError:
                    pass
        for c in held:
            c.close()
        self.sock.close()


@pytest.mark.parametrize("garbage", [False, True], ids=["silent", "garbage"])
def test_hostile_server_is_an_outage(garbage: bool) -> None:
    srv = _HostileServer(garbage)
    try:
        run = Running(
            {
                "endpoint": f"opc.tcp://127.0.0.1:{srv.port}/x",
                "link": {"reconnect_min_s": 0.2, "reconnect_max_s": 0.5, "timeout_s": 1.0},
                "signals": SIGNALS[:1],
            }
        )
        wait_for(lambda: "source_down" in run.codes(), 10, "source_down")
        wait_for(lambda: srv.conns >= 2, 10, "a second connect attempt (backoff, retried)")
        assert run.thread.is_alive() and run.error is None
        assert not run.values("temp_C")
        pause(0.3, "likely inside a connect that waits for its timeout")
        assert run.close() < 1.5
    finally:
        srv.done.set()


def test_monitored_item_settings(server: OpcuaServer) -> None:
    signals = [
        {
            "name": "temp_C",
            "node_id": f"nsu={NS};s=Temp",
            "sampling_interval_ms": 50,
            "queue_size": 10,
            "deadband": {"type": "absolute", "value": 2.5},
        },
        {"name": "count", "node_id": "ns=2;s=Count", "queue_size": 5},
    ]
    run = Running(_config(server, signals=signals, publishing_interval_ms=500))
    try:
        wait_for(lambda: len(_good_values(run, "count")) >= 12, 10, "queued readings")
        temps = _good_values(run, "temp_C")
        # Temp changes by 1 per tick: a 2.5 deadband lets through at most every third
        # change (asyncua's server compares with the previous sample, so only the first)
        assert 1 <= len(temps) <= len(_good_values(run, "count")) // 2
        assert all(b - a >= 3 for a, b in itertools.pairwise(temps)), temps
        counts = _good_values(run, "count")
        assert counts == sorted(counts) and len(set(counts)) == len(counts)
        # 5 values per 500 ms publish: consecutive, none lost between publishes
        assert counts[-1] - counts[1] == len(counts) - 2
    finally:
        run.close()
