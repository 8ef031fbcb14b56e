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
    injection_units: Annotated[int, Field(ge=1, le=4)] = 1
    """Injection units read (``InjectionUnit_1`` .. ``_<n>``, OPC 40077 §15); signals of unit
    k >= 2 are prefixed ``iu<k>_``."""
    zones: Annotated[int, Field(ge=0, le=16)] = 6
    """Barrel temperature zones per injection unit (``TemperatureZone_1`` .. ``_<n>``,
    OPC 40083 TemperatureZonesType): ``barrel_temp_zone<n>_C`` and ``..._set_C``. Zones the
    machine does not have are left out (reported once)."""
    cycle_events: bool = True
    """Read the per-cycle parameters (injection time, cushion, pressures ...) from the
    machine's ``CycleParametersEventType`` events (OPC 40077 §17.3; the standard exposes them
    only as events). ``false``: DataAccess variables only (those signals stay empty)."""
