"""Deciding whether a site's gateways going offline looks like a disruption (pure logic).

Rule (:func:`find_suspicion`): a site raises a *suspected* disruption when

1. it has at least ``min_gateways`` gateways (a one-gateway site going offline is far more
   often a router or power-strip problem than a disaster);
2. strictly more than ``offline_fraction`` of *all* its gateways went offline within
   ``window_s`` seconds of each other and are still offline (a disaster stops most of a
   plant at once; gateways dropping off one by one over a day do not);
3. no suspected or confirmed disruption of the site is open already; and
4. the offline transitions are newer than ``judged_until``: the last time a person judged
   this site (a dismissed suspicion, an ended disruption), so a dismissed suspicion is not
   raised again for the same outage.

Times are timezone-aware UTC ``datetime`` values; naive values are taken as UTC.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = ["GatewaySnapshot", "SuspectRules", "Suspicion", "as_utc", "find_suspicion"]


def as_utc(value: datetime) -> datetime:
    """``value`` as an aware UTC datetime (naive values, e.g. read back from SQLite, are UTC)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class SuspectRules:
    """Thresholds of the suspicion rule (``ApiSettings.suspect_*``, ``zone_radius_km``).

    Attributes:
        window_s: gateways going offline within this many seconds of each other count
            together (> 0).
        offline_fraction: strictly more than this share of the site's gateways must be in
            one such group (0 <= f < 1; 0.5 = "most").
        min_gateways: sites with fewer gateways never raise a suspicion (>= 1).
        zone_radius_km: radius given to a raised suspicion (the firm may change it when
            it confirms).

    Raises:
        ValueError: a value outside the ranges above.
    """

    window_s: float = 300.0
    offline_fraction: float = 0.5
    min_gateways: int = 2
    zone_radius_km: float = 30.0

    def __post_init__(self) -> None:
        if not self.window_s > 0:
            raise ValueError(f"window_s must be > 0, got {self.window_s}")
        if not 0 <= self.offline_fraction < 1:
            raise ValueError(f"offline_fraction must be in [0, 1), got {self.offline_fraction}")
        if self.min_gateways < 1:
            raise ValueError(f"min_gateways must be >= 1, got {self.min_gateways}")
        if not self.zone_radius_km >= 0:
            raise ValueError(f"zone_radius_km must be >= 0, got {self.zone_radius_km}")


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewaySnapshot:
    """The last known state of one gateway of a site.

    Attributes:
        gateway_id: the gateway's id (topic level).
        online: whether it is connected.
        changed_at: when ``online`` last changed (for an offline gateway: when it went
            offline).
    """

    gateway_id: str
    online: bool
    changed_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Suspicion:
    """A site that looks stopped.

    Attributes:
        gateways_total: gateways the site has.
        offline: ``(gateway_id, offline_at)`` of the group that went offline together,
            oldest first.
        start: when the first of them went offline (the suspected disruption's start).
        window_s, offline_fraction: the rule's thresholds (kept as evidence).
    """

    gateways_total: int
    offline: tuple[tuple[str, datetime], ...]
    start: datetime
    window_s: float
    offline_fraction: float

    def detail(self) -> dict[str, Any]:
        """The evidence as JSON (stored in ``Disruption.detail``)::

        {"rule": "last_will", "gateways_total": 3, "window_s": 300.0,
         "offline_fraction": 0.5,
         "offline": [{"gateway_id": "gw-1", "offline_at": "2026-...Z"}, ...]}
        """
        return {
            "rule": "last_will",
            "gateways_total": self.gateways_total,
            "window_s": self.window_s,
            "offline_fraction": self.offline_fraction,
            "offline": [
                {"gateway_id": gw, "offline_at": at.isoformat().replace("+00:00", "Z")}
                for gw, at in self.offline
            ],
        }


def find_suspicion(
    gateways: Iterable[GatewaySnapshot],
    *,
    rules: SuspectRules,
    open_disruption: bool = False,
    judged_until: datetime | None = None,
) -> Suspicion | None:
    """Whether the gateways of one site say the site is probably stopped.

    Args:
        gateways: every known gateway of the site (online or not).
        rules: thresholds (see the module docstring).
        open_disruption: a suspected or confirmed disruption of the site is open.
        judged_until: offline transitions at or before this time were already judged
            (dismissed suspicion, ended disruption) and do not count; ``None`` = none.

    Returns:
        The largest group of still-offline gateways whose offline times lie within
        ``rules.window_s`` (the earliest such group on ties), if it holds strictly more
        than ``rules.offline_fraction`` of the site's gateways; else ``None``.
    """
    if open_disruption:
        return None
    snapshots = list(gateways)
    total = len(snapshots)
    if total < rules.min_gateways:
        return None
    cutoff = None if judged_until is None else as_utc(judged_until)
    offline = sorted(
        (as_utc(g.changed_at), g.gateway_id)
        for g in snapshots
        if not g.online and (cutoff is None or as_utc(g.changed_at) > cutoff)
    )
    best_lo, best_n = 0, 0
    lo = 0
    for hi in range(len(offline)):
        while (offline[hi][0] - offline[lo][0]).total_seconds() > rules.window_s:
            lo += 1
        if hi - lo + 1 > best_n:
            best_lo, best_n = lo, hi - lo + 1
    if best_n == 0 or best_n <= rules.offline_fraction * total:
        return None
    group = offline[best_lo : best_lo + best_n]
    return Suspicion(
        gateways_total=total,
        offline=tuple((gw, at) for at, gw in group),
        start=group[0][0],
        window_s=rules.window_s,
        offline_fraction=rules.offline_fraction,
    )
