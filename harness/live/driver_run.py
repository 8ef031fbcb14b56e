"""A live-source driver run on its own thread, as :class:`~renkei.edge.sources.live.LiveSource`
runs it, with everything it handed to its sink kept for assertions (test helper shared by
the protocol driver tests)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from harness.wait import wait_for
from renkei.edge.sources.live.base import Driver, LinkEvent, LiveSink, Reading


class DriverRun:
    """Starts ``driver.run(sink, stop)`` on a daemon thread; ``readings``, ``events`` and
    ``units`` accumulate on :meth:`collect`; ``error`` is what ``run`` raised, if anything."""

    def __init__(self, driver: Driver) -> None:
        self.driver = driver
        self.sink = LiveSink()
        self.stop = threading.Event()
        self.readings: list[Reading] = []
        self.events: list[LinkEvent] = []
        self.units: dict[str, str] = {}
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.driver.run(self.sink, self.stop)
        except BaseException as exc:  # checked by the tests
            self.error = exc

    def collect(self) -> None:
        """Take what the driver handed over since the last call."""
        r, e, u = self.sink.take()
        self.readings += r
        self.events += e
        self.units.update(u)

    def until(self, cond: Callable[[], bool], what: str, timeout_s: float = 10) -> None:
        """Collect until ``cond()`` holds (fails at once if the driver raised)."""

        def check() -> bool:
            self.collect()
            assert self.error is None, f"driver raised {self.error!r}"
            return cond()

        wait_for(check, timeout_s, what, interval_s=0.02)

    def values(self, signal: str) -> list[Reading]:
        """Every reading of ``signal`` so far."""
        self.collect()
        return [r for r in self.readings if r.signal == signal]

    def codes(self) -> list[str]:
        """The codes of every event so far, in order."""
        self.collect()
        return [e.code for e in self.events]

    def events_of(self, code: str) -> list[LinkEvent]:
        """The events with ``code`` so far."""
        self.collect()
        return [e for e in self.events if e.code == code]

    def close(self, timeout_s: float = 5.0) -> float:
        """Stop the driver; returns how long it took to stop, s."""
        t0 = time.monotonic()
        self.stop.set()
        self.thread.join(timeout_s)
        took = time.monotonic() - t0
        assert not self.thread.is_alive(), "driver did not stop"
        self.collect()
        return took
