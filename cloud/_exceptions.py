"""The cloud package's exceptions: a branch of the one Renkei tree (:mod:`renkei.core.errors`).

Third-party errors (``httpx``, ``sqlite3``, ``paho``, SQLAlchemy) are caught where the cloud
code calls those libraries and re-raised as one of these, so callers only ever handle
Renkei exceptions. Defined here or re-exported from :mod:`renkei.core.errors` (the store
errors are shared with the line-protocol codec, the config error with the gateway)::

    RenkeiError                     renkei.core.errors
    ├── ConfigError                 bad settings (also a ValueError)      [core]
    ├── StoreError                  a time-series store call failed       [core]
    │   ├── StoreUnavailable        retryable: refused, timeout, 5xx, 429, auth, missing db
    │   └── StoreRejected           not retryable: the store refused *this data* (4xx)
    │       └── LineProtocolError   the body is not valid line protocol (also a ValueError)
    └── CloudError                  raised on purpose by the cloud services
        ├── IngestError             the ingest worker cannot run (e.g. already running)
        ├── PortabilityError        renkei.cloud.portability.errors
        ├── PlannerInputError       renkei.cloud.planner.errors
        ├── RolloutError            renkei.cloud.rollout.service
        ├── RegistryImportError, RegistryOwnershipError   renkei.cloud.registry.bulk
        └── ApiError                renkei.cloud.api.errors (HTTP status, code, detail)

The split between :class:`StoreUnavailable` and :class:`StoreRejected` is what the ingest
worker relies on: the first means "hold the batch and retry later, nothing is wrong with
the data"; the second means "this data will never be accepted, isolate the offending
message and dead-letter it".
"""

from __future__ import annotations

from renkei.core.errors import (
    ConfigError,
    LineProtocolError,
    RenkeiError,
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


class CloudError(RenkeiError):
    """Base class of the exceptions the cloud services raise on purpose (the store and
    config errors, shared with other layers, sit beside it under :class:`RenkeiError`)."""


class IngestError(CloudError):
    """The ingest worker cannot do what was asked (e.g. ``run()`` called twice)."""
