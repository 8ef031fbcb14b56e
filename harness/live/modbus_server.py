"""A real pymodbus server in a subprocess, plus a TCP proxy and a pty null-modem for tests.

Run as ``python -m harness.live.modbus_server SPEC_JSON``; the server is pymodbus's own
``ModbusTcpServer``/``ModbusSerialServer`` over its ``SimDevice`` datastore. SPEC::

    {"port": 15020}  or  {"serial": "/dev/pts/7", "baudrate": 19200}
    "units": [1, 2]               unit ids served (each: 4 tables of "size" entries from 0)
    "size": 1000
    "holes": [[unit, "h", start, count], ...]   addresses answered with exception 2
    "ports": [15020, 15031]       TCP only, instead of "port": one server per port
    "drop_after_response": false  close the connection after every response (soak)

Control over stdin/stdout, one JSON object per line: ``{"cmd": "set", "unit": 1,
"table": "h"|"i"|"c"|"d", "address": 0, "values": [...]}``, ``{"cmd": "counts"}`` (read
requests received per ``"unit:function"`` since the last ``{"cmd": "reset"}``). The server
prints ``{"ready": true}`` once listening.

Test side: :class:`ModbusServer` (start, ``kill9``, restart, set values, request counts),
:class:`TcpProxy` (counts connections, refuses a second concurrent one, can swallow
requests or mangle responses), :class:`PtyNullModem` (two ptys bridged: an RS-485 line).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import select
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

_FC = {"c": 1, "d": 2, "h": 3, "i": 4}
_ROOT = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------- server process


async def _serve(spec: dict[str, Any]) -> None:
    from pymodbus.server import ModbusSerialServer, ModbusTcpServer
    from pymodbus.simulator import DataType, SimData, SimDevice

    size = int(spec.get("size", 1000))
    holes = [tuple(h) for h in spec.get("holes", [])]

    def table(unit: int, name: str) -> list[SimData]:
        bits = name in ("c", "d")
        kind = DataType.BITS if bits else DataType.REGISTERS
        zero: Any = False if bits else 0
        cuts = sorted((s, n) for u, t, s, n in holes if u == unit and t == name)
        out, pos = [], 0
        for start, n in cuts:
            if start > pos:
                out.append(SimData(pos, count=start - pos, values=zero, datatype=kind))
            out.append(SimData(start, count=n, datatype=DataType.INVALID))
            pos = start + n
        if pos < size:
            out.append(SimData(pos, count=size - pos, values=zero, datatype=kind))
        return out

    devices = [
        SimDevice(u, simdata=(table(u, "c"), table(u, "d"), table(u, "h"), table(u, "i")))
        for u in spec.get("units", [1])
    ]
    counts: dict[str, int] = {}
    servers: list[Any] = []
    drop = bool(spec.get("drop_after_response", False))
    loop = asyncio.get_running_loop()

    def drop_all() -> None:
        for srv in servers:
            for conn in list(srv.active_connections.values()):
                conn.close()

    def trace(sending: bool, pdu: Any) -> Any:
        if not sending:
            key = f"{pdu.dev_id}:{pdu.function_code}"
            counts[key] = counts.get(key, 0) + 1
        elif drop:
            loop.call_soon(drop_all)
        return pdu

    if "serial" in spec:
        servers.append(
            ModbusSerialServer(
                devices,
                port=spec["serial"],
                baudrate=int(spec.get("baudrate", 19200)),
                parity=spec.get("parity", "E"),
                trace_pdu=trace,
            )
        )
    else:
        for port in spec.get("ports", [spec.get("port")]):
            addr = ("127.0.0.1", int(port))
            servers.append(ModbusTcpServer(devices, address=addr, trace_pdu=trace))
    for srv in servers:
        await srv.serve_forever(background=True)
    print(json.dumps({"ready": True}), flush=True)

    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        msg = json.loads(line)
        reply: dict[str, Any] = {"ok": True}
        if msg["cmd"] == "set":
            await servers[0].async_setValues(
                int(msg["unit"]), _FC[msg["table"]], int(msg["address"]), msg["values"]
            )
        elif msg["cmd"] == "counts":
            reply["counts"] = dict(counts)
        elif msg["cmd"] == "reset":
            counts.clear()
        print(json.dumps(reply), flush=True)
    for srv in servers:
        await srv.shutdown()


def main() -> None:
    """Subprocess entry: serve ``sys.argv[1]`` (JSON spec) until stdin closes."""
    import logging

    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    asyncio.run(_serve(json.loads(sys.argv[1])))


# --------------------------------------------------------------------- test side


class ModbusServer:
    """A :func:`main` subprocess (see the module docstring)."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.proc: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()

    def start(self, timeout_s: float = 20.0) -> ModbusServer:
        """Start it and wait until it listens."""
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "harness.live.modbus_server", json.dumps(self.spec)],
            cwd=_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout_s)
        line = self.proc.stdout.readline() if ready else ""
        if '"ready"' not in line:
            self.kill9()
            raise RuntimeError(f"modbus test server did not start: {line!r}")
        return self

    def _call(self, msg: dict[str, Any]) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdin and self.proc.stdout
        with self._lock:
            self.proc.stdin.write(json.dumps(msg) + "\n")
            self.proc.stdin.flush()
            ready, _, _ = select.select([self.proc.stdout], [], [], 10.0)
            if not ready:
                raise RuntimeError("modbus test server did not answer")
            reply: dict[str, Any] = json.loads(self.proc.stdout.readline())
            return reply

    def set(self, table: str, address: int, values: list[int] | list[bool], unit: int = 1) -> None:
        """Write ``values`` from ``address`` of ``table`` (``h``, ``i``, ``c``, ``d``)."""
        self._call(
            {"cmd": "set", "unit": unit, "table": table, "address": address, "values": values}
        )

    def counts(self) -> dict[str, int]:
        """Read requests received per ``"unit:function code"`` since :meth:`reset`."""
        counts: dict[str, int] = self._call({"cmd": "counts"})["counts"]
        return counts

    def reset(self) -> None:
        """Zero the request counts."""
        self._call({"cmd": "reset"})

    def kill9(self) -> None:
        """SIGKILL (no goodbye to clients)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        """Stop it (stdin closed, then killed if needed)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            self.proc.wait(5)
        except (subprocess.TimeoutExpired, OSError):
            self.kill9()


