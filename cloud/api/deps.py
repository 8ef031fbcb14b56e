"""FastAPI dependencies (``Annotated`` aliases), as in full-stack-fastapi-template.

- :data:`SessionDep`: one SQLAlchemy session per request, committed when the endpoint
  returns, rolled back on any error.
- :data:`PrincipalDep`: the caller, from ``Authorization: Bearer rk_...`` or
  ``X-API-Key: rk_...`` (401 otherwise).
- :func:`authorize`: the access rule of a named endpoint (:data:`renkei.cloud.api.access.RULES`);
  routes declare it as ``dependencies=[authorize("sites.list")]``.
- :data:`SettingsDep`, :data:`ServicesDep`, :data:`ClockDep`: the app's settings, its
  :class:`AppState` (with the capacity services) and clock (tests replace the clock).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.params import Depends as DependsParam
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from renkei.cloud.api.access import RULES
from renkei.cloud.api.errors import Forbidden, Unauthenticated
from renkei.cloud.api.settings import ApiSettings
from renkei.cloud.capacity.context import CapacityContext
from renkei.cloud.registry import Principal, Role, verify_key

__all__ = [
    "AppState",
    "ClockDep",
    "DbId",
    "PrincipalDep",
    "ServicesDep",
    "SessionDep",
    "SettingsDep",
    "authorize",
    "state_of",
]

Clock = Callable[[], datetime]

DbId = Annotated[
    int,
    Path(
        ge=1,
        le=2**63 - 1,
        description="Integer id of the object (1 to 2^63-1), as in the `id` field of its "
        "listing; an id of another firm's object answers 404.",
        examples=[1],
    ),
]
"""An integer row id in a path; out-of-range values are a 422, not a database error."""


@dataclass
class AppState:
    """Everything the endpoints share, kept on ``app.state.renkei``.

    Attributes:
        settings: the API's settings (``RENKEI_API_*``).
        engine, sessions: the registry engine and its session factory.
        clock: current instant (aware UTC; tests pass a fixed one).
        capacity: the capacity services (spare hours, index, caches) on the same engine,
            sessions and clock, with ``settings.capacity()``.
    """

    settings: ApiSettings
    engine: Engine
    sessions: sessionmaker[Session]
    clock: Clock
    capacity: CapacityContext


def state_of(request: Request) -> AppState:
    """The :class:`AppState` of the app serving ``request``."""
    st: AppState = request.app.state.renkei
    return st


def _session(request: Request) -> Iterator[Session]:
    with state_of(request).sessions() as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


# scope="function": commit before the response is sent, so a client's next request (the
# web page reloads its list right after a save) never reads the state before the write.
SessionDep = Annotated[Session, Depends(_session, scope="function")]


def _settings(request: Request) -> ApiSettings:
    return state_of(request).settings


SettingsDep = Annotated[ApiSettings, Depends(_settings)]


def _services(request: Request) -> AppState:
    return state_of(request)


ServicesDep = Annotated[AppState, Depends(_services)]


def _now(request: Request) -> datetime:
    return state_of(request).clock()


ClockDep = Annotated[datetime, Depends(_now)]

_bearer = HTTPBearer(auto_error=False, description="API key: `Authorization: Bearer rk_...`")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key `rk_...`")


def _principal(
    session: SessionDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    header: Annotated[str | None, Depends(_header)],
) -> Principal:
    key = bearer.credentials if bearer is not None else header
    if not key:
        raise Unauthenticated("an API key is required (Authorization: Bearer rk_...)")
    principal = verify_key(session, key)
    if principal is None:
        raise Unauthenticated("unknown, malformed or revoked API key")
    return principal


PrincipalDep = Annotated[Principal, Depends(_principal)]


def authorize(name: str) -> DependsParam:
    """The dependency enforcing :data:`RULES[name] <renkei.cloud.api.access.RULES>`.

    Raises (at request time):
        Unauthenticated: no valid key (401).
        Forbidden: the role is not allowed, or (scope ``own``) the path's ``firm_id`` is
            another firm and the caller is not an admin (403).

    Raises (at import time):
        KeyError: ``name`` has no rule, so no route can exist without one.
    """
    rule = RULES[name]

    def check(request: Request, principal: PrincipalDep) -> Principal:
        if principal.role not in rule.roles:
            raise Forbidden(
                f"role {principal.role.value!r} may not call {name}",
                detail={"endpoint": name, "allowed_roles": sorted(r.value for r in rule.roles)},
            )
        firm_id = request.path_params.get("firm_id")
        if (
            rule.scope == "own"
            and firm_id is not None
            and firm_id != principal.firm_id
            and principal.role is not Role.ADMIN
        ):
            raise Forbidden(
                f"{name} is only allowed for the caller's own firm {principal.firm_id!r}",
                detail={"endpoint": name, "firm_id": firm_id},
            )
        return principal

    dep: DependsParam = Depends(check)
    return dep
