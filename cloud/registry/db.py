"""Database engine and sessions for the registry (SQLite embedded, PostgreSQL by URL)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

__all__ = ["SQLITE_BUSY_TIMEOUT_S", "make_engine", "session_scope"]


#: How long a SQLite connection waits for another connection's write lock (seconds)
#: before "database is locked". Writers hold it only for their short write phase (bulk
#: imports validate and check first, then write in one ``executemany`` per chunk).
SQLITE_BUSY_TIMEOUT_S: Final = 30.0


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine; SQLite gets WAL, enforced foreign keys and a busy timeout.

    Args:
        url: SQLAlchemy URL, e.g. ``sqlite:///var/lib/renkei/registry.sqlite3`` or
            ``postgresql+psycopg://renkei@db/renkei``.
        kwargs: passed to :func:`sqlalchemy.create_engine`; SQLite's ``connect_args``
            get ``timeout`` = :data:`SQLITE_BUSY_TIMEOUT_S` unless they set one.
    """
    if url.startswith("sqlite"):
        connect_args = dict(kwargs.pop("connect_args", {}))
        connect_args.setdefault("timeout", SQLITE_BUSY_TIMEOUT_S)
        kwargs["connect_args"] = connect_args
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            if url not in ("sqlite://", "sqlite:///:memory:"):
                cur.execute("PRAGMA journal_mode=WAL")
            cur.close()

    return engine


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    factory = sessionmaker(engine, expire_on_commit=False)
    with factory() as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
