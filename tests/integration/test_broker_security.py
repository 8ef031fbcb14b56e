"""docker-compose.yml's broker security, run for real: TLS, per-user passwords, the ACL.

The broker here is the one compose runs, not a look-alike: ``deploy/mosquitto/entrypoint.sh``
puts the users of the ``mqtt-user-<name>`` secret files (one per MQTT user that compose
gives the mosquitto service) into the dynamic-security plugin, each with its role from
``deploy/mosquitto/dynsec-roles``, and starts Mosquitto with
``deploy/mosquitto/compose.conf``, which includes ``deploy/mosquitto/renkei.conf`` (the
static fallback, password file + ``deploy/mosquitto/acl``, is run once too). The test
only substitutes the container paths, the listener ports (free loopback ports) and
``user`` (root may not hand the test's private temp dir to the mosquitto user), and
generates a throwaway CA and server certificate with ``cryptography``. Every wait is
bounded.

Proven: a gateway publishes under its own prefix over TLS and the ingest user receives it;
wrong passwords, unknown users, anonymous clients, plain-text MQTT and untrusted
certificates are refused; a gateway can neither publish (nor leave a Last Will) under
another gateway's, site's or firm's prefix, nor on a sibling gateway's machine topics of
its own site, nor forge ingest heartbeats, dead letters or its own desired models, nor
read other gateways' data; client ids are bound to users, so a gateway's password with
another gateway's client id neither disconnects it nor fires its Last Will, and impostors
using ingest-1's client id leave its queued session intact (20 of 20 delivered); the
cloud users have only their rights; the real edge agent and ingest worker connect
with TLS and credentials, configured exactly as docker-compose.yml configures them; and
beside these static users, a gateway enrolled in the dynamic-security plugin (whose file
the entrypoint creates with the mqtt-dynsec-admin secret) publishes only its own topics
and is cut off alone when its users are deleted. Every compose user is a dynamic-security
client whose one role holds exactly its ACL-file rules (wider subscriptions are refused);
the static fallback (no plugin, RENKEI_MQTT_STATIC_AUTH=1) enforces the ACL file alone; the
broker listens on its TLS port only.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from harness.services import (
    InfluxDB,
    ServiceError,
    dynsec_plugin,
    free_port,
    log_tail,
    wait_port,
)
from harness.wait import WaitTimeout, pause, wait_for
from renkei.core.signing import generate_private_key, public_key_text
from renkei.core.wire import MachineKind
from renkei.edge.config import GatewayConfig
from renkei.edge.rollout import ModelRollout

REPO = Path(__file__).resolve().parents[2]
MOSQ = REPO / "deploy" / "mosquitto"
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())

GW1, GW2, GW3 = "gw-compose-sim-01", "gw-compose-sim-02", "gw-compose-sim-03"
#: The two ingest workers' MQTT users (= their client ids; one shared subscription group).
INGEST1, INGEST2 = "renkei-ingest-1", "renkei-ingest-2"
SHARE_GROUP = "renkei-ingest"
_GW_CONFIGS = {
    gw: yaml.safe_load((REPO / "deploy" / "compose" / "gateways" / f"{gw}.yaml").read_text())
    for gw in (GW1, GW2, GW3)
}
#: gateway -> (firm, site), as in deploy/compose/gateways/ and the ACL
SITES = {gw: (c["firm"], c["site"]) for gw, c in _GW_CONFIGS.items()}
#: gateway -> (area, line, machine) of its one machine (deploy/compose/gateways/)
MACHINES = {
    gw: (c["machines"][0]["area"], c["machines"][0]["line"], c["machines"][0]["id"])
    for gw, c in _GW_CONFIGS.items()
}
NOT_AUTHORIZED = 135
#: the Last Will test clients leave (a false "offline" when another client fires it)
WILL_PAYLOAD = b'{"forged": true}'
BAD_CREDENTIALS = 134
#: The dynamic-security admin the entrypoint creates (secret mqtt-dynsec-admin).
DYNSEC_ADMIN = "renkei-dynsec-admin"


def machine_topic(
    gw: str, kind: str = "telemetry", *, machine: tuple[str, str, str] | None = None
) -> str:
    """A machine data topic at ``gw``'s site: its own machine unless ``machine`` is given."""
    firm, site = SITES[gw]
    area, line, machine_id = machine or MACHINES[gw]
    return f"renkei/v1/{firm}/{site}/{area}/{line}/{machine_id}/{kind}"


def state_topic(gw: str) -> str:
    firm, site = SITES[gw]
    return f"renkei/v1/{firm}/{site}/_gw/{gw}/state"


def rollout_topic(gw: str, kind: str) -> str:
    firm, site = SITES[gw]
    return f"renkei/rollout/v1/{firm}/{site}/{gw}/{kind}"


