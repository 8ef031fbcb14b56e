"""Site broker bridge states in the disruption watcher (``renkei/bridge/v1/{firm}/{site}/state``).

Behind a site broker (:mod:`renkei.cloud.site_bridge`) the gateways stay connected to the
site broker when the WAN or the site broker dies, so their Last Wills never reach the cloud.
What does reach it is the bridge's own state: Mosquitto publishes ``1`` (retained) when the
bridge connects and leaves a retained Last Will ``0`` on the cloud broker, so ``0`` arrives
when the link drops (keepalive × 1.5) or the site broker is killed.

The rule
    - **``0``**: the site's link to the cloud is down, so every gateway of the site counts
      as offline from the moment the ``0`` arrived (gateways already offline keep their own
      offline time). :func:`renkei.cloud.disruption.store.check_site` then applies the
      unchanged suspicion rule (``min_gateways``, ``offline_fraction``, ``window_s``, one
      open disruption per site, nothing already judged raised again): exactly what the
      gateways' Last Wills would have done. A raised suspicion has ``source=last_will`` (the
      ``0`` is the bridge's Last Will) and ``detail.rule = "site_bridge"`` with
      ``detail.bridge = {"topic": ..., "offline_at": ...}``; its ``offline`` list names the
      gateways as for a Last Will suspicion. A site with fewer than ``min_gateways`` known
      gateways (births seen) raises nothing, as without a bridge.
    - **``1``**: the cause clears; the gateways count by their own stored states again.
      A *suspected* disruption raised by the bridge (``detail.rule == "site_bridge"``, not
      decided by anyone) is dismissed by the watcher (``status=dismissed``,
      ``decided_at`` = receipt of the ``1``, ``decided_by=None``,
      ``detail.cleared = {"by": "site_bridge", "at": ...}``) unless the gateways' own states
      still make the site look stopped (then it stays for the firm to judge). Gateway Last
      Wills queued on the site broker during the outage arrive after the ``1`` and are newer
      than the dismissal, so they still raise a new suspicion by the Last Will rule. A
      *confirmed* disruption, or a suspicion raised by the gateways' own Last Wills, is
      never touched: the firm ends or dismisses it.
    - Ordering: the watcher applies a topic's messages in arrival order; a state equal to
      the stored one (a retained or redelivered copy) changes nothing.

Ignored (logged once per topic, counted, acknowledged; never stops the watcher): a payload
other than ``1``/``0``, a topic with bad levels, and a firm/site pair the registry does not
have (the topic's firm must own the site: one firm's bridge topic can never raise another
firm's site; the cloud ACL also lets a bridge user write only its own site's state).

Known limit: the payload carries no time, so a retained ``0`` seen for the first time (a new
watcher subscription) is dated at its receipt.
"""

from __future__ import annotations

import enum
import logging
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from renkei.cloud.disruption.suspect import GatewaySnapshot, SuspectRules, as_utc, find_suspicion
from renkei.cloud.registry import (
    Disruption,
    DisruptionStatus,
    GatewayStatus,
    Site,
    SiteBridgeStatus,
)
from renkei.core.wire import BRIDGE_PREFIX, WireError, bridge_state_topic

__all__ = [
    "BRIDGE_FILTER",
    "BRIDGE_RULE",
    "BridgeOutcome",
    "BridgeState",
    "OnceLog",
    "apply_bridge_state",
    "clear_bridge_suspicions",
    "decode_bridge_state",
    "iso_z",
]

log = logging.getLogger("renkei.cloud.disruption")

#: The topic filter of every site broker's retained bridge state.
BRIDGE_FILTER: Final = f"{BRIDGE_PREFIX}/+/+/state"

#: ``Disruption.detail["rule"]`` of a suspicion the site bridge's ``0`` raised.
BRIDGE_RULE: Final = "site_bridge"


class OnceLog:
    """Logs a warning the first time a key is seen (thread-safe; at most ``limit`` keys
    are remembered, later new keys are logged every time)."""

    def __init__(self, logger: logging.Logger, *, limit: int = 10_000) -> None:
        self._log = logger
        self._limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def warning(self, key: str, message: str, *args: object) -> None:
        """``logger.warning(message, *args)`` unless ``key`` was logged before."""
        with self._lock:
            if key in self._seen:
                return
            if len(self._seen) < self._limit:
                self._seen.add(key)
        self._log.warning(message, *args)


def iso_z(at: datetime) -> str:
    """``at`` as ISO 8601 UTC with a ``Z`` suffix."""
    return as_utc(at).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True, kw_only=True)
class BridgeState:
    """One decoded bridge state message: site ``firm/site``'s bridge is ``online`` or not."""

    firm: str
    site: str
    online: bool

    @property
    def topic(self) -> str:
        """The state topic it came on."""
        return bridge_state_topic(firm=self.firm, site=self.site)


