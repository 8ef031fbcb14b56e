"""Renkei (連携): edge-to-cloud monitoring for small and medium manufacturers.

One import name, layered top to bottom (``ARCHITECTURE.md``; enforced by ``lint-imports``):

- :mod:`renkei.cli`, :mod:`renkei.demo` — the ``renkei`` command and the embedded demo.
- :mod:`renkei.models`, :mod:`renkei.dashboards` — training/evaluation/publishing of models;
  Grafana dashboards and alert rules as code.
- :mod:`renkei.cloud` — ingest, store, registry, capacity sharing, planner, rollout; its web
  API (:mod:`renkei.cloud.api`) on top.
- :mod:`renkei.edge` — the gateway agent (sources → features → model → transport).
- :mod:`renkei.core` — what both sides share and nothing else: the wire contract, the MQTT
  session, the error tree, model manifests and signatures, the InfluxDB contract.

The folders ``edge/``, ``cloud/``, ``models/`` and ``dashboards/`` live at the top of the
repository; ``renkei/<folder>`` are symlinks to them, which the wheel build follows.
"""

__version__ = "0.1.0"
