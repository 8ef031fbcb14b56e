"""Field types several API schemas share, each described once.

A field declared with one of these aliases gets its OpenAPI description from here; the
type and validation are the plain ``date`` / ``datetime`` underneath.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import Field

__all__ = ["CreatedAt", "WindowEnd", "WindowStart"]

WindowStart = Annotated[
    date,
    Field(
        description="First day of the takeover window (inclusive), YYYY-MM-DD; the window is "
        "[window_start, window_end).",
        examples=["2026-11-24"],
    ),
]
WindowEnd = Annotated[
    date,
    Field(
        description="Day after the last day of the takeover window (exclusive), YYYY-MM-DD; "
        "at most 366 days after `window_start`.",
        examples=["2026-12-22"],
    ),
]
CreatedAt = Annotated[
    datetime,
    Field(description="When the object was created (API clock, UTC, ISO-8601)."),
]
