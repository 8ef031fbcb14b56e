"""Reconnect delays: exponential backoff with jitter ("Exponential Backoff And Jitter",
AWS Architecture Blog, 2015), capped."""

from __future__ import annotations

import random
import threading

__all__ = ["Backoff"]


class Backoff:
    """Successive waits ``min_s, 2·min_s, 4·min_s, … ≤ max_s``, each ±``jitter`` (fraction).

    Args:
        min_s: first wait, s (> 0).
        max_s: longest wait, s (>= ``min_s``).
        jitter: relative jitter in [0, 1).
        rng: random source (tests pin it).

    Raises:
        ValueError: on bounds outside those ranges.
    """

    def __init__(
        self,
        *,
        min_s: float,
        max_s: float,
        jitter: float = 0.2,
        rng: random.Random | None = None,
    ) -> None:
        if not 0 < min_s <= max_s:
            raise ValueError(f"need 0 < min_s <= max_s, got min_s={min_s}, max_s={max_s}")
        if not 0 <= jitter < 1:
            raise ValueError(f"jitter must be in [0, 1), got {jitter}")
        self.min_s = min_s
        self.max_s = max_s
        self.jitter = jitter
        self._rng = rng or random.Random()
        self._next = min_s
        self.attempts = 0
        """Waits since the last :meth:`reset`."""

    def reset(self) -> None:
        """A connection succeeded: the next wait is ``min_s`` again."""
        self._next = self.min_s
        self.attempts = 0

    def next_delay(self) -> float:
        """The next wait, seconds (and advance)."""
        base = self._next
        self._next = min(self.max_s, self._next * 2)
        self.attempts += 1
        j = 1.0 + self.jitter * (2 * self._rng.random() - 1)
        return min(self.max_s, base * j)

    def wait(self, stop: threading.Event) -> bool:
        """Sleep the next delay unless ``stop`` is set first; True if stopped."""
        return stop.wait(self.next_delay())
