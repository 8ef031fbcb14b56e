"""A firm's own registry: sites (and their shift calendars), lines, machines, molds,
and bulk JSON import/export of all of it.

Every object lives under ``/firms/{firm_id}``; an object of another firm is reported as
not found. Bodies carry the firm id too (the registry's bulk format); it must equal the
path's.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Request, status
from sqlalchemy import select
from sqlalchemy.orm import Session

from renkei.cloud.api.deps import SessionDep, SettingsDep, authorize
from renkei.cloud.api.errors import Conflict, Invalid, NotFound
from renkei.cloud.api.params import FirmIdPath, LineIdPath, MachineIdPath, MoldIdPath, SiteIdPath
from renkei.cloud.capacity import ShiftCalendar
from renkei.cloud.registry import Base, Line, Machine, Mold, Site, export_document, import_document
from renkei.cloud.registry.bulk import parse_document_json
from renkei.cloud.registry.schemas import (
    LineCreate,
    LinePublic,
    MachineCreate,
    MachineOee,
    MachinePublic,
    MachineUpdate,
    MoldCreate,
    MoldMount,
    MoldPublic,
    OeeSection,
    RegistryDocument,
    SiteCreate,
    SitePublic,
)

router = APIRouter(tags=["registry"])

T = TypeVar("T", bound=Base)


def _same_firm(firm_id: str, body_firm_id: str) -> None:
    if body_firm_id != firm_id:
        raise Invalid(
            f"body.firm_id {body_firm_id!r} differs from the path's firm {firm_id!r}",
            detail=[{"loc": "body.firm_id", "msg": f"expected {firm_id!r}"}],
        )


def _owned(session: Session, orm: type[T], obj_id: str, firm_id: str) -> T:
    obj = session.get(orm, obj_id)
    owner = None if obj is None else _firm_of(obj)
    if obj is None or owner != firm_id:
        raise NotFound(f"no {orm.__tablename__} {obj_id!r} in firm {firm_id!r}")
    return obj


def _firm_of(obj: Any) -> str:
    if isinstance(obj, Line):
        return obj.site.firm_id
    return str(obj.firm_id)


def _create(session: Session, orm: type[T], obj_id: str, values: dict[str, Any]) -> T:
    if session.get(orm, obj_id) is not None:
        raise Conflict(f"{orm.__tablename__} {obj_id!r} exists")
    obj = orm(**values)
    session.add(obj)
    session.flush()
    return obj


# -------------------------------------------------------------------------- bulk


@router.get(
    "/firms/{firm_id}/registry",
    name="registry.export",
    dependencies=[authorize("registry.export")],
)
def export_registry(firm_id: FirmIdPath, session: SessionDep) -> RegistryDocument:
    """The firm's whole registry as one JSON document (the bulk format)."""
    return export_document(session, firm_ids={firm_id})


def _document_schema() -> dict[str, Any]:
    """The request body's JSON schema; its row schemas are the create endpoints' ones."""
    schema = RegistryDocument.model_json_schema(
        mode="validation", ref_template="#/components/schemas/{model}"
    )
    schema.pop("$defs", None)
    return schema


async def _raw_body(request: Request) -> bytes:
    # Read in the event loop as it arrives, bounded by the app's BodyLimit (413); parsed
    # and validated in the endpoint's worker thread, so a large document does not stall
    # the event loop that serves every other request.
    return await request.body()


@router.put(
    "/firms/{firm_id}/registry",
    name="registry.import",
    dependencies=[authorize("registry.import")],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _document_schema()}},
        }
    },
)
def import_registry(
    firm_id: FirmIdPath,
    raw: Annotated[bytes, Depends(_raw_body)],
    session: SessionDep,
    settings: SettingsDep,
) -> dict[str, int]:
    """Create or update the rows of a registry document (idempotent); rows written per table.

    Errors: 422 for invalid rows, rows of another firm (``firm_id`` not the path's, lines
    on another firm's site, machines on another firm's line) or more than
    ``max_import_rows`` rows (the limit is named); 409 naming ids that rows of *another*
    firm already hold (they are never overwritten, as single creates answer 409 for an
    existing id); 413 for a body over ``max_body_bytes``. Nothing is written on an error.
    """
    doc = parse_document_json(raw, max_rows=settings.max_import_rows)
    return import_document(session, doc, firm_id=firm_id)


# -------------------------------------------------------------------------- sites


@router.get("/firms/{firm_id}/sites", name="sites.list", dependencies=[authorize("sites.list")])
def list_sites(firm_id: FirmIdPath, session: SessionDep) -> list[SitePublic]:
    rows = session.scalars(select(Site).where(Site.firm_id == firm_id).order_by(Site.id))
    return [SitePublic.model_validate(s) for s in rows]


@router.post(
    "/firms/{firm_id}/sites",
    name="sites.create",
    status_code=status.HTTP_201_CREATED,
    dependencies=[authorize("sites.create")],
)
def create_site(firm_id: FirmIdPath, body: SiteCreate, session: SessionDep) -> SitePublic:
    _same_firm(firm_id, body.firm_id)
    return SitePublic.model_validate(_create(session, Site, body.id, body.model_dump()))


