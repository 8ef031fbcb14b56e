"""Renkei cloud side: MQTT ingest (``cloud.ingest``) and time-series stores (``cloud.store``)."""

from cloud._exceptions import (
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
