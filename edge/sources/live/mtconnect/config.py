"""Config of the ``mtconnect`` live source (pydantic only: loading a config imports no protocol
library).

An MTConnect *agent* (MTConnect Standard Part 1, "Fundamentals": the REST API ``/probe``,
``/current``, ``/sample``) serves a machine's *DataItems*. A signal names one DataItem:

- ``data_item``: its ``id`` (unique in the agent) or, if no id matches, its ``name``;
- or ``type`` (e.g. ``POSITION``), optionally ``sub_type`` (``ACTUAL``), for the one DataItem
  of that type;

either way ``component`` (a component's ``id`` or ``name``, e.g. ``X``) narrows the search
when a name or type occurs in several components. The driver resolves every signal against
the agent's ``/probe`` at connect; none or several matches stop the source with the
candidates named.

Values: a ``SAMPLE`` is a number; an ``EVENT`` with a text value (``EXECUTION``: ``ACTIVE``,
``STOPPED``, ...) needs ``states`` (text -> number), a numeric event (``LINE``, a part count)
does not; a ``CONDITION`` gives its level 0 (normal), 1 (warning), 2 (fault). ``UNAVAILABLE``
is always a bad reading.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from renkei.edge.sources.live.signals import LiveSourceConfig, SignalMap

__all__ = ["MtconnectSignal", "MtconnectSourceConfig"]

_Ident = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[^\s/?#&]+$")]
_State = Annotated[str, Field(min_length=1, max_length=128)]


class MtconnectSignal(SignalMap):
    """One signal of a ``mtconnect`` source: the common mapping keys plus the DataItem.

    Exactly one of ``data_item`` (id, else name) or ``type``; ``sub_type`` only with
    ``type``; ``component`` (component id or name) with either.
    """

    data_item: _Ident | None = None
    """DataItem ``id`` (preferred: unique in the agent), else its ``name``."""
    type: (
        Annotated[str, Field(pattern=r"^([A-Za-z][A-Za-z0-9]*:)?[A-Za-z][A-Za-z0-9_]*$")] | None
    ) = None
    """DataItem ``type`` (``POSITION``, ``SPINDLE_SPEED``, ``x:FILTER``), case-insensitive."""
    sub_type: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_:]*$")] | None = None
    """DataItem ``subType`` (``ACTUAL``, ``COMMANDED``, ``OVERRIDE``), with ``type`` only."""
    component: _Ident | None = None
    """``id`` or ``name`` of the component holding the DataItem (``x1``, ``X``, ``path``)."""
    states: dict[_State, float] = Field(default_factory=dict, max_length=256)
    """Text value -> number for EVENT DataItems (``{ACTIVE: 1, READY: 0.5, STOPPED: 0}``);
    an unlisted text is a bad reading (reason ``unmapped state``)."""

    @model_validator(mode="after")
    def _address(self) -> MtconnectSignal:
        if (self.data_item is None) == (self.type is None):
            raise ValueError(
                "give exactly one of 'data_item' (DataItem id or name) or 'type' "
                "(DataItem type, optionally with 'sub_type')"
            )
        if self.sub_type is not None and self.type is None:
            raise ValueError("'sub_type' needs 'type' (a data_item id already names one item)")
        return self

    @field_validator("type", "sub_type")
    @classmethod
    def _upper(cls, v: str | None) -> str | None:
        return None if v is None else v.upper()

    @field_validator("states")
    @classmethod
    def _finite_states(cls, v: dict[str, float]) -> dict[str, float]:
        bad = [k for k, x in v.items() if not math.isfinite(x)]
        if bad:
            raise ValueError(f"state values must be finite numbers: {bad}")
        return v

    @property
    def address(self) -> str:
        """How the signal names its DataItem, for messages (``data_item 'x2'``)."""
        where = f" in component {self.component!r}" if self.component else ""
        if self.data_item is not None:
            return f"data_item {self.data_item!r}{where}"
        sub = f"/{self.sub_type}" if self.sub_type else ""
        return f"type {self.type}{sub}{where}"


class MtconnectSourceConfig(LiveSourceConfig):
    """A ``mtconnect`` source: one MTConnect agent (and optionally one of its devices).

    ``mode: stream`` keeps one long ``/sample?interval=`` response open (a
    ``multipart/x-mixed-replace`` stream with heartbeats); ``mode: poll`` asks
    ``/sample?from=&count=`` every ``interval_ms``. Both resume from the last sequence after
    a reconnect; a gap (the agent's buffer wrapped) is reported as a ``sequence_gap`` event.
    """

    type: Literal["mtconnect"]
    url: Annotated[str, Field(min_length=8, max_length=2048)]
    """Agent base URL, ``http://host:5000`` or ``https://...`` (a path prefix is kept)."""
    device: _Ident | None = None
    """Device ``name`` or ``uuid`` (requests go to ``/<device>/probe`` ...); none = all."""
    mode: Literal["stream", "poll"] = "stream"
    interval_ms: Annotated[int, Field(ge=0, le=3_600_000)] = 500
    """Stream: the agent's minimum time between parts; poll: time between requests, ms."""
    heartbeat_ms: Annotated[int, Field(ge=100, le=600_000)] = 10_000
    """Stream: the agent sends an empty part after this quiet time; no part for
    ``heartbeat_ms`` + ``link.timeout_s`` = the stream is dead (reconnect)."""
    count: Annotated[int, Field(ge=1, le=100_000)] = 1000
    """Observations per ``/sample`` response (or stream part) at most."""
    ca_file: Path | None = None
    """PEM file of the CA that signed an ``https`` agent's certificate (default: system
    CAs)."""
    conditions: Literal["all", "mapped", "none"] = "all"
    """Which CONDITION DataItems raise ``condition_*`` events: every one of the device(s),
    only those mapped to a signal, or none."""
    max_document_bytes: Annotated[int, Field(ge=16_384, le=64 * 1024 * 1024)] = 4 * 1024 * 1024
    """Largest response document or stream part accepted, bytes; a larger one is refused
    (the link is reset and the source reconnects)."""
    signals: list[MtconnectSignal] = Field(default_factory=list, min_length=1, max_length=10_000)

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https"):
            raise ValueError(f"must start with http:// or https://, got {v!r}")
        if not parts.hostname:
            raise ValueError(f"has no host: {v!r}")
        if parts.query or parts.fragment:
            raise ValueError("must be the agent's base URL without '?query' or '#fragment'")
        if parts.username or parts.password:
            raise ValueError("must not carry a user or password")
        try:
            _ = parts.port
        except ValueError as exc:
            raise ValueError(f"bad port: {exc}") from None
        return v.rstrip("/")

    @model_validator(mode="after")
    def _tls(self) -> MtconnectSourceConfig:
        if self.ca_file is not None and not self.url.startswith("https://"):
            raise ValueError("'ca_file' needs an https:// url")
        return self
