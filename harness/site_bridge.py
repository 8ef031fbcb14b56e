"""Two real Mosquittos, site and cloud, bridged over TLS through a TCP proxy that can cut the WAN.

For the site-broker tests and ``bench/bench_site_bridge.py``:

- :func:`make_pki`: a throwaway CA and the cloud broker's server certificate (``cryptography``);
- :class:`CloudBroker`: Mosquitto with ``deploy/mosquitto/renkei.conf`` plus a TLS listener,
  a password file and the ACL rendered by :func:`renkei.cloud.broker_acl.render_acl` (the
  bridge user's block included), and a plain loopback listener for nothing but readiness;
- :class:`SiteBroker`: Mosquitto running exactly the config of
  :func:`renkei.cloud.site_bridge.render_site_conf` (only ports, paths and ``user`` differ);
- :class:`harness.tcp_proxy.TcpProxy` between them is the WAN, which can be cut;
- :class:`BridgeRig` / :func:`start_rig`: all of it, with the cloud ingest user's
  :class:`harness.seq_mqtt.SeqCounter` subscribed before any data flows.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from harness.seq_mqtt import SeqCounter
from harness.services import Mosquitto, ServerProcess, _binary, free_port, wait_port
from harness.tcp_proxy import TcpProxy
from harness.wait import wait_for
from renkei.cloud.broker_acl import GatewayGrant, render_acl
from renkei.cloud.site_bridge import SiteBridge, render_site_conf

__all__ = [
    "BridgeRig",
    "CloudBroker",
    "Pki",
    "SiteBroker",
    "make_pki",
    "site_gateway_passwords",
    "start_rig",
]

FIRM, SITE = "acme", "osaka"
INGEST_USER = "renkei-ingest-1"


@dataclass(frozen=True)
class Pki:
    ca: Path
    cert: Path
    key: Path


def make_pki(directory: Path) -> Pki:
    """A one-day CA (ECDSA P-256) and a server certificate for localhost/127.0.0.1."""
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Renkei bridge test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.IPv4Address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pki = Pki(ca=directory / "ca.crt", cert=directory / "server.crt", key=directory / "server.key")
    pki.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    pki.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pki.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    pki.key.chmod(0o600)
    return pki


def _password_file(path: Path, passwords: dict[str, str]) -> None:
    path.write_text("")
    for user, password in passwords.items():
        subprocess.run(
            ["mosquitto_passwd", str(path), user],
            input=f"{password}\n{password}\n".encode(),
            check=True,
            capture_output=True,
        )
    path.chmod(0o600)


class CloudBroker(Mosquitto):
    """The cloud broker: renkei.conf + TLS listener ``tls_port`` with passwords and the ACL."""

    def __init__(self, *, workdir: Path, pki: Pki, passwords: dict[str, str], acl: str) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.tls_port = free_port()
        _password_file(workdir / "passwd", passwords)
        (workdir / "acl").write_text(acl)
        extra = (
            "allow_anonymous false\n"
            f"password_file {workdir / 'passwd'}\n"
            f"acl_file {workdir / 'acl'}\n"
            f"listener {self.tls_port} 127.0.0.1\n"
            "use_username_as_clientid true\n"
            f"certfile {pki.cert}\nkeyfile {pki.key}\ncafile {pki.ca}\n"
            "tls_version tlsv1.2\n"
        )
        super().__init__(workdir=workdir, extra_conf=extra)

    def _ready(self) -> None:
        super()._ready()
        assert self.proc is not None
        wait_port(self.tls_port, 10.0, self.proc, self.log_path)


def cloud_acl(bridge: SiteBridge) -> str:
    """The cloud ACL with no gateways (they sit behind the site broker) and ``bridge``."""
    return render_acl([], bridges=[bridge])


class SiteBroker(ServerProcess):
    """The site broker, running :func:`render_site_conf` for ``bridge`` as it is."""

    def __init__(self, *, workdir: Path, bridge: SiteBridge, password: str) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = int(bridge.local_listener.split()[0])
        self.bridge = bridge
        conf = render_site_conf(bridge, password=password)
        if os.geteuid() == 0:
            conf += "user root\n"
        self.conf_path = workdir / "mosquitto.conf"
        self.conf_path.write_text(conf)
        self.conf_path.chmod(0o600)
        self.binary = _binary("mosquitto", ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"])

    def _argv(self) -> list[str]:
        return [self.binary, "-c", str(self.conf_path)]

    def _ready(self) -> None:
        assert self.proc is not None
        wait_port(self.port, 10.0, self.proc, self.log_path)


def site_bridge_for(
    *, workdir: Path, ca: Path, cloud_port: int, keepalive_s: int = 5, **extra: Any
) -> SiteBridge:
    """The bridge of site acme/osaka to ``127.0.0.1:cloud_port``; local auth off unless
    ``extra`` names the files."""
    values: dict[str, Any] = {
        "firm": FIRM,
        "site": SITE,
        "cloud_host": "127.0.0.1",
        "cloud_port": cloud_port,
        "ca_file": str(ca),
        "local_listener": f"{free_port()} 127.0.0.1",
        "local_password_file": None,
        "local_acl_file": None,
        "data_dir": str(workdir),
        "keepalive_s": keepalive_s,
    }
    return SiteBridge.build(**(values | extra))


WATCH_USER = "renkei-watch"


@dataclass
class BridgeRig:
    """Cloud broker, WAN proxy, site broker and the cloud ingest user's seq counter."""

    pki: Pki
    cloud: CloudBroker
    proxy: TcpProxy
    site: SiteBroker
    bridge: SiteBridge
    passwords: dict[str, str]
    cloud_sub: SeqCounter

    def state(self) -> list[bytes]:
        """Every bridge state (``b"1"``/``b"0"``) the cloud subscriber received, in order."""
        return self.cloud_sub.payloads(self.bridge.state_topic)

    def close(self) -> None:
        self.cloud_sub.close()
        self.site.kill()
        self.proxy.stop()
        self.cloud.kill()


