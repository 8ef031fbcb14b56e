"""Registry: schema validation, bulk JSON/CSV round trip, credentials."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, func, inspect, select

from renkei.cloud.registry import (
    Base,
    Machine,
    RegistryImportError,
    Role,
    export_csv,
    export_document,
    import_csv,
    import_document,
    issue_key,
    make_engine,
    session_scope,
    verify_key,
)
from renkei.cloud.registry.migrate import alembic_config, upgrade

DOC: dict[str, list[dict[str, Any]]] = {
    "firms": [
        {"id": "acme", "name": "Acme Molding", "region": "kansai"},
        {"id": "beta", "name": "Beta Plastics", "region": "tohoku"},
    ],
    "sites": [
        {
            "id": "acme-osaka",
            "firm_id": "acme",
            "name": "Osaka",
            "latitude_deg": 34.69,
            "longitude_deg": 135.50,
            "region": "kansai",
            "resins": ["PP", "ABS"],
            "certifications": ["ISO9001"],
        },
        {
            "id": "beta-sendai",
            "firm_id": "beta",
            "name": "Sendai",
            "latitude_deg": 38.27,
            "longitude_deg": 140.87,
            "region": "tohoku",
            "resins": ["PP"],
        },
    ],
    "lines": [
        {"id": "acme-osaka-l1", "site_id": "acme-osaka", "name": "Line 1"},
        {"id": "beta-sendai-l1", "site_id": "beta-sendai", "name": "Line 1"},
    ],
    "machines": [
        {
            "id": "acme-imm-1",
            "firm_id": "acme",
            "line_id": "acme-osaka-l1",
            "name": "IMM 1",
            "process": "injection_molding",
            "clamp_force_kN": 1500,
            "tie_bar_h_mm": 560,
            "tie_bar_v_mm": 510,
            "min_mold_height_mm": 200,
            "max_mold_height_mm": 550,
            "shot_capacity_g": 400,
            "locating_ring_mm": 100,
        },
        {
            "id": "beta-press-1",
            "firm_id": "beta",
            "line_id": "beta-sendai-l1",
            "name": "P1",
            "process": "press",
            "tonnage_kN": 2000,
            "bed_width_mm": 1200,
            "bed_depth_mm": 800,
        },
    ],
    "molds": [
        {
            "id": "acme-m1",
            "firm_id": "acme",
            "name": "Cover",
            "width_mm": 450,
            "height_mm": 400,
            "thickness_mm": 320,
            "weight_kg": 380,
            "required_clamp_force_kN": 1100,
            "shot_weight_g": 180,
            "resin": "PP",
            "cavities": 2,
            "locating_ring_mm": 100,
            "cycle_time_s": 32,
        }
    ],
}


@pytest.fixture
def engine(registry_url: str) -> Iterator[Engine]:
    """A fresh registry at the newest schema, on SQLite and on PostgreSQL."""
    upgrade(registry_url)
    eng = make_engine(registry_url)
    yield eng
    eng.dispose()


def test_json_round_trip_and_idempotent_import(engine: Engine) -> None:
    with session_scope(engine) as s:
        assert import_document(s, DOC)["machines"] == 2
    with session_scope(engine) as s:
        import_document(s, DOC)  # again: upsert, no duplicates
        assert s.scalar(select(func.count()).select_from(Machine)) == 2
        exported = export_document(s).model_dump(mode="json", exclude_defaults=True)
    for table in ("firms", "machines", "molds"):
        assert len(exported[table]) == len(DOC[table])
    assert exported["sites"][0]["resins"] == ["PP", "ABS"]


def test_export_of_one_firm_contains_only_its_rows(engine: Engine) -> None:
    with session_scope(engine) as s:
        import_document(s, DOC)
        doc = export_document(s, firm_ids={"acme"})
    assert [f.id for f in doc.firms] == ["acme"]
    assert [m.id for m in doc.machines] == ["acme-imm-1"]
    assert [ln.id for ln in doc.lines] == ["acme-osaka-l1"]


def test_csv_round_trip(engine: Engine) -> None:
    with session_scope(engine) as s:
        import_document(s, DOC)
        files = export_csv(s)
    with session_scope(engine) as s:
        for table in reversed(Base.metadata.sorted_tables):
            s.execute(table.delete())
    with session_scope(engine) as s:
        import_csv(s, files)
        again = export_csv(s)
    assert again == files


def test_invalid_rows_are_all_reported_and_nothing_written(engine: Engine) -> None:
    bad = dict(DOC)
    bad["machines"] = [
        {**DOC["machines"][0], "clamp_force_kN": -5},
        {**DOC["machines"][1], "tonnage_kN": None},
    ]
    with pytest.raises(RegistryImportError) as err, session_scope(engine) as s:
        import_document(s, bad)
    text = str(err.value)
    assert "machines.0.clamp_force_kN" in text
    assert "press machine needs tonnage_kN" in text
    with session_scope(engine) as s:
        assert s.scalar(select(func.count()).select_from(Machine)) == 0


def test_csv_errors_name_file_and_line(engine: Engine) -> None:
    files = {"firms.csv": "id,name,region\nok,Ok,kanto\nbad id,Bad,kanto\n"}
    with pytest.raises(RegistryImportError, match=r"firms\.csv:3\.id"), session_scope(engine) as s:
        import_csv(s, files)


def test_credentials_hashed_and_verified(engine: Engine) -> None:
    with session_scope(engine) as s:
        import_document(s, DOC)
        key = issue_key(s, firm_id="acme", role=Role.OPERATOR)
    with session_scope(engine) as s:
        principal = verify_key(s, key)
        assert principal is not None
        assert (principal.firm_id, principal.role) == ("acme", Role.OPERATOR)
        stored = s.scalars(select(Base.metadata.tables["api_credential"].c.secret_sha256)).one()
        assert key.rsplit("_", 1)[-1] not in stored
        assert verify_key(s, key[:-1] + ("A" if key[-1] != "A" else "B")) is None
        assert verify_key(s, "nonsense") is None


def test_migrations_build_exactly_the_orm_schema(empty_registry_url: str) -> None:
    """``alembic upgrade head`` on an empty database equals the ORM (no drift), on SQLite
    and on PostgreSQL."""
    url = empty_registry_url
    upgrade(url)
    eng = make_engine(url)
    with eng.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    eng.dispose()
    assert diffs == []
    eng = make_engine(url)
    with session_scope(eng) as s:
        assert import_document(s, DOC)["molds"] == 1
    eng.dispose()


def test_migrations_downgrade_to_base_and_upgrade_again(empty_registry_url: str) -> None:
    """Every revision's downgrade runs: head -> base leaves no table, and head again equals
    the ORM (SQLite and PostgreSQL)."""
    url = empty_registry_url
    upgrade(url)
    command.downgrade(alembic_config(url), "base")
    eng = make_engine(url)
    try:
        assert set(inspect(eng).get_table_names()) <= {"alembic_version"}
        upgrade(url)
        with eng.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    finally:
        eng.dispose()
