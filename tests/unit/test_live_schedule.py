"""The monotonic poll schedule of polled sources (pure logic, pinned clock)."""

from __future__ import annotations

import threading

import pytest

from renkei.edge.sources.live.schedule import Overrun, PollSchedule


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_slots_do_not_drift_with_the_poll_duration() -> None:
    clock = Clock()
    s = PollSchedule(1.0, clock=clock)
    stop = threading.Event()
    assert s.wait(stop) == 0.0  # first slot: now
    clock.t += 0.3  # the poll took 0.3 s
    assert s.finish() is None
    assert s.due == pytest.approx(101.0)  # not 101.3


def test_overruns_skip_missed_slots_and_report_one_episode() -> None:
    clock = Clock()
    s = PollSchedule(1.0, clock=clock)
    clock.t += 2.5  # slots 101 and 102 passed during the poll
    assert s.finish() == Overrun(missed=2, new_episode=True)
    assert s.due == pytest.approx(103.0)
    clock.t = 104.2  # late again: same episode
    assert s.finish() == Overrun(missed=1, new_episode=False)
    clock.t = 105.5  # the slot-105 poll fits (next slot 106): the episode ends
    assert s.finish() is None
    clock.t = 107.5  # the slot-106 poll ends after slot 107
    assert s.finish() == Overrun(missed=1, new_episode=True)
    assert (s.overruns, s.skipped, s.episodes) == (3, 4, 2)


def test_wait_returns_none_once_stopped() -> None:
    stop = threading.Event()
    stop.set()
    assert PollSchedule(0.05).wait(stop) is None
    with pytest.raises(ValueError, match="interval_s"):
        PollSchedule(0)
