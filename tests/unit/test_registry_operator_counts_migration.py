"""The operator-counts migration: upgrade adds the ``operator_count`` table (firm- and
machine-scoped, deleted with its machine), downgrade drops it and keeps everything else,
upgrading again is clean, and it is the single head."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError

from renkei.cloud.registry import make_engine
from renkei.cloud.registry.migrate import alembic_config, upgrade
from tests.unit.test_registry_mounted_mold_migration import SEED, _exec

BEFORE = "d4a8c2e6f1b9"  # the mounted-mold migration
THIS = "de643d9c561e"

INSERT = (
    'INSERT INTO operator_count (firm_id, machine_id, start, "end", good, reject, '
    "reject_reason, note, recorded_by, recorded_at) VALUES ('A', '{m}', "
    "'2026-11-22 23:00:00', '2026-11-23 07:00:00', 1180, 20, 'flash', '', 'k1', "
    "'2026-11-23 07:05:00')"
)


def _tables(url: str) -> set[str]:
    eng = make_engine(url)
    try:
        return set(inspect(eng).get_table_names())
    finally:
        eng.dispose()


def test_single_head(tmp_path: Path) -> None:
    script = ScriptDirectory.from_config(alembic_config(f"sqlite:///{tmp_path / 'x.db'}"))
    assert len(script.get_heads()) == 1  # later migrations build on this one
    assert script.get_revision(THIS).down_revision == BEFORE


def test_upgrade_downgrade_upgrade(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'registry.sqlite3'}"
    upgrade(url, BEFORE)
    _exec(url, *SEED)
    assert "operator_count" not in _tables(url)
    upgrade(url)
    assert "operator_count" in _tables(url)
    _exec(url, INSERT.format(m="A-m1"), INSERT.format(m="A-m2"))
    assert _exec(url, "SELECT machine_id, good, reject FROM operator_count ORDER BY id") == [
        ("A-m1", 1180, 20),
        ("A-m2", 1180, 20),
    ]
    with pytest.raises(IntegrityError):  # no such machine
        _exec(url, INSERT.format(m="nope"))
    _exec(url, "DELETE FROM machine WHERE id = 'A-m2'")  # its counts go with it
    assert _exec(url, "SELECT machine_id FROM operator_count") == [("A-m1",)]
    command.downgrade(alembic_config(url), BEFORE)
    assert "operator_count" not in _tables(url)
    assert _exec(url, "SELECT count(*) FROM machine") == [(1,)]
    upgrade(url)
    assert _exec(url, "SELECT count(*) FROM operator_count") == [(0,)]
