"""Router: disruptions (being built)."""

from fastapi import APIRouter

router = APIRouter(tags=["disruptions"])
