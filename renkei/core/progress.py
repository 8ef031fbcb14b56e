"""Progress bars (rich) for long commands -- training, evaluation, commissioning, reports,
``renkei cloud export``/``import`` -- silent when nobody watches.

:func:`track` wraps an iterable, :func:`steps` gives an ``advance()`` callable for loops that
are not over one iterable, :func:`bars` gives a :class:`Reporter` for work with several
counters (tables, rows, points) that library code advances without knowing about rich.
All three draw a :mod:`rich.progress` bar (on stderr, so stdout stays
parseable) only when :func:`progress_enabled`: stdout is a terminal, no test is running
(pytest sets ``PYTEST_CURRENT_TEST``) and ``RENKEI_PROGRESS`` is not ``0``. Otherwise they
cost nothing and print nothing. ``RENKEI_PROGRESS=1`` forces the bars on (e.g. a CI log).

Usage in a recipe::

    from renkei.core.progress import track

    for path in track(files, "NAB files"):
        ...

Lives in the core (``renkei.models.progress`` re-exports it) so that every layer's
commands can use it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator, Sized
from contextlib import contextmanager
from typing import TYPE_CHECKING, Final, Protocol, TypeVar

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

__all__ = ["NO_PROGRESS", "Advance", "Reporter", "bars", "progress_enabled", "steps", "track"]

T = TypeVar("T")


class Advance(Protocol):
    """What :func:`steps` yields: ``advance(n=1.0)`` moves the bar ``n`` steps on."""

    def __call__(self, n: float = 1.0) -> None: ...


def progress_enabled() -> bool:
    """Whether bars are drawn: ``RENKEI_PROGRESS`` ``1``/``0`` forces on/off; otherwise on
    when stdout is a terminal and no pytest test is running."""
    forced = os.environ.get("RENKEI_PROGRESS", "").strip()
    if forced in {"0", "1"}:
        return forced == "1"
    if "PYTEST_CURRENT_TEST" in os.environ:
        return False
    isatty = getattr(sys.stdout, "isatty", None)
    return bool(isatty is not None and isatty())


def track(iterable: Iterable[T], description: str, *, total: int | None = None) -> Iterator[T]:
    """Yield the items of ``iterable``, with a progress bar when :func:`progress_enabled`.

    Args:
        iterable: the items (consumed once).
        description: what is counted, e.g. ``"NAB files"``.
        total: number of items; default ``len(iterable)`` when it has one (else the bar
            shows a count without a percentage).
    """
    if not progress_enabled():
        yield from iterable
        return
    if total is None and isinstance(iterable, Sized):
        total = len(iterable)
    with _progress() as bar:
        task = bar.add_task(description, total=total)
        for item in iterable:
            yield item
            bar.advance(task)


@contextmanager
def steps(description: str, total: int | None) -> Iterator[Advance]:
    """A bar of ``total`` steps; the context yields ``advance(n=1.0)``.

    Example::

        with steps("windows", total=len(segs)) as advance:
            for seg in segs:
                ...
                advance(1)
    """
    if not progress_enabled():
        yield _no_advance
        return
    with _progress() as bar:
        task = bar.add_task(description, total=total)

        def advance(n: float = 1.0) -> None:
            bar.advance(task, n)

        yield advance


def _no_advance(n: float = 1.0) -> None:
    del n


class Reporter(Protocol):
    """Where library code reports progress, by task key (e.g. ``"tables"``, ``"points"``).

    ``task`` declares a counter (again: resets its description and total); ``advance``
    moves it on by ``n``. ``total`` ``None`` = unknown (a count without percentage).
    """

    def task(self, key: str, description: str, total: int | None) -> None: ...

    def advance(self, key: str, n: int = 1) -> None: ...


class _Silent:
    def task(self, key: str, description: str, total: int | None) -> None:
        del key, description, total

    def advance(self, key: str, n: int = 1) -> None:
        del key, n


#: A :class:`Reporter` that reports nowhere (the default of library functions).
NO_PROGRESS: Final[Reporter] = _Silent()


class _RichReporter:
    def __init__(self, bar: Progress) -> None:
        self._bar = bar
        self._tasks: dict[str, TaskID] = {}

    def task(self, key: str, description: str, total: int | None) -> None:
        task = self._tasks.get(key)
        if task is None:
            self._tasks[key] = self._bar.add_task(description, total=total)
        else:
            self._bar.reset(task, total=total, description=description)

    def advance(self, key: str, n: int = 1) -> None:
        task = self._tasks.get(key)
        if task is not None:
            self._bar.advance(task, n)


@contextmanager
def bars() -> Iterator[Reporter]:
    """A :class:`Reporter` drawing one bar per task on stderr when
    :func:`progress_enabled`, else :data:`NO_PROGRESS` (prints nothing)."""
    if not progress_enabled():
        yield NO_PROGRESS
        return
    with _progress() as bar:
        yield _RichReporter(bar)


def _progress() -> Progress:
    """rich's Progress on stderr (imported lazily: rich is not needed when silent)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=False,
    )
