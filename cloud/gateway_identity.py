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
   A rotation token (:mod:`renkei.cloud.gateway_rotation`) instead creates the gateway's
   *other* credential slot (``{user}.r1`` ↔ ``{user}``) and keeps the current one.
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
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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
    "MAX_TTL",
    "SLOT_SUFFIX",
    "TOKEN_PREFIX",
    "EnrolmentConflict",
    "EnrolmentError",
    "EnrolmentRefused",
    "GatewayCredentials",
    "GatewayNotFound",
    "claim",
    "describe",
    "enroll",
    "find_gateway",
    "grant_of",
    "provision",
    "redeem",
    "revoke",
    "slot_user",
    "slot_users",
]

#: Enrolment tokens look like ``rkg_`` + 43 URL-safe characters.
TOKEN_PREFIX: Final = "rkg_"
#: Appended to a gateway's user name for its second credential slot (rotation).
SLOT_SUFFIX: Final = ".r1"
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
    expires_at: datetime | None = None
    """When these credentials expire (``None``: never)."""

    def reveal(self) -> dict[str, str]:
        """The credentials as plain JSON-able text (for the one answer to the gateway);
        ``expires_at`` (ISO 8601) only when they expire."""
        out = {
            "firm": self.firm,
            "site": self.site,
            "gateway_id": self.gateway_id,
            "username": self.username,
            "password": self.password.get_secret_value(),
            "rollout_username": self.rollout_username,
            "rollout_password": self.rollout_password.get_secret_value(),
        }
        if self.expires_at is not None:
            out["expires_at"] = self.expires_at.isoformat()
        return out


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
    if grant.user.endswith(SLOT_SUFFIX):
        raise EnrolmentConflict(
            f"MQTT user {grant.user!r}: must not end with {SLOT_SUFFIX!r} (reserved for "
            "rotated credentials)"
        )
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
    row.token_rotates = False
    row.revoked_at = None
    session.flush()
    return token


def _aware(value: datetime, like: datetime) -> datetime:
    """SQLite returns naive datetimes for aware columns: they were stored in UTC."""
    return value.replace(tzinfo=like.tzinfo) if value.tzinfo is None else value


def slot_user(username: str, slot: int) -> str:
    """The data user of credential ``slot`` of gateway user ``username`` (0: the name
    itself, 1: ``{username}.r1``; the rollout user adds ``-rollout``). :func:`enroll`
    refuses a user name ending in ``.r1``, so no gateway can take another's slot."""
    return username if slot == 0 else f"{username}{SLOT_SUFFIX}"


def slot_users(username: str, slot: int) -> list[str]:
    """Both users of credential ``slot``: ``[data user, rollout user]``."""
    user = slot_user(username, slot)
    return [user, user + ROLLOUT_USER_SUFFIX]


def redeem(
    session: Session,
    admin: DynsecAdmin,
    token: str,
    *,
    now: datetime,
    credential_ttl: timedelta | None = None,
) -> GatewayCredentials:
    """Exchange ``token`` once for the gateway's credentials, created in the broker:
    :func:`claim` then :func:`provision`.

    The token is marked used by one conditional ``UPDATE`` in the caller's transaction;
    if the broker fails the caller's rollback leaves the token usable.

    Raises:
        EnrolmentRefused: unknown, already used, expired, or the gateway was revoked.
        DynsecError: the broker refused or could not be reached.
    """
    row = claim(session, token, now=now)
    return provision(session, admin, row, now=now, credential_ttl=credential_ttl)


