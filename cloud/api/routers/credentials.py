"""API credentials of a firm: list, issue (the key is shown once), revoke."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from renkei.cloud.api.deps import PrincipalDep, SessionDep, authorize
from renkei.cloud.api.errors import Forbidden, NotFound
from renkei.cloud.api.params import FirmIdPath
from renkei.cloud.registry import ApiCredential, Firm, Role, issue_key

router = APIRouter(tags=["credentials"])


class CredentialCreate(BaseModel):
    """A new API key for the firm."""

    model_config = ConfigDict(extra="forbid")
    role: Role = Field(
        description="What the key may do: `operator`, `partner`, `supporter`, `engineer` or "
        "`admin` (only an admin may issue `admin` keys).",
        examples=["operator"],
    )
    label: Annotated[str, Field(max_length=200)] = Field(
        default="",
        description="Free text to recognise the key (at most 200 characters).",
        examples=["line 2 tablet"],
    )


class CredentialPublic(BaseModel):
    """An API key of the firm, without its secret."""

    model_config = ConfigDict(from_attributes=True)
    key_id: str = Field(
        description="Public id of the key (the part after `rk_` and before the secret); "
        "use it to revoke the key."
    )
    firm_id: str = Field(description="The firm the key acts for.")
    role: Role = Field(description="What the key may do (see `Role`).")
    label: str = Field(description="Free text given when the key was issued.")
    created_at: datetime = Field(description="When the key was issued (UTC, ISO-8601).")
    revoked: bool = Field(description="True once revoked: the key no longer authenticates.")


class CredentialIssued(CredentialPublic):
    """A newly issued key, with its secret (shown only in this response)."""

    key: str = Field(
        description="The full API key `rk_...` for `Authorization: Bearer`. Shown only in "
        "this response; only its hash is stored."
    )


@router.get(
    "/firms/{firm_id}/credentials",
    name="credentials.list",
    dependencies=[authorize("credentials.list")],
)
def list_credentials(firm_id: FirmIdPath, session: SessionDep) -> list[CredentialPublic]:
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
    firm_id: FirmIdPath, body: CredentialCreate, session: SessionDep, principal: PrincipalDep
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
def revoke_credential(
    firm_id: FirmIdPath,
    key_id: Annotated[str, Path(description="The key's `key_id` (`CredentialPublic.key_id`).")],
    session: SessionDep,
) -> None:
    """Revoke a key (it stops working at once; the row stays for the record)."""
    cred = session.get(ApiCredential, key_id)
    if cred is None or cred.firm_id != firm_id:
        raise NotFound(f"no credential {key_id!r} in firm {firm_id!r}")
    cred.revoked = True
