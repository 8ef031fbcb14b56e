"""Driver of the ``modbus`` live source (see :mod:`edge.sources.live.base`)."""

from __future__ import annotations

from edge.sources.live.base import Driver
from edge.sources.live.modbus.config import ModbusSourceConfig

__all__ = ["make_driver"]


def make_driver(config: ModbusSourceConfig) -> Driver:
    """The driver for ``config``.

    Raises:
        edge.sources.live.LiveSourceError: the config cannot work (e.g. a secret is missing).
    """
    raise NotImplementedError("the modbus driver is not written yet")
