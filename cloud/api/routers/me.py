"""``GET /me``: who the presented API key belongs to."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from renkei.cloud.api.deps import PrincipalDep, SessionDep, authorize
from renkei.cloud.registry import Firm, Role

router = APIRouter(tags=["me"])


class MePublic(BaseModel):
    firm_id: str
    firm_name: str
    region: str
    role: Role
    key_id: str


@router.get("/me", name="me", dependencies=[authorize("me")])
def me(principal: PrincipalDep, session: SessionDep) -> MePublic:
    """The caller's firm and role."""
    firm = session.get(Firm, principal.firm_id)
    assert firm is not None  # credentials are deleted with their firm (FK cascade)
    return MePublic(
        firm_id=firm.id,
        firm_name=firm.name,
        region=firm.region,
        role=principal.role,
        key_id=principal.key_id,
    )
