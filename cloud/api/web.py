"""The partner web page (placeholder until the page lands)."""

from __future__ import annotations

from fastapi import FastAPI

__all__ = ["mount"]


def mount(app: FastAPI) -> None:
    """Serve the partner web page on ``app`` (not yet)."""
