"""Router: gateways (being built)."""

from fastapi import APIRouter

router = APIRouter(tags=["gateways"])
