"""The takeover-drill migration: upgrade adds the columns (existing requests are real),
downgrade drops drills with their jobs and assignments, and upgrading again is clean."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect, text

from renkei.cloud.registry import make_engine
from renkei.cloud.registry.migrate import alembic_config, upgrade

BEFORE = "cc8b39fa264f"  # the revision before the drill migration


def _columns(url: str) -> set[str]:
    eng = make_engine(url)
    try:
        return {c["name"] for c in inspect(eng).get_columns("takeover_request")}
    finally:
        eng.dispose()


def _exec(url: str, *sql: str) -> list[tuple[object, ...]]:
    eng = make_engine(url)
    try:
        with eng.begin() as conn:
            rows: list[tuple[object, ...]] = []
            for q in sql:
                res = conn.execute(text(q))
                if res.returns_rows:
                    rows = [tuple(r) for r in res]
            return rows
    finally:
        eng.dispose()


SEED = (
    "INSERT INTO firm (id, name, region, bpnl, created_at) "
    "VALUES ('A', 'A Co.', 'kansai', NULL, '2026-11-23 00:00:00')",
    "INSERT INTO site (id, firm_id, name, latitude_deg, longitude_deg, region, resins, "
    "certifications, address, prefecture) VALUES ('A-s1', 'A', 'plant', 34.7, 135.5, "
    "'kansai', '[]', '[]', '', '')",
)


def _request(rid: str, extra_cols: str = "", extra_vals: str = "") -> str:
    return (
        "INSERT INTO takeover_request (id, firm_id, origin_site_id, window_start, window_end, "
        f"zone_radius_km, status, revision, summary, created_at, created_by{extra_cols}) "
        f"VALUES ('{rid}', 'A', 'A-s1', '2026-11-23', '2026-12-07', 30, 'open', 1, '{{}}', "
        f"'2026-11-23 00:00:00', 'k'{extra_vals})"
    )


def test_upgrade_downgrade_upgrade(empty_registry_url: str) -> None:
    url = empty_registry_url
    upgrade(url, BEFORE)
    assert "drill" not in _columns(url)
    _exec(url, *SEED, _request("old"))
    upgrade(url)
    assert {"drill", "promoted_to"} <= _columns(url)
    assert _exec(url, "SELECT id, drill, promoted_to FROM takeover_request") == [("old", 0, None)]
    _exec(
        url,
        _request("drill-1", ", drill", ", TRUE"),
        "INSERT INTO takeover_assignment (request_id, job_id, partner_firm_id, site_id, "
        "machine_id, hours, parts, transport_km, revision, status, note) VALUES "
        "('drill-1', 'J1', 'A', 'A-s1', 'a1', 1.0, 10, 0.0, 1, 'drill', '')",
    )
    command.downgrade(alembic_config(url), BEFORE)
    assert "drill" not in _columns(url)
    assert _exec(url, "SELECT id FROM takeover_request") == [("old",)]
    assert _exec(url, "SELECT count(*) FROM takeover_assignment") == [(0,)]
    upgrade(url)
    assert "drill" in _columns(url)
