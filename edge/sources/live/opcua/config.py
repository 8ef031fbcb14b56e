"""Config of the ``opcua`` live source (pydantic only: loading a config imports no protocol
library).

Addresses follow OPC 10000-6 §5.3.1.10 (NodeId string form) and OPC 10000-4 §7.30
(RelativePath of a browse path); security follows OPC 10000-2/-4 (SecurityPolicy,
MessageSecurityMode, UserNameIdentityToken).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from renkei.edge.sources.live.opcua.euromap77_config import Euromap77Options
from renkei.edge.sources.live.signals import LiveSourceConfig, Secret, SignalMap

__all__ = [
    "BROWSE_SEGMENT_RE",
    "NODE_ID_RE",
    "Deadband",
    "OpcuaSecurity",
    "OpcuaSignal",
    "OpcuaSourceConfig",
]

_FROZEN: Final = ConfigDict(frozen=True, extra="forbid")

#: A NodeId in string form: optional ``ns=<index>;`` or ``nsu=<namespace URI>;`` then
#: ``i=<uint>``, ``s=<string>``, ``g=<guid>`` or ``b=<base64>`` (OPC 10000-6 §5.3.1.10).
NODE_ID_RE: Final = re.compile(
    r"^(?:ns=(?P<ns>\d{1,5});|nsu=(?P<nsu>[^;]{1,512});)?"
    r"(?P<kind>[isgb])=(?P<id>.{1,4096})$",
    re.DOTALL,
)

#: One browse-path segment: ``Name`` (in ``namespace_uri``, else namespace 0),
#: ``<index>:Name`` or ``nsu=<namespace URI>;Name``.
BROWSE_SEGMENT_RE: Final = re.compile(
    r"^(?:(?P<ns>\d{1,5}):|nsu=(?P<nsu>[^;]{1,512});)?(?P<name>[^/]{1,512})$"
)

_ENDPOINT_RE: Final = r"^opc\.tcp://[^\s/:@]+(:\d{1,5})?(/\S*)?$"


class Deadband(BaseModel):
    """A monitored item's DataChangeFilter deadband (OPC 10000-4 §7.22.2).

    ``absolute``: report a change only when it exceeds ``value`` (raw units);
    ``percent``: ``value`` percent (0-100) of the variable's EURange (the server must
    support it; it refuses the item otherwise).
    """

    model_config = _FROZEN

    type: Literal["absolute", "percent"]
    value: Annotated[float, Field(ge=0)]

    @model_validator(mode="after")
    def _percent(self) -> Deadband:
        if self.type == "percent" and self.value > 100:
            raise ValueError(f"a percent deadband must be 0-100, got {self.value}")
        return self


class OpcuaSignal(SignalMap):
    """One signal of an ``opcua`` source: the mapping keys plus exactly one address.

    - ``node_id``: a NodeId string, e.g. ``ns=2;s=Temp``, ``nsu=urn:acme:imm;i=5`` (the
      namespace URI form survives servers that renumber their namespaces), ``i=2258``;
    - ``browse_path``: BrowseNames from the ``Objects`` folder down, e.g.
      ``["nsu=urn:acme:imm;Machine", "Temp"]``; resolved after every connect.

    Monitored-item settings (subscribe mode): ``sampling_interval_ms`` (default: the
    publishing interval; 0 = the server's fastest), ``queue_size`` (values the server keeps
    between publishes), ``deadband``.
    """

    node_id: str | None = None
    browse_path: Annotated[list[str], Field(min_length=1, max_length=32)] | None = None
    sampling_interval_ms: Annotated[float, Field(ge=0, le=3_600_000)] | None = None
    queue_size: Annotated[int, Field(ge=1, le=10_000)] = 1
    deadband: Deadband | None = None

    @field_validator("node_id")
    @classmethod
    def _node_id(cls, v: str | None) -> str | None:
        if v is not None and NODE_ID_RE.match(v) is None:
            raise ValueError(
                f"{v!r} is not a NodeId: use ns=<index>;s=<name>, nsu=<namespace uri>;i=<number> "
                "(also i=, s=, g=<guid>, b=<base64>)"
            )
        return v

    @field_validator("browse_path")
    @classmethod
    def _browse_path(cls, v: list[str] | None) -> list[str] | None:
        for seg in v or []:
            if BROWSE_SEGMENT_RE.match(seg) is None:
                raise ValueError(
                    f"browse path segment {seg!r}: use Name, <index>:Name or nsu=<uri>;Name "
                    "(no '/')"
                )
        return v

    @model_validator(mode="after")
    def _one_address(self) -> OpcuaSignal:
        if (self.node_id is None) == (self.browse_path is None):
            raise ValueError(
                f"signal {self.name!r}: give exactly one of 'node_id' or 'browse_path'"
            )
        return self


class OpcuaSecurity(BaseModel):
    """SecureChannel security (OPC 10000-4 §5.5, §7.15).

    ``policy`` ``None`` goes with ``mode`` ``None``; ``Basic256Sha256`` with ``Sign`` or
    ``SignAndEncrypt`` and then needs the client's application instance ``certificate``
    (DER or PEM) and ``private_key`` (PEM; ``private_key_password`` a :class:`Secret` if it
    is encrypted). ``server_certificate``: pin the server (the connection is refused if
    the server presents another certificate); default: the one the endpoint announces.
    ``application_uri``: the client's ApplicationUri; default: the URI in the certificate's
    subjectAltName (servers check they match).
    """

    model_config = _FROZEN

    policy: Literal["None", "Basic256Sha256"] = "None"
    mode: Literal["None", "Sign", "SignAndEncrypt"] = "None"
    certificate: Path | None = None
    private_key: Path | None = None
    private_key_password: Secret | None = None
    server_certificate: Path | None = None
    application_uri: Annotated[str, Field(min_length=1, max_length=512)] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> OpcuaSecurity:
        if (self.policy == "None") != (self.mode == "None"):
            raise ValueError(
                f"policy {self.policy!r} with mode {self.mode!r}: policy None goes with mode "
                "None, Basic256Sha256 with Sign or SignAndEncrypt"
            )
        if self.policy == "None":
            extra = [
                k
                for k in (
                    "certificate",
                    "private_key",
                    "private_key_password",
                    "server_certificate",
                )
                if getattr(self, k) is not None
            ]
            if extra:
                raise ValueError(f"{extra} given but policy is None (no security)")
        elif self.certificate is None or self.private_key is None:
            raise ValueError(
                f"mode {self.mode} needs the client 'certificate' and 'private_key' files"
            )
        if self.private_key_password is not None and self.private_key is None:
            raise ValueError("'private_key_password' given without 'private_key'")
        return self


class OpcuaSourceConfig(LiveSourceConfig):
    """An ``opcua`` source: one OPC UA server (endpoint), its security and user, and the
    signals read from it (or ``preset: euromap77``).

    ``mode``: ``subscribe`` (one subscription, one monitored item per signal, published
    every ``publishing_interval_ms``) or ``poll`` (one batched Read of all signals every
    ``poll_interval_s``; for servers with broken subscriptions).
    """

    type: Literal["opcua"]
    endpoint: Annotated[str, Field(pattern=_ENDPOINT_RE, max_length=1024)]
    """``opc.tcp://host:port/path`` of the server's endpoint (no credentials in it)."""
    security: OpcuaSecurity = OpcuaSecurity()
    username: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    """User of a UserNameIdentityToken; with ``password``. Default: anonymous."""
    password: Secret | None = None
    mode: Literal["subscribe", "poll"] = "subscribe"
    publishing_interval_ms: Annotated[float, Field(ge=10, le=3_600_000)] = 1000.0
    poll_interval_s: Annotated[float, Field(ge=0.01, le=3600)] = 1.0
    namespace_uri: Annotated[str, Field(min_length=1, max_length=512)] | None = None
    """Namespace of unqualified browse-path segments (default: namespace 0)."""
    preset: Literal["euromap77"] | None = None
    """``euromap77``: read an IMM2MES machine's standard variables (no ``signals`` needed)."""
    euromap77: Euromap77Options = Euromap77Options()
    signals: list[OpcuaSignal] = Field(default_factory=list, max_length=10_000)

    @model_validator(mode="after")
    def _checks(self) -> OpcuaSourceConfig:
        if (self.username is None) != (self.password is None):
            raise ValueError("give both 'username' and 'password' (a secret), or neither")
        if self.preset is None and not self.signals:
            raise ValueError("list the 'signals' to read (or set 'preset: euromap77')")
        if self.preset is not None and self.signals:
            raise ValueError(
                f"'preset: {self.preset}' supplies its own signals: remove 'signals' "
                "(or the preset)"
            )
        return self
