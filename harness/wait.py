"""Waiting in tests and benchmarks: poll for a condition, or pause for a stated reason.

A test that waits for something to happen polls for it with :func:`wait_for` (it returns as
soon as the condition holds and fails with a message naming what never happened). A test
that must let time pass on purpose (proving that nothing happens meanwhile, holding an
outage open, pacing a load) calls :func:`pause`, which says why in its arguments.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal, TypeVar

__all__ = ["WaitTimeout", "pause", "wait_for"]

T = TypeVar("T")


class WaitTimeout(AssertionError, TimeoutError):
    """A condition did not hold in time: a test failure (``AssertionError``) that
    non-test code may catch as the ``TimeoutError`` it also is."""


def wait_for(
    condition: Callable[[], T | Literal[False] | None],
    timeout_s: float = 10.0,
    message: str | Callable[[], str] = "the condition",
    interval_s: float = 0.05,
) -> T:
    """Call ``condition()`` every ``interval_s`` seconds until it returns a truthy value.

    Args:
        condition: polled without arguments; exceptions it raises propagate at once.
        timeout_s: how long to poll, s (the condition is checked at least once).
        message: what is awaited, for the failure message ("witness connect"); a callable
            is called only on timeout (for a message showing the state at that moment).
        interval_s: pause between two polls, s.

    Returns:
        The first truthy value ``condition()`` returned (typed without ``None`` and
        ``False``, which are never returned).

    Raises:
        WaitTimeout: (an ``AssertionError`` and ``TimeoutError``) with
            ``"timed out after {timeout_s} s waiting for {message}"``.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            what = message() if callable(message) else message
            raise WaitTimeout(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(interval_s)


def pause(seconds: float, why: str) -> None:
    """Let ``seconds`` pass on purpose; ``why`` says what the time is for (e.g. "nothing
    more must arrive", "the outage lasts this long"). Never use it to wait for a condition:
    that is :func:`wait_for`."""
    del why  # documentation at the call site
    time.sleep(seconds)
