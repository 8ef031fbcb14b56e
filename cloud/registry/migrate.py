"""Schema migrations of the registry (Alembic), run programmatically.

``upgrade(url)`` brings any database to the newest schema; new revisions are generated
with ``revision(url, message)`` against a database at head (autogenerate from the ORM).
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

__all__ = ["alembic_config", "revision", "upgrade"]

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    """An Alembic config pointing at this package's migrations and ``url``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url)
    return cfg


def upgrade(url: str, target: str = "head") -> None:
    """Migrate the database at ``url`` to ``target`` (default: newest)."""
    command.upgrade(alembic_config(url), target)


def revision(url: str, message: str) -> None:
    """Autogenerate a new revision from the ORM models (developer tool)."""
    command.revision(alembic_config(url), message=message, autogenerate=True)
