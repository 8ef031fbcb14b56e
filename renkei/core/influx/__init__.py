"""What every layer shares about InfluxDB: the measurement contract and line protocol.

- :mod:`renkei.core.influx.contract`: measurement names, tags and fields that the ingest
  writes, the dashboards and alert rules read, and the point builders of the other
  producers (``rul``, ``mold``, ``quality``, ``model_deploy``).
- :mod:`renkei.core.influx.lineproto`: escaping and formatting of single points (encoder).
- :mod:`renkei.core.influx.lineparse`: the line-protocol parser (decoder).

Nothing here talks to a server; the HTTP client, its error mapping and the stores are in
:mod:`renkei.cloud.store`.
"""