# --------------------------------------------------------------------- PKI


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def make_ca(directory: Path, name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A throwaway CA (ECDSA P-256, one day); writes ``ca.crt``."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "ca.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def make_server_cert(
    directory: Path, ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey
) -> None:
    """The broker's certificate for localhost/127.0.0.1/mosquitto: server.crt, server.key."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mosquitto")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("mosquitto"),
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.IPv4Address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    (directory / "server.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(directory / "server.key", key)


# --------------------------------------------------------------------- the broker


def render_compose_conf(
    workdir: Path, *, port: int, auth: Path, data: Path, include_dir: Path
) -> Path:
    """compose.conf with only its container paths, listener port and ``user`` replaced.

    Every replaced line must exist exactly once and every other line stays as it is, so a
    change to compose.conf either runs here unchanged or fails this test loudly.
    """
    text = (MOSQ / "compose.conf").read_text()
    subs = {
        "include_dir /mosquitto/config/renkei.d": f"include_dir {include_dir}",
        "include_dir /mosquitto/auth/static.d": f"include_dir {auth}/static.d",
        "persistence_location /mosquitto/data/": f"persistence_location {data}/",
        "listener 8883": f"listener {port} 127.0.0.1",
        "certfile /mosquitto/auth/server.crt": f"certfile {auth}/server.crt",
        "keyfile /mosquitto/auth/server.key": f"keyfile {auth}/server.key",
        "cafile /mosquitto/auth/ca.crt": f"cafile {auth}/ca.crt",
        "plugin /usr/lib/mosquitto_dynamic_security.so": f"plugin {dynsec_plugin()}",
        "plugin_opt_config_file /mosquitto/data/dynamic-security.json": (
            f"plugin_opt_config_file {data}/dynamic-security.json"
        ),
        # As root, Mosquitto would switch to "mosquitto", which cannot enter pytest's
        # private temp dir; as another user, `user` is ignored.
        "user mosquitto": "user root" if os.geteuid() == 0 else "user mosquitto",
    }
    lines = text.splitlines()
    for old in subs:
        assert lines.count(old) == 1, f"compose.conf: expected the line {old!r} once"
    rendered = [subs.get(line, line) for line in lines]
    container_paths = [ln for ln in rendered if " /mosquitto/" in ln and not ln.startswith("#")]
    assert not container_paths, f"compose.conf: container paths left: {container_paths}"
    path = workdir / "compose.conf"
    path.write_text("\n".join(rendered) + "\n")
    return path


def broker_users() -> list[str]:
    """The MQTT users compose gives the broker (its mqtt-user-* secrets)."""
    names = [s for s in COMPOSE["services"]["mosquitto"]["secrets"] if isinstance(s, str)]
    return [s.removeprefix("mqtt-user-") for s in names if s.startswith("mqtt-user-")]


def mosquitto_binary() -> str:
    for c in ("/usr/sbin/mosquitto", "/usr/bin/mosquitto"):
        if os.access(c, os.X_OK):
            return c
    found = shutil.which("mosquitto")
    if not found:
        raise ServiceError("mosquitto not found; install the Debian package mosquitto")
    return found


def entrypoint_env(secrets_dir: Path, auth: Path, conf: Path, data: Path) -> dict[str, str]:
    return {
        "PATH": f"/usr/sbin:/usr/bin:/bin:{os.environ.get('PATH', '')}",
        "RENKEI_SECRETS": str(secrets_dir),
        "RENKEI_MOSQUITTO_AUTH": str(auth),
        "RENKEI_MOSQUITTO_CONF": str(conf),
        "RENKEI_MOSQUITTO_DATA": str(data),
        "RENKEI_MOSQUITTO_OWNER": "root",
        "RENKEI_MOSQUITTO_BIN": mosquitto_binary(),
        "RENKEI_MOSQUITTO_ACL": str(MOSQ / "acl"),
        "RENKEI_MOSQUITTO_ROLES": str(MOSQ / "dynsec-roles"),
        "RENKEI_MOSQUITTO_PLUGIN": dynsec_plugin(),
        "RENKEI_MOSQUITTO_SETUP_PORT": str(free_port()),
    }


@dataclass
class Broker:
    """The compose broker running on a loopback port."""

    port: int
    ca_file: Path
    passwords: dict[str, str]
    workdir: Path
    proc: subprocess.Popen[bytes]

    @property
    def log(self) -> Path:
        return self.workdir / "broker.log"


def start_broker(work: Path, *, static_fallback: bool = False) -> Broker:
    """Run the real entrypoint with compose.conf in ``work`` (secrets from compose's list).

    ``static_fallback``: compose.conf without its two ``plugin`` lines and
    ``RENKEI_MQTT_STATIC_AUTH=1`` (the documented fallback: password file + ACL file).
    """
    secrets_dir, auth, data, include = (work / n for n in ("secrets", "auth", "data", "renkei.d"))
    for d in (secrets_dir, include):
        d.mkdir()
    # The same renkei.conf compose mounts into renkei.d/.
    (include / "renkei.conf").symlink_to(MOSQ / "renkei.conf")
    ca, ca_key = make_ca(work / "pki", "Renkei test CA")
    make_server_cert(work / "pki", ca, ca_key)
    for secret, name in (("mqtt-tls-ca", "ca.crt"), ("mqtt-tls-cert", "server.crt")):
        shutil.copy(work / "pki" / name, secrets_dir / secret)
    shutil.copy(work / "pki" / "server.key", secrets_dir / "mqtt-tls-key")
    # One password per compose variable: a gateway's data and rollout users share one.
    variables = {u: COMPOSE["secrets"][f"mqtt-user-{u}"]["environment"] for u in broker_users()}
    by_variable = {v: secrets.token_urlsafe(24) for v in set(variables.values())}
    passwords = {user: by_variable[variable] for user, variable in variables.items()}
    for user, password in passwords.items():
        # A trailing newline (as editors write it) is not part of the password.
        (secrets_dir / f"mqtt-user-{user}").write_text(password + "\n")
    passwords[DYNSEC_ADMIN] = secrets.token_urlsafe(24)
    (secrets_dir / "mqtt-dynsec-admin").write_text(passwords[DYNSEC_ADMIN] + "\n")
    port = free_port()
    conf = render_compose_conf(work, port=port, auth=auth, data=data, include_dir=include)
    env = entrypoint_env(secrets_dir, auth, conf, data)
    if static_fallback:
        lines = conf.read_text().splitlines()
        conf.write_text("\n".join(ln for ln in lines if not ln.startswith("plugin")) + "\n")
        del env["RENKEI_MOSQUITTO_PLUGIN"]
        env["RENKEI_MQTT_STATIC_AUTH"] = "1"
    log = open(work / "broker.log", "ab")  # noqa: SIM115 - owned by the child process
    proc = subprocess.Popen(
        ["sh", str(MOSQ / "entrypoint.sh")],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    server = Broker(
        port=port, ca_file=work / "pki" / "ca.crt", passwords=passwords, workdir=work, proc=proc
    )
    try:
        wait_port(port, 15.0, proc, server.log)
    except BaseException:
        stop_broker(server)
        raise
    return server


def stop_broker(server: Broker) -> None:
    proc = server.proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    server = start_broker(tmp_path_factory.mktemp("secure-broker"))
    try:
        yield server
    finally:
        stop_broker(server)


# --------------------------------------------------------------------- an MQTT client


class Conn:
    """One paho client with everything it saw recorded; never reconnects by itself."""

    def __init__(
        self,
        broker: Broker,
        user: str | None,
        password: str | None = None,
        *,
        client_id: str | None = None,
        protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv5,
        tls: bool = True,
        ca_file: Path | None = None,
        will: str | None = None,
        will_retain: bool = False,
        clean_start: bool = True,
        session_expiry_s: int = 0,
    ) -> None:
        self.connack: ReasonCode | None = None
        self.got_connack = threading.Event()
        self.closed = threading.Event()
        self.messages: list[tuple[str, bytes, bool]] = []
        self.acks: dict[int, ReasonCode | None] = {}
        self.subacks: dict[int, list[ReasonCode]] = {}
        self._lock = threading.Lock()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"t-{secrets.token_hex(4)}",
            protocol=protocol,
            reconnect_on_failure=False,
        )
        if user is not None:
            self.client.username_pw_set(user, password)
        if tls:
            self.client.tls_set(ca_certs=str(ca_file or broker.ca_file))
        if will is not None:
            self.client.will_set(will, WILL_PAYLOAD, qos=1, retain=will_retain)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        props: Properties | None = None
        if protocol == MQTTProtocolVersion.MQTTv5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = session_expiry_s
        # TCP + TLS handshake; MQTT 3.1.1 has no Clean Start flag of its own in paho's API
        self.client.connect(
            "127.0.0.1",
            broker.port,
            keepalive=30,
            clean_start=clean_start
            if protocol == MQTTProtocolVersion.MQTTv5
            else mqtt.MQTT_CLEAN_START_FIRST_ONLY,
            properties=props,
        )
        self.client.loop_start()

    # paho callbacks (network thread)
    def _on_connect(self, _c: Any, _u: Any, _f: Any, rc: ReasonCode, _p: Any = None) -> None:
        self.connack = rc
        self.got_connack.set()

    def _on_disconnect(self, *_: Any) -> None:
        self.closed.set()

    def _on_publish(self, _c: Any, _u: Any, mid: int, rc: ReasonCode, _p: Any) -> None:
        with self._lock:
            self.acks[mid] = rc

    def _on_subscribe(self, _c: Any, _u: Any, mid: int, rcs: list[ReasonCode], _p: Any) -> None:
        with self._lock:
            self.subacks[mid] = rcs

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))

    # test side
    def wait_connected(self, timeout_s: float = 10) -> ReasonCode | None:
        """The CONNACK reason (None: the connection closed without one)."""
        with contextlib.suppress(WaitTimeout):
            wait_for(
                lambda: self.got_connack.is_set() or self.closed.is_set(),
                timeout_s,
                "a CONNACK",
                interval_s=0.01,
            )
        return self.connack

    def publish(
        self, topic: str, payload: bytes = b"{}", *, qos: int = 1, retain: bool = False
    ) -> ReasonCode | None:
        """Publish and wait (bounded) for the PUBACK reason; None if the broker hung up."""
        rc = self.wait_connected()
        assert rc is not None and not rc.is_failure, f"not connected: {rc}"
        info = self.client.publish(topic, payload, qos=qos, retain=retain)

        def answered() -> bool:
            with self._lock:
                return info.mid in self.acks or self.closed.is_set()

        wait_for(answered, 10, f"a PUBACK for {topic}", interval_s=0.01)
        with self._lock:
            return self.acks.get(info.mid)  # None: the broker hung up without one

    def subscribe(self, topic: str, qos: int = 1) -> list[ReasonCode]:
        _, mid = self.client.subscribe(topic, qos=qos)
        assert mid is not None
        wait_for(lambda: mid in self.subacks, 10, f"SUBACK for {topic}", interval_s=0.01)
        return self.subacks[mid]

    def payloads(self) -> list[bytes]:
        with self._lock:
            return [p for _, p, _ in self.messages]

    def topics(self) -> list[str]:
        with self._lock:
            return [t for t, _, _ in self.messages]

    def tls_version(self) -> str | None:
        sock = self.client.socket()
        return sock.version() if isinstance(sock, ssl.SSLSocket) else None

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.disconnect()
        self.client.loop_stop()


@contextlib.contextmanager
def conn(
    broker: Broker, user: str | None, password: str | None = None, **kw: Any
) -> Iterator[Conn]:
    c = Conn(broker, user, password, **kw)
    try:
        yield c
    finally:
        c.close()


def login(broker: Broker, user: str, **kw: Any) -> contextlib.AbstractContextManager[Conn]:
    """A connection as ``user`` with its right password."""
    return conn(broker, user, broker.passwords[user], **kw)


def connected(c: Conn) -> Conn:
    rc = c.wait_connected()
    assert rc is not None and not rc.is_failure, f"connection refused: {rc}"
    return c


# --------------------------------------------------------------------- tests


def test_gateway_publishes_under_its_prefix_over_tls_and_ingest_receives(broker: Broker) -> None:
    with login(broker, INGEST1) as ingest, login(broker, GW1) as gw:
        connected(ingest)
        assert ingest.subscribe(f"$share/{SHARE_GROUP}/renkei/v1/#")[0].value == 1
        connected(gw)
        assert gw.tls_version() in ("TLSv1.2", "TLSv1.3")
        own = [
            machine_topic(GW1, "telemetry"),
            machine_topic(GW1, "features"),
            state_topic(GW1),
            state_topic(GW1).replace("/state", "/health"),
        ]
        for topic in own:
            rc = gw.publish(topic)
            assert rc is not None and not rc.is_failure, (topic, rc)
        wait_for(lambda: sorted(ingest.topics()) == sorted(own), 10, "ingest to receive all")


@pytest.mark.parametrize(
    ("user", "password"),
    [
        (GW1, "wrong-password-for-gw1"),
        ("gw-not-registered", "whatever-it-is-12345"),
        (GW1, None),
        (None, None),
    ],
    ids=["wrong-password", "unknown-user", "no-password", "anonymous"],
)
def test_bad_credentials_are_refused(
    broker: Broker, user: str | None, password: str | None
) -> None:
    with conn(broker, user, password) as c:
        rc = c.wait_connected()
        assert rc is not None and rc.value in (BAD_CREDENTIALS, NOT_AUTHORIZED), rc


def test_another_gateways_password_does_not_work(broker: Broker) -> None:
    with conn(broker, GW1, broker.passwords[GW2]) as c:
        rc = c.wait_connected()
        assert rc is not None and rc.is_failure


def test_plain_text_and_untrusted_certificates_are_refused(broker: Broker, tmp_path: Path) -> None:
    # MQTT without TLS on the (only) listener: no CONNACK, the broker hangs up.
    with login(broker, GW1, tls=False) as plain:
        assert plain.wait_connected(timeout_s=5) is None
        assert plain.closed.wait(5)
    # A client that trusts another CA refuses the broker's certificate.
    make_ca(tmp_path, "someone else")
    with pytest.raises(ssl.SSLCertVerificationError):
        Conn(broker, GW1, broker.passwords[GW1], ca_file=tmp_path / "ca.crt")


FORBIDDEN_FOR_GW1 = [
    machine_topic(GW3),  # another firm
    machine_topic(GW2),  # a sibling gateway's machine at the same site
    machine_topic(GW1, machine=("molding", "line-1", "imm-x")),  # no machine of gw1's
    machine_topic(GW1, machine=(MACHINES[GW1][0], MACHINES[GW2][1], MACHINES[GW1][2])),
    "renkei/v1/demo-molding/nagoya/molding/line-1/imm-x/telemetry",  # another site
    state_topic(GW2),  # a sibling gateway's birth/death at the same site
    state_topic(GW2).replace("/state", "/health"),
    state_topic(GW3),
    "renkei/host/v1/renkei-ingest/heartbeat",  # a forged ingest heartbeat
    "renkei/dlq/v1/malformed_json",  # a forged dead letter
    rollout_topic(GW1, "desired"),  # choosing its own models
    rollout_topic(GW2, "report"),
    "renkei/v1/demo-molding/osaka",  # its own prefix, but not a data topic
]


def test_gateway_cannot_publish_outside_its_prefix(broker: Broker) -> None:
    with login(broker, INGEST1) as spy:
        connected(spy)
        spy.subscribe("#")
        for topic in FORBIDDEN_FOR_GW1:
            # Mosquitto 2.0 answers a refused QoS 1 publish with PUBACK "Not authorized"
            # (MQTT 5) and then closes the connection: one connection per attempt.
            with login(broker, GW1) as gw:
                rc = gw.publish(topic)
                assert rc is None or rc.value == NOT_AUTHORIZED, (topic, rc)
        # MQTT 3.1.1 has no refusal code: the broker acknowledges and drops the message.
        with login(broker, GW1, protocol=MQTTProtocolVersion.MQTTv311) as gw311:
            gw311.publish(machine_topic(GW2, "shot"))
        # A sentinel published afterwards arrives, so the refused ones were not delayed.
        sentinel = machine_topic(GW1, "label")
        with login(broker, GW1) as gw:
            assert gw.publish(sentinel) is not None
        wait_for(lambda: sentinel in spy.topics(), 10, "the sentinel")
        assert spy.topics() == [sentinel], f"forbidden messages were delivered: {spy.topics()}"


def test_gateway_last_will_only_under_its_own_state_topic(broker: Broker) -> None:
    with login(broker, INGEST1) as spy:
        connected(spy)
        spy.subscribe("renkei/v1/#")
        for will in (state_topic(GW2), state_topic(GW1)):
            gw = Conn(broker, GW1, broker.passwords[GW1], will=will)
            connected(gw)
            # Drop the connection without DISCONNECT: the broker sends the Last Will.
            sock = gw.client.socket()
            assert isinstance(sock, socket.socket)
            sock.shutdown(socket.SHUT_RDWR)
            gw.client.loop_stop()
        wait_for(lambda: state_topic(GW1) in spy.topics(), 10, "gw1's own Last Will")
        pause(0.3, "a forged Last Will would arrive meanwhile")
        assert spy.topics() == [state_topic(GW1)], "a forged Last Will was delivered"


def test_gateway_publishes_on_every_kind_of_its_own_machines_only(broker: Broker) -> None:
    """The ACL grants each gateway its machines' topics, not its site's (issue 11).

    Before, ``renkei/v1/{firm}/{site}/+/+/+/+`` let gw1 overwrite gw2's points at osaka.
    """
    kinds = [k.value for k in MachineKind]
    own = [machine_topic(GW1, k) for k in kinds]
    with login(broker, INGEST1) as spy:
        connected(spy)
        spy.subscribe("renkei/v1/#")
        for topic in [machine_topic(GW2, k) for k in kinds]:
            with login(broker, GW1) as gw:  # a refusal closes the connection
                rc = gw.publish(topic, b'{"gw": "gw-compose-sim-02"}')
                assert rc is None or rc.value == NOT_AUTHORIZED, (topic, rc)
        with login(broker, GW1) as gw:
            for topic in own:
                rc = gw.publish(topic)
                assert rc is not None and not rc.is_failure, (topic, rc)
        wait_for(lambda: len(spy.topics()) >= len(own), 10, "gw1's own machine data")
        pause(0.3, "refused data would arrive meanwhile")
        assert spy.topics() == own, f"delivered: {spy.topics()}"


# ---------------------------------------------- client ids bound to users (issue 11)


@pytest.mark.parametrize("victim", [GW2, GW3], ids=["same-site", "other-firm"])
def test_another_gateways_client_id_neither_disconnects_it_nor_fires_its_last_will(
    broker: Broker, victim: str
) -> None:
    """gw1's password with the victim's client id: the victim stays connected, no "offline".

    compose.conf's ``use_username_as_clientid`` makes the client id the user name, so the
    attacker's connection gets gw1's own session, not the victim's.
    """
    try:
        with login(broker, "renkei-watch") as watcher:
            connected(watcher)
            watcher.subscribe("renkei/v1/+/+/_gw/+/state")
            # The victim connects as the edge publisher does: its id, a retained Last Will.
            with login(
                broker, victim, client_id=victim, will=state_topic(victim), will_retain=True
            ) as gw:
                connected(gw)
                for clean_start in (True, False):
                    with login(broker, GW1, client_id=victim, clean_start=clean_start) as attacker:
                        connected(attacker)
                        rc = attacker.publish(machine_topic(GW1))
                        assert rc is not None and not rc.is_failure, rc
                # Still connected: its next publish is acknowledged and reaches the watcher.
                rc = gw.publish(state_topic(victim), b"sentinel")
                with contextlib.suppress(AssertionError):
                    wait_for(lambda: watcher.payloads() != [], 10, "a state at the watcher")
                pause(0.3, "a Last Will fired by the takeover would arrive meanwhile")
                # (before: [WILL_PAYLOAD], the victim's retained "offline" fired by gw1)
                assert watcher.payloads() == [b"sentinel"], watcher.messages
                assert rc is not None and not rc.is_failure, f"victim disconnected: {rc}"
                assert not gw.closed.is_set()
    finally:
        with login(broker, victim) as clear:  # a fired retained Will must not leak on
            clear.publish(state_topic(victim), b"", retain=True)


def test_a_client_using_the_ingests_client_id_cannot_wipe_its_session(broker: Broker) -> None:
    """Queued QoS 1 messages of ingest-1's persistent session survive impostors: 20 of 20.

    Before, a clean-start CONNECT with client id ``renkei-ingest-1`` and any valid user
    (here: a gateway's, or the other ingest worker's) ended that session: 0 of 20 delivered.
    """
    n = 20
    share = f"$share/{SHARE_GROUP}/renkei/v1/#"
    ingest = Conn(
        broker,
        INGEST1,
        broker.passwords[INGEST1],
        client_id=INGEST1,
        clean_start=False,
        session_expiry_s=3600,
    )
    connected(ingest)
    assert ingest.subscribe(share)[0].value == 1
    ingest.close()  # offline; the broker queues for its session
    sent = [f"{i:02d}".encode() for i in range(n)]
    with login(broker, GW1) as gw:
        for payload in sent:
            rc = gw.publish(machine_topic(GW1), payload)
            assert rc is not None and not rc.is_failure, rc
    impostors = [(GW2, True), (GW2, False), (INGEST2, True), (GW1, True)]
    for user, clean_start in impostors:
        with login(
            broker, user, client_id=INGEST1, clean_start=clean_start, session_expiry_s=0
        ) as impostor:
            connected(impostor)
            pause(0.1, "the queued messages would reach the impostor meanwhile")
            assert impostor.messages == [], (user, clean_start, impostor.topics())
    resumed = Conn(
        broker, INGEST1, broker.passwords[INGEST1], client_id=INGEST1, clean_start=False
    )  # session expiry 0: this session ends when the test disconnects
    try:
        connected(resumed)
        with contextlib.suppress(AssertionError):
            wait_for(lambda: len(resumed.messages) >= n, 10, "the queue", interval_s=0.05)
        pause(0.3, "duplicates would arrive meanwhile")
        got = len(resumed.messages)
        assert got == n, f"{got} of {n} queued messages delivered"
        assert sorted(resumed.payloads()) == sent
    finally:
        resumed.close()


def test_gateway_rollout_connection_coexists_with_its_data_connection(
    broker: Broker, tmp_path: Path
) -> None:
    """The real edge rollout client logs in as ``{user}-rollout`` with the gateway's password.

    With client id = user name, a rollout client logging in as the gateway's own user would
    take over the data connection's session (and fire its Last Will) at every connect.
    """
    cfg = GatewayConfig.model_validate(
        {
            "gateway_id": GW3,
            "firm": SITES[GW3][0],
            "site": SITES[GW3][1],
            "state_dir": str(tmp_path / "state"),
            "mqtt": {
                "host": "127.0.0.1",
                "port": broker.port,
                "username": GW3,
                "tls_ca_file": str(broker.ca_file),
            },
            "machines": [
                {
                    "id": MACHINES[GW3][2],
                    "area": MACHINES[GW3][0],
                    "line": MACHINES[GW3][1],
                    "source": {"type": "simulated"},
                }
            ],
            "rollout": {
                "api_url": "http://127.0.0.1:9",
                "trusted_keys": [public_key_text(generate_private_key())],
            },
        }
    )
    client = ModelRollout(config=cfg, password=broker.passwords[GW3]).link.make_client()
    connacks: list[ReasonCode] = []
    client.on_connect = lambda _c, _u, _f, rc, _p=None: connacks.append(rc)
    with (
        login(broker, "renkei-rollout") as controller,
        login(broker, GW3, client_id=GW3, will=state_topic(GW3)) as data,
    ):
        connected(data)
        connected(controller)
        desired = rollout_topic(GW3, "desired")
        assert controller.publish(desired, b"{}") is not None
        client.connect("127.0.0.1", broker.port)
        client.loop_start()
        try:
            wait_for(lambda: connacks != [], 10, "the rollout client's CONNACK")
            assert not connacks[0].is_failure, connacks
            client.subscribe(desired, qos=1)
            rc = client.publish(rollout_topic(GW3, "report"), b"{}", qos=1)
            rc.wait_for_publish(10)
            assert rc.is_published()
            pause(0.3, "a takeover would close the data connection meanwhile")
            assert not data.closed.is_set(), "the rollout login took over the data connection"
            assert data.publish(machine_topic(GW3)) is not None
        finally:
            client.disconnect()
            client.loop_stop()


def test_gateway_reads_only_its_heartbeat_and_desired_models(broker: Broker) -> None:
    with (
        login(broker, GW1) as gw1,
        login(broker, GW3) as gw3,
        login(broker, f"{GW3}-rollout") as gw3_rollout,
        login(broker, INGEST1) as ingest,
        login(broker, "renkei-rollout") as rollout,
    ):
        for c in (gw1, gw3, gw3_rollout, ingest, rollout):
            connected(c)
        # Wider subscriptions are refused (dynamic security); each delivery is filtered too.
        for topic in ("renkei/v1/#", "renkei/rollout/v1/#", "renkei/dlq/v1/#"):
            (reason,) = gw1.subscribe(topic)
            assert reason.value == NOT_AUTHORIZED, (topic, reason)
        gw1.subscribe("renkei/host/v1/renkei-ingest/heartbeat")
        # The gateway's data connection does not read desired models; its rollout one does.
        gw3.subscribe(rollout_topic(GW3, "desired"))
        gw3_rollout.subscribe(rollout_topic(GW3, "desired"))
        assert gw3.publish(machine_topic(GW3)) is not None
        assert rollout.publish(rollout_topic(GW3, "desired")) is not None
        assert ingest.publish("renkei/dlq/v1/bad_topic") is not None
        heartbeat = f"renkei/host/v1/{SHARE_GROUP}/heartbeat"
        assert ingest.publish(heartbeat, qos=0) is not None
        wait_for(lambda: heartbeat in gw1.topics(), 10, "the ingest heartbeat at gw1")
        wait_for(
            lambda: gw3_rollout.topics() == [rollout_topic(GW3, "desired")], 10, "gw3's models"
        )
        pause(0.3, "foreign data would arrive meanwhile")
        assert gw1.topics() == [heartbeat], f"gw1 read foreign data: {gw1.topics()}"
        assert gw3.topics() == [], f"gw3's data connection read: {gw3.topics()}"


def test_cloud_users_have_only_their_rights(broker: Broker) -> None:
    with login(broker, "renkei-watch") as watch, login(broker, GW1) as gw:
        connected(watch)
        # Dynamic security grants a subscription only within the user's read rules (the
        # static ACL file granted any and filtered each delivery); the watcher's own
        # filter is granted.
        (wide,) = watch.subscribe("renkei/v1/#")
        assert wide.value == NOT_AUTHORIZED, wide
        (own,) = watch.subscribe("renkei/v1/+/+/_gw/+/state")
        assert not own.is_failure, own
        connected(gw)
        gw.publish(machine_topic(GW1))
        gw.publish(state_topic(GW1))
        wait_for(lambda: state_topic(GW1) in watch.topics(), 10, "the state at the watcher")
        pause(0.3, "machine data would arrive meanwhile")
        assert watch.topics() == [state_topic(GW1)], "the watcher reads only states"
    heartbeat = f"renkei/host/v1/{SHARE_GROUP}/heartbeat"
    ingest_refused = [machine_topic(GW1), state_topic(GW1), rollout_topic(GW1, "desired")]
    ingest_allowed = [heartbeat, "renkei/dlq/v1/bad_topic"]
    refused = {
        "renkei-watch": [state_topic(GW1), heartbeat],
        INGEST1: ingest_refused,
        INGEST2: ingest_refused,
        "renkei-rollout": [machine_topic(GW1), rollout_topic(GW1, "report")],
        GW1: [rollout_topic(GW1, "report")],  # the data user: no rollout rights
        f"{GW1}-rollout": [
            machine_topic(GW1),
            state_topic(GW1),
            rollout_topic(GW1, "desired"),
            rollout_topic(GW2, "report"),
        ],
    }
    allowed = {
        INGEST1: ingest_allowed,
        INGEST2: ingest_allowed,
        "renkei-rollout": [rollout_topic(GW1, "desired")],
        f"{GW1}-rollout": [rollout_topic(GW1, "report")],
    }
    for user, topics in refused.items():
        for topic in topics:
            with login(broker, user) as c:
                rc = c.publish(topic)
                assert rc is None or rc.value == NOT_AUTHORIZED, (user, topic, rc)
    for user, topics in allowed.items():
        for topic in topics:
            with login(broker, user) as c:
                rc = c.publish(topic)
                assert rc is not None and not rc.is_failure, (user, topic, rc)


def _compose_env(service: str) -> dict[str, str]:
    """A service's environment from docker-compose.yml (``${...}`` left for the caller)."""
    env: dict[str, str] = COMPOSE["services"][service]["environment"]
    return {k: str(v) for k, v in env.items()}


def _start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as fh:
        return subprocess.Popen(
            argv,
            env={**os.environ, "PYTHONPATH": str(REPO), **env},
            stdout=fh,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            start_new_session=True,
        )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.mark.slow
def test_edge_agent_and_ingest_worker_connect_with_tls_and_credentials(
    broker: Broker, tmp_path: Path, influxdb: InfluxDB, database: str
) -> None:
    """The real ``renkei edge run`` and ``renkei cloud ingest``, configured as compose does.

    The gateway runs deploy/compose/gateways/gw-compose-sim-01.yaml with only the broker
    address, CA path and model directory replaced; the ingest gets ingest-1's environment
    from docker-compose.yml with only the broker/InfluxDB addresses, the CA path and the
    secrets filled in. The ingest trusts the private CA through SSL_CERT_FILE, as in compose.
    """
    host = f"mqtts://127.0.0.1:{broker.port}"
    ingest_env = _compose_env("ingest-1")
    assert ingest_env["RENKEI_BROKER"] == "mqtts://mosquitto:8883"
    ingest_env.update(
        RENKEI_BROKER=host,
        SSL_CERT_FILE=str(broker.ca_file),
        RENKEI_MQTT_TLS_CA_FILE=str(broker.ca_file),
        RENKEI_MQTT_PASSWORD=broker.passwords[ingest_env["RENKEI_MQTT_USERNAME"]],
        RENKEI_INFLUX_URL=influxdb.url,
        RENKEI_INFLUX_DATABASE=database,
        # the test InfluxDB 1.x has no users; it ignores credentials
        RENKEI_INFLUX_USERNAME="renkei-ingest",
        RENKEI_INFLUX_PASSWORD="unused-by-influxdb-1x",
    )
    assert not [v for v in ingest_env.values() if "${" in v], ingest_env
    cfg_text = (REPO / "deploy" / "compose" / "gateways" / f"{GW1}.yaml").read_text()
    replacements = {
        "host: mosquitto": "host: 127.0.0.1",
        "port: 8883": f"port: {broker.port}",
        "tls_ca_file: /run/secrets/mqtt-tls-ca": f"tls_ca_file: {broker.ca_file}",
        "/app/models/": f"{REPO}/models/",
    }
    for old, new in replacements.items():
        # connection settings appear once; the image's model directory once per model
        assert cfg_text.count(old) == 1 or (old == "/app/models/" and cfg_text.count(old)), old
        cfg_text = cfg_text.replace(old, new)
    config = tmp_path / f"{GW1}.yaml"
    config.write_text(cfg_text)
    watch_env = _compose_env("watch")
    watch_env.update(
        RENKEI_BROKER=host,
        SSL_CERT_FILE=str(broker.ca_file),
        RENKEI_MQTT_TLS_CA_FILE=str(broker.ca_file),
        RENKEI_MQTT_PASSWORD=broker.passwords[watch_env["RENKEI_MQTT_USERNAME"]],
        RENKEI_API_DATABASE_URL=f"sqlite:///{tmp_path / 'registry.sqlite3'}",
    )
    assert not [v for v in watch_env.values() if "${" in v], watch_env
    gw_env = _compose_env("gateway-sim-01")
    gw_env.update(
        RENKEI_STATE_DIR=str(tmp_path / "state"),
        RENKEI_MQTT_PASSWORD=broker.passwords[GW1],
    )

    ingest = _start(
        [sys.executable, "-m", "renkei.cli", "cloud", "ingest", "--stats-interval-s", "0"],
        ingest_env,
        tmp_path / "ingest.log",
    )
    # compose runs it with --no-migrate (the API migrates); this registry is new.
    watch = _start(
        [sys.executable, "-m", "renkei.cli", "cloud", "watch", "--stats-interval-s", "0"],
        watch_env,
        tmp_path / "watch.log",
    )
    try:
        wait_for(
            lambda: "subscribed to" in (tmp_path / "watch.log").read_text(errors="replace"),
            60,
            "the watcher to subscribe over TLS",
            interval_s=0.2,
        )
    except AssertionError:
        _stop(watch)
        _stop(ingest)
        raise
    agent = _start(
        [sys.executable, "-m", "renkei.cli", "edge", "run", "--config", str(config)],
        gw_env,
        tmp_path / "agent.log",
    )
    try:

        def arrived() -> bool:
            assert ingest.poll() is None, log_tail(tmp_path / "ingest.log")
            assert agent.poll() is None, log_tail(tmp_path / "agent.log")
            try:
                return influxdb.count_points(database, "telemetry", "oil_temp_C") > 0
            except (ServiceError, OSError):
                return False

        wait_for(arrived, 90, "gw1's telemetry in InfluxDB through TLS and ACL", interval_s=0.5)
        [series] = influxdb.query(
            'SELECT last("online") FROM "gateway_state" GROUP BY "gw"', db=database
        )
        assert series["tags"]["gw"] == GW1
    finally:
        _stop(agent)
        _stop(ingest)
        _stop(watch)
    for log in ("ingest.log", "agent.log", "watch.log"):
        text = (tmp_path / log).read_text(errors="replace")
        assert "refused the connection" not in text and "Traceback" not in text, text[-3000:]
    # The watcher logged in over TLS and received gw1's birth state (its ACL: states only).
    stats = re.search(r"watch stopped: .*", (tmp_path / "watch.log").read_text())
    assert stats is not None, log_tail(tmp_path / "watch.log")
    assert re.search(r"messages=[1-9]", stats.group(0)) and "connects=1" in stats.group(0), (
        stats.group(0)
    )


def test_entrypoint_refuses_to_start_without_users_or_tls(tmp_path: Path) -> None:
    secrets_dir, auth, data = (tmp_path / n for n in ("secrets", "auth", "data"))
    secrets_dir.mkdir()
    env = entrypoint_env(secrets_dir, auth, tmp_path / "unused.conf", data)

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["sh", str(MOSQ / "entrypoint.sh")],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )

    assert "no mqtt-user-* secrets" in run().stderr
    (secrets_dir / "mqtt-user-gw-x").write_text("")
    assert "is empty" in run().stderr
    (secrets_dir / "mqtt-user-gw-x").write_text("a-good-long-password-123")
    done = run()
    assert done.returncode == 1 and "missing secret mqtt-tls-ca" in done.stderr
    assert not (auth / "passwd").exists(), "no half-built password file is left in place"


def test_only_the_ingest_confirms_data_and_each_gateway_reads_only_its_acks(
    broker: Broker,
) -> None:
    """End-to-end acks (issue 11): an ack makes a gateway delete data, so only the ingest
    may publish one, and a gateway receives only its own."""
    ack1 = f"renkei/ack/v1/demo-molding/osaka/{GW1}"
    ack3 = f"renkei/ack/v1/demo-press/kobe/{GW3}"
    with login(broker, GW1) as gw1, login(broker, INGEST1) as ingest:
        connected(gw1)
        connected(ingest)
        # Another gateway's acks cannot even be subscribed to (dynamic security grants a
        # subscription only within the user's read rules); its own can.
        for foreign in ("renkei/ack/v1/#", ack3):
            (reason,) = gw1.subscribe(foreign)
            assert reason.value == NOT_AUTHORIZED, (foreign, reason)
        (reason,) = gw1.subscribe(ack1)
        assert not reason.is_failure, reason
        # the foreign ack first: the broker keeps one publisher's order to one subscriber,
        # so once gw1 has its own ack it would already hold the foreign one if it could
        for topic in (ack3, ack1):
            rc = ingest.publish(topic)
            assert rc is not None and not rc.is_failure, (topic, rc)
        wait_for(lambda: ack1 in gw1.topics(), 10, "gw1's own ack")
        assert gw1.topics() == [ack1], f"gw1 read another gateway's acks: {gw1.topics()}"
    for user in (GW1, GW3, "renkei-watch", "renkei-rollout"):
        with login(broker, user) as c:
            connected(c)
            rc = c.publish(ack1)
            assert rc is None or rc.value == NOT_AUTHORIZED, (user, rc)


def test_an_enrolled_gateway_lives_beside_the_static_users_and_is_cut_off_alone(
    broker: Broker,
) -> None:
    """compose.conf's dynamic-security plugin (entrypoint.sh created its file with the
    admin of secret mqtt-dynsec-admin and deny-by-default): an enrolled gateway's users,
    created over TLS as ``renkei cloud gateways redeem`` does, publish only their own
    topics to the static ingest user; deleting them (``revoke``) ends the gateway's
    session within a second and leaves a static gateway's session as it was."""
    from pydantic import SecretStr

    from renkei.cloud.broker_acl import GatewayGrant, gateway_rules
    from renkei.cloud.broker_dynsec import DynsecAdmin, DynsecSettings, UserGrant
    from renkei.core.mqtt import BrokerSettings

    firm, site = SITES[GW1]
    enrolled = GatewayGrant(
        user="gw-enrolled-01",
        gateway_id="gw-enrolled-01",
        firm=firm,
        site=site,
        machines=(("molding", "line-e", "imm-e1"),),
    )
    password = secrets.token_urlsafe(24)
    admin_settings = DynsecSettings(
        broker=BrokerSettings(
            host="127.0.0.1",
            port=broker.port,
            tls_ca_file=broker.ca_file,
            username=DYNSEC_ADMIN,
            password=SecretStr(broker.passwords[DYNSEC_ADMIN]),
        )
    )
    own = f"renkei/v1/{firm}/{site}/molding/line-e/imm-e1/telemetry"
    with DynsecAdmin(settings=admin_settings) as admin:
        admin.provision_users(
            [
                UserGrant(username=u, password=SecretStr(password), rules=r)
                for u, r in gateway_rules(enrolled).items()
            ]
        )
        with (
            login(broker, INGEST1) as ingest,
            login(broker, GW1, client_id=GW1) as static_gw,
            conn(broker, enrolled.user, password, client_id=enrolled.user) as gw,
        ):
            for c in (ingest, static_gw, gw):
                connected(c)
            ingest.subscribe("renkei/v1/#")
            rc = gw.publish(own, b"e1")
            assert rc is not None and rc.value == 0, rc
            wait_for(lambda: any(t == own for t, _, _ in ingest.messages), 10, "the message")
            assert [t for t, _, retained in ingest.messages if not retained] == [own]
            admin.remove_users([enrolled.user, enrolled.user + "-rollout"])
            wait_for(gw.closed.is_set, 1.0, "the enrolled gateway's disconnect")
            rc = static_gw.publish(machine_topic(GW1), b"still here")
            assert rc is not None and rc.value == 0, rc
            assert not static_gw.closed.is_set()
        with conn(broker, enrolled.user, password, client_id=enrolled.user) as again:
            rc = again.wait_connected()
            assert rc is not None and rc.is_failure


def test_entrypoint_creates_the_dynsec_file_once_and_needs_its_admin_secret(
    tmp_path: Path,
) -> None:
    """The first start puts every mqtt-user-* user into dynamic security (its password and
    its role from dynsec-roles, through a real Mosquitto on a loopback port); later starts
    keep the file. The static password file + ACL are written only with
    RENKEI_MQTT_STATIC_AUTH=1."""
    secrets_dir, auth, data = (tmp_path / n for n in ("secrets", "auth", "data"))
    secrets_dir.mkdir()
    (secrets_dir / f"mqtt-user-{GW1}").write_text("a-good-long-password-123")
    for name in ("mqtt-tls-ca", "mqtt-tls-cert", "mqtt-tls-key"):
        (secrets_dir / name).write_text("not read: the final broker is a stub here\n")
    conf = tmp_path / "unused.conf"
    # The first-start broker is the real one; the final `mosquitto -c $conf` exits at once.
    stub = tmp_path / "mosquitto-stub"
    stub.write_text(f'#!/bin/sh\n[ "$2" = {conf} ] && exit 0\nexec {mosquitto_binary()} "$@"\n')
    stub.chmod(0o755)
    env = {**entrypoint_env(secrets_dir, auth, conf, data)}
    env["RENKEI_MOSQUITTO_BIN"] = str(stub)

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["sh", str(MOSQ / "entrypoint.sh")], env=env, capture_output=True, text=True, timeout=60
        )

    done = run()
    assert done.returncode == 1 and "missing secret mqtt-dynsec-admin" in done.stderr
    (secrets_dir / "mqtt-dynsec-admin").write_text("first-admin-password-0123456789\n")
    (secrets_dir / "mqtt-user-gw-x").write_text("another-good-password-456")
    done = run()
    assert done.returncode == 1 and "user gw-x has no role in" in done.stderr, done.stderr
    assert not (data / "dynamic-security.json").exists()
    (secrets_dir / "mqtt-user-gw-x").unlink()
    done = run()
    assert done.returncode == 0, done.stderr
    dynsec = data / "dynamic-security.json"
    doc = json.loads(dynsec.read_text())
    clients = {c["username"]: [r["rolename"] for r in c.get("roles", [])] for c in doc["clients"]}
    assert clients == {DYNSEC_ADMIN: ["admin"], GW1: [f"renkei:{GW1}"]}
    assert {r["rolename"] for r in doc["roles"]} == {"admin", f"renkei:{GW1}"}
    assert doc["defaultACLAccess"] == {
        "publishClientSend": False,
        "publishClientReceive": False,
        "subscribe": False,
        "unsubscribe": True,
    }
    assert "first-admin-password" not in dynsec.read_text() + done.stderr
    assert "a-good-long-password" not in dynsec.read_text() + done.stderr
    assert not (auth / "passwd").exists(), "no static password file by default"
    assert list((auth / "static.d").iterdir()) == []
    before = dynsec.read_bytes()
    (secrets_dir / "mqtt-dynsec-admin").write_text("second-admin-password-0123456789\n")
    env["RENKEI_MQTT_STATIC_AUTH"] = "1"
    done = run()
    assert done.returncode == 0, done.stderr
    assert dynsec.read_bytes() == before, "a later start keeps the enrolled gateways' file"
    assert (auth / "passwd").read_text().startswith(f"{GW1}:")
    assert (auth / "static.d" / "static-auth.conf").read_text() == (
        f"password_file {auth}/passwd\nacl_file {MOSQ / 'acl'}\n"
    )
    env["RENKEI_MQTT_STATIC_AUTH"] = "0"
    (secrets_dir / f"mqtt-user-{GW2}").write_text("a-third-good-password-789")
    done = run()
    assert done.returncode == 0, done.stderr
    assert dynsec.read_bytes() == before
    assert f"warning: user {GW2} (secret mqtt-user-{GW2}) is not in" in done.stderr
    assert f"warning: user {GW1} " not in done.stderr
    env["RENKEI_MQTT_STATIC_AUTH"] = "yes"
    done = run()
    assert done.returncode == 1 and "RENKEI_MQTT_STATIC_AUTH must be 0 or 1" in done.stderr


