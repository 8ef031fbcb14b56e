"""Ingest under faults: a ``kill -9`` of the ingest process, and a 30 s InfluxDB outage.

Exact point counts after recovery prove no loss and no duplicates.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

from harness.loadgen import QoS1Publisher
from harness.procs import ingest_argv
from harness.services import REPO, InfluxDB, Mosquitto
from harness.wait import pause, wait_for
from renkei.cloud.ingest.worker import IngestWorker
from tests.integration.test_ingest_worker import (
    ROWS,
    assert_exact,
    count,
    messages,
    persistent_mosquitto,
    running,
    settings_for,
    store_for,
)

__all__ = ["persistent_mosquitto"]  # a fixture, used by name below


def start_ingest(
    broker: Mosquitto, influx: InfluxDB, database: str, client_id: str, log: Path
) -> subprocess.Popen[bytes]:
    """``python -m renkei.cloud.ingest`` as a real OS process, logging to ``log``."""
    argv = ingest_argv(
        broker_url=broker.url,
        influx_url=influx.url,
        database=database,
        client_id=client_id,
        extra=["--batch-max-delay-s", "0.05", "--retry-max-s", "1", "--stats-interval-s", "0"],
    )
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            argv, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    subscribed = log.read_bytes().count(b"subscribed to")

    def ready() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"ingest exited with {proc.returncode}:\n{log.read_text()}")
        return log.read_bytes().count(b"subscribed to") > subscribed

    wait_for(ready, 20, "the ingest process to subscribe")
    return proc


def test_kill_9_mid_stream_then_restart(
    tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB, database: str
) -> None:
    client_id = f"ingest-{uuid.uuid4().hex[:8]}"
    log = tmp_path / "ingest.log"
    total = 150
    proc = start_ingest(mosquitto, influxdb, database, client_id, log)
    procs = [proc]
    try:
        with QoS1Publisher(host="127.0.0.1", port=mosquitto.port, window=10) as pub:
            batch = messages(range(total))

            def publish() -> None:
                for i in range(0, total, 5):
                    pub.publish_many(batch[i : i + 5])
                    pause(0.02, "pace: 5 messages per 20 ms")

            sender = threading.Thread(target=publish, daemon=True)
            sender.start()
            wait_for(lambda: count(influxdb, database) >= 20 * ROWS, 30, "some points")
            proc.kill()  # SIGKILL: no flush, no ack, no DISCONNECT
            proc.wait(10)
            written_at_kill = count(influxdb, database)
            assert written_at_kill < total * ROWS, "the stream should still be running"
            pause(0.5, "the broker queues the stream for the dead session")
            proc = start_ingest(mosquitto, influxdb, database, client_id, log)
            procs.append(proc)
            sender.join(60)
            assert not sender.is_alive()
            assert_exact(influxdb, database, total * ROWS, timeout_s=60)
        # A clean stop (SIGTERM) exits 0.
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0, log.read_text()
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)


@pytest.mark.slow
def test_influxdb_outage_of_30_s_loses_nothing(
    mosquitto: Mosquitto, influxdb_own: InfluxDB, database: str
) -> None:
    influx = influxdb_own
    settings = settings_for(mosquitto, keepalive_s=5, retry_max_s=2.0)
    worker = IngestWorker(settings=settings, store=store_for(influx, database))
    with running(worker), QoS1Publisher(host="127.0.0.1", port=mosquitto.port) as pub:
        pub.publish_many(messages(range(0, 40)))
        assert_exact(influx, database, 40 * ROWS)
        influx.stop()
        stopped_at = time.monotonic()
        pub.publish_many(messages(range(40, 100)))  # the broker accepts; the store is down
        wait_for(lambda: worker.stats().store_retries >= 3, 20, "store retries")
        assert worker.stats().acked == 40, "nothing may be acked while the store is down"
        pause(max(0.0, 30 - (time.monotonic() - stopped_at)), "the outage lasts 30 s")
        influx.start()
        pub.publish_many(messages(range(100, 140)))
        assert_exact(influx, database, 140 * ROWS, timeout_s=60)
        wait_for(lambda: worker.stats().acked == 140, 10, "all acked")
        stats = worker.stats()
        # Keepalives went on during the outage (keepalive 5 s << 30 s): one connection.
        assert stats.connects == 1, stats
        assert stats.points == 140 * ROWS


def test_batch_held_across_a_reconnect_is_never_acked_on_the_new_connection(
    persistent_mosquitto: Mosquitto, influxdb_own: InfluxDB, database: str
) -> None:
    """Packet ids are per connection: a batch received before a reconnect is dropped
    unacknowledged (the broker redelivers it), never acked with stale ids."""
    broker, influx = persistent_mosquitto, influxdb_own
    worker = IngestWorker(settings=settings_for(broker), store=store_for(influx, database))
    with running(worker), QoS1Publisher(host="127.0.0.1", port=broker.port) as pub:
        pub.publish_many(messages(range(10)))
        assert_exact(influx, database, 10 * ROWS)
        influx.stop()
        pub.publish_many(messages(range(10, 30)))
        wait_for(lambda: worker.stats().store_retries >= 2, 20, "the worker holding a batch")
        broker.restart()  # the held batch's connection ends
        wait_for(lambda: worker.stats().subscribed, 20, "reconnected")
        influx.start()
        assert_exact(influx, database, 30 * ROWS, timeout_s=40)
        wait_for(lambda: worker.stats().acked == 30, 10, "30 acks")
        stats = worker.stats()
        assert stats.connects == 2
        # The 20 held messages arrived twice (before and after the reconnect) and were
        # acknowledged once, on the connection that delivered them last.
        assert stats.messages >= 40, stats
        assert stats.acked == 30, stats
