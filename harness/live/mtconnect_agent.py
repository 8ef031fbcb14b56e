"""A small MTConnect agent for tests: a real HTTP server in its own process.

Serves the MTConnect REST API (Part 1) for one device file (default: the reference
``VMC-3Axis.xml`` of the shared datasets): ``/probe``, ``/current``, ``/sample`` with
``from``/``count`` and, with ``interval``, a long-lived ``multipart/x-mixed-replace`` stream
(chunked transfer, ``Content-length`` per part, empty parts as heartbeats). Observations
live in a ring buffer of ``--buffer-size`` entries; ``from`` older than the buffer answers an
``MTConnectError`` ``OUT_OF_RANGE`` (as the C++ reference agent does).

A generator thread changes values every ``--period-ms``: axis positions, spindle speed and
load (SAMPLE), ``execution`` (EVENT: ACTIVE/READY/STOPPED), and the controller ``system``
CONDITION (a FAULT, then NORMAL again). ``Zload`` stays ``UNAVAILABLE``.

Test control (JSON answers), ``GET /_control?op=...``:

- ``state``: instanceId, first/next sequence, the last ``from`` a client asked, counters;
- ``pause`` / ``resume``: stop/restart the generator;
- ``burst&n=N``: add N ``Xact`` observations at once (wraps a small buffer);
- ``set&id=ID&value=V``: one observation; ``condition&id=ID&level=Fault&code=C&text=T``;
- ``hostile&kind=bomb|xxe``: the next ``/sample`` answer or stream part is an XML attack;
- ``hostile&kind=garbage|drip|error``: ... is not XML / is sent one byte per 50 ms / is an
  ``MTConnectError`` ``INTERNAL_ERROR`` (HTTP 500 when polled);
- ``oversize&bytes=N``: the next ``/sample`` answer or stream part is N bytes long;
- ``drop``: open streams end (the connection closes, the agent keeps running);
- ``stall``: open streams go silent (no parts, no heartbeats) but stay connected.

Run: ``python -m harness.live.mtconnect_agent --port 5000 [--probe FILE] [--buffer-size 64]``.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape, quoteattr

import orjson
from lxml import etree  # type: ignore[import-untyped]

DEVICES_NS = "urn:mtconnect.org:MTConnectDevices:2.0"
STREAMS_NS = "urn:mtconnect.org:MTConnectStreams:2.0"
ERROR_NS = "urn:mtconnect.org:MTConnectError:2.0"
BOUNDARY = "mtc-test-boundary-7f3a"

BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<MTConnectStreams><Header instanceId="1" bufferSize="1" firstSequence="1"
 lastSequence="1" nextSequence="1"/><Streams><DeviceStream name="VMC-3Axis" uuid="000">
<ComponentStream component="Path" componentId="pth"><Events>
<Message dataItemId="msg" timestamp="2026-01-01T00:00:00Z" sequence="1">&lol9;</Message>
</Events></ComponentStream></DeviceStream></Streams></MTConnectStreams>
"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd"><!ENTITY net SYSTEM "http://127.0.0.1:9/x">]>
<MTConnectStreams><Header instanceId="1" bufferSize="1" firstSequence="1"
 lastSequence="1" nextSequence="1"/><Streams><DeviceStream name="VMC-3Axis" uuid="000">
<ComponentStream component="Path" componentId="pth"><Events>
<Message dataItemId="msg" timestamp="2026-01-01T00:00:00Z" sequence="1">&xxe;&net;</Message>
</Events></ComponentStream></DeviceStream></Streams></MTConnectStreams>
"""


