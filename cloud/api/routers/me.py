"""``GET /me``: who the presented API key belongs to."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from renkei.cloud.api.deps import PrincipalDep, SessionDep, authorize
from renkei.cloud.registry import Firm, Role

router = APIRouter(tags=["me"])


class MePublic(BaseModel):
    """The caller: the firm and role of the presented API key."""

    firm_id: str = Field(description="The firm the key acts for.")
    firm_name: str = Field(description="That firm's name.")
    region: str = Field(description="That firm's registered region.")
    role: Role = Field(
        description="What the key may do: `operator`, `partner`, `supporter`, `engineer` or "
        "`admin` (see `Role`)."
    )
    key_id: str = Field(description="Public id of the presented key.")


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
