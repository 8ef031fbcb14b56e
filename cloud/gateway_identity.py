"""Gateway enrolment, credential exchange and revocation (issue 16, "Gateway identity").

A gateway's life in the broker, with the registry as the record
(:class:`~renkei.cloud.registry.gateways.GatewayEnrolment`) and the broker's
dynamic-security plugin as the enforcement (:mod:`renkei.cloud.broker_dynsec`):

1. :func:`enroll` (``renkei cloud gateways enroll GATEWAY.yaml``): records the gateway's
   grant (firm, site, user, machines: :class:`~renkei.cloud.broker_acl.GatewayGrant`) and
   returns a one-time enrolment token ``rkg_<43 characters>`` (256 random bits), valid
   for ``ttl``. Only the token's SHA-256 is stored. Enrolling again (a lost token, a
   revoked gateway coming back) replaces the token.
2. :func:`redeem` (``renkei cloud gateways redeem``): the gateway's token, once and
   before it expires, becomes its credentials: two generated passwords (its data user
   and its ``-rollout`` user), created in the running broker with one role each whose
   ACLs are :func:`~renkei.cloud.broker_acl.gateway_rules` (the rules of the static ACL
   file). The passwords are returned once and stored nowhere but as the plugin's hashes.
3. :func:`revoke` (``renkei cloud gateways revoke GW``): deletes both users and roles in
   the running broker, which disconnects their sessions at once, and marks the row
   revoked (its token, if unused, can no longer be redeemed).

The registry is the store because the exchange must be single-use across several API
processes and hosts: one conditional ``UPDATE`` (``... WHERE token_used_at IS NULL``) is
atomic on SQLite and PostgreSQL alike, which a file beside one process is not; and the
grant belongs to a firm (its row goes with the firm's archive and is deleted with it).

Every function takes ``now`` (an aware datetime): no wall clock is read here. Errors:
:class:`EnrolmentRefused` (token unknown, used, expired, gateway revoked),
:class:`GatewayNotFound`, :class:`EnrolmentConflict` (a user, gateway or machine already
belongs to another gateway, or an unknown firm); the broker's are
:class:`~renkei.cloud.broker_dynsec.DynsecError`. No token or password is ever logged or
put in an error message.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from pydantic import SecretStr
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from renkei.cloud._exceptions import CloudError
from renkei.cloud.broker_acl import (
    ROLLOUT_USER_SUFFIX,
    AclConfigError,
    CloudUsers,
    GatewayGrant,
    check_unique,
    gateway_rules,
)
from renkei.cloud.broker_dynsec import DynsecAdmin, UserGrant
from renkei.cloud.registry.gateways import GatewayEnrolment
from renkei.cloud.registry.models import Firm

__all__ = [
    "TOKEN_PREFIX",
    "EnrolmentConflict",
    "EnrolmentError",
    "EnrolmentRefused",
    "GatewayCredentials",
    "GatewayNotFound",
    "describe",
    "enroll",
    "find_gateway",
    "grant_of",
    "redeem",
    "revoke",
]

#: Enrolment tokens look like ``rkg_`` + 43 URL-safe characters.
TOKEN_PREFIX: Final = "rkg_"
#: Longest enrolment token life accepted by :func:`enroll`.
MAX_TTL: Final = timedelta(days=30)


class EnrolmentError(CloudError):
    """Base class of the enrolment errors."""


class EnrolmentRefused(EnrolmentError):
    """A token that cannot be exchanged; ``reason`` says why (``unknown``, ``used``,
    ``expired``, ``revoked``) without repeating the token."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        super().__init__(f"enrolment token refused: {detail}")


class EnrolmentConflict(EnrolmentError, ValueError):
    """The grant collides with another gateway's (user, gateway id, machine) or names a
    firm the registry does not know."""


class GatewayNotFound(EnrolmentError, LookupError):
    """No enrolled gateway matches (or several do: the message lists them)."""


