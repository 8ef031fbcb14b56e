"""A gateway whose every message is countable by sequence number, for loss accounting.

It is the real gateway delivery stack -- :class:`renkei.edge.transport.outbox.Outbox` and
:class:`renkei.edge.transport.publisher.Publisher` -- fed by a synthetic source: message ``seq``
carries one telemetry row at ``t0_ms + seq`` with field ``x = seq``. So InfluxDB holds exactly one
point per delivered seq (same series + timestamp on redelivery: no duplicate point), and
``SELECT x`` lists the delivered seqs.

Run as a process (the chaos test kills it with ``kill -9``)::

    python -m tests.seq_gateway --port P --outbox PATH --gw gw-1 --t0-ms T --rate 20 \
        --stop-file PATH

It enqueues ``--rate`` messages per second until ``--stop-file`` exists, then keeps
publishing until SIGTERM (clean stop) or SIGKILL.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import orjson

from renkei.core.wire import GatewayState, encode, gateway_topic, machine_topic
from renkei.edge.transport.outbox import Outbox, OutboxSettings
from renkei.edge.transport.publisher import MqttSettings, Publisher

FIRM, SITE = "acme", "osaka"
FIELD = "x"


def seq_topic() -> str:
    """The machine topic every seq message goes to."""
    return machine_topic(
        firm=FIRM, site=SITE, area="molding", line="line-1", machine="imm-1", kind="telemetry"
    )


def seq_payload(gw: str, seq: int, t0_ms: int) -> bytes:
    """Message ``seq``: one row at ``t0_ms + seq`` with ``x = seq``."""
    return orjson.dumps(
        {
            "v": 1,
            "gw": gw,
            "seq": seq,
            "sent_ms": time.time_ns() // 1_000_000,
            "kind": "telemetry",
            "ts_ms": [t0_ms + seq],
            "fields": {FIELD: [float(seq)]},
        }
    )


def state_topic(gw: str) -> str:
    return gateway_topic(firm=FIRM, site=SITE, gateway=gw, kind="state")


#: The machine every seq gateway serves (its birth lists it: the ingest confirms only a
#: gateway bound to the message's machine topic).
MACHINE_PATH = "molding/line-1/imm-1"


def _state(gw: str, online: bool) -> bytes:
    return encode(
        GatewayState(
            v=1,
            gw=gw,
            online=online,
            sent_ms=time.time_ns() // 1_000_000,
            machines=[MACHINE_PATH],
        )
    )


def make_publisher(
    outbox: Outbox, settings: OutboxSettings, gw: str, port: int, **mqtt: Any
) -> Publisher:
    """A publisher for gateway ``gw`` of ``acme/osaka`` on a loopback broker."""
    kw: dict[str, Any] = {"reconnect_min_s": 0.2, "reconnect_max_s": 1.0, "keepalive_s": 5}
    kw.update(mqtt)
    return Publisher(
        settings=MqttSettings(host="127.0.0.1", port=port, client_id=gw, **kw),
        outbox=outbox,
        outbox_settings=settings,
        state_topic=state_topic(gw),
        birth=lambda: _state(gw, True),
        death=_state(gw, False),
    )


def seqs_in_influx(influx: Any, database: str, gw: str) -> list[int]:
    """Every ``x`` (= seq) InfluxDB holds for ``gw``, one per point, sorted."""
    series = influx.query(f'SELECT "{FIELD}" FROM "telemetry" WHERE "gw"=\'{gw}\'', db=database)
    if not series:
        return []
    return sorted(int(v[1]) for v in series[0]["values"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--outbox", type=Path, required=True)
    ap.add_argument("--gw", required=True)
    ap.add_argument("--t0-ms", type=int, required=True)
    ap.add_argument("--rate", type=float, default=20.0)
    ap.add_argument("--stop-file", type=Path, required=True)
    ap.add_argument("--confirm-timeout-s", type=float, default=5.0)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = OutboxSettings(path=args.outbox, drain_rate_msgs_per_s=500, max_inflight=50)
    outbox = Outbox(settings=settings)
    pub = make_publisher(
        outbox,
        settings,
        args.gw,
        args.port,
        wait_for_ingest="renkei-ingest",
        confirm_timeout_s=args.confirm_timeout_s,
        confirm_timeout_max_s=4 * args.confirm_timeout_s,
        outage_log_interval_s=10.0,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    pub.start()
    topic = seq_topic()
    period = 1.0 / args.rate
    next_t = time.monotonic()
    while not stop.is_set():
        if not args.stop_file.exists():
            outbox.enqueue(topic, lambda seq: seq_payload(args.gw, seq, args.t0_ms))
            pub.notify()
        next_t += period
        stop.wait(max(0.0, next_t - time.monotonic()))
    pub.stop(timeout_s=5.0)
    outbox.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
