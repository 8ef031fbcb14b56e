"""API credentials: ``rk_{key_id}_{secret}`` keys, stored as SHA-256 of the secret."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy.orm import Session

from renkei.cloud.registry.models import ApiCredential, Role

__all__ = ["MIN_SECRET_LENGTH", "Principal", "issue_key", "verify_key"]

_PREFIX = "rk_"

#: Fewest characters of a key's secret given to :func:`issue_key` (random ones have 43).
MIN_SECRET_LENGTH = 32


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a firm and a role (from a verified credential)."""

    firm_id: str
    role: Role
    key_id: str


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_key(
    session: Session,
    *,
    firm_id: str,
    role: Role,
    label: str = "",
    key_id: str | None = None,
    secret: str | None = None,
) -> str:
    """Create a credential and return the full key ``rk_{key_id}_{secret}`` (shown once,
    never stored; only the secret's SHA-256 is).

    Args:
        key_id: the key's public id (default 16 random hex digits); ``[A-Za-z0-9]``,
            1..32 characters, as it ends at the first ``_`` of the key.
        secret: the key's secret (default 256 random bits, URL-safe base64). Given only
            for a key an operator generated beforehand (``renkei cloud init
            --admin-token``, the compose stack's ``.env``); it must be at least 32
            characters.

    Raises:
        ValueError: ``key_id`` or ``secret`` has the wrong form.
    """
    key_id = secrets.token_hex(8) if key_id is None else key_id
    secret = secrets.token_urlsafe(32) if secret is None else secret
    if not (1 <= len(key_id) <= 32 and key_id.isascii() and key_id.isalnum()):
        raise ValueError(f"key id {key_id!r}: expected 1..32 letters or digits")
    if len(secret) < MIN_SECRET_LENGTH:
        raise ValueError(f"key secret: expected at least {MIN_SECRET_LENGTH} characters")
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
