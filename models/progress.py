"""Progress bars for training, evaluation, commissioning and reports (rich), silent when
nobody watches.

:func:`track` wraps an iterable, :func:`steps` gives an ``advance()`` callable for loops that
are not over one iterable. Both draw a :mod:`rich.progress` bar (on stderr, so stdout stays
parseable) only when :func:`progress_enabled`: stdout is a terminal, no test is running
(pytest sets ``PYTEST_CURRENT_TEST``) and ``RENKEI_PROGRESS`` is not ``0``. Otherwise they
cost nothing and print nothing. ``RENKEI_PROGRESS=1`` forces the bars on (e.g. a CI log).

Usage in a recipe::

    from renkei.models.progress import track

    for path in track(files, "NAB files"):
        ...
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator, Sized
from contextlib import contextmanager
from typing import TYPE_CHECKING, Protocol, TypeVar

if TYPE_CHECKING:
    from rich.progress import Progress

__all__ = ["Advance", "progress_enabled", "steps", "track"]

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
