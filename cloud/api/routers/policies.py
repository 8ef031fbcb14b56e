"""A firm's sharing policy: its grants and its partner groups.

Nothing of a firm is visible to other firms until it creates a grant (default deny; the
interpretation of grants is :mod:`renkei.cloud.capacity.policy`). A grant opens one view:

- to one firm (``grantee_kind=firm``, ``grantee_id`` = firm id, not the owner itself),
- to every member of one of the owner's partner groups (``group``, ``grantee_id`` = the
  group id), or
- to regional supporters (``supporters``, ``grantee_id`` = a region such as ``kansai``,
  or ``*`` for supporters of any region), who only ever see aggregates over at least
  ``settings.supporter_min_firms`` firms;

limited to capability classes (``injection_molding:1000-2000kN``) or whole processes
(``injection_molding``); empty = all), at ``day`` or ``week`` granularity, optionally
with machine detail, optionally until ``expires_at``. ``PUT .../grants/{grant_id}`` replaces
a grant's terms in place (same id, effective for the next request), so an edit never
leaves a moment with no grant or with two. Every change of a grant is logged (INFO:
firm, grant id, the caller's key id and, for an edit, the changed fields old → new).

Deleting a group also deletes the grants made to it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from renkei.cloud.api.deps import ClockDep, PrincipalDep, SessionDep, authorize
from renkei.cloud.api.errors import Conflict, Invalid, NotFound
from renkei.cloud.api.params import FirmIdPath
from renkei.cloud.capacity import parse_capability_class
from renkei.cloud.registry import (
    Firm,
    GranteeKind,
    PartnerGroup,
    PartnerGroupMember,
    Process,
    ShareGranularity,
    SharingGrant,
)

router = APIRouter(tags=["policies"])
log = logging.getLogger(__name__)

GrantIdPath = Annotated[
    int, Path(ge=1, le=2**63 - 1, description="The grant's id (`GrantPublic.id`).")
]

Id = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9_.\-]{1,64}$",
        description="Identifier: 1-64 characters of A-Z a-z 0-9 `_` `.` `-`.",
    ),
]


class GrantCreate(BaseModel):
    """A new grant (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")
    grantee_kind: GranteeKind = Field(
        description="`firm`: one partner firm; `group`: every member of one of the owner's "
        "partner groups; `supporters`: regional supporters (aggregates over at least k "
        "firms only).",
        examples=["firm"],
    )
    grantee_id: Annotated[str, Field(min_length=1, max_length=64)] = Field(
        description="For `firm` a firm id (not the owner itself); for `group` the id of one "
        "of the owner's partner groups; for `supporters` a region such as `kansai`, or `*` "
        "for supporters of any region.",
        examples=["beta"],
    )
    capability_classes: Annotated[list[str], Field(max_length=100)] = Field(
        default=[],
        description="Capability classes or whole processes the grant opens, e.g. "
        "`injection_molding:1000-2000kN` or `press`; empty = all of the firm's machines. "
        "At most 100 entries.",
        examples=[["injection_molding:1000-2000kN", "press"]],
    )
    granularity: ShareGranularity = Field(
        default=ShareGranularity.WEEK,
        description="Finest time unit the grantee sees: `day` (hours per date) or `week` "
        "(hours summed over whole ISO weeks, the default).",
    )
    machine_detail: bool = Field(
        default=False,
        description="true: the grantee also sees machine ids, names, sites, attributes and "
        "per-machine hours; false: only sums per capability class.",
    )
    expires_at: AwareDatetime | None = Field(
        default=None,
        description="End of the grant (exclusive: it stops applying at this instant), "
        "ISO-8601 with a UTC offset, in the future; null = until deleted.",
        examples=["2027-03-31T15:00:00Z"],
    )


class GrantUpdate(GrantCreate):
    """A grant's new terms, all of them (as for create); the id and `created_at` stay.

    Fields left out take their defaults (no classes = all, `week`, no machine detail, no
    expiry), as a PUT replaces the whole grant.
    """


class GrantPublic(BaseModel):
    """A stored grant."""

    model_config = ConfigDict(from_attributes=True)
    id: int = Field(description="The grant's id (for `DELETE .../grants/{grant_id}`).")
    owner_firm_id: str = Field(description="The firm whose data the grant opens.")
    grantee_kind: GranteeKind = Field(
        description="`firm`, `group` or `supporters` (see `GrantCreate.grantee_kind`)."
    )
    grantee_id: str = Field(description="Firm id, partner group id, or region (`*` = any region).")
    capability_classes: list[str] = Field(
        description="Capability classes or whole processes the grant opens, e.g. "
        "`injection_molding:1000-2000kN` or `press`; empty = all of the firm's machines."
    )
    granularity: ShareGranularity = Field(
        description="Finest time unit the grantee sees: `day` or `week`."
    )
    machine_detail: bool = Field(description="Whether per-machine detail is shared.")
    created_at: datetime = Field(description="When the grant was made (UTC, ISO-8601).")
    expires_at: datetime | None = Field(
        description="End of the grant (exclusive; UTC, ISO-8601); null = until deleted. "
        "Expired grants are listed but no longer apply."
    )


class GroupCreate(BaseModel):
    """A new partner group of the owner firm."""

    model_config = ConfigDict(extra="forbid")
    id: Id = Field(
        description="The group's id (unique across the platform; 1-64 characters of A-Z a-z "
        "0-9 `_` `.` `-`).",
        examples=["acme-suppliers"],
    )
    name: Annotated[str, Field(min_length=1, max_length=200)] = Field(
        description="Display name, unique among the owner's groups (1-200 characters).",
        examples=["Kansai supplier circle"],
    )
    members: Annotated[list[Id], Field(max_length=10_000)] = Field(
        default=[],
        description="Ids of the member firms (not the owner itself); at most 10,000.",
        examples=[["beta", "gamma"]],
    )


class GroupPublic(BaseModel):
    """A stored partner group."""

    id: str = Field(description="The group's id (a grant's `grantee_id` for kind `group`).")
    owner_firm_id: str = Field(description="The firm that defined the group.")
    name: str = Field(description="Display name.")
    members: list[str] = Field(description="Ids of the member firms, sorted.")
    created_at: datetime = Field(description="When the group was created (UTC, ISO-8601).")


def _aware(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; they are UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _grant_public(grant: SharingGrant) -> GrantPublic:
    out = GrantPublic.model_validate(grant)
    return out.model_copy(
        update={"created_at": _aware(out.created_at), "expires_at": _aware(out.expires_at)}
    )


def _group_public(group: PartnerGroup) -> GroupPublic:
    created = _aware(group.created_at)
    assert created is not None
    return GroupPublic(
        id=group.id,
        owner_firm_id=group.owner_firm_id,
        name=group.name,
        members=sorted(m.firm_id for m in group.members),
        created_at=created,
    )


def _class_problem(entry: str) -> str | None:
    """Why ``entry`` is not a capability class id or process name (``None`` if it is)."""
    if entry in {p.value for p in Process}:
        return None
    try:
        parse_capability_class(entry)
    except ValueError as exc:
        return str(exc)
    return None


# ------------------------------------------------------------------ grants


def _check(session: Session, firm_id: str, body: GrantCreate, now: datetime) -> None:
    """Raise :class:`Invalid` (422) naming every bad field of a grant of ``firm_id``.

    Unknown grantee firm or the owner itself; a group that is not the owner's; an empty
    region; a capability class that does not parse; an ``expires_at`` not in the future.
    """
    problems: list[dict[str, str]] = []
    kind, grantee = body.grantee_kind, body.grantee_id
    if kind is GranteeKind.FIRM:
        if grantee == firm_id:
            problems.append({"loc": "body.grantee_id", "msg": "a firm cannot grant to itself"})
        elif session.get(Firm, grantee) is None:
            problems.append({"loc": "body.grantee_id", "msg": f"no firm {grantee!r}"})
    elif kind is GranteeKind.GROUP:
        group = session.get(PartnerGroup, grantee)
        if group is None or group.owner_firm_id != firm_id:
            problems.append(
                {"loc": "body.grantee_id", "msg": f"no partner group {grantee!r} of {firm_id!r}"}
            )
    elif not grantee.strip():
        problems.append({"loc": "body.grantee_id", "msg": "a region name or '*'"})
    for i, entry in enumerate(body.capability_classes):
        why = _class_problem(entry)
        if why is not None:
            problems.append(
                {
                    "loc": f"body.capability_classes[{i}]",
                    "msg": f"{why}; expected a class id such as "
                    "'injection_molding:1000-2000kN' or a process name",
                }
            )
    if body.expires_at is not None and body.expires_at <= now:
        problems.append({"loc": "body.expires_at", "msg": "must be in the future"})
    if problems:
        raise Invalid(f"{problems[0]['loc']}: {problems[0]['msg']}", detail=problems)


def _terms(body: GrantCreate) -> dict[str, Any]:
    """The grant's columns from a checked body (what create sets and update replaces)."""
    return {
        "grantee_kind": body.grantee_kind,
        "grantee_id": body.grantee_id,
        "capability_classes": list(dict.fromkeys(body.capability_classes)),
        "granularity": body.granularity,
        "machine_detail": body.machine_detail,
        # SQLite keeps no UTC offset: store UTC wall time (read back as UTC).
        "expires_at": None if body.expires_at is None else body.expires_at.astimezone(UTC),
    }


@router.get("/firms/{firm_id}/grants", name="grants.list", dependencies=[authorize("grants.list")])
def list_grants(firm_id: FirmIdPath, session: SessionDep) -> list[GrantPublic]:
    """The firm's grants (including expired ones), oldest first."""
    rows = session.scalars(
        select(SharingGrant).where(SharingGrant.owner_firm_id == firm_id).order_by(SharingGrant.id)
    )
    return [_grant_public(g) for g in rows]


@router.post(
    "/firms/{firm_id}/grants",
    name="grants.create",
    status_code=status.HTTP_201_CREATED,
    dependencies=[authorize("grants.create")],
)
def create_grant(
    firm_id: FirmIdPath,
    body: GrantCreate,
    session: SessionDep,
    now: ClockDep,
    principal: PrincipalDep,
) -> GrantPublic:
    """Open a view of the firm's capacity to a firm, a group or regional supporters.

    Raises:
        Invalid (422): unknown grantee firm or the owner itself; a group that is not the
            owner's; an empty region; a capability class that does not parse; an
            ``expires_at`` in the past.
    """
    if session.get(Firm, firm_id) is None:
        raise NotFound(f"no firm {firm_id!r}")
    _check(session, firm_id, body, now)
    grant = SharingGrant(
        owner_firm_id=firm_id,
        created_at=now.astimezone(UTC),
        **_terms(body),
    )
    session.add(grant)
    session.flush()
    log.info(
        "grant %s of firm %s to %s %s created by key %s",
        grant.id,
        firm_id,
        grant.grantee_kind.value,
        grant.grantee_id,
        principal.key_id,
    )
    return _grant_public(grant)


@router.put(
    "/firms/{firm_id}/grants/{grant_id}",
    name="grants.update",
    dependencies=[authorize("grants.update")],
)
def update_grant(
    firm_id: FirmIdPath,
    grant_id: GrantIdPath,
    body: GrantUpdate,
    session: SessionDep,
    now: ClockDep,
    principal: PrincipalDep,
) -> GrantPublic:
    """Replace the terms of one of the firm's grants (effective for the next request).

    Raises:
        NotFound (404): no such grant of this firm (another firm's grant included).
        Invalid (422): as for create.
    """
    grant = session.get(SharingGrant, grant_id)
    if grant is None or grant.owner_firm_id != firm_id:
        raise NotFound(f"no grant {grant_id} of firm {firm_id!r}")
    _check(session, firm_id, body, now)
    before = _grant_public(grant).model_dump(mode="json")
    for name, value in _terms(body).items():
        setattr(grant, name, value)
    session.flush()
    out = _grant_public(grant)
    after = out.model_dump(mode="json")
    changed = {k: [before[k], after[k]] for k in after if before[k] != after[k]}
    log.info(
        "grant %s of firm %s changed by key %s: %s",
        grant_id,
        firm_id,
        principal.key_id,
        changed or "no change",
    )
    return out


@router.delete(
    "/firms/{firm_id}/grants/{grant_id}",
    name="grants.delete",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[authorize("grants.delete")],
)
def delete_grant(
    firm_id: FirmIdPath, grant_id: GrantIdPath, session: SessionDep, principal: PrincipalDep
) -> None:
    """Revoke a grant (effective for the next request)."""
    grant = session.get(SharingGrant, grant_id)
    if grant is None or grant.owner_firm_id != firm_id:
        raise NotFound(f"no grant {grant_id} of firm {firm_id!r}")
    session.delete(grant)
    log.info("grant %s of firm %s revoked by key %s", grant_id, firm_id, principal.key_id)


# ------------------------------------------------------------------ groups


@router.get("/firms/{firm_id}/groups", name="groups.list", dependencies=[authorize("groups.list")])
def list_groups(firm_id: FirmIdPath, session: SessionDep) -> list[GroupPublic]:
    """The firm's partner groups with their members."""
    rows = session.scalars(
        select(PartnerGroup).where(PartnerGroup.owner_firm_id == firm_id).order_by(PartnerGroup.id)
    )
    return [_group_public(g) for g in rows]


@router.post(
    "/firms/{firm_id}/groups",
    name="groups.create",
    status_code=status.HTTP_201_CREATED,
    dependencies=[authorize("groups.create")],
)
def create_group(
    firm_id: FirmIdPath, body: GroupCreate, session: SessionDep, now: ClockDep
) -> GroupPublic:
    """Create a partner group.

    Raises:
        Conflict (409): the group id exists, or the firm has a group of that name.
        Invalid (422): unknown member firms, or the owner itself as a member.
    """
    if session.get(Firm, firm_id) is None:
        raise NotFound(f"no firm {firm_id!r}")
    if session.get(PartnerGroup, body.id) is not None:
        raise Conflict(f"partner group {body.id!r} exists")
    members = list(dict.fromkeys(body.members))
    known = set(session.scalars(select(Firm.id).where(Firm.id.in_(members))))
    problems = [
        {"loc": f"body.members[{i}]", "msg": f"no firm {m!r}"}
        for i, m in enumerate(members)
        if m not in known
    ] + [
        {"loc": f"body.members[{i}]", "msg": "the owner cannot be a member of its own group"}
        for i, m in enumerate(members)
        if m == firm_id
    ]
    if problems:
        raise Invalid(f"{problems[0]['loc']}: {problems[0]['msg']}", detail=problems)
    group = PartnerGroup(id=body.id, owner_firm_id=firm_id, name=body.name, created_at=now)
    group.members = [PartnerGroupMember(firm_id=m) for m in members]
    session.add(group)
    session.flush()
    return _group_public(group)


@router.delete(
    "/firms/{firm_id}/groups/{group_id}",
    name="groups.delete",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[authorize("groups.delete")],
)
def delete_group(
    firm_id: FirmIdPath,
    group_id: Annotated[str, Path(description="The group's id (`GroupPublic.id`).")],
    session: SessionDep,
) -> None:
    """Delete a partner group and the grants made to it."""
    group = session.get(PartnerGroup, group_id)
    if group is None or group.owner_firm_id != firm_id:
        raise NotFound(f"no partner group {group_id!r} of firm {firm_id!r}")
    for grant in session.scalars(
        select(SharingGrant).where(
            SharingGrant.owner_firm_id == firm_id,
            SharingGrant.grantee_kind == GranteeKind.GROUP,
            SharingGrant.grantee_id == group_id,
        )
    ):
        session.delete(grant)
    session.delete(group)
