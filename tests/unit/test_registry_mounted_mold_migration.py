"""The mounted-mold migration: upgrade adds ``machine.mounted_mold_id`` (nothing mounted),
the column is unique and unmounts on mold deletion, downgrade drops it, upgrading again is
clean, and it is the single head."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from renkei.cloud.registry import make_engine
from renkei.cloud.registry.migrate import alembic_config, upgrade

BEFORE = "b7d1e5a9c3f2"  # the takeover-drill migration
THIS = "d4a8c2e6f1b9"

SEED = (
    "INSERT INTO firm (id, name, region, bpnl, created_at) "
    "VALUES ('A', 'A Co.', 'kansai', NULL, '2026-11-23 00:00:00')",
    "INSERT INTO site (id, firm_id, name, latitude_deg, longitude_deg, region, resins, "
    "certifications, address, prefecture) VALUES ('A-s1', 'A', 'plant', 34.7, 135.5, "
    "'kansai', '[]', '[]', '', '')",
    "INSERT INTO line (id, site_id, name, area) VALUES ('A-l1', 'A-s1', 'l1', '')",
    "INSERT INTO machine (id, firm_id, line_id, name, process) "
    "VALUES ('A-m1', 'A', 'A-l1', 'm1', 'injection_molding')",
    "INSERT INTO machine (id, firm_id, line_id, name, process) "
    "VALUES ('A-m2', 'A', 'A-l1', 'm2', 'injection_molding')",
    "INSERT INTO mold (id, firm_id, name, width_mm, height_mm, thickness_mm, weight_kg, "
    '"required_clamp_force_kN", shot_weight_g, resin, cavities, locating_ring_mm, '
    "cycle_time_s, shot_count, maintenance_interval_shots) VALUES ('A-p1', 'A', 'p1', 400, "
    "400, 300, 500, 1000, 100, 'PP', 2, 100, 18.0, 0, 100000)",
)


def _columns(url: str) -> set[str]:
    eng = make_engine(url)
    try:
        return {c["name"] for c in inspect(eng).get_columns("machine")}
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


def test_single_head(tmp_path: Path) -> None:
    script = ScriptDirectory.from_config(alembic_config(f"sqlite:///{tmp_path / 'x.db'}"))
    assert len(script.get_heads()) == 1  # later migrations build on this one
    assert script.get_revision(THIS).down_revision == BEFORE


def test_upgrade_downgrade_upgrade(empty_registry_url: str) -> None:
    url = empty_registry_url
    upgrade(url, BEFORE)
    _exec(url, *SEED)
    upgrade(url, THIS)
    assert "mounted_mold_id" in _columns(url)
    assert _exec(url, "SELECT id, mounted_mold_id FROM machine ORDER BY id") == [
        ("A-m1", None),
        ("A-m2", None),
    ]
    _exec(url, "UPDATE machine SET mounted_mold_id = 'A-p1' WHERE id = 'A-m1'")
    with pytest.raises(IntegrityError):  # a mold on two machines
        _exec(url, "UPDATE machine SET mounted_mold_id = 'A-p1' WHERE id = 'A-m2'")
    with pytest.raises(IntegrityError):  # no such mold
        _exec(url, "UPDATE machine SET mounted_mold_id = 'nope' WHERE id = 'A-m2'")
    command.downgrade(alembic_config(url), BEFORE)
    assert "mounted_mold_id" not in _columns(url)
    assert _exec(url, "SELECT count(*) FROM machine") == [(2,)]
    upgrade(url, THIS)
    _exec(url, "UPDATE machine SET mounted_mold_id = 'A-p1' WHERE id = 'A-m2'")
    _exec(url, "DELETE FROM mold WHERE id = 'A-p1'")  # deleting a mold unmounts it
    assert _exec(url, "SELECT id, mounted_mold_id FROM machine ORDER BY id") == [
        ("A-m1", None),
        ("A-m2", None),
    ]
