"""A MELSEC CPU stand-in speaking SLMP 3E binary frames over TCP, for tests.

It answers Device Read (batch), command 0x0401, subcommand 0x0000 (word units) and 0x0001
(bit units), per SLMP Reference Manual SH-080956ENG §5.1, from an in-memory device table,
and has faults to order. Run as a subprocess (so kill -9 and restart are real)::

    python -m harness.live.slmp_server --port P --control-port C [--single] [--preset JSON]

The *control port* takes one JSON object per line and answers one JSON line:

- ``{"op": "set", "device": "D100", "words": [1, 2]}`` / ``{"op": "set", "device": "M0",
  "bits": [1, 0]}``: device memory from that head device on;
- ``{"op": "mode", "mode": M}``: ``normal``; ``garbage`` (junk bytes instead of a frame);
  ``wrong_subheader``; ``huge`` (a header announcing 65535 bytes, then a trickle);
  ``wrong_length`` (normal header, one data byte short); ``short`` (half a response, then
  the connection is closed); ``silent`` (requests read, never answered); ``drop`` (each
  connection closed after one normal response: a reconnect soak);
- ``{"op": "error", "device": "D", "start": 1000, "end": 1099, "code": 49238}``: requests
  touching that range get that end code (``"code": 0`` clears the rule);
- ``{"op": "stats"}``: ``{"requests": n, "connections": n, "open": n}``.

``--single``: like a CPU with one SLMP connection configured: a second concurrent
connection is closed at once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from harness.services import REPO, free_port
from harness.wait import wait_for
from renkei.edge.sources.live.slmp.devices import parse_device
from renkei.edge.sources.live.slmp.frames import (
    HEADER_LEN,
    FrameError,
    decode_request,
    encode_bits,
    encode_response,
)


class PlcState:
    """Device memory, fault rules and counters of the stand-in CPU."""

    def __init__(self) -> None:
        self.memory: dict[int, dict[int, int]] = {}
        self.mode = "normal"
        self.errors: list[tuple[int, int, int, int]] = []  # code, start, end, end_code
        self.requests = 0
        self.connections = 0
        self.open = 0

    def set(self, device: str, values: list[int]) -> None:
        addr = parse_device(device)
        mem = self.memory.setdefault(addr.spec.code, {})
        for i, v in enumerate(values):
            mem[addr.number + i] = int(v)

    def answer(self, frame: bytes) -> bytes:
        """The response to one request frame (a valid frame; faults are applied later)."""
        route, _timer, command, sub, head, code, points = decode_request(frame)
        if command != 0x0401 or sub not in (0, 1):
            return encode_response(route, 0xC059, route.pack() + frame[11:15])
        for dcode, start, end, end_code in self.errors:
            if dcode == code and head <= end and head + points - 1 >= start:
                return encode_response(route, end_code, route.pack() + frame[11:15])
        if points < 1 or points > (7168 if sub else 960):
            return encode_response(route, 0xC051, route.pack() + frame[11:15])
        mem = self.memory.get(code, {})
        values = [mem.get(head + i, 0) for i in range(points)]
        if sub == 1:
            return encode_response(route, 0, encode_bits([1 if v else 0 for v in values]))
        data = b"".join((v & 0xFFFF).to_bytes(2, "little") for v in values)
        return encode_response(route, 0, data)


async def _serve_plc(
    state: PlcState, single: bool, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    state.connections += 1
    if single and state.open >= 1:
        writer.close()
        return
    state.open += 1
    try:
        while True:
            header = await reader.readexactly(HEADER_LEN)
            length = int.from_bytes(header[7:9], "little")
            frame = header + await reader.readexactly(length)
            state.requests += 1
            try:
                response = state.answer(frame)
            except FrameError:
                break
            mode = state.mode
            if mode == "silent":
                continue
            if mode == "garbage":
                response = bytes(range(0x41, 0x41 + 40))
            elif mode == "wrong_subheader":
                response = b"\xd1\x00" + response[2:]
            elif mode == "huge":
                writer.write(response[:7] + b"\xff\xff" + b"\x00\x00\x01")
                await writer.drain()
                continue
            elif mode == "wrong_length":
                body_len = int.from_bytes(response[7:9], "little") - 1
                response = response[:7] + body_len.to_bytes(2, "little") + response[9:-1]
            elif mode == "short":
                writer.write(response[: len(response) // 2])
                await writer.drain()
                break
            writer.write(response)
            await writer.drain()
            if mode == "drop":
                break
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        state.open -= 1
        writer.close()


async def _serve_control(
    state: PlcState, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        while line := await reader.readline():
            cmd: dict[str, Any] = json.loads(line)
            op = cmd["op"]
            reply: dict[str, Any] = {"ok": True}
            if op == "set":
                state.set(cmd["device"], cmd.get("words", cmd.get("bits", [])))
            elif op == "mode":
                state.mode = cmd["mode"]
            elif op == "error":
                code = parse_device(cmd["device"] + "0").spec.code
                state.errors = [e for e in state.errors if e[0] != code]
                if cmd["code"]:
                    state.errors.append((code, cmd["start"], cmd["end"], cmd["code"]))
            elif op == "stats":
                reply = {"requests": state.requests, "connections": state.connections}
                reply["open"] = state.open
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()
    finally:
        writer.close()


async def _main(port: int, control_port: int, single: bool, preset: dict[str, list[int]]) -> None:
    state = PlcState()
    for device, values in preset.items():
        state.set(device, values)
    plc = await asyncio.start_server(
        lambda r, w: _serve_plc(state, single, r, w), "127.0.0.1", port
    )
    ctl = await asyncio.start_server(
        lambda r, w: _serve_control(state, r, w), "127.0.0.1", control_port
    )
    async with plc, ctl:
        await asyncio.gather(plc.serve_forever(), ctl.serve_forever())


class SlmpServer:
    """The stand-in as a subprocess on free loopback ports (for fixtures).

    ``port`` stays the same across :meth:`restart`, like a PLC that reboots.
    """

    def __init__(
        self, log: Path, *, single: bool = False, preset: dict[str, list[int]] | None = None
    ) -> None:
        self.port = free_port()
        self.control_port = free_port()
        self.log = log
        self.single = single
        self.preset = preset or {}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        argv = [sys.executable, "-m", "harness.live.slmp_server", "--port", str(self.port)]
        argv += ["--control-port", str(self.control_port), "--preset", json.dumps(self.preset)]
        if self.single:
            argv.append("--single")
        env = dict(os.environ, PYTHONPATH=str(REPO))
        with open(self.log, "ab") as fh:
            self.proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, env=env)
        wait_for(self._ready, 10, "slmp test server to listen")

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"slmp server exited: {self.log.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", self.control_port), timeout=0.5):
                return True
        except OSError:
            return False

    def control(self, **cmd: Any) -> dict[str, Any]:
        """Send one control command; its reply."""
        with socket.create_connection(("127.0.0.1", self.control_port), timeout=5) as s:
            s.sendall(json.dumps(cmd).encode() + b"\n")
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = s.recv(4096)
                if not chunk:
                    break
                buf += chunk
        reply: dict[str, Any] = json.loads(buf)
        return reply

    def requests(self) -> int:
        return int(self.control(op="stats")["requests"])

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)

    def restart(self) -> None:
        self.kill9()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # the port is free again once the kernel says so
            try:
                with socket.socket() as s:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    s.bind(("127.0.0.1", self.port))
                break
            except OSError:
                time.sleep(0.05)
        self.start()

    def stop(self) -> None:
        self.kill9()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--control-port", type=int, required=True)
    ap.add_argument("--single", action="store_true")
    ap.add_argument("--preset", default="{}", help='JSON {"D100": [1, 2], "M0": [1]}')
    args = ap.parse_args()
    asyncio.run(_main(args.port, args.control_port, args.single, json.loads(args.preset)))


if __name__ == "__main__":
    main()
