"""Driver supervision: run a live driver until stop, restart it with backoff when it fails.

A live machine never stops the gateway: a driver that raises (or returns before stop, which
is a bug) is reported -- logged, the link marked down, a ``driver_failed`` alarm event -- and
started again after a backoff wait; the backoff resets when the driver ran longer than the
longest wait (not a crash loop).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from renkei.edge.sources.live.backoff import Backoff
from renkei.edge.sources.live.base import Driver, LiveSink
from renkei.edge.sources.live.signals import LinkConfig

__all__ = ["supervise"]

# the live source's logger: what operators filter on for a device's driver failures
log = logging.getLogger("renkei.edge.sources.live.source")


def supervise(
    driver: Driver,
    sink: LiveSink,
    stop: threading.Event,
    *,
    link: LinkConfig,
    expected: tuple[type[Exception], ...],
    on_failure: Callable[[], None],
) -> None:
    """Run ``driver`` on the calling thread until ``stop`` is set.

    Args:
        driver: the protocol driver (``run`` blocks until ``stop``).
        sink: where the driver hands readings over; gets ``link_down`` and the
            ``driver_failed`` event on a failure.
        stop: set to end supervision (also ends the backoff wait).
        link: reconnect backoff bounds (``reconnect_min_s``, ``reconnect_max_s``).
        expected: failures logged at ERROR without a traceback (a configuration or device
            problem); any other exception is logged CRITICAL with its traceback.
        on_failure: called once per failure (the source counts them).
    """
    backoff = Backoff(min_s=link.reconnect_min_s, max_s=link.reconnect_max_s)
    while not stop.is_set():
        started = time.monotonic()
        try:
            driver.run(sink, stop)
            if stop.is_set():
                return
            # a driver must block until stop: returning early is a bug, not the end
            failure = "driver returned before stop"
            log.error("%s: %s; restarting it", driver.describe, failure)
        except Exception as exc:  # supervision boundary: report, restart with backoff
            failure = f"{type(exc).__name__}: {exc}"
            level = logging.ERROR if isinstance(exc, expected) else logging.CRITICAL
            log.log(
                level,
                "%s: driver failed (%s); restarting it",
                driver.describe,
                failure,
                exc_info=not isinstance(exc, expected),
            )
        on_failure()
        if time.monotonic() - started > backoff.max_s:
            backoff.reset()  # it ran well for a while: not a crash loop
        sink.link_down(failure)
        sink.event("driver_failed", "alarm", failure)
        if backoff.wait(stop):
            return
