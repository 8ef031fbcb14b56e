"""Alembic environment for the registry (configured by :mod:`renkei.cloud.registry.migrate`)."""

from __future__ import annotations

from alembic import context

from renkei.cloud.registry import Base  # the package registers every table
from renkei.cloud.registry.db import make_engine

config = context.config
url = config.get_main_option("sqlalchemy.url")
assert url, "sqlalchemy.url must be set by renkei.cloud.registry.migrate"
engine = make_engine(url)
with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