def _ts(t_ms: int) -> str:
    return datetime.fromtimestamp(t_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"


def _pascal(kind: str) -> str:
    kind = kind.split(":")[-1]
    return "".join(w.capitalize() for w in kind.split("_")) or "Value"


@dataclass(frozen=True)
class Item:
    """A DataItem of the served device model."""

    id: str
    category: str
    type: str
    sub_type: str
    name: str
    component: str
    component_id: str
    component_name: str


@dataclass(frozen=True)
class Obs:
    """One buffered observation."""

    seq: int
    item: str
    t_ms: int
    value: str
    level: str = ""  # CONDITION: Normal/Warning/Fault/Unavailable
    code: str = ""


class Agent:
    """Device model, ring buffer and generator."""

    def __init__(self, probe: Path, *, buffer_size: int, period_ms: int, instance: int) -> None:
        self.instance = instance
        self.buffer_size = buffer_size
        self.period_s = period_ms / 1000
        self.lock = threading.Condition()
        self.buffer: deque[Obs] = deque(maxlen=buffer_size)
        self.latest: dict[str, Obs] = {}
        self.next_seq = 1
        self.paused = False
        self.last_from: int | None = None
        self.samples = 0
        self.streams = 0
        self.one_shot: tuple[str, int] | None = None
        self.drop_gen = 0  # streams opened before the latest ``drop`` end
        self.stall_gen = 0  # streams opened before the latest ``stall`` go silent
        self.stopping = threading.Event()
        root = etree.parse(str(probe), etree.XMLParser(resolve_entities=False)).getroot()
        header = root.find(f"{{{DEVICES_NS}}}Header")
        if header is not None:
            header.set("instanceId", str(instance))
            header.set("bufferSize", str(buffer_size))
        self.probe_xml = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
        self.device = root.find(f".//{{{DEVICES_NS}}}Device")
        assert self.device is not None
        self.items: dict[str, Item] = {}
        for di in root.iter(f"{{{DEVICES_NS}}}DataItem"):
            comp = di.getparent().getparent()
            self.items[di.get("id")] = Item(
                id=di.get("id"),
                category=di.get("category"),
                type=di.get("type"),
                sub_type=di.get("subType", ""),
                name=di.get("name", ""),
                component=etree.QName(comp).localname,
                component_id=comp.get("id", ""),
                component_name=comp.get("name", ""),
            )
        now = int(time.time() * 1000)
        with self.lock:
            for it in self.items.values():
                self._add(it.id, "UNAVAILABLE", now, level="Unavailable" if self._cond(it) else "")
            self._add("avail", "AVAILABLE", now)
            for it in self.items.values():
                if self._cond(it):
                    self._add(it.id, "", now, level="Normal")
        self.tick = 0

    @staticmethod
    def _cond(it: Item) -> bool:
        return it.category == "CONDITION"

    def _add(self, item: str, value: str, t_ms: int, *, level: str = "", code: str = "") -> None:
        ob = Obs(self.next_seq, item, t_ms, value, level, code)
        self.next_seq += 1
        self.buffer.append(ob)
        self.latest[item] = ob
        self.lock.notify_all()

    @property
    def first_seq(self) -> int:
        return self.buffer[0].seq if self.buffer else self.next_seq

    def generate(self) -> None:
        """One generator step (positions, spindle, load, execution, a fault cycle)."""
        k = self.tick
        self.tick += 1
        now = int(time.time() * 1000)
        with self.lock:
            self._add("x2", f"{100 * math.sin(k / 10):.4f}", now)
            self._add("y2", f"{50 * math.cos(k / 10):.4f}", now)
            self._add("z2", f"{-20 + (k % 40) * 0.5:.4f}", now)
            self._add("c2", f"{1000 + 10 * (k % 50)}", now)
            self._add("cl3", f"{20 + k % 10}", now)
            if k % 20 == 0:
                self._add("cn6", ("ACTIVE", "READY", "STOPPED")[(k // 20) % 3], now)
            if k % 60 == 20:
                self._add("system", "Servo alarm", now, level="Fault", code="E42")
            if k % 60 == 40:
                self._add("system", "", now, level="Normal")

    def run_generator(self) -> None:
        while not self.stopping.wait(self.period_s):
            if not self.paused:
                self.generate()

    # ----------------------------------------------------------------- documents

    def _header(self, *, first: int, last: int, nxt: int) -> str:
        return (
            f'<Header creationTime="{_ts(int(time.time() * 1000))}" sender="test" '
            f'instanceId="{self.instance}" version="2.0.0" bufferSize="{self.buffer_size}" '
            f'firstSequence="{first}" lastSequence="{last}" nextSequence="{nxt}"/>'
        )

    def streams_doc(self, obs: list[Obs], nxt: int) -> bytes:
        """An MTConnectStreams document of ``obs`` (caller holds the lock)."""
        by_comp: dict[str, list[Obs]] = {}
        for ob in obs:
            it = self.items.get(ob.item)
            if it is not None:
                by_comp.setdefault(it.component_id, []).append(ob)
        dev = self.device
        parts = [
            f'<?xml version="1.0" encoding="UTF-8"?><MTConnectStreams xmlns="{STREAMS_NS}">',
            self._header(first=self.first_seq, last=self.next_seq - 1, nxt=nxt),
            f"<Streams><DeviceStream name={quoteattr(dev.get('name'))} "
            f"uuid={quoteattr(dev.get('uuid'))}>",
        ]
        for comp_id, group in by_comp.items():
            it0 = self.items[group[0].item]
            parts.append(
                f'<ComponentStream component="{it0.component}" componentId="{comp_id}"'
                + (f" name={quoteattr(it0.component_name)}" if it0.component_name else "")
                + ">"
            )
            for cat, tag in (
                ("SAMPLE", "Samples"),
                ("EVENT", "Events"),
                ("CONDITION", "Condition"),
            ):
                sel = [o for o in group if self.items[o.item].category == cat]
                if not sel:
                    continue
                parts.append(f"<{tag}>")
                for o in sel:
                    it = self.items[o.item]
                    attrs = (
                        f'dataItemId="{o.item}" timestamp="{_ts(o.t_ms)}" sequence="{o.seq}"'
                        + (f' subType="{it.sub_type}"' if it.sub_type else "")
                        + (f" name={quoteattr(it.name)}" if it.name else "")
                    )
                    if cat == "CONDITION":
                        code = f' nativeCode="{o.code}"' if o.code else ""
                        text = escape(o.value)
                        lvl = o.level
                        parts.append(f'<{lvl} {attrs} type="{it.type}"{code}>{text}</{lvl}>')
                    else:
                        el = _pascal(it.type)
                        parts.append(f"<{el} {attrs}>{escape(o.value)}</{el}>")
                parts.append(f"</{tag}>")
            parts.append("</ComponentStream>")
        parts.append("</DeviceStream></Streams></MTConnectStreams>")
        return "".join(parts).encode()

    def error_doc(self, code: str, text: str) -> bytes:
        return (
            f'<?xml version="1.0" encoding="UTF-8"?><MTConnectError xmlns="{ERROR_NS}">'
            f'<Header creationTime="{_ts(int(time.time() * 1000))}" sender="test" '
            f'instanceId="{self.instance}" version="2.0.0" bufferSize="{self.buffer_size}"/>'
            f'<Errors><Error errorCode="{code}">{escape(text)}</Error></Errors></MTConnectError>'
        ).encode()

    def current(self) -> bytes:
        with self.lock:
            obs = sorted(self.latest.values(), key=lambda o: o.seq)
            return self.streams_doc(obs, self.next_seq)

    def sample(self, frm: int, count: int) -> tuple[int, bytes, int, str]:
        """(status, document, next from, one-shot kind or "") of ``/sample?from=&count=``."""
        with self.lock:
            self.last_from = frm
            self.samples += 1
            shot = self._take_one_shot()
            if shot is not None:
                return (500 if shot[0] == "error" else 200), shot[1], frm, shot[0]
            if frm < self.first_seq or frm > self.next_seq:
                return (
                    400,
                    self.error_doc(
                        "OUT_OF_RANGE",
                        f"'from' must be in {self.first_seq}..{self.next_seq}, got {frm}",
                    ),
                    frm,
                    "",
                )
            obs = [o for o in self.buffer if o.seq >= frm][:count]
            nxt = obs[-1].seq + 1 if obs else frm
            return 200, self.streams_doc(obs, nxt), nxt, ""

    def _take_one_shot(self) -> tuple[str, bytes] | None:
        shot, self.one_shot = self.one_shot, None
        if shot is None:
            return None
        kind, n = shot
        if kind == "bomb":
            return kind, BOMB
        if kind == "xxe":
            return kind, XXE
        if kind == "error":
            return kind, self.error_doc("INTERNAL_ERROR", "adapter database locked")
        if kind == "garbage":
            return kind, b"\x00\xff<<not xml at all>>\r\n" * 50
        body = self.streams_doc([], self.next_seq)
        if kind == "drip":
            return kind, body
        pad = b"<!--" + b"x" * max(0, n - len(body) - 7) + b"-->"
        return kind, body.replace(b"<Streams>", pad + b"<Streams>", 1)

    def control(self, q: dict[str, str]) -> dict[str, Any]:
        op = q.get("op", "state")
        now = int(time.time() * 1000)
        with self.lock:
            if op == "pause":
                self.paused = True
            elif op == "resume":
                self.paused = False
            elif op == "burst":
                for i in range(int(q["n"])):
                    self._add("x2", f"{i}.5", now)
            elif op == "set":
                self._add(q["id"], q["value"], now)
            elif op == "condition":
                self._add(q["id"], q.get("text", ""), now, level=q["level"], code=q.get("code", ""))
            elif op == "drop":
                self.drop_gen += 1
            elif op == "stall":
                self.stall_gen += 1
            elif op in ("hostile", "oversize"):
                self.one_shot = (q.get("kind", "oversize"), int(q.get("bytes", "0")))
            return {
                "instanceId": self.instance,
                "first": self.first_seq,
                "next": self.next_seq,
                "last_from": self.last_from,
                "samples": self.samples,
                "streams": self.streams,
                "paused": self.paused,
                "one_shot_pending": self.one_shot is not None,
            }


class Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 handler of the MTConnect REST API (plus ``/_control``)."""

    protocol_version = "HTTP/1.1"
    agent: Agent

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, ctype: str = "text/xml", drip: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if drip:
            self._drip(body, self.wfile.write)
        else:
            self.wfile.write(body)

    def _drip(self, data: bytes, write: Any) -> None:
        """Send ``data`` one byte per 50 ms (a slow-drip agent), at most 30 s."""
        deadline = time.monotonic() + 30
        for i in range(len(data)):
            if self.agent.stopping.is_set() or time.monotonic() > deadline:
                break
            write(data[i : i + 1])
            self.wfile.flush()
            time.sleep(0.05)
        self.close_connection = True

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        q = {k: v[-1] for k, v in parse_qs(url.query).items()}
        segs = [s for s in url.path.split("/") if s]
        if segs == ["_control"]:
            self._send(200, orjson.dumps(self.agent.control(q)), "application/json")
            return
        if len(segs) == 2:
            dev = self.agent.device
            if segs[0] not in (dev.get("name"), dev.get("uuid")):
                self._send(404, self.agent.error_doc("NO_DEVICE", f"no device {segs[0]!r}"))
                return
            segs = segs[1:]
        if segs == ["probe"]:
            self._send(200, self.agent.probe_xml)
        elif segs == ["current"]:
            self._send(200, self.agent.current())
        elif segs == ["sample"]:
            frm = int(q.get("from", self.agent.first_seq))
            count = int(q.get("count", "100"))
            if "interval" in q:
                self._stream(frm, count, int(q["interval"]), int(q.get("heartbeat", "10000")))
                return
            status, body, _, special = self.agent.sample(frm, count)
            self._send(status, body, drip=special == "drip")
        else:
            self._send(404, self.agent.error_doc("UNSUPPORTED", f"no such request {url.path}"))

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _part(self, body: bytes) -> None:
        head = (
            f"--{BOUNDARY}\r\nContent-type: text/xml\r\nContent-length: {len(body)}\r\n\r\n"
        ).encode()
        self._chunk(head + body + b"\r\n")

    def _stream(self, frm: int, count: int, interval_ms: int, heartbeat_ms: int) -> None:
        agent = self.agent
        self.send_response(200)
        self.send_header("Content-Type", f"multipart/x-mixed-replace;boundary={BOUNDARY}")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        with agent.lock:
            agent.streams += 1
            drop_gen, stall_gen = agent.drop_gen, agent.stall_gen
        pos = frm
        last_part = time.monotonic()
        try:
            while not agent.stopping.is_set() and agent.drop_gen == drop_gen:
                if agent.stall_gen != stall_gen:
                    agent.stopping.wait(30)  # silent until the client gives up
                    break
                status, body, nxt, special = agent.sample(pos, count)
                if status != 200 or special == "error":
                    self._part(body)
                    break
                if special == "drip":
                    head = f"--{BOUNDARY}\r\nContent-length: {len(body)}\r\n\r\n".encode()
                    self._drip(head + body, self._chunk)
                    break
                if special or nxt > pos or time.monotonic() - last_part >= heartbeat_ms / 1000:
                    self._part(body)
                    last_part = time.monotonic()
                pos = nxt
                time.sleep(max(interval_ms, 10) / 1000)
            self._chunk(b"")  # end of chunked body
        except OSError:
            pass  # client went away
        finally:
            with agent.lock:
                agent.streams -= 1
            self.close_connection = True


class AgentProcess:
    """This agent as a subprocess on a fixed loopback port: start, kill -9, start again
    (a new instanceId each start).

    Args:
        probe: the device file served.
        workdir: where the log goes.
        buffer_size, period_ms, paused: as the command line options.
    """

    def __init__(
        self,
        probe: Path,
        workdir: Path,
        *,
        buffer_size: int = 1024,
        period_ms: int = 50,
        paused: bool = False,
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        from harness.services import free_port

        self.port = free_port()
        self.probe = probe
        self.workdir = workdir
        self.buffer_size = buffer_size
        self.period_ms = period_ms
        self.paused = paused
        self.tls = tls
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start (again) and wait until ``/_control`` answers."""
        self.starts += 1
        repo = Path(__file__).resolve().parents[2]
        env = dict(os.environ, PYTHONPATH=str(repo))
        log = open(self.workdir / "mtconnect-agent.log", "ab")  # noqa: SIM115 - child owns it
        argv = [
            sys.executable,
            "-m",
            "harness.live.mtconnect_agent",
            "--port",
            str(self.port),
            "--probe",
            str(self.probe),
            "--buffer-size",
            str(self.buffer_size),
            "--period-ms",
            str(self.period_ms),
            "--instance-id",
            str(int(time.time()) * 100 + self.starts),
        ] + (["--paused"] if self.paused else [])
        if self.tls is not None:
            argv += ["--tls-cert", str(self.tls[0]), "--tls-key", str(self.tls[1])]
        self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=repo, env=env)
        log.close()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"test agent exited: {self.log_tail()}")
            try:
                self.control("state")
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"test agent did not start: {self.log_tail()}")

    def log_tail(self) -> str:
        return (self.workdir / "mtconnect-agent.log").read_text(errors="replace")[-2000:]

    def control(self, op: str, **params: str | int) -> dict[str, Any]:
        """Call ``/_control?op=...`` and return its JSON state."""
        import urllib.request
        from urllib.parse import urlencode

        q = urlencode({"op": op, **params})
        ctx = None
        if self.tls is not None:
            ctx = ssl.create_default_context(cafile=str(self.tls[0]))
        with urllib.request.urlopen(f"{self.url}/_control?{q}", timeout=5, context=ctx) as resp:
            state: dict[str, Any] = orjson.loads(resp.read())
            return state

    def kill(self) -> None:
        """SIGKILL, as a crashed agent."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def stop(self) -> None:
        """SIGTERM and wait (kill after 5 s)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.kill()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--probe", type=Path, required=True)
    ap.add_argument("--buffer-size", type=int, default=1024)
    ap.add_argument("--period-ms", type=int, default=50)
    ap.add_argument("--instance-id", type=int, default=int(time.time()))
    ap.add_argument("--paused", action="store_true")
    ap.add_argument("--tls-cert", type=Path, help="serve https with this PEM certificate chain")
    ap.add_argument("--tls-key", type=Path, help="... and this PEM private key")
    args = ap.parse_args(argv)
    agent = Agent(
        args.probe,
        buffer_size=args.buffer_size,
        period_ms=args.period_ms,
        instance=args.instance_id,
    )
    agent.paused = args.paused
    Handler.agent = agent
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    if args.tls_cert is not None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)

    def _term(*_: Any) -> None:
        agent.stopping.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _term)
    threading.Thread(target=agent.run_generator, daemon=True).start()
    print(f"mtconnect test agent on 127.0.0.1:{args.port}", flush=True)
    server.serve_forever(poll_interval=0.1)
    sys.exit(0)


if __name__ == "__main__":
    main()
