"""Disaster detection: gateway birth / Last Will states and suspected disruptions.

- :mod:`.suspect`: the pure rule deciding when a site's gateways going offline looks
  like a disruption (:func:`find_suspicion`).
- :mod:`.store`: upserting gateway states and raising suspected disruptions in the
  registry.
- :mod:`.bridge`: site broker bridge states (``renkei/bridge/v1/{firm}/{site}/state``):
  a ``0`` counts as all of the site's gateways unreachable, a ``1`` clears it.
- :mod:`.watch`: the MQTT watcher (``renkei cloud watch``).

A suspected disruption is confirmed or dismissed by the firm through the API
(``/firms/{firm_id}/disruptions/{id}/confirm|dismiss``).
"""

from renkei.cloud.disruption.bridge import (
    BRIDGE_FILTER,
    BridgeOutcome,
    BridgeState,
    decode_bridge_state,
)
from renkei.cloud.disruption.store import (
    BridgeResult,
    StateOutcome,
    apply_bridge,
    apply_gateway_state,
    check_site,
)
from renkei.cloud.disruption.suspect import (
    GatewaySnapshot,
    SuspectRules,
    Suspicion,
    as_utc,
    find_suspicion,
)
from renkei.cloud.disruption.watch import STATE_FILTER, DisruptionWatcher, WatchSettings, WatchStats

__all__ = [
    "BRIDGE_FILTER",
    "STATE_FILTER",
    "BridgeOutcome",
    "BridgeResult",
    "BridgeState",
    "DisruptionWatcher",
    "GatewaySnapshot",
    "StateOutcome",
    "SuspectRules",
    "Suspicion",
    "WatchSettings",
    "WatchStats",
    "apply_bridge",
    "apply_gateway_state",
    "as_utc",
    "check_site",
    "decode_bridge_state",
    "find_suspicion",
]
