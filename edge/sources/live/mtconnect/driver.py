"""Driver of the ``mtconnect`` live source (see :mod:`edge.sources.live.base`)."""

from __future__ import annotations

from edge.sources.live.base import Driver
from edge.sources.live.mtconnect.config import MtconnectSourceConfig

__all__ = ["make_driver"]


def make_driver(config: MtconnectSourceConfig) -> Driver:
    """The driver for ``config``.

    Raises:
        edge.sources.live.LiveSourceError: the config cannot work (e.g. a secret is missing).
    """
    raise NotImplementedError("the mtconnect driver is not written yet")
