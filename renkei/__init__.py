"""Renkei (連携): edge-to-cloud monitoring for small and medium manufacturers.

Packages of this distribution:

- :mod:`renkei` — what both sides share: the wire contract (:mod:`renkei.core.wire`), the CLI
  and the embedded demo.
- :mod:`edge` — the gateway agent (sources → features → model → outbox → MQTT).
- :mod:`cloud` — MQTT ingest into InfluxDB, storage back-ends.
- :mod:`models` — anomaly models trained on real data and exported to ONNX.
"""

__version__ = "0.1.0"
