"""Two real Mosquittos, site and cloud, bridged over TLS through a TCP proxy that can cut the WAN.

For the site-broker tests and ``bench/bench_site_bridge.py``:

- :func:`make_pki`: a throwaway CA and the cloud broker's server certificate (``cryptography``);
- :class:`CloudBroker`: Mosquitto with ``deploy/mosquitto/renkei.conf`` plus a TLS listener,
  a password file and the ACL rendered by :func:`renkei.cloud.broker_acl.render_acl` (the
  bridge user's block included), and a plain loopback listener for nothing but readiness;
- :class:`SiteBroker`: Mosquitto running exactly the config of
  :func:`renkei.cloud.site_bridge.render_site_conf` (only ports, paths and ``user`` differ);
- :class:`TcpProxy`: the WAN between them; :meth:`TcpProxy.sever` resets every connection
  and refuses new ones (``"reset"``) or silently drops every byte (``"blackhole"``, like a
  dead uplink: the ends notice only by keepalive);
- :class:`SeqGateways`: gateways as plain paho MQTT 5 clients publishing QoS 1 messages
  numbered per gateway, recording every disconnect and every failed PUBACK;
- :class:`SeqCounter`: a persistent-session subscriber counting ``(gateway, seq)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import os
import secrets
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import orjson
import paho.mqtt.client as mqtt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from harness.services import Mosquitto, ServerProcess, _binary, free_port, wait_port
from harness.wait import wait_for
from renkei.cloud.broker_acl import GatewayGrant, render_acl
from renkei.cloud.site_bridge import SiteBridge, render_site_conf

__all__ = [
    "BridgeRig",
    "CloudBroker",
    "Pki",
    "SeqCounter",
    "SeqGateways",
    "SiteBroker",
    "TcpProxy",
    "make_pki",
    "start_rig",
    "tally",
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


class TcpProxy:
    """A TCP relay ``127.0.0.1:port`` -> ``127.0.0.1:target_port`` on its own event loop."""

    def __init__(self, *, target_port: int) -> None:
        self.port = free_port()
        self.target_port = target_port
        self.mode: Literal["up", "reset", "blackhole"] = "up"
        self.connections = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()
        fut = asyncio.run_coroutine_threadsafe(self._serve(), self._loop)
        fut.result(5)

    async def _serve(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode != "up":
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self.connections += 1
        self._writers |= {writer, up_writer}
        await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer))
        self._writers -= {writer, up_writer}

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await reader.read(65536):
                if self.mode == "blackhole":
                    continue  # the bytes vanish; nobody is told
                writer.write(data)
                await writer.drain()
        writer.transport.abort()

    def sever(self, mode: Literal["reset", "blackhole"] = "reset") -> None:
        """Cut the WAN. New connections are refused (the listening socket closes, as a
        router answers for an unreachable uplink); established ones are aborted
        (``reset``) or kept open with every byte dropped (``blackhole``: the ends notice
        only by keepalive)."""

        async def cut() -> None:
            self.mode = mode
            if self._server is not None:
                self._server.close()
                self._server = None
            if mode == "reset":
                for w in list(self._writers):
                    w.transport.abort()

        asyncio.run_coroutine_threadsafe(cut(), self._loop).result(5)

    def restore(self) -> None:
        """Mend the WAN: connections left from a blackhole are reset, new ones pass."""

        async def mend() -> None:
            for w in list(self._writers):
                w.transport.abort()
            self.mode = "up"
            if self._server is None:
                await self._serve()

        asyncio.run_coroutine_threadsafe(mend(), self._loop).result(5)

    def stop(self) -> None:
        """Close the listener and every connection, then end the event loop."""

        async def close() -> None:
            if self._server is not None:
                self._server.close()
            for w in list(self._writers):
                w.transport.abort()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(5)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
        self._loop.close()


def seq_topic(gateway: int) -> str:
    return f"renkei/v1/{FIRM}/{SITE}/molding/line-1/imm-{gateway}/telemetry"


class SeqGateways:
    """``count`` gateways (paho, MQTT 5) on the site broker, publishing QoS 1 seq messages."""

    def __init__(
        self,
        *,
        port: int,
        count: int,
        prefix: str = "gw",
        passwords: dict[str, str] | None = None,
    ) -> None:
        self.names = [f"{prefix}-{i}" for i in range(count)]
        self.sent: Counter[str] = Counter()
        self.acked: Counter[str] = Counter()
        self.failed_acks: list[str] = []
        self.disconnects: list[str] = []
        self.publish_errors: list[str] = []
        self.received: list[tuple[str, str, bytes]] = []
        """``(gateway, topic, payload)`` of every message a gateway received."""
        self._lock = threading.Lock()
        self._clients: list[mqtt.Client] = []
        for name in self.names:
            c = mqtt.Client(
                callback_api_version=CallbackAPIVersion.VERSION2,
                client_id=name,
                protocol=MQTTProtocolVersion.MQTTv5,
            )
            if passwords is not None:
                c.username_pw_set(name, passwords[name])
            c.max_inflight_messages_set(1000)
            c.max_queued_messages_set(0)
            c.on_disconnect = self._on_disconnect(name)
            c.on_publish = self._on_publish(name)
            c.on_message = self._on_message(name)
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = 3600
            c.connect("127.0.0.1", port, keepalive=30, clean_start=False, properties=props)
            c.loop_start()
            self._clients.append(c)
        wait_for(lambda: all(c.is_connected() for c in self._clients), 10, "gateways connect")

    def _on_disconnect(self, name: str) -> Any:
        def cb(client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
            with self._lock:
                self.disconnects.append(f"{name} at {time.monotonic():.1f}: {reason}")

        return cb

    def _on_publish(self, name: str) -> Any:
        def cb(client: Any, userdata: Any, mid: int, reason: Any, props: Any) -> None:
            with self._lock:
                if reason.is_failure:
                    self.failed_acks.append(f"{name} mid {mid}: {reason}")
                self.acked[name] += 1

        return cb

    def _on_message(self, name: str) -> Any:
        def cb(client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
            with self._lock:
                self.received.append((name, msg.topic, bytes(msg.payload)))

        return cb

    def client(self, name: str) -> mqtt.Client:
        """The paho client of gateway ``name`` (to subscribe or publish something else)."""
        return self._clients[self.names.index(name)]

    def publish_round(self) -> None:
        """One QoS 1 message from every gateway, payload ``{"gw", "seq"}``."""
        for i, (name, c) in enumerate(zip(self.names, self._clients, strict=True)):
            seq = self.sent[name]
            payload = orjson.dumps({"v": 1, "gw": name, "seq": seq, "pad": "x" * 200})
            info = c.publish(seq_topic(i), payload, qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                # Not connected: paho keeps the message and sends it after reconnecting;
                # the disconnect itself is in self.disconnects.
                self.publish_errors.append(f"{name} seq {seq}: {mqtt.error_string(info.rc)}")
            self.sent[name] = seq + 1

    def all_acked(self) -> bool:
        with self._lock:
            return all(self.acked[n] == self.sent[n] for n in self.names)

    def close(self) -> None:
        for c in self._clients:
            c.on_disconnect = None
            c.disconnect()
            c.loop_stop()


class SeqCounter:
    """A persistent-session subscriber (MQTT 5, QoS 1) recording every message it gets."""

    def __init__(
        self,
        *,
        port: int,
        topic: str,
        user: str | None = None,
        password: str | None = None,
        ca: Path | None = None,
        client_id: str | None = None,
    ) -> None:
        self.seqs: dict[str, list[int]] = {}
        self.raw: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        self._topic = topic
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id or user or "seq-counter",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        if user is not None:
            self.client.username_pw_set(user, password)
        if ca is not None:
            self.client.tls_set(ca_certs=str(ca))
        self.client.on_message = self._on_message
        self.client.on_connect = self._on_connect
        self._subscribed = threading.Event()
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 3600
        self.client.connect("127.0.0.1", port, keepalive=30, clean_start=False, properties=props)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise TimeoutError(f"subscription to {topic} not acknowledged")

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        client.subscribe(self._topic, qos=1)

    def _on_message(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.raw.append((msg.topic, bytes(msg.payload), bool(msg.retain)))
            if msg.payload.startswith(b"{"):
                doc = orjson.loads(msg.payload)
                if "seq" in doc:
                    self.seqs.setdefault(doc["gw"], []).append(int(doc["seq"]))

    def count(self, gw: str) -> int:
        with self._lock:
            return len(set(self.seqs.get(gw, [])))

    def payloads(self, topic: str) -> list[bytes]:
        with self._lock:
            return [p for t, p, _r in self.raw if t == topic]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def tally(sent: Counter[str], counter: SeqCounter) -> dict[str, int]:
    """``sent``/``received``/``unique``/``lost``/``duplicates`` over every gateway."""
    total = sum(sent.values())
    received = sum(len(v) for v in counter.seqs.values())
    unique = sum(len(set(v)) for v in counter.seqs.values())
    lost = sum(len(set(range(n)) - set(counter.seqs.get(gw, []))) for gw, n in sent.items())
    return {
        "sent": total,
        "received": received,
        "unique": unique,
        "lost": lost,
        "duplicates": received - unique,
    }


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
