"""Maximal registry import vs. other firms' requests: ``PUT /api/v1/firms/{id}/registry``.

Run: ``python -m bench.bench_api_import [--firms 50] [--get-rate 40] [--seed 3]
[--repeat 2]``. Target: while one firm imports the largest registry document the API
accepts (``max_body_bytes``, at most ``max_import_rows`` rows), a light ``GET`` of another
firm (its machine list) keeps p99 < 200 ms and other firms' writes (one booking each)
never fail with "database is locked"; the import itself finishes in seconds.

Setup: ``renkei cloud api`` in its own process (uvicorn, the registry in SQLite, file +
WAL) on a free loopback port; ``--firms`` firms with a site, a line and 5 machines each
(Core bulk inserts, not timed). The document: injection-molding machines of the importing
firm (compact JSON), as many as fit under both limits. Measured: light GETs at
``--get-rate`` per second from a thread pool, first without an import (baseline) for
3 s, then during each import (``--repeat`` times: first inserts, then updates the same
rows), plus one booking write per second by another firm; the server's RSS before and
after (``/proc``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert

from renkei.cloud.api import ApiSettings
from renkei.cloud.registry import (
    Firm,
    Line,
    Machine,
    Role,
    Site,
    issue_key,
    make_engine,
    session_scope,
)
from renkei.cloud.registry.migrate import upgrade

NOW = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
IMM = {
    "process": "injection_molding",
    "clamp_force_kN": 1500.0,
    "tie_bar_h_mm": 510.0,
    "tie_bar_v_mm": 510.0,
    "min_mold_height_mm": 200.0,
    "max_mold_height_mm": 550.0,
    "shot_capacity_g": 400.0,
    "locating_ring_mm": 100.0,
}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def populate(url: str, firms: int) -> dict[str, str]:
    """Firms ``f000..`` (site, line, 5 machines) and ``big``; returns operator keys."""
    upgrade(url)
    engine = make_engine(url)
    ids = [f"f{i:03d}" for i in range(firms)] + ["big"]
    with engine.begin() as conn:
        conn.execute(
            insert(Firm), [{"id": f, "name": f, "region": "kansai", "created_at": NOW} for f in ids]
        )
        conn.execute(
            insert(Site),
            [
                {
                    "id": f"{f}-s1",
                    "firm_id": f,
                    "name": "plant",
                    "latitude_deg": 34.7,
                    "longitude_deg": 135.5,
                    "region": "kansai",
                    "resins": ["PP"],
                    "certifications": [],
                }
                for f in ids
            ],
        )
        conn.execute(
            insert(Line), [{"id": f"{f}-l1", "site_id": f"{f}-s1", "name": "L1"} for f in ids]
        )
        conn.execute(
            insert(Machine),
            [
                {"id": f"{f}-m{j}", "firm_id": f, "line_id": f"{f}-l1", "name": f"m{j}"} | IMM
                for f in ids[:-1]
                for j in range(5)
            ],
        )
    keys = {}
    with session_scope(engine) as s:
        for f in ids:
            keys[f] = issue_key(s, firm_id=f, role=Role.OPERATOR)
    engine.dispose()
    return keys


def maximal_document(settings: ApiSettings) -> tuple[bytes, int]:
    """The largest document both limits allow (compact JSON), and its row count."""

    def doc(n: int) -> bytes:
        rows = [
            {"id": f"big-m{i:06d}", "firm_id": "big", "line_id": "big-l1", "name": f"m{i}"} | IMM
            for i in range(n)
        ]
        return json.dumps({"machines": rows}, separators=(",", ":")).encode()

    n = settings.max_import_rows
    body = doc(n)
    while len(body) > settings.max_body_bytes:
        n = int(n * settings.max_body_bytes / len(body) * 0.999)
        body = doc(n)
    return body, n


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class Probe:
    """Light GETs and small writes of other firms while ``running`` is set."""

    base: str
    keys: dict[str, str]
    rate: float
    latencies_ms: list[float] = field(default_factory=list)
    get_errors: list[str] = field(default_factory=list)
    writes_ok: int = 0
    write_errors: list[str] = field(default_factory=list)
    running: threading.Event = field(default_factory=threading.Event)

    def _get(self, client: httpx.Client, firm: str) -> None:
        t0 = time.perf_counter()
        r = client.get(
            f"{self.base}/api/v1/firms/{firm}/machines",
            headers={"Authorization": f"Bearer {self.keys[firm]}"},
        )
        self.latencies_ms.append((time.perf_counter() - t0) * 1000)
        if r.status_code != 200:
            self.get_errors.append(f"{r.status_code} {r.text[:200]}")

    def _write(self, client: httpx.Client, firm: str) -> None:
        r = client.post(
            f"{self.base}/api/v1/firms/{firm}/bookings",
            json=[{"machine_id": f"{firm}-m0", "start": "2026-12-01", "hours_per_day": 1}],
            headers={"Authorization": f"Bearer {self.keys[firm]}"},
        )
        if r.status_code == 201:
            self.writes_ok += 1
        else:
            self.write_errors.append(f"{r.status_code} {r.text[:200]}")

    def run(self) -> None:
        firms = [f for f in self.keys if f != "big"]
        with httpx.Client(timeout=60) as client, ThreadPoolExecutor(8) as pool:
            i = 0
            next_at = time.perf_counter()
            while self.running.is_set():
                firm = firms[i % len(firms)]
                pool.submit(self._get, client, firm)
                if i % max(1, int(self.rate)) == 0:
                    pool.submit(self._write, client, firms[(i * 7) % len(firms)])
                i += 1
                next_at += 1 / self.rate
                time.sleep(max(0.0, next_at - time.perf_counter()))


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(base: str, keys: dict[str, str], rate: float, work: Any) -> tuple[Probe, Any]:
    probe = Probe(base, keys, rate)
    probe.running.set()
    thread = threading.Thread(target=probe.run)
    thread.start()
    try:
        result = work()
    finally:
        probe.running.clear()
        thread.join()
    return probe, result


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--firms", type=int, default=50)
    ap.add_argument("--get-rate", type=float, default=40.0, help="light GETs per second")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument(
        "--server-cwd",
        default=None,
        help="run the server from another checkout (e.g. an older commit) to compare",
    )
    args = ap.parse_args(argv)
    settings = ApiSettings()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/registry.sqlite3"
        keys = populate(url, args.firms)
        body, rows = maximal_document(settings)
        port = free_port()
        env = os.environ | {"RENKEI_API_DATABASE_URL": url, "RENKEI_LOG_LEVEL": "WARNING"}
        server = subprocess.Popen(
            [sys.executable, "-m", "renkei.cli", "cloud", "api", "--port", str(port)],
            env=env,
            cwd=args.server_cwd,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    httpx.get(f"{base}/api/v1/me", timeout=1)
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise SystemExit("the API did not start") from None
                    time.sleep(0.1)
            rss0 = rss_mb(server.pid)
            measure(base, keys, args.get_rate, lambda: time.sleep(1.5))  # warm-up
            baseline, _ = measure(base, keys, args.get_rate, lambda: time.sleep(3))
            print(
                f"document: {rows} rows, {len(body) / 1e6:.2f} MB "
                f"(limits: {settings.max_import_rows} rows, {settings.max_body_bytes} bytes)"
            )
            print(
                f"{'phase':<18}{'import s':>9}{'GETs':>6}{'p50 ms':>8}{'p95 ms':>8}"
                f"{'p99 ms':>8}{'max ms':>8}{'writes':>8}{'failed':>8}"
            )

            def row(name: str, probe: Probe, seconds: float | None) -> None:
                lat = probe.latencies_ms
                took = "" if seconds is None else f"{seconds:.2f}"
                print(
                    f"{name:<18}{took:>9}{len(lat):>6}{pct(lat, 0.5):>8.1f}{pct(lat, 0.95):>8.1f}"
                    f"{pct(lat, 0.99):>8.1f}{max(lat, default=0):>8.1f}{probe.writes_ok:>8}"
                    f"{len(probe.write_errors) + len(probe.get_errors):>8}"
                )

            row("no import", baseline, None)
            all_during: list[float] = []
            for n in range(args.repeat):

                def work() -> tuple[float, httpx.Response]:
                    t0 = time.perf_counter()
                    r = httpx.put(
                        f"{base}/api/v1/firms/big/registry",
                        content=body,
                        headers={
                            "Authorization": f"Bearer {keys['big']}",
                            "Content-Type": "application/json",
                        },
                        timeout=600,
                    )
                    return time.perf_counter() - t0, r

                probe, (seconds, response) = measure(base, keys, args.get_rate, work)
                if response.status_code != 200:
                    raise SystemExit(f"import failed: {response.status_code} {response.text[:500]}")
                row(f"import {n + 1} ({'insert' if n == 0 else 'update'})", probe, seconds)
                all_during += probe.latencies_ms
                for e in (probe.write_errors + probe.get_errors)[:3]:
                    print("  error:", e)
            over = httpx.put(
                f"{base}/api/v1/firms/big/registry",
                content=b"{" + b" " * settings.max_body_bytes + b"}",
                headers={"Authorization": f"Bearer {keys['big']}"},
            )
            print(f"oversized body: {over.status_code} {over.json()['error']['message']}")
            print(f"server RSS: {rss0:.0f} MB before, {rss_mb(server.pid):.0f} MB after")
            p99 = pct(all_during, 0.99)
            verdict = "OK" if p99 < 200 else "ABOVE TARGET"
            print(f"light GET p99 during imports: {p99:.1f} ms (target < 200 ms): {verdict}")
            print(f"median of baseline: {statistics.median(baseline.latencies_ms):.1f} ms")
        finally:
            server.terminate()
            server.wait(15)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
