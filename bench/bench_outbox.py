"""Outbox + publisher benchmark at the reference gateway load.

Run by hand (needs /usr/sbin/mosquitto, like the tests)::

    python -m bench.bench_outbox [--outage-min 10] [--drain-rate 200]

Reference load (one gateway, messages built with :mod:`renkei.core.wire`, so sizes are real):

- ``telemetry``: 32 slow channels at 10 Hz, packed 1 s per message (10 rows, 4-decimal
  sensor values), 1 message/s;
- ``features``: one row per 1 s window: 32 channels x (mean, min, max, slope) + 9
  vibration features (names from :mod:`renkei.edge.features`), full float precision, 1/s;
- ``anomaly``: score, threshold, is_anomaly per window, 1/s;
- ``shot``: one row of 10 raw values + 10 deviations every 20 s.

That is 3.05 messages/s. The agent flushes once a second, so each second's messages are
enqueued together with ``enqueue_many`` (one transaction, one fsync).

Measured:

1. **Outbox throughput** on this machine's disk: single appends/s (one fsync each),
   batched appends/s (the agent's 1 s batches, and batches of 100), acks/s (batches of
   256 ids), all with ``synchronous=FULL``.
2. **Outage**: a publisher runs against a real Mosquitto with live data at the reference
   rate (real time). The broker is stopped; ``--outage-min`` minutes of traffic are
   enqueued *as fast as possible* (not in real time -- the outbox only sees the same rows
   either way); the broker is started again. Reported: disk bytes per buffered hour
   (database file after a WAL checkpoint, and the payload+topic bytes the ``max_bytes``
   limit counts), the drain rate (msgs/s and x the live rate; target >= 10x), live-message
   latency (enqueue -> subscriber) while the backlog drains, and a zero-loss check (every
   seq arrives at a persistent-session subscriber).
3. The same outage with an unlimited drain rate: the pipeline's ceiling on this machine.
4. **Open** of a full outbox (``--open-mib``, default the 256 MiB ``max_bytes`` default):
   the integrity check (``PRAGMA quick_check``) reads the whole file, with a warm and a
   cold page cache.
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from harness.services import Mosquitto
from renkei.core.wire import (
    GatewayState,
    MachineKind,
    MachinePayload,
    encode,
    gateway_topic,
    machine_topic,
)
from renkei.edge.features import slow_feature_names, vibration_feature_names
from renkei.edge.transport.outbox import Outbox, OutboxItem, OutboxSettings
from renkei.edge.transport.publisher import MqttSettings, Publisher

GW = "gw-bench"
CHANNELS = [f"ch{i:02d}_temp_C" for i in range(32)]
FEATURES = slow_feature_names(CHANNELS) + vibration_feature_names(fs_hz=10_000.0)
SHOT_FIELDS = [f"shot_f{i}" for i in range(10)]
STATE = gateway_topic(firm="acme", site="plant1", gateway=GW, kind="state")


def _topic(kind: MachineKind) -> str:
    return machine_topic(
        firm="acme", site="plant1", area="molding", line="l1", machine="imm-07", kind=kind
    )


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Load:
    """Builds the reference messages for simulated second ``t_s``."""

    def __init__(self, seed: int = 7) -> None:
        self.rng = random.Random(seed)

    def _payload(
        self, kind: MachineKind, ts: list[int], fields: dict[str, list[float | None]]
    ) -> Callable[[int], bytes]:
        def build(seq: int) -> bytes:
            return encode(
                MachinePayload(
                    v=1, gw=GW, seq=seq, sent_ms=_now_ms(), kind=kind, ts_ms=ts, fields=fields
                )
            )

        return build

    def second(self, t_s: int, t0_ms: int) -> list[OutboxItem]:
        r = self.rng
        base = t0_ms + 1000 * t_s
        ts = [base + 100 * i for i in range(10)]
        tele: dict[str, list[float | None]] = {
            c: [round(40 + 5 * r.random(), 4) for _ in ts] for c in CHANNELS
        }
        feats: dict[str, list[float | None]] = {f: [r.gauss(10, 3)] for f in FEATURES}
        score = r.random()
        anom: dict[str, list[float | None]] = {
            "score": [score],
            "threshold": [0.93],
            "is_anomaly": [float(score > 0.93)],
        }
        items = [
            OutboxItem(
                _topic(MachineKind.TELEMETRY), self._payload(MachineKind.TELEMETRY, ts, tele)
            ),
            OutboxItem(
                _topic(MachineKind.FEATURES), self._payload(MachineKind.FEATURES, [ts[-1]], feats)
            ),
            OutboxItem(
                _topic(MachineKind.ANOMALY), self._payload(MachineKind.ANOMALY, [ts[-1]], anom)
            ),
        ]
        if t_s % 20 == 0:
            shot: dict[str, list[float | None]] = {f: [r.gauss(100, 5)] for f in SHOT_FIELDS}
            shot.update({f"{f}_dev": [r.gauss(0, 1)] for f in SHOT_FIELDS})
            items.append(
                OutboxItem(_topic(MachineKind.SHOT), self._payload(MachineKind.SHOT, [base], shot))
            )
        return items


MSGS_PER_S = 3 + 1 / 20


# ------------------------------------------------------------------ helpers


class Collector:
    """A persistent-session QoS 1 subscriber (like the ingest) recording arrivals."""

    def __init__(self, port: int) -> None:
        self.lock = threading.Lock()
        self.got: dict[int, tuple[int, int]] = {}  # seq -> (sent_ms, received_ms)
        self.count = 0
        self.ready = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"bench-{uuid.uuid4().hex[:6]}",
            protocol=mqtt.MQTTv5,
        )
        self.client.reconnect_delay_set(0.1, 0.5)  # type: ignore[arg-type]
        self.client.on_connect = lambda c, *a: c.subscribe("renkei/v1/+/+/+/+/+/+", qos=1)
        self.client.on_subscribe = lambda *a: self.ready.set()
        self.client.on_message = self._on_message
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 3600
        # clean_start=False from the first connect, as the ingest does: Mosquitto 2.0.11
        # does not save a session that began with clean_start=1 across a restart.
        self.client.connect("127.0.0.1", port, clean_start=False, properties=props)
        self.client.loop_start()
        if not self.ready.wait(10):
            raise RuntimeError("subscriber got no SUBACK")

    def _on_message(self, client: mqtt.Client, userdata: object, m: mqtt.MQTTMessage) -> None:
        now = _now_ms()
        obj = orjson.loads(m.payload)
        with self.lock:
            self.count += 1
            self.got.setdefault(obj["seq"], (obj["sent_ms"], now))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _db_bytes_after_checkpoint(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path.stat().st_size


def _pct(sorted_values: list[float], pct: float) -> float:
    """The ``pct``-th percentile (nearest rank) of an ascending list."""
    k = max(0, min(len(sorted_values) - 1, round(pct / 100.0 * len(sorted_values)) - 1))
    return sorted_values[k]


def _rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


# ------------------------------------------------------------------ 1. outbox throughput


def bench_outbox(tmp: Path) -> list[tuple[str, str]]:
    load = Load()
    t0 = _now_ms()
    seconds = [load.second(t, t0) for t in range(200)]
    items = [it for sec in seconds for it in sec]
    rows: list[tuple[str, str]] = []
    with Outbox(settings=OutboxSettings(path=tmp / "micro.sqlite3")) as ob:
        n = 300
        t = time.perf_counter()
        for it in items[:n]:
            ob.enqueue(it.topic, it.make_payload)
        rows.append(
            ("append, 1 per transaction", f"{_rate(n, time.perf_counter() - t):,.0f} msgs/s")
        )
        lat_ms: list[float] = []
        t = time.perf_counter()
        for sec in seconds:
            t1 = time.perf_counter()
            ob.enqueue_many(sec)
            lat_ms.append((time.perf_counter() - t1) * 1000.0)
        dt = time.perf_counter() - t
        rows.append(("append, agent 1 s batches (~3)", f"{_rate(len(items), dt):,.0f} msgs/s"))
        lat_ms.sort()
        rows.append(
            (
                "  enqueue_many latency p50 / p99 / max",
                f"{_pct(lat_ms, 50):.2f} / {_pct(lat_ms, 99):.2f} / {lat_ms[-1]:.2f} ms",
            )
        )
        t = time.perf_counter()
        for _ in range(3):
            for i in range(0, len(items), 100):
                ob.enqueue_many(items[i : i + 100])
        dt = time.perf_counter() - t
        rows.append(("append, batches of 100", f"{_rate(3 * len(items), dt):,.0f} msgs/s"))
        ids = [r.id for r in ob.peek(-1, 100_000)]
        t = time.perf_counter()
        for i in range(0, len(ids), 256):
            ob.ack(ids[i : i + 256])
        rows.append(
            ("ack, batches of 256", f"{_rate(len(ids), time.perf_counter() - t):,.0f} msgs/s")
        )
    return rows


def _drop_page_cache(path: Path) -> None:
    """Ask the kernel to forget the file's cached pages (a cold open, as after a boot)."""
    for suffix in ("", "-wal"):
        f = path.with_name(path.name + suffix)
        if f.exists():
            fd = os.open(f, os.O_RDONLY)
            try:
                os.fdatasync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def bench_open(tmp: Path, *, mib: int) -> list[tuple[str, str]]:
    """Open time of a full outbox: ``PRAGMA quick_check`` plus the guard-file fsyncs."""
    path = tmp / "open.sqlite3"
    s = OutboxSettings(path=path, max_bytes=2 * mib * 1024 * 1024)
    payload = b"x" * 3000
    with Outbox(settings=s) as ob:
        while ob.stats().backlog_bytes < mib * 1024 * 1024:
            ob.enqueue_many([("renkei/v1/f/s/a/l/m/telemetry", lambda q: payload)] * 500)
        msgs = ob.stats().backlog_msgs
    size = path.stat().st_size
    rows: list[tuple[str, str]] = [("outbox file", f"{size / 2**20:,.0f} MiB, {msgs:,} messages")]
    for label, cold in (("warm page cache", False), ("cold page cache", True)):
        if cold:
            _drop_page_cache(path)
        t = time.perf_counter()
        Outbox(settings=s).close()
        rows.append((f"open incl. quick_check, {label}", f"{time.perf_counter() - t:.2f} s"))
    return rows


