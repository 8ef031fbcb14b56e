"""Registry side of the watcher: gateway states and suspected disruptions (SQLAlchemy).

Ordering of state messages (:func:`apply_gateway_state`)
    The retained state topic carries two kinds of payload with different ``sent_ms``
    semantics (see :mod:`renkei.edge.transport.publisher` and :mod:`renkei.edge.agent`):

    - a *birth* (``online=true``) is built on every connect: its ``sent_ms`` is the
      connect time, a reliable order key;
    - a *death* (``online=false``, the Last Will and the clean-stop message) is built once
      when the gateway agent starts: its ``sent_ms`` is the agent's start time, *older*
      than every birth of that agent. Ordering deaths by ``sent_ms`` would therefore
      discard every Last Will.

    So births are ordered by ``sent_ms``: a birth not newer than the stored birth is a
    stale or redelivered copy and is ignored, unless it is a *retained* copy for a gateway
    stored as offline (a retained message is the broker's current state). A death applies
    to a gateway stored as online, in arrival order: the broker delivers one topic's
    messages in order and the watcher acknowledges in order, so a redelivery never
    overtakes a newer state. A death for a gateway already offline changes nothing.
    Known limit: a gateway whose clock runs backwards (no RTC, before NTP) has its births
    ignored until one is newer than the last birth seen; a birth/death sequence number in
    the payload (Sparkplug ``bdSeq``) would remove both this limit and the special case
    for deaths.

Offline time
    A death's ``sent_ms`` is not when the gateway went offline, so ``changed_at`` of an
    offline transition is the watcher's receipt time. Exception: a *retained* copy
    (delivered because the subscription is new) may be arbitrarily old, so for a gateway
    seen for the first time that way ``changed_at`` is the payload's ``sent_ms`` (a lower
    bound). Known limit: after an outage of the watcher itself, deaths queued in its
    session are timestamped when they arrive, i.e. close together; if most of a site's
    gateways are still offline by then a suspicion is raised, which the firm dismisses.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from renkei.cloud.disruption.bridge import (
    BRIDGE_RULE,
    BridgeOutcome,
    BridgeState,
    OnceLog,
    apply_bridge_state,
    clear_bridge_suspicions,
    iso_z,
)
from renkei.cloud.disruption.suspect import (
    GatewaySnapshot,
    SuspectRules,
    as_utc,
    find_suspicion,
)
from renkei.cloud.registry import (
    Disruption,
    DisruptionSource,
    DisruptionStatus,
    GatewayStatus,
    Site,
    SiteBridgeStatus,
)
from renkei.core.wire import GatewayState, bridge_state_topic

__all__ = [
    "BridgeResult",
    "StateOutcome",
    "apply_bridge",
    "apply_gateway_state",
    "check_site",
    "judged_until",
    "log_bridge_result",
]

log = logging.getLogger("renkei.cloud.disruption")

OPEN_STATUSES = (DisruptionStatus.SUSPECTED, DisruptionStatus.CONFIRMED)
"""Disruption statuses that count as open (the site is, or may be, stopped)."""


class StateOutcome(enum.StrEnum):
    """What :func:`apply_gateway_state` did with one state message."""

    NEW_ONLINE = "new_online"
    NEW_OFFLINE = "new_offline"
    WENT_ONLINE = "went_online"
    WENT_OFFLINE = "went_offline"
    REFRESHED = "refreshed"
    """A newer birth of a gateway already online (config or model versions updated)."""
    STALE = "stale"
    """An older or repeated birth, or a death of a gateway already offline: ignored."""

    @property
    def offline(self) -> bool:
        """The gateway is now offline because of this message (check the site)."""
        return self in (StateOutcome.NEW_OFFLINE, StateOutcome.WENT_OFFLINE)


def _from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000.0, tz=UTC)


def _birth_ms(row: GatewayStatus) -> int:
    value = (row.birth or {}).get("sent_ms")
    return value if isinstance(value, int) else -1


def apply_gateway_state(
    session: Session,
    *,
    firm_id: str,
    site_id: str,
    gateway_id: str,
    state: GatewayState,
    received_at: datetime,
    retained: bool = False,
) -> StateOutcome:
    """Upsert the :class:`GatewayStatus` of one gateway from one state message.

    See the module docstring for the ordering rules and what ``changed_at`` means.

    Args:
        firm_id, site_id, gateway_id: the topic levels.
        state: the decoded payload (``state.gw`` should equal ``gateway_id``).
        received_at: when the watcher received the message (aware UTC).
        retained: the message is a retained copy (MQTT retain flag on delivery).

    Returns:
        What changed (:class:`StateOutcome`).
    """
    received_at = as_utc(received_at)
    row = session.get(GatewayStatus, (firm_id, site_id, gateway_id))
    payload: dict[str, Any] = state.model_dump(mode="json")
    if row is None:
        if state.online:
            changed = _from_ms(state.sent_ms)
            birth = payload
        else:
            changed = _from_ms(state.sent_ms) if retained else received_at
            birth = {}
        session.add(
            GatewayStatus(
                firm_id=firm_id,
                site_id=site_id,
                gateway_id=gateway_id,
                online=state.online,
                changed_at=changed,
                birth=birth,
            )
        )
        session.flush()
        return StateOutcome.NEW_ONLINE if state.online else StateOutcome.NEW_OFFLINE
    if state.online:
        if state.sent_ms <= _birth_ms(row) and not (retained and not row.online):
            return StateOutcome.STALE
        row.birth = payload
        if row.online:
            return StateOutcome.REFRESHED
        row.online = True
        row.changed_at = _from_ms(state.sent_ms)
        return StateOutcome.WENT_ONLINE
    if not row.online:
        return StateOutcome.STALE
    row.online = False
    row.changed_at = received_at
    return StateOutcome.WENT_OFFLINE


def judged_until(disruptions: list[Disruption]) -> datetime | None:
    """Latest moment a person judged the site: decisions and ends of closed disruptions,
    and the offline times listed as evidence of dismissed suspicions."""
    times: list[datetime] = []
    for d in disruptions:
        if d.status not in (DisruptionStatus.DISMISSED, DisruptionStatus.ENDED):
            continue
        times.extend(as_utc(t) for t in (d.decided_at, d.end) if t is not None)
        for item in (d.detail or {}).get("offline", []):
            try:
                times.append(as_utc(datetime.fromisoformat(str(item["offline_at"]))))
            except (KeyError, TypeError, ValueError):
                continue
    return max(times, default=None)


def check_site(
    session: Session, *, firm_id: str, site_id: str, rules: SuspectRules
) -> Disruption | None:
    """Raise a suspected disruption for the site if its gateways say so.

    Applies :func:`renkei.cloud.disruption.suspect.find_suspicion` to the site's stored gateway
    states and disruptions. The new :class:`Disruption` has ``status=suspected``,
    ``source=last_will``, ``start`` = first offline time of the group,
    ``radius_km=rules.zone_radius_km`` and the evidence in ``detail``. While the site's
    bridge is stored offline (:mod:`renkei.cloud.disruption.bridge`) every gateway online
    in its own state counts as offline since the bridge's ``0``, and a suspicion that
    counts any of them has ``detail.rule = "site_bridge"`` and ``detail.bridge``.

    Returns:
        The new disruption, or ``None`` (no suspicion, one is open already, or the site
        is not registered under ``firm_id``: logged, since a disruption needs a site).
    """
    gateways = session.scalars(
        select(GatewayStatus).where(
            GatewayStatus.firm_id == firm_id, GatewayStatus.site_id == site_id
        )
    ).all()
    disruptions = list(
        session.scalars(
            select(Disruption).where(Disruption.firm_id == firm_id, Disruption.site_id == site_id)
        )
    )
    bridge = session.get(SiteBridgeStatus, (firm_id, site_id))
    snapshots = [
        GatewaySnapshot(gateway_id=g.gateway_id, online=g.online, changed_at=g.changed_at)
        if bridge is None or bridge.online or not g.online
        else GatewaySnapshot(gateway_id=g.gateway_id, online=False, changed_at=bridge.changed_at)
        for g in gateways
    ]
    suspicion = find_suspicion(
        snapshots,
        rules=rules,
        open_disruption=any(d.status in OPEN_STATUSES for d in disruptions),
        judged_until=judged_until(disruptions),
    )
    if suspicion is None:
        return None
    site = session.get(Site, site_id)
    if site is None or site.firm_id != firm_id:
        log.warning(
            "gateways of %s/%s look like a disruption, but site %r is not registered for "
            "firm %r; no disruption raised",
            firm_id,
            site_id,
            site_id,
            firm_id,
        )
        return None
    detail = suspicion.detail()
    bridged = {g.gateway_id for g in gateways if g.online}
    if (
        bridge is not None
        and not bridge.online
        and any(gw in bridged for gw, _ in suspicion.offline)
    ):
        detail["rule"] = BRIDGE_RULE
        detail["bridge"] = {
            "topic": bridge_state_topic(firm=firm_id, site=site_id),
            "offline_at": iso_z(bridge.changed_at),
        }
    disruption = Disruption(
        firm_id=firm_id,
        site_id=site_id,
        status=DisruptionStatus.SUSPECTED,
        source=DisruptionSource.LAST_WILL,
        start=suspicion.start,
        radius_km=rules.zone_radius_km,
        note="",
        detail=detail,
    )
    session.add(disruption)
    session.flush()
    return disruption


@dataclass(frozen=True, slots=True, kw_only=True)
class BridgeResult:
    """What one bridge state did (:func:`apply_bridge`).

    Attributes:
        outcome: the state change (:class:`~renkei.cloud.disruption.bridge.BridgeOutcome`).
        raised: the suspected disruption a ``0`` raised, if any.
        dismissed: the bridge's suspicions a ``1`` dismissed.
    """

    outcome: BridgeOutcome
    raised: Disruption | None = None
    dismissed: tuple[Disruption, ...] = ()


def apply_bridge(
    session: Session, *, state: BridgeState, received_at: datetime, rules: SuspectRules
) -> BridgeResult:
    """Store a site bridge state and raise or clear per the rule of
    :mod:`renkei.cloud.disruption.bridge` (the caller commits).

    Returns:
        The outcome; for an unknown firm/site nothing was written.
    """
    outcome = apply_bridge_state(session, state=state, received_at=received_at)
    if outcome is BridgeOutcome.WENT_OFFLINE:
        raised = check_site(session, firm_id=state.firm, site_id=state.site, rules=rules)
        return BridgeResult(outcome=outcome, raised=raised)
    if outcome is BridgeOutcome.WENT_ONLINE:
        closed = list(
            session.scalars(
                select(Disruption).where(
                    Disruption.firm_id == state.firm, Disruption.site_id == state.site
                )
            )
        )
        dismissed = clear_bridge_suspicions(
            session,
            firm_id=state.firm,
            site_id=state.site,
            rules=rules,
            at=received_at,
            judged=judged_until(closed),
        )
        return BridgeResult(outcome=outcome, dismissed=tuple(dismissed))
    return BridgeResult(outcome=outcome)


def log_bridge_result(
    state: BridgeState, result: BridgeResult, *, received_at: datetime, once: OnceLog
) -> list[tuple[str, int]]:
    """Log what one bridge state did; return the watcher's counters to add
    (``[(name, n), ...]``: ``unknown_sites``, ``stale``, ``bridge_states``,
    ``suspicions``, ``cleared``). An unknown firm/site is logged once per topic."""
    outcome = result.outcome
    if outcome is BridgeOutcome.UNKNOWN_SITE:
        once.warning(
            f"unknown {state.topic}",
            "ignoring bridge state on %r: the registry has no site %r of firm %r",
            state.topic,
            state.site,
            state.firm,
        )
        return [("unknown_sites", 1)]
    if outcome is BridgeOutcome.STALE:
        return [("stale", 1)]
    log.info("site bridge %s/%s: %s", state.firm, state.site, outcome.value)
    counts = [("bridge_states", 1)]
    if result.raised is not None:
        counts.append(("suspicions", 1))
        log.warning(
            "suspected disruption %d at %s/%s: the site bridge is offline since %s "
            "(%d gateways unreachable)",
            result.raised.id,
            state.firm,
            state.site,
            as_utc(received_at).isoformat(),
            result.raised.detail.get("gateways_total", 0),
        )
    for d in result.dismissed:
        log.warning(
            "suspected disruption %d at %s/%s dismissed: the site bridge is back online",
            d.id,
            state.firm,
            state.site,
        )
    if result.dismissed:
        counts.append(("cleared", len(result.dismissed)))
    return counts
