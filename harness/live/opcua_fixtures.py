"""Helpers for the ``opcua`` tests and bench: the asyncua test server as a real subprocess
(:mod:`harness.live.opcua_server`), certificates, and a driver running on a thread."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from harness.live.driver_run import DriverRun
from harness.services import free_port
from harness.wait import wait_for
from renkei.edge.sources.live.opcua.config import OpcuaSourceConfig
from renkei.edge.sources.live.opcua.driver import OpcuaDriver, make_driver

REPO = Path(__file__).resolve().parents[2]
NS = "urn:renkei:test"


class OpcuaServer:
    """``harness/live/opcua_server.py`` in a subprocess on a fixed free loopback port."""

    def __init__(
        self, workdir: Path, spec: dict[str, Any], *, extra: list[str] | None = None
    ) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.spec = spec
        self.extra = list(extra or [])
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = workdir / f"opcua-server-{self.port}.log"

    @property
    def endpoint(self) -> str:
        return f"opc.tcp://127.0.0.1:{self.port}/renkei/test"

    def start(self, first_tick: int = 0) -> None:
        argv = [sys.executable, "-m", "harness.live.opcua_server", "--port", str(self.port)]
        argv += ["--spec", json.dumps(self.spec), "--first-tick", str(first_tick), *self.extra]
        env = dict(os.environ, PYTHONPATH=str(REPO))
        with open(self.log, "ab") as fh:
            self.proc = subprocess.Popen(
                argv,
                stdout=fh,
                stderr=subprocess.STDOUT,
                cwd=REPO,
                env=env,
                start_new_session=True,
            )
        wait_for(
            lambda: "READY" in self.log.read_text(errors="replace") or self.proc.poll() is not None,  # type: ignore[union-attr]
            30,
            "opcua server start",
        )
        assert self.proc.poll() is None, self.log.read_text(errors="replace")

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        self.log.write_text("")  # so the next start waits for its own READY

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@contextmanager
def opcua_server(
    workdir: Path, spec: dict[str, Any], extra: list[str] | None = None
) -> Iterator[OpcuaServer]:
    srv = OpcuaServer(workdir, spec, extra=extra)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def make_cert(directory: Path, name: str, uri: str, *, server: bool = False) -> tuple[Path, Path]:
    """A self-signed application instance certificate (DER) and its key (PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.UniformResourceIdentifier(uri), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=True,
                data_encipherment=True,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_path = directory / f"{name}.der"
    key_path = directory / f"{name}.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.DER))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class Running(DriverRun):
    """The ``opcua`` driver of ``config`` (a ``source`` mapping without ``type``) running on
    its own thread (:class:`harness.live.driver_run.DriverRun`)."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = OpcuaSourceConfig.model_validate({"type": "opcua", **config})
        driver: OpcuaDriver = make_driver(self.config)
        self.opcua = driver
        super().__init__(driver)
