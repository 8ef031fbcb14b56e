"""Config of the ``sparkplug`` live source (pydantic only: loading a config imports no protocol
library).

The gateway is a (non-primary) Sparkplug Host Application (Sparkplug 3.0.0 §5.8, §5.15): it
subscribes to the births, data and deaths of the configured Edge Nodes of one Group on the
plant's MQTT Server and maps their metrics to Renkei signals. It publishes nothing but
``Node Control/Rebirth`` NCMDs (§5.17), and only when ``rebirth`` is on.

Topic namespace (§4.1): ``spBv1.0/{group_id}/{message_type}/{edge_node_id}[/{device_id}]``.
Metric names and ids are case-sensitive (§5.2).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from renkei.edge.sources.live.signals import LiveSourceConfig, Secret, SignalMap

__all__ = ["SparkplugSignal", "SparkplugSourceConfig", "SparkplugTls"]

#: A Sparkplug id element (group_id, edge_node_id, device_id): UTF-8, no MQTT wildcard or
#: topic separator (§4.1.2, §4.1.4, §4.1.5 "only use characters in MQTT spec").
SparkplugId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[^/+#]+$")]


class SparkplugSignal(SignalMap):
    """One signal of a ``sparkplug`` source: the common mapping keys plus the metric's address.

    ``edge_node`` (the Edge Node id; may be omitted when the source sets ``edge_node_id``),
    ``device`` (the Device id, or omitted/``null`` for a metric of the Edge Node itself, i.e.
    of NBIRTH/NDATA) and ``metric`` (the metric name exactly as in the BIRTH, e.g.
    ``Press/Injection Pressure``; case-sensitive). Numeric and Boolean metrics only
    (Int8..UInt64, Float, Double, Boolean; §6.4.16); ``raw * scale + offset`` as usual.
    """

    edge_node: SparkplugId | None = None
    """Edge Node id (default: the source's ``edge_node_id``)."""
    device: SparkplugId | None = None
    """Device id; ``null`` = a metric of the Edge Node (NBIRTH/NDATA)."""
    metric: Annotated[str, Field(min_length=1, max_length=512)]
    """Metric name as published in the NBIRTH/DBIRTH."""


class SparkplugTls(BaseModel):
    """TLS to the MQTT Server (Sparkplug 3.0.0 §7 recommends it). ``ca``: CA bundle (PEM)
    that signed the server's certificate; ``cert``/``key``: client certificate and private
    key (PEM) when the server requires client authentication (both or neither)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ca: Path
    cert: Path | None = None
    key: Path | None = None

    @model_validator(mode="after")
    def _pair(self) -> SparkplugTls:
        if (self.cert is None) != (self.key is None):
            raise ValueError("give both 'cert' and 'key' (client certificate) or neither")
        return self


class SparkplugSourceConfig(LiveSourceConfig):
    """A ``sparkplug`` source: Edge Nodes of one Sparkplug Group on an MQTT Server.

    Keys: ``host``/``port`` of the MQTT Server; ``client_id`` (unique on that server);
    ``username`` and ``password`` (a :class:`Secret`, never inline); ``tls``; ``group_id``;
    ``edge_node_id`` (optional: the one Edge Node of this machine; signals then may omit
    ``edge_node``); ``keepalive_s``; ``rebirth`` (send ``Node Control/Rebirth`` NCMDs when
    state is lost, §5.15); ``rebirth_min_interval_s`` (at most one rebirth request per Edge
    Node per interval); ``reorder_timeout_s`` (the Reorder Timeout of §5.9: how long a
    missing ``seq`` may take to arrive before a rebirth is requested; 0 = at once);
    ``max_payload_bytes`` (larger payloads are dropped as malformed).

    Raises (pydantic ``ValidationError``, key path in the message): a signal without an Edge
    Node, a signal of another Edge Node than ``edge_node_id``, a password without a
    username.
    """

    type: Literal["sparkplug"]
    host: Annotated[str, Field(min_length=1, max_length=253)] = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 1883
    client_id: Annotated[str, Field(min_length=1, max_length=128)] = "renkei-sparkplug-host"
    username: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    password: Secret | None = None
    tls: SparkplugTls | None = None
    group_id: SparkplugId
    edge_node_id: SparkplugId | None = None
    keepalive_s: Annotated[int, Field(ge=5, le=3600)] = 30
    rebirth: bool = True
    rebirth_min_interval_s: Annotated[float, Field(ge=0.1, le=3600)] = 5.0
    reorder_timeout_s: Annotated[float, Field(ge=0, le=600)] = 2.0
    max_payload_bytes: Annotated[int, Field(ge=1024, le=64 * 1024 * 1024)] = 4 * 1024 * 1024
    signals: list[SparkplugSignal] = Field(default_factory=list, min_length=1, max_length=10_000)

    @model_validator(mode="after")
    def _addresses(self) -> SparkplugSourceConfig:
        if self.password is not None and self.username is None:
            raise ValueError("'password' needs a 'username'")
        seen: dict[tuple[str, str | None, str], int] = {}
        for i, s in enumerate(self.signals):
            if s.edge_node is None and self.edge_node_id is None:
                raise ValueError(
                    f"signals[{i}] ({s.name}): give 'edge_node' or the source's 'edge_node_id'"
                )
            if (
                s.edge_node is not None
                and self.edge_node_id is not None
                and s.edge_node != self.edge_node_id
            ):
                raise ValueError(
                    f"signals[{i}] ({s.name}): edge_node {s.edge_node!r} is not this source's "
                    f"edge_node_id {self.edge_node_id!r}"
                )
            key = (self.node_of(s), s.device, s.metric)
            if key in seen:
                raise ValueError(
                    f"signals[{i}] ({s.name}): metric {s.metric!r} of {key[0]}"
                    + (f"/{s.device}" if s.device else "")
                    + f" is also signals[{seen[key]}]"
                )
            seen[key] = i
        return self

    def node_of(self, signal: SparkplugSignal) -> str:
        """The Edge Node id of ``signal`` (its own, else the source's ``edge_node_id``)."""
        node = signal.edge_node if signal.edge_node is not None else self.edge_node_id
        assert node is not None  # validated
        return node

    @property
    def edge_nodes(self) -> list[str]:
        """The Edge Node ids the signals read, in config order."""
        return list(dict.fromkeys(self.node_of(s) for s in self.signals))
