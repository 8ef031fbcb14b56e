"""Two real ``renkei cloud api`` processes on one PostgreSQL registry share one view.

A change written through process A (a sharing grant, then bookings that change spare
capacity) is visible in process B's capacity search within 1 s of A's answer, although
B's index cache lives an hour (``capacity_cache_s=3600``): B learns of A's commits by
LISTEN/NOTIFY (:mod:`renkei.cloud.capacity.index.remote`). The latencies are printed
(from A's answer, and from sending the request to A, which includes A's own work: its
first write is slow).
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from harness.services import PostgreSQL
from harness.wait import pause, wait_for
from renkei.cloud.capacity.index.remote import follow_remote_changes
from renkei.cloud.registry import (
    CapacityBooking,
    Role,
    import_document,
    issue_key,
    make_engine,
    session_scope,
)
from tests.api.rig import NOW, ApiRig, imm
from tests.proxy_services import ApiServer

API = "/api/v1"
CHANGES = 20
VISIBLE_WITHIN_S = 1.0


@pytest.fixture
def pg_url(postgres: PostgreSQL, postgres_template: str) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    postgres.create_database(name, template=postgres_template)
    try:
        yield postgres.url(name)
    finally:
        postgres.drop_database(name)


def _seed(url: str) -> dict[str, str]:
    doc: dict[str, list[dict[str, Any]]] = {"firms": [], "sites": [], "lines": [], "machines": []}
    for firm in ("acme", "beta"):
        doc["firms"].append({"id": firm, "name": f"{firm} Co.", "region": "kansai"})
        doc["sites"].append(
            {
                "id": f"{firm}-s1",
                "firm_id": firm,
                "name": "plant",
                "latitude_deg": 34.7,
                "longitude_deg": 135.6,
                "region": "kansai",
                "resins": ["PP"],
            }
        )
        doc["lines"].append({"id": f"{firm}-l1", "site_id": f"{firm}-s1", "name": "L1"})
        doc["machines"].append(imm(f"{firm}-m1") | {"firm_id": firm, "line_id": f"{firm}-l1"})
    engine = make_engine(url)
    try:
        with session_scope(engine) as s:
            import_document(s, doc)
            return {
                "acme": issue_key(s, firm_id="acme", role=Role.OPERATOR),
                "beta": issue_key(s, firm_id="beta", role=Role.PARTNER),
            }
    finally:
        engine.dispose()


@pytest.fixture
def two_apis(tmp_path: Path, pg_url: str) -> Iterator[tuple[ApiServer, ApiServer, dict[str, str]]]:
    keys = _seed(pg_url)
    env = {
        "RENKEI_API_DATABASE_URL": pg_url,
        "RENKEI_API_CAPACITY_CACHE_S": "3600",  # only the notification can explain a refresh
        "RENKEI_API_DEFAULT_WEEKLY_HOURS": "[24,24,24,24,24,24,24]",  # any date has hours
    }
    servers = [ApiServer(workdir=tmp_path / name, env=env) for name in ("a", "b")]
    try:
        for server in servers:
            server.start()
        yield servers[0], servers[1], keys
    finally:
        for server in servers:
            server.stop()


def _spare(client: httpx.Client) -> tuple[float, str]:
    """Total spare hours beta sees of its partners, and the search's first day."""
    r = client.get(f"{API}/capacity/search")
    assert r.status_code == 200, r.text
    body = r.json()
    return float(body["total_spare_h"]), str(body["start"])


def _until_changed(client: httpx.Client, before: float, t0: float) -> float:
    """Seconds from ``t0`` until beta's search differs from ``before`` (bounded)."""
    deadline = t0 + 10 * VISIBLE_WITHIN_S
    while time.monotonic() < deadline:
        if _spare(client)[0] != before:
            return time.monotonic() - t0
        time.sleep(0.005)
    pytest.fail(f"process B still shows {before} h spare {10 * VISIBLE_WITHIN_S} s after the write")


def test_a_change_through_one_process_is_seen_by_the_other_within_1_s(
    two_apis: tuple[ApiServer, ApiServer, dict[str, str]],
) -> None:
    a, b, keys = two_apis
    acme = httpx.Client(base_url=a.url, headers={"Authorization": f"Bearer {keys['acme']}"})
    beta_b = httpx.Client(base_url=b.url, headers={"Authorization": f"Bearer {keys['beta']}"})
    with acme, beta_b:
        before, start = _spare(beta_b)
        assert before == 0.0  # no grant yet: beta sees nobody (B's index is now built)

        # per change: seconds from sending the write to A, and from A's 201 (its commit
        # is done before the answer), until B's search shows it
        sent: list[float] = []
        committed: list[float] = []
        t0 = time.monotonic()
        r = acme.post(
            f"{API}/firms/acme/grants", json={"grantee_kind": "firm", "grantee_id": "beta"}
        )
        t1 = time.monotonic()
        assert r.status_code == 201, r.text
        seen = _until_changed(beta_b, before, t1)
        sent.append(seen + t1 - t0)
        committed.append(seen)

        first = date.fromisoformat(start) + timedelta(days=1)
        for i in range(CHANGES):
            before = _spare(beta_b)[0]
            day = (first + timedelta(days=i)).isoformat()
            t0 = time.monotonic()
            r = acme.post(
                f"{API}/firms/acme/bookings",
                json=[{"machine_id": "acme-m1", "start": day, "hours_per_day": 2}],
            )
            t1 = time.monotonic()
            assert r.status_code == 201, r.text
            seen = _until_changed(beta_b, before, t1)
            sent.append(seen + t1 - t0)
            committed.append(seen)

    for what, values in (("after A's 201", committed), ("after sending to A", sent)):
        ms = sorted(1000 * s for s in values)
        print(
            f"\nvisible in B {what}, {len(ms)} changes (ms): min {ms[0]:.1f}, "
            f"median {statistics.median(ms):.1f}, p90 {ms[int(0.9 * (len(ms) - 1))]:.1f}, "
            f"max {ms[-1]:.1f}; in order: " + " ".join(f"{1000 * s:.0f}" for s in values)
        )
    assert max(committed) < VISIBLE_WITHIN_S, committed


