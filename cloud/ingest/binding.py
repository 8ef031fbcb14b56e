"""Which gateway may speak for which machine: bindings learned from the gateways' births.

The topic tree has no gateway level (``renkei/v1/{firm}/{site}/{area}/{line}/{machine}/
{kind}``); the payload's ``gw`` says which gateway sent a message, and the ingest writes it
as the ``gw`` tag and (end-to-end acknowledgements) accounts sequence numbers per ``gw``.
The broker authenticates the *topic*: each gateway's ACL covers exactly its own machines'
topics, and ``_gw/{gateway}/state`` is writable only by that gateway. What binds a payload
``gw`` to the topic is the gateway's retained birth (:class:`renkei.core.wire.GatewayState`),
whose ``machines`` lists the ``area/line/machine`` it serves.

Rule (:meth:`GatewayBindings.check`), for a machine message of firm F, site S, machine
path P and payload gateway G:

1. if G's latest state on ``renkei/v1/F/S/_gw/G/state`` lists machines and P is not one of
   them -> ``gateway_mismatch`` (G never said it serves P: a gateway forging another's id
   on its own machine topic);
2. else if some gateways of F/S claim P and G is not one of them -> ``gateway_mismatch``;
3. else the message is accepted.

**Unbound messages are accepted** -- written, but never confirmed end to end to G
(:mod:`renkei.cloud.ingest.acks`), so G re-publishes them and nothing is deleted on a forged
claim -- (no claim known for P, and no machine list known for G):
births of older gateways without ``machines``, and messages processed after an ingest
restart before the retained births were re-delivered. Dead-lettering them would put
legitimate backlog aside at every restart; the broker ACL stays the first line of
defence, and the window is the few milliseconds between (re)subscribing and the retained
births arriving (the worker subscribes to the births with a plain, non-shared
subscription, so the broker sends them again on every (re)connect; a shared subscription
gets no retained messages).

Several gateways may claim one machine (a machine moved from one gateway to another, until
the old one publishes a new birth): each claimant is accepted. A claim cannot take a
machine away from its gateway, so a gateway claiming someone else's machine gains nothing
(it cannot publish on that topic) and blocks nothing.

A state without ``machines`` forgets the gateway's claims (an older agent: unknown). An
offline state (Last Will) keeps them: its buffered messages still come after it reconnects.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Final

from renkei.core.wire import (
    GatewayState,
    GatewayTopic,
    MachinePayload,
    MachineTopic,
    WireError,
    decode_gateway_payload,
    parse_topic,
)

__all__ = [
    "BIRTH_FILTER",
    "BIRTH_SUBSCRIPTION_ID",
    "REASON_GATEWAY_MISMATCH",
    "GatewayBindings",
    "learn_from_birth",
]

#: Dead-letter reason for a machine message whose payload ``gw`` is not bound to the topic.
REASON_GATEWAY_MISMATCH: Final = "gateway_mismatch"

_Site = tuple[str, str]  # firm, site


class GatewayBindings:
    """Machine -> gateway bindings of every site, learned from gateway states.

    Thread-safe: :meth:`learn` may run on the MQTT network thread while :meth:`check` runs
    on the writer thread. Memory: one entry per (gateway, machine) claimed, bounded by the
    births' own bound (:data:`renkei.core.wire.MAX_GATEWAY_MACHINES` per gateway).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._claims: dict[_Site, dict[str, frozenset[str]]] = defaultdict(dict)
        self._claimants: dict[_Site, dict[str, set[str]]] = defaultdict(dict)

    def learn(self, topic: GatewayTopic, state: GatewayState) -> None:
        """Take the machine list of a (validated) state of ``topic``'s gateway.

        The topic's gateway is the authenticated one (broker ACL); a state whose ``gw``
        differs from it is ignored.
        """
        if state.gw != topic.gateway or (not state.online and not state.machines):
            return
        site = (topic.firm, topic.site)
        new = frozenset(state.machines)
        with self._lock:
            old = self._claims[site].get(topic.gateway, frozenset())
            claimants = self._claimants[site]
            for path in old - new:
                owners = claimants.get(path)
                if owners is not None:
                    owners.discard(topic.gateway)
                    if not owners:
                        del claimants[path]
            for path in new - old:
                claimants.setdefault(path, set()).add(topic.gateway)
            if new:
                self._claims[site][topic.gateway] = new
            else:
                self._claims[site].pop(topic.gateway, None)

    def check(self, topic: MachineTopic, msg: MachinePayload) -> None:
        """Refuse a machine message whose payload ``gw`` is not bound to its topic.

        Raises:
            WireError: ``gateway_mismatch`` naming the payload gateway, the machine and the
                gateways bound to it (see the module docstring for the rule).
        """
        site = (topic.firm, topic.site)
        path = f"{topic.area}/{topic.line}/{topic.machine}"
        with self._lock:
            served = self._claims[site].get(msg.gw) if site in self._claims else None
            owners = self._claimants[site].get(path) if site in self._claimants else None
            owners_sorted = sorted(owners) if owners else []
        if served is not None and path not in served:
            raise WireError(
                REASON_GATEWAY_MISMATCH,
                f"payload gw={msg.gw!r} does not serve machine {path!r} of "
                f"{topic.firm}/{topic.site} (its birth lists {len(served)} other machines); "
                f"bound gateways: {owners_sorted}",
            )
        if owners_sorted and msg.gw not in owners_sorted:
            raise WireError(
                REASON_GATEWAY_MISMATCH,
                f"payload gw={msg.gw!r} differs from the gateway(s) {owners_sorted} bound to "
                f"machine {path!r} of {topic.firm}/{topic.site}",
            )

    def bound(self, firm: str, site: str, path: str) -> frozenset[str]:
        """The gateways bound to machine ``path`` (``area/line/machine``) of a site."""
        with self._lock:
            return frozenset(self._claimants.get((firm, site), {}).get(path, ()))


#: Plain (non-shared) subscription through which every ingest worker receives all
#: retained births again after each (re)connect (shared subscriptions get no retained
#: messages). QoS 0: nothing to acknowledge, the retained copy is re-sent on SUBSCRIBE.
BIRTH_FILTER: Final = "renkei/v1/+/+/_gw/+/state"
#: MQTT 5 Subscription Identifier of :data:`BIRTH_FILTER`: messages carrying it are only
#: learned from, never written (the shared subscription brings the same message to be
#: written once).
BIRTH_SUBSCRIPTION_ID: Final = 7


def learn_from_birth(bindings: GatewayBindings, topic: str, payload: bytes) -> bool:
    """Learn from a message of :data:`BIRTH_FILTER`; ``False`` if it is not a valid state.

    Invalid or cleared (empty retained) states are ignored here: the shared subscription's
    copy is the one that gets dead-lettered.
    """
    try:
        parsed = parse_topic(topic)
        if not isinstance(parsed, GatewayTopic) or parsed.kind != "state":
            return False
        state = decode_gateway_payload(payload, "state")
    except WireError:
        return False
    assert isinstance(state, GatewayState)
    bindings.learn(parsed, state)
    return True