@dataclass(frozen=True, slots=True)
class GatewayCredentials:
    """What a gateway gets for its token (shown once)."""

    firm: str
    site: str
    gateway_id: str
    username: str
    password: SecretStr
    rollout_username: str
    rollout_password: SecretStr

    def reveal(self) -> dict[str, str]:
        """The credentials as plain JSON-able text (for the one answer to the gateway)."""
        return {
            "firm": self.firm,
            "site": self.site,
            "gateway_id": self.gateway_id,
            "username": self.username,
            "password": self.password.get_secret_value(),
            "rollout_username": self.rollout_username,
            "rollout_password": self.rollout_password.get_secret_value(),
        }


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def grant_of(row: GatewayEnrolment) -> GatewayGrant:
    """The ACL grant recorded in ``row``."""
    return GatewayGrant(
        user=row.username,
        gateway_id=row.gateway_id,
        firm=row.firm_id,
        site=row.site,
        machines=tuple((str(a), str(b), str(c)) for a, b, c in row.machines),
        source=f"registry gateway {row.firm_id}/{row.site}/{row.gateway_id}",
    )


def enroll(
    session: Session,
    grant: GatewayGrant,
    *,
    now: datetime,
    ttl: timedelta,
    cloud: CloudUsers | None = None,
) -> str:
    """Record ``grant`` and return a new one-time enrolment token (valid ``ttl``).

    Args:
        session: the registry (the caller commits).
        grant: the gateway (from its config file: :func:`~renkei.cloud.broker_acl.load_gateway`).
        now: the current instant (aware).
        ttl: token lifetime, > 0 and <= 30 days.
        cloud: the cloud services' MQTT users (no gateway may take one; default
            :class:`CloudUsers`).

    Raises:
        ValueError: ``ttl`` out of range.
        EnrolmentConflict: unknown firm, or the user, gateway or a machine belongs to
            another enrolled (not revoked) gateway.
    """
    if not timedelta(0) < ttl <= MAX_TTL:
        raise ValueError(f"ttl: expected more than 0 s and at most 30 days, got {ttl}")
    if session.get(Firm, grant.firm) is None:
        raise EnrolmentConflict(f"firm {grant.firm!r} is not in the registry")
    rows = session.scalars(select(GatewayEnrolment)).all()
    same = [
        r
        for r in rows
        if (r.firm_id, r.site, r.gateway_id) == (grant.firm, grant.site, grant.gateway_id)
    ]
    if same and same[0].username != grant.user:
        raise EnrolmentConflict(
            f"gateway {grant.gateway_id!r} at {grant.firm}/{grant.site} is enrolled as MQTT "
            f"user {same[0].username!r}; revoke it and enrol with that user"
        )
    others = [grant_of(r) for r in rows if r.revoked_at is None and r.username != grant.user]
    try:
        check_unique([*others, grant], cloud or CloudUsers())
    except AclConfigError as exc:
        raise EnrolmentConflict(str(exc)) from None
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = session.get(GatewayEnrolment, grant.user)
    if row is None:
        row = GatewayEnrolment(username=grant.user, created_at=now)
        session.add(row)
    elif row.firm_id != grant.firm:
        raise EnrolmentConflict(f"MQTT user {grant.user!r} belongs to another firm")
    row.firm_id = grant.firm
    row.site = grant.site
    row.gateway_id = grant.gateway_id
    row.machines = [list(m) for m in grant.machines]
    row.token_sha256 = _digest(token)
    row.token_expires_at = now + ttl
    row.token_used_at = None
    row.revoked_at = None
    session.flush()
    return token


def _aware(value: datetime, like: datetime) -> datetime:
    """SQLite returns naive datetimes for aware columns: they were stored in UTC."""
    return value.replace(tzinfo=like.tzinfo) if value.tzinfo is None else value