def test_every_compose_user_is_a_dynsec_client_with_exactly_its_acl_rules(
    broker: Broker,
) -> None:
    """The broker fixture's first start put each mqtt-user-* user into dynamic security
    with one role whose ACLs are :func:`role_acls` of its block of the ACL file."""
    from pydantic import SecretStr

    from renkei.cloud.broker_acl import all_rules, load_gateway
    from renkei.cloud.broker_dynsec import DynsecAdmin, DynsecSettings, role_acls, role_name
    from renkei.core.mqtt import BrokerSettings

    gateways = [
        load_gateway(REPO / "deploy" / "compose" / "gateways" / f"{gw}.yaml")
        for gw in (GW1, GW2, GW3)
    ]
    rules = all_rules(gateways)
    settings = DynsecSettings(
        broker=BrokerSettings(
            host="127.0.0.1",
            port=broker.port,
            tls_ca_file=broker.ca_file,
            username=DYNSEC_ADMIN,
            password=SecretStr(broker.passwords[DYNSEC_ADMIN]),
        )
    )
    assert sorted(broker_users()) == sorted(rules)
    with DynsecAdmin(settings=settings) as admin:
        for user in broker_users():
            client = admin.get_client(user)
            assert client is not None, user
            assert [r["rolename"] for r in client["roles"]] == [role_name(user)]
            (data,) = admin.run({"command": "getRole", "rolename": role_name(user)})
            acls = [
                {"acltype": a["acltype"], "topic": a["topic"], "allow": a["allow"]}
                for a in data["role"]["acls"]
            ]
            key = lambda a: (a["acltype"], a["topic"])  # noqa: E731
            assert sorted(acls, key=key) == sorted(role_acls(rules[user]), key=key), user


