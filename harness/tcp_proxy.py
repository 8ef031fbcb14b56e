"""A TCP relay on loopback that can cut the connection like a dead WAN (tests, benchmarks).

:class:`TcpProxy` relays ``127.0.0.1:port`` to ``127.0.0.1:target_port`` on its own asyncio
event loop in a thread. :meth:`TcpProxy.sever` refuses new connections and either resets
the established ones (``"reset"``) or keeps them open while dropping every byte
(``"blackhole"``: the ends notice only by keepalive); :meth:`TcpProxy.restore` mends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Literal

from harness.services import free_port

__all__ = ["TcpProxy"]


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
