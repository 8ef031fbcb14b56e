"""Time-series stores behind one Protocol (:class:`TimeSeriesStore`).

- :class:`InfluxStore` / :class:`InfluxSettings`: InfluxDB 1.x/2.x/3.x via the v1 HTTP API.
- :class:`SqliteStore`: embedded, for ``renkei demo``.
"""

from renkei.cloud.store.base import FieldValue, Row, TimeSeriesStore
from renkei.cloud.store.influx import InfluxSettings, InfluxStore
from renkei.cloud.store.sqlite import SqliteStore

__all__ = ["FieldValue", "InfluxSettings", "InfluxStore", "Row", "SqliteStore", "TimeSeriesStore"]
