"""Credential rotation with overlap and expiry of gateway credentials (issue 16).

A gateway has two credential *slots* (:func:`~renkei.cloud.gateway_identity.slot_user`):
slot 0 is the MQTT user ``{user}`` (and ``{user}-rollout``), slot 1 is ``{user}.r1`` (and
``{user}.r1-rollout``); both hold the same role rules. A password change on one user
(``setClientPassword``) would end the gateway's session and refuse its next reconnect
until the gateway has the new password: a gap. Two users avoid it, and work with the
broker's ``use_username_as_clientid`` (each user is its own client id, so the new
connection does not take over the old session):

1. :func:`rotate` (``renkei cloud gateways rotate GW``) issues a one-time *rotation* token.
2. The gateway redeems it like an enrolment token (``renkei edge enrol``; the API's
   ``POST /gateways/enrol``): :func:`~renkei.cloud.gateway_identity.redeem` creates the
   *other* slot with a new password and expiry and keeps the current one (overlap); the
   registry records which slot is current and which is retiring.
3. The gateway connects with the new user; messages not yet acknowledged under the old
   one stay in its outbox and are published again, so nothing is lost.
4. :func:`finish_rotation` (``renkei cloud gateways rotate GW --finish``) deletes the
   retiring slot's users; their sessions end at once.

:func:`expire` (``renkei cloud gateways expire``, from a timer) disables, in the running
broker, the users of every gateway whose ``credential_expires_at`` has passed: the broker
then refuses them ("Not authorized") and the gateway's log names its user and says
"expired" (:func:`renkei.edge.credentials.expiry_problem`).

Every function takes ``now``; nothing here reads a clock. Errors as in
:mod:`renkei.cloud.gateway_identity`.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from renkei.cloud.broker_dynsec import DynsecAdmin
from renkei.cloud.gateway_identity import (
    MAX_TTL,
    TOKEN_PREFIX,
    EnrolmentRefused,
    _aware,
    _digest,
    find_gateway,
    slot_user,
    slot_users,
)
from renkei.cloud.registry.gateways import GatewayEnrolment

__all__ = ["expire", "finish_rotation", "rotate"]


def rotate(
    session: Session,
    gateway_id: str,
    *,
    now: datetime,
    ttl: timedelta,
    firm: str | None = None,
    site: str | None = None,
) -> str:
    """A one-time *rotation* token for an enrolled gateway (valid ``ttl``).

    Redeemed (by the gateway, ``renkei edge enrol``), it creates the gateway's other
    credential slot and keeps the current one working, so the gateway switches with no
    gap; :func:`finish_rotation` then deletes the old slot.

    Raises:
        ValueError: ``ttl`` out of range.
        GatewayNotFound: no such gateway, or an ambiguous id.
        EnrolmentRefused: the gateway was revoked (``revoked``), never redeemed its
            enrolment token (``unused``), or a rotation is still overlapping (``overlap``:
            finish it first).
    """
    if not timedelta(0) < ttl <= MAX_TTL:
        raise ValueError(f"ttl: expected more than 0 s and at most 30 days, got {ttl}")
    row = find_gateway(session, gateway_id, firm=firm, site=site)
    where = f"gateway {row.gateway_id!r} at {row.firm_id}/{row.site}"
    if row.revoked_at is not None:
        raise EnrolmentRefused("revoked", f"{where} was revoked; enrol it again")
    if row.token_used_at is None and not row.token_rotates:
        raise EnrolmentRefused("unused", f"{where} has not redeemed its enrolment token yet")
    if row.retiring_slot is not None:
        raise EnrolmentRefused(
            "overlap",
            f"{where}: the previous rotation still overlaps (user "
            f"{slot_user(row.username, row.retiring_slot)!r}); finish it first",
        )
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row.token_sha256 = _digest(token)
    row.token_expires_at = now + ttl
    row.token_used_at = None
    row.token_rotates = True
    session.flush()
    return token


def finish_rotation(
    session: Session,
    admin: DynsecAdmin,
    gateway_id: str,
    *,
    firm: str | None = None,
    site: str | None = None,
) -> list[str]:
    """Delete the retiring slot's users in the running broker (their sessions end) and
    return their names; ``[]`` when no rotation overlaps.

    Raises:
        GatewayNotFound: no such gateway, or an ambiguous id.
        DynsecError: the broker refused or could not be reached.
    """
    row = find_gateway(session, gateway_id, firm=firm, site=site)
    if row.retiring_slot is None:
        return []
    users = slot_users(row.username, row.retiring_slot)
    admin.remove_users(users)
    row.retiring_slot = None
    session.flush()
    return users


def expire(session: Session, admin: DynsecAdmin, *, now: datetime) -> list[str]:
    """Disable in the broker every credential whose ``credential_expires_at`` has passed
    (``disableClient``: its sessions end and its logins are refused); return the users
    disabled (run it often, e.g. every minute from a timer; idempotent).

    Raises:
        DynsecError: the broker refused or could not be reached.
    """
    rows = session.scalars(
        select(GatewayEnrolment).where(
            GatewayEnrolment.revoked_at.is_(None),
            GatewayEnrolment.credential_expires_at.is_not(None),
        )
    ).all()
    users: list[str] = []
    for row in rows:
        assert row.credential_expires_at is not None
        if now < _aware(row.credential_expires_at, now):
            continue
        slots = [row.credential_slot]
        if row.retiring_slot is not None:
            slots.append(row.retiring_slot)
        for slot in slots:
            users.extend(slot_users(row.username, slot))
    admin.disable_users(users)
    return users