# ------------------------------------------------------------------ 2./3. outage


@dataclass
class OutageResult:
    drain_rate_setting: float
    backlog_msgs: int
    enqueue_s: float
    logical_bytes: int
    db_bytes: int
    drain_s: float
    live_latencies_ms: list[int]
    lost: int
    duplicates: int

    @property
    def drain_rate(self) -> float:
        return self.backlog_msgs / self.drain_s


def bench_outage(
    tmp: Path, *, outage_min: float, drain_rate: float, name: str, extra_conf: str = ""
) -> OutageResult:
    broker = Mosquitto(workdir=tmp / f"mq-{name}", extra_conf=extra_conf)
    broker.start()
    coll = Collector(broker.port)
    os_ = OutboxSettings(path=tmp / f"{name}.sqlite3", drain_rate_msgs_per_s=drain_rate)
    ob = Outbox(settings=os_)
    pub = Publisher(
        # The outbox/publisher mechanics at broker level (PUBACK deletes; no ingest here):
        # the end-to-end ack's cost is measured by bench_gateway and bench_ingest.
        settings=MqttSettings(
            host="127.0.0.1",
            port=broker.port,
            reconnect_min_s=0.2,
            reconnect_max_s=0.5,
            ack="broker",
        ),
        outbox=ob,
        outbox_settings=os_,
        state_topic=STATE,
        birth=lambda: encode(GatewayState(v=1, gw=GW, online=True, sent_ms=_now_ms())),
        death=encode(GatewayState(v=1, gw=GW, online=False, sent_ms=_now_ms())),
    )
    load = Load()
    t0 = _now_ms()
    stop_live = threading.Event()
    live_seqs: list[int] = []

    def live() -> None:  # the agent: one enqueue_many per second, real time
        next_t = time.monotonic()
        while not stop_live.is_set():
            live_seqs.extend(ob.enqueue_many(load.second(0, _now_ms())))
            pub.notify()
            next_t += 1.0
            stop_live.wait(max(0.0, next_t - time.monotonic()))

    try:
        pub.start()
        deadline = time.monotonic() + 10
        while not pub.stats().connected and time.monotonic() < deadline:
            time.sleep(0.01)
        live_thread = threading.Thread(target=live, daemon=True)
        live_thread.start()
        time.sleep(2.5)
        broker.stop()
        while pub.stats().connected:
            time.sleep(0.01)
        db_before = _db_bytes_after_checkpoint(os_.path)
        logical_before = ob.stats().backlog_bytes
        n_seconds = int(outage_min * 60)
        backlog: list[int] = []
        t = time.perf_counter()
        for s in range(n_seconds):
            backlog.extend(ob.enqueue_many(load.second(s, t0 - n_seconds * 1000)))
        enqueue_s = time.perf_counter() - t
        logical = ob.stats().backlog_bytes - logical_before
        db_bytes = _db_bytes_after_checkpoint(os_.path) - db_before
        pending = ob.stats().backlog_msgs
        broker.start()
        t_up = time.monotonic()
        while pub.stats().connects_total < 2 and time.monotonic() < t_up + 10:
            time.sleep(0.001)
        # Live = enqueued after the reconnect (the publisher's watermark is <= this);
        # whatever was enqueued while disconnected is backlog by definition.
        watermark = ob.last_id()
        deadline = t_up + 30 + 2 * pending / min(drain_rate, 1000.0)
        missing: list[int] = backlog
        while missing and time.monotonic() < deadline:
            with coll.lock:
                missing = [s for s in missing if s not in coll.got]
            time.sleep(0.01)
        drain_s = time.monotonic() - t_up
        if missing:
            print(
                f"!! {len(missing)} backlog messages not received after {drain_s:.0f} s "
                f"(first {missing[:10]}); outbox {ob.stats()}; publisher {pub.stats()}"
            )
        time.sleep(1.5)  # one more live batch
        stop_live.set()
        live_thread.join(5)
        end = time.monotonic() + 10
        while ob.stats().backlog_msgs and time.monotonic() < end:
            time.sleep(0.05)
        time.sleep(0.3)
        with coll.lock:
            during = [s for s in live_seqs if s > watermark and s in coll.got]
            lat = [coll.got[s][1] - coll.got[s][0] for s in during]
            expected = set(backlog) | set(live_seqs)
            lost = len(expected - set(coll.got))
            dups = coll.count - len(coll.got)
        return OutageResult(
            drain_rate, pending, enqueue_s, logical, db_bytes, drain_s, lat, lost, dups
        )
    finally:
        stop_live.set()
        pub.stop(timeout_s=5)
        ob.close()
        coll.close()
        broker.kill()


