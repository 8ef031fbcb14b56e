"""One entry point that builds a :class:`~renkei.cloud.store.base.TimeSeriesStore`."""

from __future__ import annotations

from pathlib import Path

from renkei.cloud.store.base import TimeSeriesStore
from renkei.cloud.store.influx import InfluxSettings, InfluxStore
from renkei.cloud.store.sqlite import SqliteStore

__all__ = ["open_store"]


def open_store(target: InfluxSettings | str | Path) -> TimeSeriesStore:
    """The store behind ``target``.

    Args:
        target: :class:`InfluxSettings` for InfluxDB (v1 HTTP API), or a file path (or
            ``":memory:"``) for the embedded SQLite store of ``renkei demo``.

    Returns:
        An open store; the caller closes it (``close()``).

    Raises:
        ConfigError: invalid InfluxDB settings.
        StoreUnavailable: the SQLite file cannot be opened.
    """
    if isinstance(target, InfluxSettings):
        return InfluxStore(settings=target)
    return SqliteStore(path=target)