@router.get(
    "/firms/{firm_id}/sites/{site_id}", name="sites.get", dependencies=[authorize("sites.get")]
)
def get_site(firm_id: FirmIdPath, site_id: SiteIdPath, session: SessionDep) -> SitePublic:
    return SitePublic.model_validate(_owned(session, Site, site_id, firm_id))


@router.delete(
    "/firms/{firm_id}/sites/{site_id}",
    name="sites.delete",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[authorize("sites.delete")],
)
def delete_site(firm_id: FirmIdPath, site_id: SiteIdPath, session: SessionDep) -> None:
    """Delete a site with its lines and machines."""
    session.delete(_owned(session, Site, site_id, firm_id))


@router.get(
    "/firms/{firm_id}/sites/{site_id}/calendar",
    name="sites.calendar.get",
    dependencies=[authorize("sites.calendar.get")],
)
def get_calendar(
    firm_id: FirmIdPath, site_id: SiteIdPath, session: SessionDep
) -> ShiftCalendar | None:
    """The site's shift calendar; ``null`` = the platform default."""
    site = _owned(session, Site, site_id, firm_id)
    return None if site.calendar is None else ShiftCalendar.model_validate(site.calendar)


@router.put(
    "/firms/{firm_id}/sites/{site_id}/calendar",
    name="sites.calendar.put",
    dependencies=[authorize("sites.calendar.put")],
)
def put_calendar(
    firm_id: FirmIdPath, site_id: SiteIdPath, body: ShiftCalendar, session: SessionDep
) -> ShiftCalendar:
    """Set the site's shift calendar (weekly hours Mon..Sun, holidays, exceptions)."""
    site = _owned(session, Site, site_id, firm_id)
    site.calendar = body.model_dump(mode="json")
    return body


# -------------------------------------------------------------------------- lines


@router.get("/firms/{firm_id}/lines", name="lines.list", dependencies=[authorize("lines.list")])
def list_lines(firm_id: FirmIdPath, session: SessionDep) -> list[LinePublic]:
    rows = session.scalars(select(Line).join(Site).where(Site.firm_id == firm_id).order_by(Line.id))
    return [LinePublic.model_validate(x) for x in rows]


@router.post(
    "/firms/{firm_id}/lines",
    name="lines.create",
    status_code=status.HTTP_201_CREATED,
    dependencies=[authorize("lines.create")],
)
def create_line(firm_id: FirmIdPath, body: LineCreate, session: SessionDep) -> LinePublic:
    site = session.get(Site, body.site_id)
    if site is None or site.firm_id != firm_id:
        raise Invalid(
            f"body.site_id {body.site_id!r} is not a site of firm {firm_id!r}",
            detail=[{"loc": "body.site_id", "msg": "unknown site"}],
        )
    return LinePublic.model_validate(_create(session, Line, body.id, body.model_dump()))


@router.delete(
    "/firms/{firm_id}/lines/{line_id}",
    name="lines.delete",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[authorize("lines.delete")],
)
def delete_line(firm_id: FirmIdPath, line_id: LineIdPath, session: SessionDep) -> None:
    session.delete(_owned(session, Line, line_id, firm_id))


# -------------------------------------------------------------------------- machines


@router.get(
    "/firms/{firm_id}/machines", name="machines.list", dependencies=[authorize("machines.list")]
)
def list_machines(firm_id: FirmIdPath, session: SessionDep) -> list[MachinePublic]:
    rows = session.scalars(select(Machine).where(Machine.firm_id == firm_id).order_by(Machine.id))
    return [MachinePublic.model_validate(m) for m in rows]


@router.post(
    "/firms/{firm_id}/machines",
    name="machines.create",
    status_code=status.HTTP_201_CREATED,
    dependencies=[authorize("machines.create")],
)
def create_machine(firm_id: FirmIdPath, body: MachineCreate, session: SessionDep) -> MachinePublic:
    _same_firm(firm_id, body.firm_id)
    line = session.get(Line, body.line_id)
    if line is None or line.site.firm_id != firm_id:
        raise Invalid(
            f"body.line_id {body.line_id!r} is not a line of firm {firm_id!r}",
            detail=[{"loc": "body.line_id", "msg": "unknown line"}],
        )
    return MachinePublic.model_validate(_create(session, Machine, body.id, body.model_dump()))


@router.get(
    "/firms/{firm_id}/machines/{machine_id}",
    name="machines.get",
    dependencies=[authorize("machines.get")],
)
def get_machine(
    firm_id: FirmIdPath, machine_id: MachineIdPath, session: SessionDep
) -> MachinePublic:
    return MachinePublic.model_validate(_owned(session, Machine, machine_id, firm_id))


@router.patch(
    "/firms/{firm_id}/machines/{machine_id}",
    name="machines.update",
    dependencies=[authorize("machines.update")],
)
def update_machine(
    firm_id: FirmIdPath, machine_id: MachineIdPath, body: MachineUpdate, session: SessionDep
) -> MachinePublic:
    """Change some attributes; the result must still be a valid machine (422 otherwise)."""
    machine = _owned(session, Machine, machine_id, firm_id)
    current = MachinePublic.model_validate(machine).model_dump(exclude={"mounted_mold_id"})
    merged = {**current, **body.model_dump(exclude_unset=True)}
    MachineCreate.model_validate(merged)  # re-check process attributes and height range
    for key, value in body.model_dump(exclude_unset=True).items():
        setattr(machine, key, value)
    session.flush()
    return MachinePublic.model_validate(machine)


