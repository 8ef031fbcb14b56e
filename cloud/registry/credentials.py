"""API credentials: ``rk_{key_id}_{secret}`` keys, stored as SHA-256 of the secret."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy.orm import Session

from renkei.cloud.registry.models import ApiCredential, Role

__all__ = ["Principal", "issue_key", "verify_key"]

_PREFIX = "rk_"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a firm and a role (from a verified credential)."""

    firm_id: str
    role: Role
    key_id: str


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_key(session: Session, *, firm_id: str, role: Role, label: str = "") -> str:
    """Create a credential and return the full key (shown once, never stored)."""
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    session.add(
        ApiCredential(
            key_id=key_id, firm_id=firm_id, role=role, secret_sha256=_digest(secret), label=label
        )
    )
    session.flush()
    return f"{_PREFIX}{key_id}_{secret}"


def verify_key(session: Session, key: str) -> Principal | None:
    """The principal of a valid, unrevoked key, else ``None`` (constant-time compare)."""
    if not key.startswith(_PREFIX):
        return None
    key_id, sep, secret = key[len(_PREFIX) :].partition("_")
    if not sep or not secret:
        return None
    cred = session.get(ApiCredential, key_id)
    if cred is None or cred.revoked:
        return None
    if not hmac.compare_digest(cred.secret_sha256, _digest(secret)):
        return None
    return Principal(firm_id=cred.firm_id, role=cred.role, key_id=key_id)
