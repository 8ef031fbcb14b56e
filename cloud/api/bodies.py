"""Request bodies several routers declare by hand (uploads read from the raw request).

A route that reads ``await request.body()`` has no pydantic body, so its OpenAPI request
body is given in ``openapi_extra``; these are the shared ones.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = ["XLSX_BODY", "XLSX_TYPE"]

XLSX_TYPE: Final = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
"""Media type of an Excel workbook (.xlsx)."""

_BINARY: Final = {"schema": {"type": "string", "format": "binary"}}

XLSX_BODY: Final[dict[str, Any]] = {
    "requestBody": {
        "required": True,
        "content": {XLSX_TYPE: _BINARY, "application/octet-stream": _BINARY},
    }
}
"""``openapi_extra`` of an XLSX upload: the workbook's bytes (also as octet-stream)."""