def claim(session: Session, token: str, *, now: datetime) -> GatewayEnrolment:
    """Mark ``token`` used (one conditional ``UPDATE`` in the caller's transaction) and
    return its gateway's row; nothing is changed in the broker yet (:func:`provision`).

    Raises:
        EnrolmentRefused: unknown, already used, expired, or the gateway was revoked.
    """
    digest = _digest(token) if token.startswith(TOKEN_PREFIX) else None
    if digest is None:
        raise EnrolmentRefused("unknown", "unknown token (enrol the gateway again)")
    # The conditional UPDATE comes first: it takes the write lock before anything is read,
    # so of two simultaneous redemptions the second waits for the first to commit and
    # then matches nothing (single use and expiry are decided here, atomically).
    result = session.execute(
        update(GatewayEnrolment)
        .where(
            GatewayEnrolment.token_sha256 == digest,
            GatewayEnrolment.token_used_at.is_(None),
            GatewayEnrolment.revoked_at.is_(None),
            GatewayEnrolment.token_expires_at > now.astimezone(UTC),
        )
        .values(token_used_at=now)
        .execution_options(synchronize_session=False)
    )
    row = session.scalars(
        select(GatewayEnrolment).where(GatewayEnrolment.token_sha256 == digest)
    ).one_or_none()
    # The row was found by its digest; compare again in constant time so that no
    # database collation or index quirk decides alone.
    if row is None or not hmac.compare_digest(row.token_sha256 or "", digest):
        raise EnrolmentRefused("unknown", "unknown token (enrol the gateway again)")
    if getattr(result, "rowcount", 0) != 1:
        where = f"gateway {row.gateway_id!r} at {row.firm_id}/{row.site}"
        if row.revoked_at is not None:
            raise EnrolmentRefused("revoked", f"{where} was revoked")
        if row.token_used_at is not None:
            raise EnrolmentRefused("used", f"{where}: the token was already used")
        expires = _aware(row.token_expires_at, now)
        raise EnrolmentRefused(
            "expired", f"{where}: the token expired at {expires.isoformat()} (enrol again)"
        )
    session.refresh(row)
    return row


def provision(
    session: Session,
    admin: DynsecAdmin,
    row: GatewayEnrolment,
    *,
    now: datetime,
    credential_ttl: timedelta | None = None,
) -> GatewayCredentials:
    """Create the credentials of the gateway whose token :func:`claim` just took.

    An enrolment token replaces all of the gateway's users with slot 0; a rotation token
    (:func:`renkei.cloud.gateway_rotation.rotate`) creates the *other* slot and leaves the
    current one working (the overlap) until
    :func:`~renkei.cloud.gateway_rotation.finish_rotation`.

    Args:
        credential_ttl: life of the new credentials (recorded as
            ``credential_expires_at``; ``renkei cloud gateways expire`` disables them
            after it); ``None``: they do not expire.

    Raises:
        DynsecError: the broker refused or could not be reached.
    """
    grant = grant_of(row)
    rules = gateway_rules(grant)
    rollout_rules = rules[grant.user + ROLLOUT_USER_SUFFIX]
    if row.token_rotates:
        current = row.credential_slot
        slot = 1 - current
        retiring: int | None = current
    else:
        # A fresh enrolment: the other slot's users (a rotation never finished) go too.
        admin.remove_users(slot_users(row.username, 1))
        slot, retiring = 0, None
    user, rollout_user = slot_users(row.username, slot)
    passwords = {u: SecretStr(secrets.token_urlsafe(32)) for u in (user, rollout_user)}
    admin.provision_users(
        [
            UserGrant(username=user, password=passwords[user], rules=rules[grant.user]),
            UserGrant(username=rollout_user, password=passwords[rollout_user], rules=rollout_rules),
        ]
    )
    row.credential_slot = slot
    row.retiring_slot = retiring
    row.credential_expires_at = None if credential_ttl is None else now + credential_ttl
    session.flush()
    return GatewayCredentials(
        firm=grant.firm,
        site=grant.site,
        gateway_id=grant.gateway_id,
        username=user,
        password=passwords[user],
        rollout_username=rollout_user,
        rollout_password=passwords[rollout_user],
        expires_at=row.credential_expires_at,
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
    admin.remove_users([*slot_users(row.username, 0), *slot_users(row.username, 1)])
    row.retiring_slot = None
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
        "current_user": slot_user(row.username, row.credential_slot),
        "retiring_user": (
            None if row.retiring_slot is None else slot_user(row.username, row.retiring_slot)
        ),
        "credential_expires_at": (
            None if row.credential_expires_at is None else row.credential_expires_at.isoformat()
        ),
    }
