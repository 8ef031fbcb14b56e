"""Time-series stores behind one Protocol (:class:`TimeSeriesStore`): the public API.

Modules outside the store import from here, not from its submodules:

- :class:`TimeSeriesStore`, :class:`Row`, :data:`FieldValue`, :data:`Precision`: what a
  writer or reader of points depends on; :func:`open_store` builds one.
- :class:`InfluxSettings`, :func:`influx_settings_from_options`, :data:`INFLUX_OPTIONS`:
  where InfluxDB is (construction time).
- :class:`InfluxStore` (InfluxDB 1.x/2.x/3.x via the v1 HTTP API) and :class:`SqliteStore`
  (embedded, for ``renkei demo``): the implementations.
- :func:`run_query` and :func:`quote_ident`/:func:`quote_literal`/:func:`quote_tag`:
  InfluxQL reads beyond ``count``/``last`` (:mod:`renkei.cloud.store.influxql`);
  :func:`http_client` for a reader with needs of its own (chunked answers).
- :mod:`renkei.cloud.store.errors`: how InfluxDB answers become :class:`StoreUnavailable`
  / :class:`StoreRejected`.

The measurement contract and the line-protocol codec are in :mod:`renkei.core.influx`.
"""

from renkei.cloud.store.base import (
    FieldValue,
    Precision,
    Row,
    StoreError,
    StoreRejected,
    StoreUnavailable,
    TimeSeriesStore,
)
from renkei.cloud.store.factory import open_store
from renkei.cloud.store.influx import (
    INFLUX_OPTIONS,
    InfluxSettings,
    InfluxStore,
    http_client,
    influx_settings_from_options,
    quote_ident,
    quote_literal,
    quote_tag,
)
from renkei.cloud.store.influxql import run_query
from renkei.cloud.store.sqlite import SqliteStore

__all__ = [
    "INFLUX_OPTIONS",
    "FieldValue",
    "InfluxSettings",
    "InfluxStore",
    "Precision",
    "Row",
    "SqliteStore",
    "StoreError",
    "StoreRejected",
    "StoreUnavailable",
    "TimeSeriesStore",
    "http_client",
    "influx_settings_from_options",
    "open_store",
    "quote_ident",
    "quote_literal",
    "quote_tag",
    "run_query",
]
