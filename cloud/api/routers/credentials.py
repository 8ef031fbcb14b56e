"""API credentials of a firm: list, issue (the key is shown once), revoke."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from renkei.cloud.api.deps import PrincipalDep, SessionDep, authorize
from renkei.cloud.api.errors import Forbidden, NotFound
from renkei.cloud.registry import ApiCredential, Firm, Role, issue_key

router = APIRouter(tags=["credentials"])


class CredentialCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Role
    label: Annotated[str, Field(max_length=200)] = ""


class CredentialPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    key_id: str
    firm_id: str
    role: Role
    label: str
    created_at: datetime
    revoked: bool


class CredentialIssued(CredentialPublic):
    key: str
    """The full API key. Shown only in this response; only its hash is stored."""


@router.get(
    "/firms/{firm_id}/credentials",
    name="credentials.list",
    dependencies=[authorize("credentials.list")],
)
def list_credentials(firm_id: str, session: SessionDep) -> list[CredentialPublic]:
    """The firm's credentials (never their secrets)."""
    rows = session.scalars(
        select(ApiCredential)
        .where(ApiCredential.firm_id == firm_id)
        .order_by(ApiCredential.created_at)
    )
    return [CredentialPublic.model_validate(c) for c in rows]


@router.post(
    "/firms/{firm_id}/credentials",
    name="credentials.create",
    status_code=status.HTTP_201_CREATED,
    dependencies=[authorize("credentials.create")],
)
def create_credential(
    firm_id: str, body: CredentialCreate, session: SessionDep, principal: PrincipalDep
) -> CredentialIssued:
    """Issue a key. Only admins may issue ``admin`` keys."""
    if body.role is Role.ADMIN and principal.role is not Role.ADMIN:
        raise Forbidden("only an admin may issue admin credentials")
    if session.get(Firm, firm_id) is None:
        raise NotFound(f"no firm {firm_id!r}")
    key = issue_key(session, firm_id=firm_id, role=body.role, label=body.label)
    cred = session.get(ApiCredential, key.split("_")[1])
    assert cred is not None
    return CredentialIssued(**CredentialPublic.model_validate(cred).model_dump(), key=key)


@router.delete(
    "/firms/{firm_id}/credentials/{key_id}",
    name="credentials.revoke",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[authorize("credentials.revoke")],
)
def revoke_credential(firm_id: str, key_id: str, session: SessionDep) -> None:
    """Revoke a key (it stops working at once; the row stays for the record)."""
    cred = session.get(ApiCredential, key_id)
    if cred is None or cred.firm_id != firm_id:
        raise NotFound(f"no credential {key_id!r} in firm {firm_id!r}")
    cred.revoked = True