@router.delete(
    "/firms/{firm_id}/machines/{machine_id}",
    name="machines.delete",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[authorize("machines.delete")],
)
def delete_machine(firm_id: FirmIdPath, machine_id: MachineIdPath, session: SessionDep) -> None:
    session.delete(_owned(session, Machine, machine_id, firm_id))


# -------------------------------------------------------------------- mounted mold


@router.put(
    "/firms/{firm_id}/machines/{machine_id}/mold",
    name="machines.mold.mount",
    dependencies=[authorize("machines.mold.mount")],
)
def mount_mold(
    firm_id: FirmIdPath, machine_id: MachineIdPath, body: MoldMount, session: SessionDep
) -> MachinePublic:
    """Mount one of the firm's molds on the machine (replacing the one mounted before).

    Errors: 422 when ``mold_id`` is not a mold of this firm (another firm's mold is
    reported exactly like a missing one); 409 when the mold is mounted on another machine.
    """
    machine = _owned(session, Machine, machine_id, firm_id)
    mold = session.get(Mold, body.mold_id)
    if mold is None or mold.firm_id != firm_id:
        raise Invalid(
            f"body.mold_id {body.mold_id!r} is not a mold of firm {firm_id!r}",
            detail=[{"loc": "body.mold_id", "msg": "unknown mold"}],
        )
    other = session.scalar(
        select(Machine.id).where(Machine.mounted_mold_id == mold.id, Machine.id != machine.id)
    )
    if other is not None:
        raise Conflict(f"mold {mold.id!r} is mounted on machine {other!r}; unmount it there")
    machine.mounted_mold_id = mold.id
    session.flush()
    return MachinePublic.model_validate(machine)


@router.delete(
    "/firms/{firm_id}/machines/{machine_id}/mold",
    name="machines.mold.unmount",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[authorize("machines.mold.unmount")],
)
def unmount_mold(firm_id: FirmIdPath, machine_id: MachineIdPath, session: SessionDep) -> None:
    """Take the mounted mold off the machine (nothing happens when none is mounted)."""
    _owned(session, Machine, machine_id, firm_id).mounted_mold_id = None
    session.flush()


@router.get(
    "/firms/{firm_id}/machines/{machine_id}/oee",
    name="machines.oee",
    dependencies=[authorize("machines.oee")],
)
def machine_oee(firm_id: FirmIdPath, machine_id: MachineIdPath, session: SessionDep) -> MachineOee:
    """The machine's OEE parameters from the registry: mounted mold and its ideal cycle time.

    ``oee`` has the keys of the gateway config's ``oee:`` section (``mold``,
    ``ideal_cycle_time_s``) to merge into the machine's section (dashboards/README.md).
    """
    machine = _owned(session, Machine, machine_id, firm_id)
    mold = None if machine.mounted_mold_id is None else session.get(Mold, machine.mounted_mold_id)
    ideal = None if mold is None else mold.cycle_time_s
    mold_id = None if mold is None else mold.id
    return MachineOee(
        machine_id=machine.id,
        mounted_mold_id=mold_id,
        ideal_cycle_time_s=ideal,
        oee=OeeSection(mold=mold_id, ideal_cycle_time_s=ideal),
    )


# -------------------------------------------------------------------------- molds


@router.get("/firms/{firm_id}/molds", name="molds.list", dependencies=[authorize("molds.list")])
def list_molds(firm_id: FirmIdPath, session: SessionDep) -> list[MoldPublic]:
    rows = session.scalars(select(Mold).where(Mold.firm_id == firm_id).order_by(Mold.id))
    return [MoldPublic.model_validate(m) for m in rows]


@router.post(
    "/firms/{firm_id}/molds",
    name="molds.create",
    status_code=status.HTTP_201_CREATED,
    dependencies=[authorize("molds.create")],
)
def create_mold(firm_id: FirmIdPath, body: MoldCreate, session: SessionDep) -> MoldPublic:
    _same_firm(firm_id, body.firm_id)
    return MoldPublic.model_validate(_create(session, Mold, body.id, body.model_dump()))


@router.get(
    "/firms/{firm_id}/molds/{mold_id}", name="molds.get", dependencies=[authorize("molds.get")]
)
def get_mold(firm_id: FirmIdPath, mold_id: MoldIdPath, session: SessionDep) -> MoldPublic:
    return MoldPublic.model_validate(_owned(session, Mold, mold_id, firm_id))


@router.delete(
    "/firms/{firm_id}/molds/{mold_id}",
    name="molds.delete",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[authorize("molds.delete")],
)
def delete_mold(firm_id: FirmIdPath, mold_id: MoldIdPath, session: SessionDep) -> None:
    session.delete(_owned(session, Mold, mold_id, firm_id))
