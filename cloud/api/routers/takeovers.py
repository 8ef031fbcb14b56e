"""Router: takeovers (being built)."""

from fastapi import APIRouter

router = APIRouter(tags=["takeovers"])
