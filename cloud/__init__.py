"""Renkei cloud side: MQTT ingest (``renkei.cloud.ingest``) and time-series stores
(``renkei.cloud.store``)."""

from renkei.cloud._exceptions import (
    CloudError,
    ConfigError,
    IngestError,
    LineProtocolError,
    StoreError,
    StoreRejected,
    StoreUnavailable,
)

__all__ = [
    "CloudError",
    "ConfigError",
    "IngestError",
    "LineProtocolError",
    "StoreError",
    "StoreRejected",
    "StoreUnavailable",
]
