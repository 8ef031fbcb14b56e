"""Renkei dashboards and alert rules as code (Grafana, InfluxQL).

- :mod:`dashboards.boards`: the dashboards (grafana-foundation-sdk).
- :mod:`dashboards.alerts`: Grafana-managed alert rules.
- :mod:`dashboards.build`: writes ``dashboards/generated`` and ``dashboards/provisioning``.
- :mod:`dashboards.push`: provisions a running Grafana over its HTTP API (grafana-client).
- :mod:`dashboards.emulate`: Grafana's query interpolation and server-side expressions,
  re-implemented to run the panel queries and alert rules in tests.
- :mod:`dashboards.contract`: the measurements read (and the ones other producers owe).

Command line: ``python -m dashboards`` (= ``renkei dashboards build``).
"""
