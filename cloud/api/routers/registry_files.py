"""A firm's registry from a spreadsheet: one CSV per table, or one XLSX workbook.

- ``POST /firms/{firm_id}/registry/{table}.csv`` (body ``text/csv``): the rows of one
  table (``sites``, ``lines``, ``machines`` or ``molds``), header = the table's fields
  (as ``GET .../registry`` names them); UTF-8 or Shift_JIS (cp932).
- ``POST /firms/{firm_id}/registry.xlsx`` (body the workbook): one sheet per table, each
  named after its table.

Both are read by :mod:`renkei.cloud.registry.tabular` and written as ``PUT
.../registry`` writes a document: upserted by id, all rows or none. Every bad cell is a
422 detail item (``machines.csv:3.clamp_force_kN`` / ``machines!D3.clamp_force_kN`` +
message), as the bookings CSV upload reports them; a missing ``firm_id`` column means the
path's firm. Only the firm's operators (and admins) may import; bodies are limited to
``RENKEI_API_MAX_BODY_BYTES`` (413) and ``max_import_rows`` rows (422).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, Field

from renkei.cloud.api.bodies import XLSX_BODY
from renkei.cloud.api.deps import SessionDep, SettingsDep, authorize
from renkei.cloud.api.params import FirmIdPath
from renkei.cloud.registry import import_sheets, import_xlsx
from renkei.cloud.registry.tabular import decode_csv, read_csv

router = APIRouter(tags=["registry"])

Table = Literal["sites", "lines", "machines", "molds"]


class RegistryImportPublic(BaseModel):
    """What a spreadsheet import wrote."""

    written: dict[str, int] = Field(
        description="rows created or updated per table (table name -> count, >= 0)"
    )


async def _raw_body(request: Request) -> bytes:
    # bounded by the app's body limit (413 beyond ApiSettings.max_body_bytes)
    return await request.body()


RawBody = Annotated[bytes, Depends(_raw_body)]


@router.post(
    "/firms/{firm_id}/registry/{table}.csv",
    name="registry.upload_csv",
    dependencies=[authorize("registry.upload_csv")],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {
                    "schema": {"type": "string"},
                    "example": "id,name,width_mm,height_mm,thickness_mm,weight_kg,"
                    "required_clamp_force_kN,shot_weight_g,resin,cavities,"
                    "locating_ring_mm,cycle_time_s\n"
                    "m-cover,Cover,400,400,350,450,1200,120,PP,2,100,30\n",
                }
            },
        }
    },
)
def upload_registry_csv(
    firm_id: FirmIdPath,
    table: Annotated[Table, Path(description="the table the CSV holds")],
    raw: RawBody,
    session: SessionDep,
    settings: SettingsDep,
) -> RegistryImportPublic:
    """Create or update the firm's rows of one table from CSV (all rows or none).

    Errors: 422 with one detail item per bad cell (``{table}.csv:{line}.{column}``),
    for rows of another firm, or more than ``max_import_rows`` rows; 409 for ids other
    firms hold; 413 for a body over ``max_body_bytes``.
    """
    name = f"{table}.csv"
    sheet = read_csv(decode_csv(raw, name=name), name=name, max_rows=settings.max_import_rows)
    return RegistryImportPublic(written=import_sheets(session, [sheet], firm_id=firm_id))


@router.post(
    "/firms/{firm_id}/registry.xlsx",
    name="registry.upload_xlsx",
    dependencies=[authorize("registry.upload_xlsx")],
    openapi_extra=XLSX_BODY,
)
def upload_registry_xlsx(
    firm_id: FirmIdPath, raw: RawBody, session: SessionDep, settings: SettingsDep
) -> RegistryImportPublic:
    """Create or update the firm's registry from an XLSX workbook, one sheet per table.

    Errors: 422 with one detail item per bad cell (``{sheet}!{cell}.{column}``), for a
    body that is no workbook, a sheet named after no table, rows of another firm, or more
    than ``max_import_rows`` rows; 409 for ids other firms hold; 413 for a body over
    ``max_body_bytes``.
    """
    written = import_xlsx(session, raw, firm_id=firm_id, max_rows=settings.max_import_rows)
    return RegistryImportPublic(written=written)
