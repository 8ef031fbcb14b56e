"""Driver of the ``sparkplug`` live source (see :mod:`edge.sources.live.base`)."""

from __future__ import annotations

from edge.sources.live.base import Driver
from edge.sources.live.sparkplug.config import SparkplugSourceConfig

__all__ = ["make_driver"]


def make_driver(config: SparkplugSourceConfig) -> Driver:
    """The driver for ``config``.

    Raises:
        edge.sources.live.LiveSourceError: the config cannot work (e.g. a secret is missing).
    """
    raise NotImplementedError("the sparkplug driver is not written yet")
