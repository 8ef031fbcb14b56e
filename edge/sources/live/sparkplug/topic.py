"""Sparkplug B topic namespace (Sparkplug 3.0.0 §4.1):
``spBv1.0/{group_id}/{message_type}/{edge_node_id}[/{device_id}]``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["NAMESPACE", "SpbTopic", "ncmd_topic", "parse_topic", "subscriptions"]

NAMESPACE: Final = "spBv1.0"

#: Message types with an Edge Node (node-level) topic (§4.2.1) and a Device topic (§4.2.2).
NODE_TYPES: Final = frozenset({"NBIRTH", "NDATA", "NDEATH", "NCMD"})
DEVICE_TYPES: Final = frozenset({"DBIRTH", "DDATA", "DDEATH", "DCMD"})

#: What a host that only reads subscribes to: births, data and deaths (no commands, no STATE).
READ_NODE_TYPES: Final = ("NBIRTH", "NDATA", "NDEATH")
READ_DEVICE_TYPES: Final = ("DBIRTH", "DDATA", "DDEATH")


@dataclass(frozen=True, slots=True)
class SpbTopic:
    """A parsed Sparkplug topic; ``device`` is ``None`` for node-level message types."""

    group: str
    message_type: str
    edge_node: str
    device: str | None


def parse_topic(topic: str) -> SpbTopic | None:
    """The parts of a Sparkplug B topic, or ``None`` if ``topic`` is not one (wrong
    namespace, unknown message type, a device id on a node message or none on a device
    message)."""
    parts = topic.split("/")
    if len(parts) not in (4, 5) or parts[0] != NAMESPACE or not all(parts):
        return None
    _, group, mtype, node, *rest = parts
    if mtype in NODE_TYPES and not rest:
        return SpbTopic(group, mtype, node, None)
    if mtype in DEVICE_TYPES and len(rest) == 1:
        return SpbTopic(group, mtype, node, rest[0])
    return None


def subscriptions(group: str, edge_nodes: list[str]) -> list[str]:
    """Topic filters for the births, data and deaths of ``edge_nodes`` of ``group`` and of
    their devices (six per Edge Node)."""
    out: list[str] = []
    for node in edge_nodes:
        out += [f"{NAMESPACE}/{group}/{t}/{node}" for t in READ_NODE_TYPES]
        out += [f"{NAMESPACE}/{group}/{t}/{node}/+" for t in READ_DEVICE_TYPES]
    return out


def ncmd_topic(group: str, edge_node: str) -> str:
    """The NCMD topic of an Edge Node (§4.2.1.4)."""
    return f"{NAMESPACE}/{group}/NCMD/{edge_node}"