def test_each_engine_skips_its_own_notifications_and_counts_the_others(
    tmp_path: Path, pg_url: str
) -> None:
    """Two apps in one process on one database: A's write reaches B's index by the
    notification (B counts it), A patches its own index and ignores its own signal."""
    a = ApiRig(tmp_path / "a", database_url=pg_url, capacity_cache_s=3600)
    b = ApiRig(tmp_path / "b", database_url=pg_url, capacity_cache_s=3600)
    try:
        feed_a = follow_remote_changes(a.engine)
        feed_b = follow_remote_changes(b.engine)
        assert feed_a is not None and feed_b is not None
        assert feed_a.listening.wait(10) and feed_b.listening.wait(10)
        a.seed_firm("acme", machines=[imm("a1")])
        a.seed_firm("beta", machines=[imm("b1")])
        grant = {"grantee_kind": "firm", "grantee_id": "beta", "granularity": "day"}
        assert a.client("acme").post(f"{API}/firms/acme/grants", json=grant).status_code == 201
        search = {"end": "2026-11-24"}
        wait_for(
            lambda: (
                b.client("beta", "partner")
                .get(f"{API}/capacity/search", params=search)
                .json()["total_spare_h"]
                == 14.4
            ),
            timeout_s=VISIBLE_WITHIN_S,
            message="B sees acme's grant",
        )
        assert feed_b.received >= 1
        assert feed_a.received == 0  # its own commits only
        beta_a = a.client("beta", "partner")
        assert beta_a.get(f"{API}/capacity/search", params=search).json()["total_spare_h"] == 14.4
        service = a.app.state.renkei.capacity.index
        builds, patches = service.full_builds, service.patches
        r = a.client("acme").post(
            f"{API}/firms/acme/bookings",
            json=[{"machine_id": "a1", "start": "2026-11-23", "hours_per_day": 4.4}],
        )
        assert r.status_code == 201
        time.sleep(0.3)  # A's own notification arrives meanwhile and must change nothing
        spare = beta_a.get(f"{API}/capacity/search", params=search).json()["total_spare_h"]
        assert spare == pytest.approx(10.0)
        assert (service.full_builds, service.patches) == (builds, patches + 1)
        assert feed_a.received == 0
    finally:
        a.close()
        b.close()


def test_rolled_back_changes_do_not_signal_and_a_lost_listener_reconnects(
    tmp_path: Path, pg_url: str, postgres: PostgreSQL
) -> None:
    a = ApiRig(tmp_path / "a", database_url=pg_url, capacity_cache_s=3600)
    b = ApiRig(tmp_path / "b", database_url=pg_url, capacity_cache_s=3600)
    try:
        feed_b = follow_remote_changes(b.engine)
        assert feed_b is not None and feed_b.listening.is_set()
        a.seed_firm("acme", machines=[imm("a1")])
        wait_for(lambda: feed_b.received >= 1, VISIBLE_WITHIN_S, "the seed's notification")
        received = feed_b.received

        def book_then_fail() -> None:
            with session_scope(a.engine) as s:
                s.add(CapacityBooking(firm_id="acme", machine_id="a1", start=NOW.date(),
                                      end=NOW.date(), hours_per_day=1.0, reference="",
                                      created_at=NOW))  # fmt: skip
                s.flush()  # the NOTIFY is sent in the transaction ...
                raise RuntimeError("... which then rolls back")

        with pytest.raises(RuntimeError):
            book_then_fail()
        pause(0.5, "a notification of the rolled-back change would arrive meanwhile")
        assert feed_b.received == received

        # The server ends the listener's session: it reconnects within RETRY_S and marks
        # b's index stale (a change may have been missed), then hears changes again.
        service = b.app.state.renkei.capacity.index
        service.current()
        builds = service.full_builds
        with psycopg.connect(postgres.dsn(pg_url.rsplit("/", 1)[1]), autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid()"
            )
        wait_for(lambda: not feed_b.listening.is_set(), 5.0, "the listener noticing")
        wait_for(feed_b.listening.is_set, 5.0, "the listener reconnecting")
        service.current()
        assert service.full_builds == builds + 1
        a.seed_firm("beta", machines=[imm("b1")])
        wait_for(
            lambda: feed_b.received > received, VISIBLE_WITHIN_S, "a change after reconnecting"
        )
    finally:
        a.close()
        b.close()
