"""The fixtures start real servers that answer."""

from __future__ import annotations

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from harness.services import InfluxDB, Mosquitto


def test_mosquitto_accepts_connection(mosquitto: Mosquitto) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", mosquitto.port)
    client.disconnect()


def test_influxdb_write_and_count(influxdb: InfluxDB, database: str) -> None:
    import urllib.request

    influxdb.create_database(database)
    req = urllib.request.Request(
        f"{influxdb.url}/write?db={database}&precision=ms",
        data=b"m,tag=a f=1 1700000000000\nm,tag=a f=2 1700000000001\nm,tag=a f=3 1700000000001",
        method="POST",
    )
    with urllib.request.urlopen(req) as r:
        assert r.status == 204
    # The third line overwrites the second: same series and timestamp.
    assert influxdb.count_points(database, "m", "f") == 2
