"""Driver of the ``opcua`` live source (see :mod:`renkei.edge.sources.live.base`).

:meth:`OpcuaDriver.run` runs an asyncio loop on the driver thread. Per connection
(:class:`~renkei.edge.sources.live.opcua.session.OpcuaSession`): connect (SecureChannel, session,
user), resolve the signals' NodeIds (namespace URIs and browse paths looked up again on
every connect, since a restarted server may renumber its namespaces), read their
EngineeringUnits, then either create ONE subscription with a monitored item per signal or
poll with one batched Read per cycle. ``link_up`` is reported when the first data (or
keep-alive) arrives.

A lost connection (socket closed, keep-alive missed, a failed request, the server's
shutdown or a subscription status change) ends the session: ``link_down``, wait with
:class:`~renkei.edge.sources.live.backoff.Backoff`, and build everything again. A signal whose
node does not exist (or that the server refuses to monitor) is reported ``BAD`` with the
reason once per connection; the others keep working. A refused certificate or user raises
:class:`~renkei.edge.sources.live.LiveSourceError` (the source restarts the driver with backoff).
``stop`` is honoured within ~1 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any, Final

from renkei.edge.sources.live.backoff import Backoff
from renkei.edge.sources.live.base import LiveSink
from renkei.edge.sources.live.opcua.config import OpcuaSignal, OpcuaSourceConfig
from renkei.edge.sources.live.opcua.session import (
    Credentials,
    OpcuaSession,
    SessionLost,
    SessionRefused,
    Target,
)
from renkei.edge.sources.live.opcua.values import ReadingMaker
from renkei.edge.sources.live.signals import Secret, SecretError, ShotsConfig, SignalMap
from renkei.edge.sources.live.source import LiveSourceError

__all__ = ["OpcuaDriver", "make_driver"]

log = logging.getLogger(__name__)

#: How often the loop looks at ``stop`` and the session's health, s.
TICK_S: Final = 0.1
#: Largest key/certificate file read, bytes.
MAX_KEY_FILE: Final = 1 << 20


class OpcuaDriver:
    """The ``opcua`` driver (module docstring). Build it with :func:`make_driver`."""

    def __init__(self, config: OpcuaSourceConfig, creds: Credentials) -> None:
        self.config = config
        self.creds = creds
        self.describe = f"opcua {config.endpoint}"
        self.signals: Sequence[SignalMap]
        self.shots: ShotsConfig | None
        if config.preset == "euromap77":
            from renkei.edge.sources.live.opcua import euromap77

            preset_signals, self.shots = euromap77.preset_signals(config.euromap77)
            self.signals = preset_signals
            self._items = [
                OpcuaSignal(name=s.name, unit=s.unit, node_id="i=0") for s in preset_signals
            ]
        else:
            self.signals = list(config.signals)
            self.shots = config.shots
            self._items = list(config.signals)
        self._maker = ReadingMaker()
        self.sessions = 0
        """Sessions opened (tests and the soak bench read it)."""

    def run(self, sink: LiveSink, stop: threading.Event) -> None:
        """Read the server until ``stop`` is set (see the module docstring).

        Raises:
            LiveSourceError: the server refused the client certificate or the user.
        """
        asyncio.run(self._main(sink, stop))

    async def _main(self, sink: LiveSink, stop: threading.Event) -> None:
        link = self.config.link
        backoff = Backoff(min_s=link.reconnect_min_s, max_s=link.reconnect_max_s)
        while not stop.is_set():
            try:
                await _until_stopped(self._connection(sink, stop, backoff), stop)
            except SessionLost as exc:
                sink.link_down(f"{self.config.endpoint}: {exc}")
                log.info("%s: %s; reconnecting", self.describe, exc)
            except SessionRefused as exc:
                raise LiveSourceError(str(exc)) from None
            except LiveSourceError:
                raise  # e.g. the preset finds no machine object: the config contradicts it
            except Exception as exc:  # a broken server's odd answer: an outage, retried
                log.warning("%s: session failed", self.describe, exc_info=True)
                sink.link_down(f"{self.config.endpoint}: {type(exc).__name__}: {exc}"[:400])
            if stop.is_set():
                return
            delay = backoff.next_delay()
            await _sleep_unless(stop, delay)

    async def _connection(self, sink: LiveSink, stop: threading.Event, backoff: Backoff) -> None:
        session = OpcuaSession(self.config, self.creds, sink.put, self._maker)
        self.sessions += 1
        try:
            await session.connect()
            if stop.is_set():
                return
            problems = await self._resolve(session)
            units = await session.units()
            units.update(session.preset_units)
            for name, unit in units.items():
                sink.set_unit(name, unit)
            if self.config.mode == "subscribe":
                problems.update(await session.subscribe())
            _report_problems(sink, problems)
            up = False
            next_poll = 0.0
            loop = asyncio.get_running_loop()
            while not stop.is_set():
                if self.config.mode == "poll" and loop.time() >= next_poll:
                    next_poll = loop.time() + self.config.poll_interval_s
                    readings = await session.read()
                    if readings:
                        sink.put(readings)
                if not up and session.data_seen.is_set():
                    up = True
                    backoff.reset()
                    sink.link_up(self._detail(session, problems))
                session.check()
                wait = TICK_S
                if self.config.mode == "poll":
                    wait = max(0.0, min(TICK_S, next_poll - loop.time()))
                await _sleep_unless(stop, wait)
        finally:
            await session.close()

    async def _resolve(self, session: OpcuaSession) -> dict[str, str]:
        if self.config.preset != "euromap77":
            return await session.resolve(self._items)
        from renkei.edge.sources.live.opcua import euromap77

        found = await euromap77.resolve(session.client, self.config.euromap77)
        node_ids = found.nodes
        events = found.cycle_events if self.config.mode == "subscribe" else None
        if events is not None:
            # the cycle event carries the counter and the cycle's values together: each
            # cycle becomes one shot row with its own values (euromap77.Euromap77Nodes)
            session.cycle_events = events
            node_ids = found.monitored()
        session.preset_units = dict(found.units)
        session.targets = [Target(s, node_ids[s.name]) for s in self._items if s.name in node_ids]
        carried = {n for n, _ in events.signals} if events is not None else set()
        return {
            s.name: found.missing.get(s.name, "not on this machine")
            for s in self._items
            if s.name not in node_ids and s.name not in carried
        }

    def _detail(self, session: OpcuaSession, problems: dict[str, str]) -> str:
        n = len(session.targets)
        how = (
            f"subscription {self.config.publishing_interval_ms:g} ms"
            if self.config.mode == "subscribe"
            else f"poll {self.config.poll_interval_s:g} s"
        )
        bad = f", {len(problems)} not readable" if problems else ""
        return f"{self.config.endpoint}, {n} nodes, {how}{bad}"


def _report_problems(sink: LiveSink, problems: dict[str, str]) -> None:
    by_reason: dict[str, list[str]] = {}
    for name, reason in problems.items():
        by_reason.setdefault(reason, []).append(name)
    for reason, names in by_reason.items():
        sink.put_bad(names, reason)


async def _until_stopped(coro: Coroutine[Any, Any, None], stop: threading.Event) -> None:
    """Run ``coro``; cancel it (its ``finally`` closes the session) once ``stop`` is set,
    so a connect or request waiting for its timeout does not delay the stop."""
    task = asyncio.ensure_future(coro)
    try:
        while not task.done():
            await asyncio.wait({task}, timeout=TICK_S)
            if stop.is_set() and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                return
        task.result()
    finally:
        if not task.done():
            task.cancel()


async def _sleep_unless(stop: threading.Event, seconds: float) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while not stop.is_set():
        left = end - loop.time()
        if left <= 0:
            return
        await asyncio.sleep(min(TICK_S, left))


def _read_file(path: Path, key: str) -> bytes:
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_KEY_FILE + 1)
    except OSError as exc:
        raise LiveSourceError(f"opcua {key}: cannot read {path}: {exc.strerror}") from None
    if len(data) > MAX_KEY_FILE:
        raise LiveSourceError(f"opcua {key}: {path} is larger than {MAX_KEY_FILE} bytes")
    return data


def _cert_der(data: bytes, path: Path) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(data).public_bytes(Encoding.DER)
        return x509.load_der_x509_certificate(data).public_bytes(Encoding.DER)
    except ValueError as exc:
        raise LiveSourceError(f"opcua: {path} is not an X.509 certificate ({exc})") from None


def _key_der(data: bytes, path: Path, password: str | None) -> bytes:
    """The private key as unencrypted PKCS#8 DER (kept in memory only)."""
    from cryptography.hazmat.primitives import serialization as ser

    pw = password.encode() if password is not None else None
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            key = ser.load_pem_private_key(data, password=pw)
        else:
            key = ser.load_der_private_key(data, password=pw)
    except (ValueError, TypeError) as exc:
        raise LiveSourceError(
            f"opcua security.private_key: cannot load {path} (wrong "
            f"private_key_password, or not a PEM/DER private key): {exc}"
        ) from None
    return key.private_bytes(ser.Encoding.DER, ser.PrivateFormat.PKCS8, ser.NoEncryption())


def make_driver(config: OpcuaSourceConfig) -> OpcuaDriver:
    """The driver for ``config``; reads the secrets and the key/certificate files now.

    Raises:
        renkei.edge.sources.live.LiveSourceError: a secret is missing or a file is unreadable (the
            message names the config key).
    """
    sec = config.security

    def secret(key: str, s: Secret | None) -> str | None:
        if s is None:
            return None
        try:
            return s.read()
        except SecretError as exc:
            raise LiveSourceError(f"opcua {key}: {exc}") from None

    cert = key = server_cert = None
    if sec.certificate is not None and sec.private_key is not None:
        cert = _cert_der(_read_file(sec.certificate, "security.certificate"), sec.certificate)
        key = _key_der(
            _read_file(sec.private_key, "security.private_key"),
            sec.private_key,
            secret("security.private_key_password", sec.private_key_password),
        )
    if sec.server_certificate is not None:
        raw = _read_file(sec.server_certificate, "security.server_certificate")
        server_cert = _cert_der(raw, sec.server_certificate)
    creds = Credentials(
        certificate=cert,
        private_key=key,
        server_certificate=server_cert,
        password=secret("password", config.password),
    )
    return OpcuaDriver(config, creds)
