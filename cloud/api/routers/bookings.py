"""Router: bookings (being built)."""

from fastapi import APIRouter

router = APIRouter(tags=["bookings"])
