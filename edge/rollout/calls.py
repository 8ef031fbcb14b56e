"""Calls that worker threads hand to the gateway agent's main loop (run between rows)."""

from __future__ import annotations

import concurrent.futures
import queue
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["MainThreadCalls"]

T = TypeVar("T")


class MainThreadCalls:
    """Calls queued by other threads and run by the agent's main loop between rows."""

    def __init__(self) -> None:
        self._q: queue.SimpleQueue[tuple[Callable[[], Any], concurrent.futures.Future[Any]]] = (
            queue.SimpleQueue()
        )

    def submit(self, fn: Callable[[], T]) -> concurrent.futures.Future[T]:
        """Queue ``fn``; its result (or exception) arrives in the returned future."""
        fut: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._q.put((fn, fut))
        return fut

    def run_pending(self) -> None:
        """Run every queued call (main thread only)."""
        while True:
            try:
                fn, fut = self._q.get_nowait()
            except queue.Empty:
                return
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(fn())
            except BaseException as exc:
                fut.set_exception(exc)
