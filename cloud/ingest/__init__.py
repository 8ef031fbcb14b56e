"""MQTT -> time-series ingest: validation, line protocol, the worker, its CLI.

Public API: :class:`IngestSettings`, :class:`IngestWorker`, :class:`IngestStats`
(:mod:`cloud.ingest.worker`) and the encoders in :mod:`cloud.ingest.lineproto`.
"""

from cloud.ingest.worker import IngestSettings, IngestStats, IngestWorker

__all__ = ["IngestSettings", "IngestStats", "IngestWorker"]
