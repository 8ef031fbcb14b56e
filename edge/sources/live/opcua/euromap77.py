"""The OPC UA ``euromap77`` preset: IMM2MES (EUROMAP 77 / OPC 40077) standard variables.

Contract with the OPC UA driver (:mod:`edge.sources.live.opcua.driver`):

- :func:`preset_signals` gives, before connecting, the fixed list of signals the preset
  publishes and its shot trigger (one ``shot`` row per completed machine cycle);
- :func:`resolve_nodes`, after each (re)connect, browses the server's machine object and
  returns the NodeId of each of those signals found on this machine (a signal the server
  does not have is left out and reported once by the driver).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edge.sources.live.opcua.euromap77_config import Euromap77Options
from edge.sources.live.signals import ShotsConfig, SignalMap

if TYPE_CHECKING:
    from asyncua import ua
    from asyncua.client.client import Client

__all__ = ["preset_signals", "resolve_nodes"]


def preset_signals(options: Euromap77Options) -> tuple[list[SignalMap], ShotsConfig]:
    """The preset's signals (name, unit; scale 1) and its shot trigger."""
    raise NotImplementedError


async def resolve_nodes(client: Client, options: Euromap77Options) -> dict[str, ua.NodeId]:
    """Signal name -> NodeId on the connected server's machine object (found by browsing).

    Also returns each signal's EngineeringUnits where the server has them via ... (see the
    implementation).

    Raises:
        edge.sources.live.LiveSourceError: no (or several, without ``options.machine``)
            ``IMM_MES_InterfaceType`` instances; the message names those found.
    """
    raise NotImplementedError