def site_gateway_passwords(count: int) -> dict[str, str]:
    """Passwords of local gateway users ``gw-0`` .. (for a site broker with local auth)."""
    return {f"gw-{i}": secrets.token_urlsafe(12) for i in range(count)}


def _local_auth(workdir: Path, passwords: dict[str, str]) -> dict[str, str]:
    """The site's own password file and ACL (rendered as for the cloud: one machine each)."""
    workdir.mkdir(parents=True, exist_ok=True)
    _password_file(workdir / "local-passwd", passwords)
    grants = [
        GatewayGrant(
            user=name,
            gateway_id=name,
            firm=FIRM,
            site=SITE,
            machines=(("molding", "line-1", f"imm-{name.removeprefix('gw-')}"),),
        )
        for name in passwords
    ]
    (workdir / "local-acl").write_text(render_acl(grants))
    return {
        "local_password_file": str(workdir / "local-passwd"),
        "local_acl_file": str(workdir / "local-acl"),
    }


def start_rig(
    workdir: Path, *, local_users: dict[str, str] | None = None, **bridge_values: Any
) -> BridgeRig:
    """Start the cloud broker, the proxy, the ingest user's counter (subscribed to
    ``renkei/#`` with a persistent session before any data flows) and the site broker;
    return once the cloud has the bridge state ``1``.

    ``local_users`` (gateway user -> password, :func:`site_gateway_passwords`) turns on the
    site's own password file and ACL; ``bridge_values`` override :func:`site_bridge_for`'s
    (``max_queued_messages``, ...).
    """
    pki = make_pki(workdir / "pki")
    if local_users is not None:
        bridge_values |= _local_auth(workdir / "site", local_users)
    draft = site_bridge_for(workdir=workdir / "site", ca=pki.ca, cloud_port=1, **bridge_values)
    passwords = {
        user: secrets.token_urlsafe(16) for user in (INGEST_USER, WATCH_USER, draft.bridge_user)
    }
    cloud = CloudBroker(
        workdir=workdir / "cloud", pki=pki, passwords=passwords, acl=cloud_acl(draft)
    )
    cloud.start()
    proxy = TcpProxy(target_port=cloud.tls_port)
    proxy.start()
    bridge = draft.model_copy(update={"cloud_port": proxy.port})
    cloud_sub = SeqCounter(
        port=cloud.tls_port,
        topic="renkei/#",
        user=INGEST_USER,
        password=passwords[INGEST_USER],
        ca=pki.ca,
    )
    site = SiteBroker(
        workdir=workdir / "site", bridge=bridge, password=passwords[bridge.bridge_user]
    )
    site.start()
    rig = BridgeRig(pki, cloud, proxy, site, bridge, passwords, cloud_sub)
    wait_for(lambda: rig.state()[-1:] == [b"1"], 15, "the bridge's state 1 at the cloud")
    return rig