def test_the_static_fallback_alone_enforces_the_acl_file(tmp_path: Path) -> None:
    """compose.conf without the plugin lines and RENKEI_MQTT_STATIC_AUTH=1: the password
    file + ACL file alone admit the compose users with their rights, and no
    dynamic-security file is made."""
    server = start_broker(tmp_path, static_fallback=True)
    try:
        assert not (server.workdir / "data" / "dynamic-security.json").exists()
        with login(server, INGEST1) as ingest, login(server, GW1) as gw:
            connected(ingest)
            connected(gw)
            ingest.subscribe("renkei/v1/#")
            rc = gw.publish(machine_topic(GW1), b"static")
            assert rc is not None and rc.value == 0, rc
            rc = gw.publish(machine_topic(GW2), b"forged")
            assert rc is None or rc.value == NOT_AUTHORIZED, rc
            wait_for(lambda: machine_topic(GW1) in ingest.topics(), 10, "the message")
            pause(0.3, "the forged message would arrive meanwhile")
            assert ingest.topics() == [machine_topic(GW1)]
        with conn(server, GW1, "wrong-password-0123456789", client_id=GW1) as bad:
            rc = bad.wait_connected()
            assert rc is not None and rc.is_failure, rc
    finally:
        stop_broker(server)


def _listening_ports(pid: int) -> set[int]:
    """TCP ports process ``pid`` listens on (IPv4 and IPv6), from /proc."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            fields = row.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def test_the_broker_listens_only_on_its_tls_port(broker: Broker) -> None:
    """compose.conf opens no default listener (a listener option such as max_connections
    before the first `listener` line would open plain-text MQTT on port 1883)."""
    assert _listening_ports(broker.proc.pid) == {broker.port}
