"""systemd notifications for the gateway agent: readiness and watchdog keep-alives.

The Raspberry Pi unit ``renkei-gateway.service`` (``deploy/pi/``) runs the agent with
``Type=notify`` and ``WatchdogSec=``: systemd considers the service started when the agent
sends ``READY=1``, and kills and restarts it (``Restart=on-failure``) when no
``WATCHDOG=1`` arrives within the watchdog interval, i.e. when the agent hangs.

This is the sd_notify protocol done with the standard library (no libsystemd binding on
the gateway): one datagram per message to the Unix socket named by ``NOTIFY_SOCKET``
(``@name`` = Linux abstract namespace). The watchdog interval comes from ``WATCHDOG_USEC``
and applies only to the process named by ``WATCHDOG_PID`` when that is set. Outside
systemd (no ``NOTIFY_SOCKET``) every call is a cheap no-op, so the agent can call it
unconditionally.

Usage (in the agent)::

    notifier = Notifier.from_env()
    ...start the publisher...
    notifier.ready()
    while running:
        ...one iteration of the main loop...
        notifier.keepalive()      # sends WATCHDOG=1 at most every interval/4
    notifier.stopping()

Only the main loop should call :meth:`Notifier.keepalive` (and only while the publisher
thread is alive): a keep-alive from a free-running thread would hide exactly the hangs the
watchdog exists to catch.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping

__all__ = ["Notifier"]

log = logging.getLogger(__name__)


class Notifier:
    """Sends sd_notify messages to systemd (a no-op when not run by systemd).

    Args:
        socket_path: the ``NOTIFY_SOCKET`` value (``None``: notifications disabled).
        watchdog_interval_s: the watchdog timeout systemd enforces (``None``: no watchdog).
        clock: monotonic clock (tests).
    """

    def __init__(
        self,
        socket_path: str | None,
        watchdog_interval_s: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.socket_path = socket_path or None
        self.watchdog_interval_s = watchdog_interval_s if self.socket_path else None
        self._clock = clock
        self._last_keepalive: float | None = None
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._warned = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Notifier:
        """The notifier systemd asked for through the environment of this process."""
        env = os.environ if env is None else env
        path = env.get("NOTIFY_SOCKET") or None
        interval: float | None = None
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            interval = int(usec) / 1_000_000
        return cls(path, interval)

    @property
    def enabled(self) -> bool:
        """Whether notifications go anywhere."""
        return self.socket_path is not None

    def notify(self, *assignments: str) -> bool:
        """Send ``KEY=VALUE`` assignments in one datagram; False if not sent.

        A failure (socket gone, systemd restarting) is logged once and never raised: a
        notification must not stop the agent.
        """
        if self.socket_path is None:
            return False
        address = self.socket_path
        if address.startswith("@"):
            address = "\0" + address[1:]
        payload = "\n".join(assignments).encode()
        with self._lock:
            try:
                if self._sock is None:
                    self._sock = socket.socket(
                        socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC
                    )
                self._sock.sendto(payload, address)
            except OSError as exc:
                if not self._warned:
                    log.warning("systemd notification to %s failed: %s", self.socket_path, exc)
                    self._warned = True
                return False
        return True

    def ready(self, status: str | None = None) -> bool:
        """Tell systemd that start-up finished (``READY=1``), with an optional status line."""
        fields = ["READY=1"] + ([f"STATUS={status}"] if status else [])
        sent = self.notify(*fields)
        if sent:
            self._last_keepalive = self._clock()
        return sent

    def status(self, text: str) -> bool:
        """Set the status line ``systemctl status`` shows."""
        return self.notify(f"STATUS={text}")

    def keepalive(self) -> bool:
        """Send ``WATCHDOG=1`` if a quarter of the watchdog interval has passed since the last.

        Cheap enough to call on every iteration of the main loop. Returns whether a
        keep-alive was sent now.
        """
        if self.watchdog_interval_s is None:
            return False
        now = self._clock()
        last = self._last_keepalive
        if last is not None and now - last < self.watchdog_interval_s / 4:
            return False
        sent = self.notify("WATCHDOG=1")
        if sent:
            self._last_keepalive = now
        return sent

    def stopping(self) -> bool:
        """Tell systemd that a clean stop is under way (``STOPPING=1``)."""
        return self.notify("STOPPING=1")

    def close(self) -> None:
        """Close the socket (notifications after this reopen it)."""
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None
