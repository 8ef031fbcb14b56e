"""The access matrix: which role may call which endpoint, for which firm.

Every route of the API is named (FastAPI ``name=``) and has exactly one :class:`Rule` in
:data:`RULES`, or is listed in :data:`PUBLIC` (no API key, with the reason);
:func:`renkei.cloud.api.deps.authorize` enforces it and the test suite checks every
route × role × own/other-firm combination against this table (so a new route without a
rule fails the tests).

Scopes:

- ``own``: the path's ``{firm_id}`` must be the caller's firm (admins may act for any
  firm). Used for everything a firm manages: registry, bookings, policies, audit log,
  disruptions, takeover requests and its answers to assignments.
- ``shared``: the caller reads *other* firms' data; what it gets is filtered by those
  firms' sharing policies (:mod:`renkei.cloud.capacity.policy`) and every disclosure is audited.
- ``global``: no firm in the path (``/me``, admin-wide listings, regional aggregates).

Roles (see :class:`renkei.cloud.registry.Role`):

========== ================================================================================
operator   manages its own firm (registry, calendars, bookings, policies, disruptions,
           takeover requests, answers to assignments), reads partners' shared capacity
partner    reads partners' shared capacity and profiles, answers assignments for its firm,
           reads its own registry and capacity
supporter  regional aggregates only (k-anonymous)
engineer   reads its own firm's registry and gateway states (model rollout is issue 4)
admin      everything, for any firm; issues credentials; reads are audited like others'
========== ================================================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from renkei.cloud.registry import Role

__all__ = ["PUBLIC", "RULES", "Rule", "Scope"]

Scope = Literal["own", "shared", "global"]

O, P, S, E, A = Role.OPERATOR, Role.PARTNER, Role.SUPPORTER, Role.ENGINEER, Role.ADMIN  # noqa: E741 (role initials)


@dataclass(frozen=True, slots=True)
class Rule:
    """Who may call one endpoint: ``roles`` and the firm ``scope`` (see module docs)."""

    roles: frozenset[Role]
    scope: Scope


def _r(scope: Scope, *roles: Role) -> Rule:
    return Rule(frozenset(roles), scope)


_OWN_READ = (O, P, E, A)
"""Roles that may read their own firm's registry and capacity."""

RULES: dict[str, Rule] = {
    # identity
    "me": _r("global", O, P, S, E, A),
    # firms (admin-wide) and profiles
    "firms.list": _r("global", A),
    "firms.create": _r("global", A),
    "firms.get": _r("own", *_OWN_READ),
    "firms.update": _r("own", O, A),
    "firms.profile": _r("shared", O, P, A),
    # credentials
    "credentials.list": _r("own", O, A),
    "credentials.create": _r("own", O, A),
    "credentials.revoke": _r("own", O, A),
    # registry of one firm
    "registry.export": _r("own", O, E, A),
    "registry.import": _r("own", O, A),
    "registry.upload_csv": _r("own", O, A),
    "registry.upload_xlsx": _r("own", O, A),
    "sites.list": _r("own", *_OWN_READ),
    "sites.create": _r("own", O, A),
    "sites.get": _r("own", *_OWN_READ),
    "sites.delete": _r("own", O, A),
    "sites.calendar.get": _r("own", *_OWN_READ),
    "sites.calendar.put": _r("own", O, A),
    "lines.list": _r("own", *_OWN_READ),
    "lines.create": _r("own", O, A),
    "lines.delete": _r("own", O, A),
    "machines.list": _r("own", *_OWN_READ),
    "machines.create": _r("own", O, A),
    "machines.get": _r("own", *_OWN_READ),
    "machines.update": _r("own", O, A),
    "machines.delete": _r("own", O, A),
    "machines.mold.mount": _r("own", O, A),
    "machines.mold.unmount": _r("own", O, A),
    "machines.oee": _r("own", *_OWN_READ),
    # operator-recorded good/reject counts (OEE quality basis ``operator``): own firm only
    "operator_counts.list": _r("own", O, E, A),
    "operator_counts.create": _r("own", O, A),
    "operator_counts.replace": _r("own", O, A),
    "operator_counts.delete": _r("own", O, A),
    "molds.list": _r("own", O, P, E, A),
    "molds.create": _r("own", O, A),
    "molds.get": _r("own", O, P, E, A),
    "molds.delete": _r("own", O, A),
    # bookings (the firm's own production plan)
    "bookings.list": _r("own", O, A),
    "bookings.create": _r("own", O, A),
    "bookings.upload_csv": _r("own", O, A),
    "bookings.upload_xlsx": _r("own", O, A),
    "bookings.delete": _r("own", O, A),
    # own capacity and its Catena-X export
    "capacity.own": _r("own", O, P, A),
    "capacity.dcm": _r("own", O, P, A),
    # partners' shared capacity
    "capacity.search": _r("shared", O, P, A),
    # sharing policy
    "grants.list": _r("own", O, A),
    "grants.create": _r("own", O, A),
    "grants.update": _r("own", O, A),
    "grants.delete": _r("own", O, A),
    "groups.list": _r("own", O, A),
    "groups.create": _r("own", O, A),
    "groups.delete": _r("own", O, A),
    # audit log of reads of the firm's data
    "audit.list": _r("own", O, A),
    # gateways and disruptions
    "gateways.list": _r("own", O, E, A),
    "disruptions.list": _r("own", O, P, A),
    "disruptions.declare": _r("own", O, A),
    "disruptions.confirm": _r("own", O, A),
    "disruptions.dismiss": _r("own", O, A),
    "disruptions.end": _r("own", O, A),
    # takeover requests (the disrupted firm) and assignments (the partners)
    "takeovers.list": _r("own", O, A),
    "takeovers.create": _r("own", O, A),
    "takeovers.get": _r("own", O, A),
    "takeovers.replan": _r("own", O, A),
    "takeovers.close": _r("own", O, A),
    "takeovers.promote": _r("own", O, A),
    "assignments.list": _r("own", O, P, A),
    "assignments.accept": _r("own", O, P, A),
    "assignments.decline": _r("own", O, P, A),
    # notifications: the firm's channels, its delivery log, Grafana's webhook
    "notifications.get": _r("own", O, A),
    "notifications.update": _r("own", O, A),
    "notifications.deliveries": _r("own", O, A),
    "notifications.test": _r("own", O, A),
    "notifications.grafana": _r("own", O, E, A),
    # regional supporters
    "regions.list": _r("global", S, A),
    "regions.get": _r("global", S, A),
    # model registry (platform-wide; gateways download with an operator/engineer key)
    "models.list": _r("global", O, E, A),
    "models.publish": _r("global", E, A),
    "models.get": _r("global", O, E, A),
    "models.artifact": _r("global", O, E, A),
    "model_keys.list": _r("global", E, A),
    "model_keys.create": _r("global", A),
    "model_keys.revoke": _r("global", A),
    # model rollout of one firm's gateways
    "deployments.list": _r("own", O, E, A),
    "deployments.create": _r("own", E, A),
    "deployments.get": _r("own", O, E, A),
    "fleet.get": _r("own", O, E, A),
    "fleet.pin": _r("own", E, A),
    "fleet.unpin": _r("own", E, A),
}

PUBLIC: dict[str, str] = {
    "gateways.enrol": "a gateway has no API key: its one-time enrolment token in the body is "
    "the credential (single use, expiring, same 401 for every refusal, failures rate-limited "
    "per address; renkei.cloud.api.routers.gateway_enrolment)",
}
"""Routes that take no API key, each with why; a route is in exactly one of :data:`RULES`
and this table (tests/api/test_access_matrix.py)."""
