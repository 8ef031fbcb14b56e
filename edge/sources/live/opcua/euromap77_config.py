"""Config keys of the OPC UA ``euromap77`` preset (``source.euromap77``; pydantic only)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Euromap77Options"]


class Euromap77Options(BaseModel):
    """Which IMM2MES (EUROMAP 77 / OPC 40077) machine object to read and how much of it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    machine: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    """BrowseName (without namespace) of the ``IMM_MES_InterfaceType`` instance; default:
    the only one the server has (start-up fails naming the ones found if there are several)."""
