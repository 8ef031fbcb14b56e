"""Router: policies (being built)."""

from fastapi import APIRouter

router = APIRouter(tags=["policies"])
