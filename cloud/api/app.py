"""The FastAPI application factory of ``renkei cloud api``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from fastapi import FastAPI
from fastapi.routing import APIRoute
from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from renkei.cloud.api import docs, errors
from renkei.cloud.api.deps import AppState
from renkei.cloud.api.limits import BodyLimit
from renkei.cloud.api.routers import ROUTERS
from renkei.cloud.api.settings import ApiSettings
from renkei.cloud.capacity.context import CapacityContext
from renkei.cloud.capacity.index.remote import follow_remote_changes
from renkei.cloud.notify import Dispatcher, NotifySettings
from renkei.cloud.notify import install as install_notifications
from renkei.cloud.registry import make_engine
from renkei.cloud.registry.migrate import upgrade

__all__ = ["API_PREFIX", "api_routes", "create_app"]

API_PREFIX = "/api/v1"


def _utcnow() -> datetime:
    return datetime.now(UTC)


def create_app(
    settings: ApiSettings | None = None,
    *,
    engine: Engine | None = None,
    clock: Callable[[], datetime] = _utcnow,
    migrate: bool = True,
    notify: NotifySettings | None = None,
) -> FastAPI:
    """Build the API.

    Args:
        settings: configuration; default parsed from ``RENKEI_API_*`` variables.
        engine: registry engine; default ``make_engine(settings.database_url)``.
        clock: returns the current UTC time (tests pass a fixed clock).
        migrate: bring the registry schema to the newest Alembic revision first.
        notify: notification senders; default parsed from ``RENKEI_NOTIFY_*`` variables.
            The dispatcher (delivery after commit) is ``app.state.notify``.

    Raises:
        pydantic.ValidationError: a bad ``RENKEI_API_*`` value (the variable is named).
    """
    settings = settings or ApiSettings()
    if engine is None:
        engine = make_engine(settings.database_url)
    if migrate:
        upgrade(str(engine.url.render_as_string(hide_password=False)))
    app = FastAPI(
        title="Renkei API",
        version="1",
        summary="Spare-capacity sharing between partner firms and disaster takeover planning.",
        docs_url=None,  # served from local files by renkei.cloud.api.docs (works offline)
        redoc_url=None,
    )
    docs.mount(app, title=app.title)
    sessions = sessionmaker(engine, expire_on_commit=False)
    app.state.renkei = AppState(
        settings=settings,
        engine=engine,
        sessions=sessions,
        clock=clock,
        capacity=CapacityContext(
            settings=settings.capacity(), engine=engine, sessions=sessions, clock=clock
        ),
    )
    # PostgreSQL: other API processes' commits reach this capacity index within a second
    # (LISTEN/NOTIFY); SQLite: after capacity_cache_s. Stopped by stop_following(engine).
    follow_remote_changes(engine)
    app.state.notify = Dispatcher(
        settings=notify or NotifySettings(), sessions=sessions, clock=clock
    )
    install_notifications(sessions, app.state.notify)
    errors.install(app)
    app.add_middleware(BodyLimit, limit_bytes=settings.max_body_bytes)
    for router in ROUTERS:
        app.include_router(router, prefix=API_PREFIX)
    _mount_web(app)
    return app


def api_routes() -> list[tuple[str, str, frozenset[str]]]:
    """``(name, path, methods)`` of every API route (paths include :data:`API_PREFIX`)."""
    out = []
    for router in ROUTERS:
        for route in router.routes:
            if isinstance(route, APIRoute):
                out.append((route.name, API_PREFIX + route.path, frozenset(route.methods or ())))
    return out


def _mount_web(app: FastAPI) -> None:
    """Serve the partner web page if its module is present (see :mod:`renkei.cloud.api.web`)."""
    try:
        from renkei.cloud.api.web import mount
    except ImportError:  # pragma: no cover - the page ships with the package
        return
    mount(app)
