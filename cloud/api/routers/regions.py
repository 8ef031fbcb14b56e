"""Router: regions (being built)."""

from fastapi import APIRouter

router = APIRouter(tags=["regions"])
