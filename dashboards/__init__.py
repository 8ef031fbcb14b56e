"""Renkei dashboards and alert rules as code (Grafana, InfluxQL).

- :mod:`renkei.dashboards.boards`: the dashboards (grafana-foundation-sdk).
- :mod:`renkei.dashboards.alerts`: Grafana-managed alert rules.
- :mod:`renkei.dashboards.build`: writes ``dashboards/generated`` and ``dashboards/provisioning``.
- :mod:`renkei.dashboards.push`: provisions a running Grafana over its HTTP API (grafana-client).
- :mod:`renkei.dashboards.emulate`: Grafana's query interpolation and server-side expressions,
  re-implemented to run the panel queries and alert rules in tests.

The measurements read (and the ones other producers owe) are fixed in
:mod:`renkei.core.influx.contract`.

Command line: ``python -m dashboards`` (= ``renkei dashboards build``).
"""
