"""API error responses: one JSON shape for every 4xx, third-party errors mapped here.

Every error body is ``{"error": {"code": str, "message": str, "detail": ...}}``:

- ``401 unauthenticated``: no, malformed, unknown or revoked API key.
- ``403 forbidden``: the role may not call this endpoint, or not for this firm.
- ``404 not_found``: no such object *in this firm* (objects of other firms are not
  revealed).
- ``409 conflict``: the request contradicts the current state (duplicate id, an id another
  firm holds, answering an assignment twice, confirming a dismissed disruption).
- ``429 too_many_requests``: the same action again too soon (``detail`` =
  ``{"retry_after_s": N}``, also in the ``Retry-After`` header).
- ``413 payload_too_large``: the body is larger than ``max_body_bytes`` (``detail`` =
  ``{"limit_bytes": N}``; :mod:`renkei.cloud.api.limits`).
- ``503 unavailable``: a service the request needs is not configured or unreachable
  (the broker, for ``POST /gateways/enrol``).
- ``422 invalid``: the body, query or path failed validation; ``detail`` lists each
  problem with its location (``body.jobs[2].mold_id``), the value and what was expected.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.exc import DataError, IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

from renkei.cloud._exceptions import CloudError
from renkei.cloud.api.limits import BodyTooLarge, too_large_body
from renkei.cloud.api.schemas.errors import ErrorResponse
from renkei.cloud.planner import PlannerInputError
from renkei.cloud.registry import RegistryImportError, RegistryOwnershipError

__all__ = [
    "ERROR_RESPONSES",
    "ApiError",
    "Conflict",
    "Forbidden",
    "Invalid",
    "NotFound",
    "TooManyRequests",
    "Unauthenticated",
    "Unavailable",
    "install",
]

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {
        "model": ErrorResponse,
        "description": 'Client error; the body is `{"error": {code, message, detail}}` '
        "(see `ErrorBody.code` for the status codes).",
    }
}
"""OpenAPI ``responses`` of every operation: the API's error body for all 4xx (this also
replaces FastAPI's default 422 ``HTTPValidationError``, which is not what the API sends)."""


class ApiError(CloudError):
    """An error with an HTTP status, a stable code and details for the client."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, detail: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class Unauthenticated(ApiError):
    status = 401
    code = "unauthenticated"


class Forbidden(ApiError):
    status = 403
    code = "forbidden"


class NotFound(ApiError):
    status = 404
    code = "not_found"


class Conflict(ApiError):
    status = 409
    code = "conflict"


class Invalid(ApiError):
    status = 422
    code = "invalid"


class Unavailable(ApiError):
    """A service the request needs (e.g. the broker's dynamic security) is not configured
    or cannot be reached; try again later."""

    status = 503
    code = "unavailable"


class TooManyRequests(ApiError):
    """The same action again too soon; ``retry_after_s`` (whole seconds, >= 1) says when."""

    status = 429
    code = "too_many_requests"

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message, detail={"retry_after_s": retry_after_s})
        self.retry_after_s = retry_after_s


def _body(code: str, message: str, detail: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "detail": jsonable_encoder(detail)}}


def _validation_detail(errors: list[Any]) -> list[dict[str, Any]]:
    out = []
    for e in errors:
        loc = ".".join(str(p) for p in e.get("loc", ()))
        item = {"loc": loc, "msg": e.get("msg", ""), "type": e.get("type", "")}
        if "input" in e:
            item["input"] = e["input"]
        out.append(item)
    return out


def install(app: FastAPI) -> None:
    """Register the exception handlers on ``app`` and declare :data:`ERROR_RESPONSES` for
    every route included after this call (the app's router merges its ``responses`` into
    each route it adds)."""
    app.router.responses.update(ERROR_RESPONSES)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        if isinstance(exc, TooManyRequests):
            headers = {"Retry-After": str(exc.retry_after_s)}
        return JSONResponse(
            _body(exc.code, exc.message, exc.detail), status_code=exc.status, headers=headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        detail = _validation_detail(list(exc.errors()))
        first = detail[0] if detail else {"loc": "", "msg": ""}
        return JSONResponse(
            _body("invalid", f"{first['loc']}: {first['msg']}", detail), status_code=422
        )

    @app.exception_handler(ValidationError)
    async def _model(request: Request, exc: ValidationError) -> JSONResponse:
        # a model checked inside an endpoint (e.g. a PATCH merged with the stored row)
        detail = _validation_detail(list(exc.errors()))
        first = detail[0] if detail else {"loc": "", "msg": ""}
        return JSONResponse(
            _body("invalid", f"{first['loc'] or exc.title}: {first['msg']}", detail),
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(
            _body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(RegistryImportError)
    async def _import(request: Request, exc: RegistryImportError) -> JSONResponse:
        detail = [{"loc": where, "msg": msg} for where, msg in exc.problems]
        return JSONResponse(_body("invalid", str(exc), detail), status_code=422)

    @app.exception_handler(RegistryOwnershipError)
    async def _ownership(request: Request, exc: RegistryOwnershipError) -> JSONResponse:
        detail = [
            {"loc": f"body.{table}", "msg": f"{table} {i!r} belongs to another firm"}
            for table, ids in exc.conflicts.items()
            for i in ids
        ]
        return JSONResponse(_body("conflict", str(exc), detail), status_code=409)

    @app.exception_handler(BodyTooLarge)
    async def _too_large(request: Request, exc: BodyTooLarge) -> JSONResponse:
        return JSONResponse(
            too_large_body(exc.limit_bytes), status_code=413, headers={"Connection": "close"}
        )

    @app.exception_handler(PlannerInputError)
    async def _planner(request: Request, exc: PlannerInputError) -> JSONResponse:
        return JSONResponse(_body("invalid", str(exc)), status_code=422)

    @app.exception_handler(OverflowError)
    async def _overflow(request: Request, exc: OverflowError) -> JSONResponse:
        # a number too large for the database's 64-bit integers (SQLite raises this)
        return JSONResponse(_body("invalid", f"number out of range: {exc}"), status_code=422)

    @app.exception_handler(DataError)
    async def _data(request: Request, exc: DataError) -> JSONResponse:
        # a value the database cannot store that validation let through; PostgreSQL says
        # so where SQLite stores it: a NUL character in text, a number beyond the column's
        # range. psycopg's message names the problem, never the value.
        problem = str(exc.orig).splitlines()[0] if exc.orig is not None else "bad value"
        return JSONResponse(
            _body("invalid", f"a value the database cannot store: {problem}"), status_code=422
        )

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError) -> JSONResponse:
        return JSONResponse(
            _body("conflict", "the change conflicts with existing data", str(exc.orig)),
            status_code=409,
        )
