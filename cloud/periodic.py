"""Run a job now and then every N seconds until SIGINT/SIGTERM (the cloud's periodic commands).

``renkei cloud capacity-publish``, ``oee-sync`` and ``gateways expire`` use it with
``--every``: a failed run is logged and the next happens as planned
(:func:`renkei.cloud.capacity.publish.run_periodic`); a signal lets the run in progress
finish, then returns.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType

from renkei.cloud.capacity.publish import run_periodic

__all__ = ["run_until_signal"]

log = logging.getLogger(__name__)


def run_until_signal(job: Callable[[], object], *, every_s: float, name: str) -> int:
    """Call ``job`` now and every ``every_s`` seconds until SIGINT or SIGTERM.

    Must be called from the main thread (signal handlers); the previous handlers are put
    back on return.

    Returns:
        The number of failed runs.

    Raises:
        ValueError: ``every_s`` <= 0.
    """
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: stopping %s", signum, name)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        return run_periodic(job, every_s=every_s, stop=stop, name=name)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