def decode_bridge_state(topic: str, payload: bytes) -> BridgeState:
    """Decode ``renkei/bridge/v1/{firm}/{site}/state`` with payload ``1`` or ``0``.

    Raises:
        WireError: ``bad_topic`` (not that shape, or a bad level) or ``invalid_payload``
            (anything but ``1``/``0``, surrounding whitespace allowed).
    """
    prefix = f"{BRIDGE_PREFIX}/"
    parts = topic.removeprefix(prefix).split("/")
    if not topic.startswith(prefix) or len(parts) != 3 or parts[2] != "state":
        raise WireError("bad_topic", f"{topic!r} is not {BRIDGE_PREFIX}/{{firm}}/{{site}}/state")
    firm, site = parts[0], parts[1]
    if bridge_state_topic(firm=firm, site=site) != topic:  # raises on a bad level
        raise WireError("bad_topic", f"{topic!r} is not a bridge state topic")  # pragma: no cover
    value = payload.strip()
    if value not in (b"0", b"1"):
        raise WireError("invalid_payload", f"bridge state must be 1 or 0, got {payload[:32]!r}")
    return BridgeState(firm=firm, site=site, online=value == b"1")


class BridgeOutcome(enum.StrEnum):
    """What :func:`apply_bridge_state` did with one bridge state."""

    WENT_ONLINE = "went_online"
    """First seen online, or offline before: clear the bridge's suspicions."""
    WENT_OFFLINE = "went_offline"
    """First seen offline, or online before: check the site."""
    STALE = "stale"
    """The stored state already (a retained or redelivered copy)."""
    UNKNOWN_SITE = "unknown_site"
    """The registry has no such site for that firm: nothing stored."""


def apply_bridge_state(
    session: Session, *, state: BridgeState, received_at: datetime
) -> BridgeOutcome:
    """Store site ``state.firm/state.site``'s bridge state (see the module docstring).

    Args:
        state: the decoded message.
        received_at: when the watcher received it (aware UTC; naive = UTC).

    Returns:
        What changed; :attr:`BridgeOutcome.UNKNOWN_SITE` when the site is not registered
        under that firm (nothing is written).
    """
    site = session.get(Site, state.site)
    if site is None or site.firm_id != state.firm:
        return BridgeOutcome.UNKNOWN_SITE
    at = as_utc(received_at)
    row = session.get(SiteBridgeStatus, (state.firm, state.site))
    if row is None:
        session.add(
            SiteBridgeStatus(
                firm_id=state.firm, site_id=state.site, online=state.online, changed_at=at
            )
        )
        session.flush()
    elif row.online == state.online:
        return BridgeOutcome.STALE
    else:
        row.online = state.online
        row.changed_at = at
    return BridgeOutcome.WENT_ONLINE if state.online else BridgeOutcome.WENT_OFFLINE


def clear_bridge_suspicions(
    session: Session,
    *,
    firm_id: str,
    site_id: str,
    rules: SuspectRules,
    at: datetime,
    judged: datetime | None,
) -> list[Disruption]:
    """The bridge of ``firm_id/site_id`` is back: dismiss the suspicions it raised.

    Only ``suspected`` disruptions with ``detail.rule == "site_bridge"`` and no decision
    are dismissed, and only if the gateways' own stored states (the bridge no longer
    counts) do not make the site look stopped.

    Args:
        at: receipt time of the ``1`` (the dismissal's ``decided_at``).
        judged: the site's ``judged_until`` before this call (closed disruptions).

    Returns:
        The disruptions dismissed (possibly none).
    """
    open_ones = session.scalars(
        select(Disruption).where(
            Disruption.firm_id == firm_id,
            Disruption.site_id == site_id,
            Disruption.status == DisruptionStatus.SUSPECTED,
        )
    ).all()
    mine = [
        d for d in open_ones if (d.detail or {}).get("rule") == BRIDGE_RULE and d.decided_at is None
    ]
    if not mine:
        return []
    gateways = session.scalars(
        select(GatewayStatus).where(
            GatewayStatus.firm_id == firm_id, GatewayStatus.site_id == site_id
        )
    ).all()
    still = find_suspicion(
        [
            GatewaySnapshot(gateway_id=g.gateway_id, online=g.online, changed_at=g.changed_at)
            for g in gateways
        ],
        rules=rules,
        judged_until=judged,
    )
    if still is not None:
        log.warning(
            "bridge of %s/%s is back, but %d of %d gateways are still offline: suspected "
            "disruption %s stays for the firm to judge",
            firm_id,
            site_id,
            len(still.offline),
            still.gateways_total,
            ", ".join(str(d.id) for d in mine),
        )
        return []
    at = as_utc(at)
    for d in mine:
        d.status = DisruptionStatus.DISMISSED
        d.decided_at = at
        d.decided_by = None
        d.detail = {**(d.detail or {}), "cleared": {"by": BRIDGE_RULE, "at": iso_z(at)}}
    session.flush()
    return list(mine)
