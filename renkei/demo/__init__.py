"""``renkei demo``: the whole pipeline in one process on embedded defaults.

An in-process MQTT broker (amqtt) and an embedded SQLite time-series store stand in for
Mosquitto and InfluxDB; everything else — gateway agents, outbox, publisher, ingest — is
the production code, configured from the example gateway configs in ``firmware-config/``.
"""
