"""Router: capacity (being built)."""

from fastapi import APIRouter

router = APIRouter(tags=["capacity"])