# ------------------------------------------------------------------ report


def _table(title: str, rows: list[tuple[str, str]]) -> None:
    w = max(len(k) for k, _ in rows)
    print(f"\n{title}")
    print("-" * (w + 26))
    for k, v in rows:
        print(f"{k:<{w}}  {v:>22}")


def _sizes() -> list[tuple[str, str]]:
    items = Load().second(0, _now_ms())
    rows = [
        (f"{it.topic.rsplit('/', 1)[1]} message", f"{len(it.make_payload(123456))} B")
        for it in items
    ]
    per_s = (
        sum(len(it.make_payload(1)) + len(it.topic) for it in items[:3])
        + (len(items[3].make_payload(1)) + len(items[3].topic)) / 20
    )
    rows.append(("messages / s", f"{MSGS_PER_S:.2f}"))
    rows.append(("payload+topic bytes / s", f"{per_s:,.0f} B"))
    return rows


def _outage_rows(r: OutageResult, outage_min: float) -> list[tuple[str, str]]:
    hours = outage_min / 60
    lat = sorted(r.live_latencies_ms) or [0]
    limit = "unlimited" if r.drain_rate_setting > 1e6 else f"{r.drain_rate_setting:.0f} msgs/s"
    return [
        ("drain rate setting", limit),
        ("backlog (messages)", f"{r.backlog_msgs:,}"),
        ("enqueue time for the backlog", f"{r.enqueue_s:.2f} s"),
        ("disk bytes / buffered hour", f"{r.db_bytes / hours / 1e6:,.1f} MB"),
        ("max_bytes bytes / buffered hour", f"{r.logical_bytes / hours / 1e6:,.1f} MB"),
        ("hours in 256 MiB max_bytes", f"{256 * 2**20 / (r.logical_bytes / hours):,.1f} h"),
        ("drain time", f"{r.drain_s:.1f} s"),
        ("drain rate", f"{r.drain_rate:,.0f} msgs/s"),
        ("drain rate x live rate", f"{r.drain_rate / MSGS_PER_S:,.0f} x"),
        ("live msgs (after reconnect)", f"{len(r.live_latencies_ms)}"),
        ("live latency p50 / max", f"{statistics.median(lat):.0f} / {lat[-1]:.0f} ms"),
        ("lost / duplicates", f"{r.lost} / {r.duplicates}"),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    ap.add_argument("--outage-min", type=float, default=10.0)
    ap.add_argument("--drain-rate", type=float, default=200.0)
    ap.add_argument(
        "--open-mib", type=int, default=256, help="outbox size for the open/quick_check run"
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="renkei-bench-outbox-") as d:
        tmp = Path(d)
        _table("Reference load (real renkei.core.wire payloads)", _sizes())
        _table("Outbox on this disk (synchronous=FULL)", bench_outbox(tmp))
        _table(f"Opening a {args.open_mib} MiB outbox", bench_open(tmp, mib=args.open_mib))
        r = bench_outage(tmp, outage_min=args.outage_min, drain_rate=args.drain_rate, name="a")
        _table(
            f"{args.outage_min:g}-minute outage, enqueued at full speed, live data continuing",
            _outage_rows(r, args.outage_min),
        )
        r2 = bench_outage(tmp, outage_min=args.outage_min, drain_rate=1e9, name="b")
        _table("Same outage, drain rate unlimited (ceiling)", _outage_rows(r2, args.outage_min))


if __name__ == "__main__":
    main()
