"""Path parameters several routers share, each with its OpenAPI description.

Routers declare ``firm_id: FirmIdPath`` instead of ``firm_id: str``; the type and the
validation are unchanged (a plain string path segment), only the published description
is added once here.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

__all__ = [
    "FirmIdPath",
    "GatewayIdPath",
    "LineIdPath",
    "MachineIdPath",
    "ModelNamePath",
    "ModelVersionPath",
    "MoldIdPath",
    "SiteIdPath",
    "TakeoverIdPath",
]

FirmIdPath = Annotated[
    str,
    Path(
        description="Id of the firm the operation is about (`FirmPublic.id`). For a firm's own "
        "data (registry, bookings, policies, disruptions, takeovers, assignments) it must be "
        "the caller's firm (admins: any firm), else 403.",
        examples=["acme"],
    ),
]
SiteIdPath = Annotated[
    str,
    Path(
        description="Id of one of the firm's sites (`SitePublic.id`); another firm's site "
        "answers 404.",
        examples=["acme-s1"],
    ),
]
LineIdPath = Annotated[
    str,
    Path(
        description="Id of one of the firm's production lines (`LinePublic.id`); another "
        "firm's line answers 404.",
        examples=["acme-l1"],
    ),
]
MachineIdPath = Annotated[
    str,
    Path(
        description="Id of one of the firm's machines (`MachinePublic.id`); another firm's "
        "machine answers 404.",
        examples=["acme-m1"],
    ),
]
MoldIdPath = Annotated[
    str,
    Path(
        description="Id of one of the firm's molds (`MoldPublic.id`); another firm's mold "
        "answers 404.",
        examples=["acme-p1"],
    ),
]
TakeoverIdPath = Annotated[
    str,
    Path(
        description="Id of one of the firm's takeover requests (`TakeoverPublic.id`, e.g. "
        "`tko-YYYYMMDD-xxxxxxxx` when generated); another firm's request answers 404.",
        examples=["tko-20261123-1a2b3c4d"],
    ),
]
GatewayIdPath = Annotated[
    str,
    Path(
        description="Id of a rollout-enabled gateway of the firm, as in its gateway config "
        "(`FleetGatewayPublic.gateway_id`).",
        examples=["gw-press-1"],
    ),
]
ModelNamePath = Annotated[
    str,
    Path(
        description="Model name as in its manifest (lowercase letters, digits, `_`, `.`, "
        "`-`; at most 64 characters).",
        examples=["skab-pump-mahal"],
    ),
]
ModelVersionPath = Annotated[
    str,
    Path(description="Release version as in the model's manifest (SemVer).", examples=["1.2.0"]),
]
