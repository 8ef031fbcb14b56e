"""The polling schedule of polled sources (``modbus``, ``slmp``): monotonic, with overruns.

Slot ``k`` starts at ``t0 + k * interval`` on the monotonic clock, whatever the polls took
(``sleep(interval)`` after each poll would drift by the poll's own duration). A poll that
ends after the next slot was due is an *overrun*: the missed slots are skipped (never
polled in a burst to catch up) and counted, and the caller reports one ``poll_overrun``
event per episode (until a poll fits its slot again), not one per poll.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Overrun", "PollSchedule"]


@dataclass(frozen=True, slots=True)
class Overrun:
    """A poll that ended after the next slot: ``missed`` slots skipped; ``new_episode``
    when the poll before it fit its slot (report one ``poll_overrun`` event then)."""

    missed: int
    new_episode: bool


class PollSchedule:
    """Monotonic poll slots (module docstring).

    Args:
        interval_s: time between two slots, s (> 0).
        clock: monotonic clock, s (tests pin it).

    Raises:
        ValueError: ``interval_s <= 0``.
    """

    def __init__(self, interval_s: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        if not interval_s > 0:
            raise ValueError(f"interval_s must be > 0, got {interval_s}")
        self.interval_s = interval_s
        self._clock = clock
        self.due = clock()
        """Monotonic time of the next slot, s."""
        self.overruns = 0
        """Polls that ended after the next slot was due."""
        self.skipped = 0
        """Slots skipped because of overruns."""
        self.episodes = 0
        """Overrun episodes (``poll_overrun`` events to report)."""
        self._late = False

    def wait(self, stop: threading.Event) -> float | None:
        """Sleep until the next slot. Returns how late the slot starts (jitter, s; >= 0),
        or ``None`` if ``stop`` was set meanwhile."""
        delay = self.due - self._clock()
        if delay > 0 and stop.wait(delay):
            return None
        if stop.is_set():
            return None
        return max(0.0, self._clock() - self.due)

    def finish(self) -> Overrun | None:
        """The current slot's poll ended now: advance to the next slot, skipping missed
        ones. Returns the :class:`Overrun`, or ``None`` if the poll fit its slot."""
        self.due += self.interval_s
        now = self._clock()
        if now <= self.due:
            self._late = False
            return None
        missed = int((now - self.due) // self.interval_s) + 1
        self.due += missed * self.interval_s
        self.overruns += 1
        self.skipped += missed
        new = not self._late
        self._late = True
        if new:
            self.episodes += 1
        return Overrun(missed, new)