def redeem(
    session: Session, admin: DynsecAdmin, token: str, *, now: datetime
) -> GatewayCredentials:
    """Exchange ``token`` once for the gateway's credentials, created in the broker.

    The token is marked used by one conditional ``UPDATE`` in the caller's transaction;
    if the broker fails the caller's rollback leaves the token usable.

    Raises:
        EnrolmentRefused: unknown, already used, expired, or the gateway was revoked.
        DynsecError: the broker refused or could not be reached.
    """
    digest = _digest(token) if token.startswith(TOKEN_PREFIX) else None
    row = (
        None
        if digest is None
        else session.scalars(
            select(GatewayEnrolment).where(GatewayEnrolment.token_sha256 == digest)
        ).one_or_none()
    )
    if row is None:
        raise EnrolmentRefused("unknown", "unknown token (enrol the gateway again)")
    where = f"gateway {row.gateway_id!r} at {row.firm_id}/{row.site}"
    if row.revoked_at is not None:
        raise EnrolmentRefused("revoked", f"{where} was revoked")
    if row.token_used_at is not None:
        raise EnrolmentRefused("used", f"{where}: the token was already used")
    expires = _aware(row.token_expires_at, now)
    if now >= expires:
        raise EnrolmentRefused(
            "expired", f"{where}: the token expired at {expires.isoformat()} (enrol again)"
        )
    result = session.execute(
        update(GatewayEnrolment)
        .where(
            GatewayEnrolment.username == row.username,
            GatewayEnrolment.token_sha256 == digest,
            GatewayEnrolment.token_used_at.is_(None),
        )
        .values(token_used_at=now)
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != 1:
        raise EnrolmentRefused("used", f"{where}: the token was already used")
    grant = grant_of(row)
    rules = gateway_rules(grant)
    passwords = {user: SecretStr(secrets.token_urlsafe(32)) for user in rules}
    admin.provision_users(
        [UserGrant(username=u, password=passwords[u], rules=r) for u, r in rules.items()]
    )
    rollout_user = grant.user + ROLLOUT_USER_SUFFIX
    return GatewayCredentials(
        firm=grant.firm,
        site=grant.site,
        gateway_id=grant.gateway_id,
        username=grant.user,
        password=passwords[grant.user],
        rollout_username=rollout_user,
        rollout_password=passwords[rollout_user],
    )


def find_gateway(
    session: Session, gateway_id: str, *, firm: str | None = None, site: str | None = None
) -> GatewayEnrolment:
    """The one enrolled gateway ``gateway_id`` (narrowed by ``firm``/``site``).

    Raises:
        GatewayNotFound: none, or several (the message lists ``firm/site/gateway``).
    """
    query = select(GatewayEnrolment).where(GatewayEnrolment.gateway_id == gateway_id)
    if firm is not None:
        query = query.where(GatewayEnrolment.firm_id == firm)
    if site is not None:
        query = query.where(GatewayEnrolment.site == site)
    rows = session.scalars(query).all()
    if not rows:
        raise GatewayNotFound(f"no enrolled gateway {gateway_id!r}")
    if len(rows) > 1:
        names = ", ".join(sorted(f"{r.firm_id}/{r.site}/{r.gateway_id}" for r in rows))
        raise GatewayNotFound(f"gateway {gateway_id!r} is ambiguous ({names}): give --firm/--site")
    return rows[0]


def revoke(
    session: Session,
    admin: DynsecAdmin,
    gateway_id: str,
    *,
    now: datetime,
    firm: str | None = None,
    site: str | None = None,
) -> GatewayEnrolment:
    """Cut gateway ``gateway_id`` off: delete its users and roles in the running broker
    (disconnecting its sessions at once) and mark it revoked; idempotent.

    The broker is changed first: if it fails, the caller's rollback leaves the registry
    as it was, and running the command again finishes the job.

    Raises:
        GatewayNotFound: no such gateway, or an ambiguous id.
        DynsecError: the broker refused or could not be reached.
    """
    row = find_gateway(session, gateway_id, firm=firm, site=site)
    admin.remove_users([row.username, row.username + ROLLOUT_USER_SUFFIX])
    if row.revoked_at is None:
        row.revoked_at = now
    session.flush()
    return row


def describe(row: GatewayEnrolment) -> dict[str, Any]:
    """A row as JSON-able text (no token hash), for the CLI's listing."""
    return {
        "firm": row.firm_id,
        "site": row.site,
        "gateway_id": row.gateway_id,
        "username": row.username,
        "machines": ["/".join(m) for m in row.machines],
        "token_expires_at": row.token_expires_at.isoformat(),
        "token_used_at": None if row.token_used_at is None else row.token_used_at.isoformat(),
        "revoked_at": None if row.revoked_at is None else row.revoked_at.isoformat(),
    }