class TcpProxy:
    """A TCP proxy in front of a device, on its own threads.

    Attributes:
        max_clients: concurrent connections it accepts; another one is closed at once and
            counted in ``refused`` (a device that allows a single connection).
        mode: ``pass``; ``mute`` (requests are swallowed: a slave that stopped
            answering); ``garbage`` (each response replaced by as many random bytes);
            ``short`` (each register response claims one register less, consistently
            framed).
        accepted, refused, peak: connections accepted, refused, most at once.
        swallowed: requests (reads from the client) swallowed in ``mute`` mode.
    """

    def __init__(self, target: tuple[str, int], *, max_clients: int = 1) -> None:
        self.target = target
        self.max_clients = max_clients
        self.mode = "pass"
        self.accepted = 0
        self.refused = 0
        self.peak = 0
        self.swallowed = 0
        self._active: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                if len(self._active) >= self.max_clients:
                    self.refused += 1
                    conn.close()
                    continue
                self._active.add(conn)
                self.accepted += 1
                self.peak = max(self.peak, len(self._active))
            threading.Thread(target=self._pump, args=(conn,), daemon=True).start()

    def _pump(self, conn: socket.socket) -> None:
        try:
            up = socket.create_connection(self.target, timeout=5)
        except OSError:
            self._drop(conn)
            return
        try:
            while not self._closed:
                ready, _, _ = select.select([conn, up], [], [], 0.2)
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        return
                    if s is conn:
                        if self.mode != "mute":
                            up.sendall(data)
                        else:
                            self.swallowed += 1
                    else:
                        conn.sendall(self._mangle(data))
        except OSError:
            return
        finally:
            up.close()
            self._drop(conn)

    def _mangle(self, data: bytes) -> bytes:
        if self.mode == "garbage":
            return os.urandom(len(data))
        if self.mode == "short" and len(data) >= 11 and data[7] in (3, 4):
            # MBAP(7) + fc + byte count + registers: drop the last register, fix lengths
            body = data[:-2]
            length = len(body) - 6
            return (
                body[:4] + length.to_bytes(2, "big") + body[6:8] + bytes([data[8] - 2]) + body[9:]
            )
        return data

    def _drop(self, conn: socket.socket) -> None:
        with self._lock:
            self._active.discard(conn)
        conn.close()

    def drop_all(self) -> None:
        """Close every client connection (a network break)."""
        with self._lock:
            conns = list(self._active)
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)

    @property
    def active(self) -> int:
        """Client connections open now."""
        with self._lock:
            return len(self._active)

    def close(self) -> None:
        """Stop listening and drop all connections."""
        self._closed = True
        self._listener.close()
        self.drop_all()


class PtyNullModem:
    """Two pseudo-terminals whose masters are bridged: a serial line with two ends.

    ``a`` and ``b`` are the tty paths (e.g. ``/dev/pts/7``) to open with a serial port.
    """

    def __init__(self) -> None:
        self._ma, self._sa = os.openpty()
        self._mb, self._sb = os.openpty()
        self.a = os.ttyname(self._sa)
        self.b = os.ttyname(self._sb)
        self._closed = False
        self._thread = threading.Thread(target=self._bridge, daemon=True)
        self._thread.start()

    def _bridge(self) -> None:
        peer = {self._ma: self._mb, self._mb: self._ma}
        while not self._closed:
            try:
                ready, _, _ = select.select(list(peer), [], [], 0.2)
                for fd in ready:
                    data = os.read(fd, 4096)
                    if data:
                        os.write(peer[fd], data)
            except OSError:
                if self._closed:
                    return
                threading.Event().wait(0.05)  # a slave end was closed; keep bridging

    def close(self) -> None:
        """Stop bridging and close all four ends."""
        self._closed = True
        self._thread.join(2)
        for fd in (self._ma, self._sa, self._mb, self._sb):
            with contextlib.suppress(OSError):
                os.close(fd)


if __name__ == "__main__":
    main()
