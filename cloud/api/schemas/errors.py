"""The error body every 4xx answer of the API has (:mod:`renkei.cloud.api.errors`), as
published in OpenAPI in place of FastAPI's default ``HTTPValidationError``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

__all__ = ["ErrorBody", "ErrorResponse"]


class ErrorBody(BaseModel):
    """What went wrong, in a stable code, a sentence and structured details."""

    code: str = Field(
        description="Stable error code: `unauthenticated` (401: no, unknown or revoked API "
        "key), `forbidden` (403: role or firm not allowed), `not_found` (404: no such object "
        "in this firm), `method_not_allowed` (405), `conflict` (409: contradicts the current "
        "state), `payload_too_large` (413), `invalid` (422: body, query or path failed "
        "validation), `too_many_requests` (429: the same action again too soon), "
        "`bad_request` or `http_error` (other 4xx).",
        examples=["invalid"],
    )
    message: str = Field(
        description="One sentence for a person, naming the field, the value and what was "
        "expected where it applies.",
        examples=["body.jobs.0.weekly_volume: Input should be greater than 0"],
    )
    detail: Any = Field(
        default=None,
        description="Structured details or null. For `invalid`: a list of problems, each "
        "`{loc, msg}` plus `type` and `input` for schema violations (`loc` like "
        "`body.jobs.2.mold_id`, `body.jobs[2].mold_id` or `bookings.csv:4.start`). "
        "For `forbidden`: `{endpoint, "
        "allowed_roles}` or `{endpoint, firm_id}`. For `conflict`: e.g. `{id, status}` of "
        "the object in the way. For `payload_too_large`: `{limit_bytes}` (bytes). "
        "For `too_many_requests`: `{retry_after_s}` (whole seconds to wait).",
    )


class ErrorResponse(BaseModel):
    """The body of every 4xx answer."""

    error: ErrorBody = Field(description="The error.")
