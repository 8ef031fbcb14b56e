"""MQTT -> time-series ingest: validation, line protocol, the worker, its CLI.

Public API: :class:`IngestSettings`, :class:`IngestWorker`, :class:`IngestStats`
(:mod:`renkei.cloud.ingest.worker`, which composes :mod:`.session` (MQTT), :mod:`.writer`
(store writes) and :mod:`.deadletters`) and the encoders in
:mod:`renkei.cloud.ingest.lineproto`.
"""

from renkei.cloud.ingest.worker import IngestSettings, IngestStats, IngestWorker

__all__ = ["IngestSettings", "IngestStats", "IngestWorker"]
