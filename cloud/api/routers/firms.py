"""Firms: admin-wide listing and creation, a firm's own record, partners' shared profiles."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, status
from pydantic import BaseModel, Field
from sqlalchemy import select

from renkei.cloud.api import audit
from renkei.cloud.api.deps import ClockDep, PrincipalDep, SessionDep, authorize
from renkei.cloud.api.errors import Conflict, NotFound
from renkei.cloud.api.params import FirmIdPath
from renkei.cloud.capacity.policy import machine_class_id, views_for
from renkei.cloud.registry import Firm, Machine, Site
from renkei.cloud.registry.schemas import FirmCreate, FirmPublic

router = APIRouter(tags=["firms"])


class FirmUpdate(BaseModel):
    """Partial update of a firm; only the given fields change."""

    model_config = {"extra": "forbid"}
    name: Annotated[str, Field(min_length=1, max_length=200)] | None = Field(
        default=None, description="New firm name (1-200 characters)."
    )
    region: Annotated[str, Field(min_length=1, max_length=64)] | None = Field(
        default=None,
        description="New region (1-64 characters, e.g. `kansai`); supporters of that region "
        "see the firm's aggregates if it grants them.",
    )
    bpnl: Annotated[str, Field(pattern=r"^BPNL[0-9A-Z]{12}$")] | None = Field(
        default=None,
        description="Catena-X Business Partner Number of the legal entity (`BPNL` + 12 "
        "characters A-Z 0-9); needed for the DCM capacity export.",
        examples=["BPNL000000000001"],
    )


class FirmProfile(BaseModel):
    """What another firm shows the caller: identity, regions and shared classes only."""

    id: str = Field(description="The firm's id.")
    name: str = Field(description="The firm's name.")
    region: str = Field(description="The firm's registered region.")
    site_regions: list[str] = Field(description="Regions of the firm's sites, sorted.")
    capability_classes: list[str] = Field(
        description="Capability classes of its machines that its policy shares with the "
        "caller (e.g. `injection_molding:1000-2000kN`), sorted."
    )
    granularity: str = Field(
        description="Finest time unit it shares with the caller: `day` or `week` (`day` for "
        "the caller's own firm)."
    )
    machine_detail: bool = Field(
        description="Whether it shares per-machine detail with the caller (true for the "
        "caller's own firm)."
    )


def _firm(session: SessionDep, firm_id: str) -> Firm:
    firm = session.get(Firm, firm_id)
    if firm is None:
        raise NotFound(f"no firm {firm_id!r}")
    return firm


@router.get("/firms", name="firms.list", dependencies=[authorize("firms.list")])
def list_firms(session: SessionDep) -> list[FirmPublic]:
    """Every firm (admin)."""
    return [FirmPublic.model_validate(f) for f in session.scalars(select(Firm).order_by(Firm.id))]


@router.post(
    "/firms",
    name="firms.create",
    status_code=status.HTTP_201_CREATED,
    dependencies=[authorize("firms.create")],
)
def create_firm(body: FirmCreate, session: SessionDep) -> FirmPublic:
    """Register a firm (admin)."""
    if session.get(Firm, body.id) is not None:
        raise Conflict(f"firm {body.id!r} exists")
    firm = Firm(**body.model_dump())
    session.add(firm)
    session.flush()
    return FirmPublic.model_validate(firm)


@router.get("/firms/{firm_id}", name="firms.get", dependencies=[authorize("firms.get")])
def get_firm(firm_id: FirmIdPath, session: SessionDep) -> FirmPublic:
    """The caller's own firm record."""
    return FirmPublic.model_validate(_firm(session, firm_id))


@router.patch("/firms/{firm_id}", name="firms.update", dependencies=[authorize("firms.update")])
def update_firm(firm_id: FirmIdPath, body: FirmUpdate, session: SessionDep) -> FirmPublic:
    """Change the firm's name, region or BPNL."""
    firm = _firm(session, firm_id)
    for key, value in body.model_dump(exclude_unset=True).items():
        setattr(firm, key, value)
    session.flush()
    return FirmPublic.model_validate(firm)


@router.get(
    "/firms/{firm_id}/profile", name="firms.profile", dependencies=[authorize("firms.profile")]
)
def firm_profile(
    firm_id: FirmIdPath,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    now: ClockDep,
) -> FirmProfile:
    """Another firm's profile as far as its sharing policy opens it to the caller.

    404 when the firm shares nothing with the caller (its existence is not disclosed).
    The read is written to the firm's audit log.
    """
    own = firm_id == principal.firm_id
    view = (
        None if own else views_for(session, viewer_firm_id=principal.firm_id, now=now).get(firm_id)
    )
    if not own and view is None:
        raise NotFound(f"no firm {firm_id!r} shares data with {principal.firm_id!r}")
    firm = _firm(session, firm_id)
    machines = session.scalars(select(Machine).where(Machine.firm_id == firm_id)).all()
    classes = sorted(
        {machine_class_id(m) for m in machines if view is None or view.allows(machine_class_id(m))}
    )
    regions = sorted(set(session.scalars(select(Site.region).where(Site.firm_id == firm_id))))
    audit.record(
        session,
        principal=principal,
        owner_firm_id=firm_id,
        action="firm.profile",
        resource=request.url.path,
        detail={"capability_classes": classes, "grant_ids": list(view.grant_ids) if view else []},
        at=now,
    )
    return FirmProfile(
        id=firm.id,
        name=firm.name,
        region=firm.region,
        site_regions=regions,
        capability_classes=classes,
        granularity=view.granularity.value if view else "day",
        machine_detail=view.machine_detail if view else True,
    )
