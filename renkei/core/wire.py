"""The Renkei wire contract, version 1: MQTT topic tree and payload schemas.

This is the *only* module that defines what travels between gateways (``edge``) and the
cloud (``cloud``); both sides import it, so a change here is a protocol change.

Why this module is long: it is the whole v1 protocol in the order a reader needs it --
the specification text (a fifth of the file), constants and limits, topics, payload
schemas, decoding with the time window, end-to-end acks. Kept in one file on purpose: a
protocol change is reviewed in one diff, and the limits sit next to the schemas they bound.

Topic tree (ISA-95 levels: enterprise = firm, site, area, line, cell = machine)::

    renkei/v1/{firm}/{site}/{area}/{line}/{machine}/{kind}     kind in MachineKind
    renkei/v1/{firm}/{site}/_gw/{gateway}/state                retained birth / Last Will
    renkei/v1/{firm}/{site}/_gw/{gateway}/health               outbox backlog, drops, counters
    renkei/dlq/v1/{reason}                                     dead letters (cloud ingest)
    renkei/host/v1/{group}/heartbeat                           ingest liveness (QoS 0)
    renkei/rollout/v1/{firm}/{site}/{gateway}/desired          models a gateway should run
    renkei/rollout/v1/{firm}/{site}/{gateway}/report           models it runs, last results
    renkei/ack/v1/{firm}/{site}/{gateway}                      end-to-end acks (ingest)
    renkei/bridge/v1/{firm}/{site}/state                       site broker's bridge: 1 / 0

Ingest heartbeat (the Sparkplug B "primary host application" idea): every ingest worker of
share group ``{group}`` publishes a :class:`HostHeartbeat` (QoS 0, not retained) about once a
second *while its subscription is active*. Brokers do not keep shared subscriptions across
their own restart (checked with Mosquitto 2.0.11 and 2.0.21), so right after a broker
restart a gateway's QoS 1 data would be acknowledged and then delivered to nobody. A gateway
therefore holds its outbox after every (re)connect until it has received a live heartbeat of
its ingest group: proof that a subscriber exists on this broker incarnation. Once it exists,
the subscription lives in the worker's persistent session, which queues while it is away.

Every level is 1-64 characters of ``[A-Za-z0-9_.-]`` (no ``/``, ``+``, ``#``, spaces), so
a topic level is always a valid InfluxDB tag value without escaping.

Payload: one JSON object (UTF-8) per MQTT message, many readings packed column-wise::

    {"v": 1, "gw": "gw-01", "seq": 42, "epoch": 3, "sent_ms": 1700000000000,
     "kind": "telemetry", "ts_ms": [1700000000000, 1700000000100],
     "fields": {"oil_temp_C": [41.2, 41.3], "clamp_force_kN": [1200.0, null]},
     "tags": {"model": "cell-t2"}}

- ``v``: schema version; only ``1`` is accepted by this module.
- ``gw``/``seq``: gateway id and its per-gateway sequence number (monotonic, persisted across
  restarts, 0-based). ``(gw, seq)`` identifies a message; redelivery repeats it unchanged.
- ``epoch`` (optional, default ``0`` = unknown, from gateways older than the field): the
  gateway outbox's boot epoch, Sparkplug B's bdSeq idea: ``>= 1``, +1 on every start of the
  agent and whenever a damaged outbox is replaced. Seqs are never reused, even when storage
  damage loses the outbox's tail; a new epoch tells the cloud to expect a gap, whose size
  the gateway counts in its health message (``lost_total``, ``gap_total``). A redelivered
  message keeps the epoch it was first written with.
- ``sent_ms``/``ts_ms``: UTC Unix epoch milliseconds. ``ts_ms`` has one entry per row.
- ``fields``: each value list has exactly ``len(ts_ms)`` entries, finite floats or ``null``
  (no reading). NaN and infinities are rejected.
- ``tags``: optional, at most 8 extra tags (same character rules as topic levels).
- Reserved names (:data:`RESERVED_NAMES`, :func:`reserved_name_problem`): no field and no
  ``tags`` key may be a tag key the ingest writes (``firm``, ``site``, ``area``, ``line``,
  ``machine``, ``gw`` from the topic, and the gateways' extra tags ``model``,
  ``component``, ``mold``), ``time``, or start with ``_`` (InfluxDB 2/3 reserve
  ``_field``, ``_measurement``, ...). InfluxQL resolves ``WHERE "firm" = 'x'`` to a *field*
  named ``firm`` if one exists, so one gateway could otherwise blank every firm's queries
  (issue 11). The ingest dead-letters such a message as ``reserved_name``; the project's
  queries also qualify tags as ``"firm"::tag``.
- ``events`` (``kind == "event"`` only): list of ``{"t_ms", "code", "severity", "message"}``.
- ``state`` payloads (``_gw/{gateway}/state``) use :class:`GatewayState`::

      {"v": 1, "gw": "gw-01", "online": true, "sent_ms": 1700000000000,
       "config_version": "3f2a9c0d1e4b", "agent_version": "0.1.0",
       "models": {"cell-t2": "1.0.0"}, "machines": ["moulding/line-1/imm-01"]}

  ``models`` keys follow the model-name rule (:data:`ModelNameStr`), versions and
  ``config_version``/``agent_version`` are 0-64 characters of ``[0-9A-Za-z._+-]``
  (:data:`VersionStr`): they become InfluxDB field keys and values. ``machines`` lists the
  machines the gateway serves (``area/line/machine``, at most :data:`MAX_GATEWAY_MACHINES`):
  the ingest binds each machine topic of the site to the gateways that claim it and
  dead-letters a machine message whose ``gw`` is not one of them (``gateway_mismatch``,
  :mod:`renkei.cloud.ingest.binding`).

Model rollout (control plane, :class:`ModelDesired` and :class:`ModelReport`): the rollout
controller (:mod:`renkei.cloud.rollout`) publishes, per gateway, the *whole* set of models the
gateway should run on ``.../{gateway}/desired`` (retained, QoS 1), so a gateway that is
offline gets its desired state when it reconnects. Each entry names the deployment it
belongs to and carries the Ed25519 signature over the model (:mod:`renkei.core.signing`); the
gateway verifies it against its own trusted keys, downloads the artifact over HTTP from the
API, checks it, and answers on ``.../{gateway}/report`` (retained, QoS 1) with the models it
runs and the outcome of the last attempt per model name. It attempts every
``(model name, deployment)`` entry once. Both topics live *outside* ``renkei/v1/#`` on
purpose: the ingest subscribes to ``renkei/v1/#`` and dead-letters topics it does not
know, and broker ACLs can grant a gateway read on its ``desired`` and write on its
``report`` topic only::

    {"v": 1, "gw": "gw-01", "sent_ms": 1700000000000,
     "models": {"skab-pump-t2": {"version": "1.1.0", "sha256": "<64 hex>",
                "manifest_sha256": "<64 hex>", "key_id": "<16 hex>",
                "signature": "<base64>", "deployment": 7}}}

    {"v": 1, "gw": "gw-01", "sent_ms": 1700000000000, "groups": ["pilot"],
     "models": {"skab-pump-t2": {"version": "1.1.0", "sha256": "<64 hex>",
                "previous_version": "1.0.0", "machines": ["pump-1"], "source": "deployed"}},
     "results": {"skab-pump-t2": {"deployment": 7, "version": "1.1.0",
                 "status": "succeeded", "stage": "done", "reason": "",
                 "finished_ms": 1700000000000, "checks": {"windows": 32}}}}

End-to-end acknowledgement (:class:`IngestAck`): a broker's PUBACK only means the broker
holds the message, and a broker killed before its autosave loses what it held. So a
gateway (``mqtt.ack: ingest``) keeps every message in its outbox until the *ingest*
confirms it: after a batch is durably written to the store (and after the dead letters of
its invalid messages were acknowledged by the broker), the ingest publishes, per gateway,
one :class:`IngestAck` on ``renkei/ack/v1/{firm}/{site}/{gateway}`` (QoS 1, not retained)
naming exactly the ``seq`` it handled, as sorted inclusive ``[lo, hi]`` ranges, under the
boot ``epoch`` of those messages (0 when a message has none). ``firm``/``site`` are the
levels of the machine topic the message arrived on, ``gateway`` is the payload's ``gw``,
and only a ``gw`` bound to that machine by its own retained birth
(``GatewayState.machines``) is confirmed, so a gateway naming another in its payload can
never make that one delete data (``renkei.cloud.ingest.acks``). The topic lives outside
``renkei/v1/#`` (which the ingest consumes) and the broker ACL lets only the ingest write
it and each gateway read only its own::

    {"v": 1, "gw": "gw-01", "epoch": 0, "ranges": [[40, 57], [60, 60]],
     "sent_ms": 1700000000000}

An ack lost on the way is harmless: the gateway re-publishes unconfirmed messages after a
timeout and after every reconnect, and the ingest rewrites identical points.

Ingest turns a row into one InfluxDB point: measurement = kind, tags = topic levels +
``gw`` + ``tags``, timestamp = ``ts_ms``. A redelivered message therefore rewrites the same
points (same series and timestamp), which is what makes at-least-once delivery duplicate-free.
"""

from __future__ import annotations

import enum
import re
import time
from collections.abc import Iterable
from typing import Annotated, Final, Literal

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from renkei.core.errors import DecodeError

__all__ = [
    "ACK_PREFIX",
    "BRIDGE_PREFIX",
    "DEADLETTER_PREFIX",
    "HOST_PREFIX",
    "INTEGER_FIELDS",
    "MAX_GATEWAY_MACHINES",
    "MAX_PAYLOAD_BYTES",
    "MAX_ROWS",
    "PAYLOAD_TAG_KEYS",
    "RESERVED_NAMES",
    "ROLLOUT_PREFIX",
    "SCHEMA_VERSION",
    "TOPIC_ROOT",
    "TOPIC_TAG_KEYS",
    "DeadLetter",
    "DeployResult",
    "DesiredModel",
    "Event",
    "GatewayHealth",
    "GatewayState",
    "GatewayTopic",
    "HostHeartbeat",
    "IngestAck",
    "Level",
    "MachineKind",
    "MachinePayload",
    "MachineTopic",
    "ModelDesired",
    "ModelNameStr",
    "ModelReport",
    "RolloutTopic",
    "RunningModel",
    "VersionStr",
    "WireError",
    "ack_topic",
    "bridge_state_topic",
    "check_time_window",
    "deadletter_topic",
    "decode_ack_payload",
    "decode_gateway_payload",
    "decode_machine_payload",
    "decode_rollout_payload",
    "encode",
    "gateway_topic",
    "host_heartbeat_topic",
    "machine_topic",
    "parse_rollout_topic",
    "parse_topic",
    "reserved_name_problem",
    "rollout_topic",
    "seq_ranges",
]

SCHEMA_VERSION: Final = 1
TOPIC_ROOT: Final = "renkei/v1"
DEADLETTER_PREFIX: Final = "renkei/dlq/v1"
HOST_PREFIX: Final = "renkei/host/v1"
ROLLOUT_PREFIX: Final = "renkei/rollout/v1"
ACK_PREFIX: Final = "renkei/ack/v1"
#: A site broker's bridge state (Mosquitto's own ``1``/``0`` notification, retained, with a
#: Last Will of ``0``): ``{BRIDGE_PREFIX}/{firm}/{site}/state`` (renkei.cloud.site_bridge).
BRIDGE_PREFIX: Final = "renkei/bridge/v1"
#: Most ``[lo, hi]`` ranges one :class:`IngestAck` may carry.
MAX_ACK_RANGES: Final = 4096
#: Largest payload the ingest accepts, bytes. Gateways split messages well below it.
MAX_PAYLOAD_BYTES: Final = 1_048_576
#: Most rows (timestamps) one machine message may carry.
MAX_ROWS: Final = 10_000
#: Most fields one message may carry.
MAX_FIELDS: Final = 256
#: Accepted timestamp range, UTC epoch ms: 1990-01-01 .. now + this slack.
MIN_TS_MS: Final = 631_152_000_000
FUTURE_SLACK_MS: Final = 24 * 3600 * 1000

#: Tag keys the ingest writes from the topic (and the payload's ``gw``), in this order.
TOPIC_TAG_KEYS: Final = ("firm", "site", "area", "line", "machine", "gw")
#: Extra tag keys the gateways write in a payload's ``tags`` (anomaly/rul ``model``, rul
#: ``component``, mold ``mold``); the dashboards and alert rules filter and group on them.
PAYLOAD_TAG_KEYS: Final = frozenset({"model", "component", "mold"})
#: Names no field may have (every tag key the ingest writes, and InfluxDB's ``time``);
#: names starting with ``_`` are reserved as well (InfluxDB 2/3: ``_field``,
#: ``_measurement``, ``_time``, ...). See :func:`reserved_name_problem`.
RESERVED_NAMES: Final = frozenset(TOPIC_TAG_KEYS) | PAYLOAD_TAG_KEYS | {"time"}
#: Most machines one gateway may serve (entries of :attr:`GatewayState.machines`).
MAX_GATEWAY_MACHINES: Final = 1024

_LEVEL_RE: Final = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
_FIELD_RE: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")

Level = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.\-]{1,64}$")]
FieldName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
#: Versions in the gateway state (config hash, agent and model versions): printable, no
#: space, comma, ``=`` or quote (they become InfluxDB field keys and values).
VersionStr = Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z._+\-]{0,64}$")]
#: Model names: the rule of ``renkei.core.manifest.ModelManifest.name``.
ModelNameStr = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]
#: JSON integers only (no bools, numeric strings or floats), 0 <= x < 2**63.
WireInt = Annotated[int, Field(strict=True, ge=0, lt=2**63)]
#: JSON numbers only (no bools or numeric strings).
WireFloat = Annotated[float, Field(strict=True)]


class WireError(DecodeError):
    """A topic or payload that breaks the v1 contract.

    ``reason`` is a short machine-readable code used as the dead-letter topic level
    (``malformed_json``, ``schema_version``, ``invalid_payload``, ``bad_topic``,
    ``oversize``, ``bad_timestamp``, ``reserved_name``, ``out_of_range_time``; the ingest
    adds ``gateway_mismatch``); ``detail`` is the human-readable explanation.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class MachineKind(enum.StrEnum):
    """What a machine message carries; also the InfluxDB measurement name."""

    TELEMETRY = "telemetry"
    """Raw slow signals (temperatures, pressures, currents) at their sampling rate."""
    FEATURES = "features"
    """Per-window features (vibration RMS, crest factor, band energies, slow-signal stats)."""
    ANOMALY = "anomaly"
    """Model output per window or shot: ``score``, ``threshold``, ``is_anomaly`` (0/1)."""
    SHOT = "shot"
    """One row per injection-molding shot (per-shot features, part weight, shot count)."""
    LABEL = "label"
    """Ground-truth labels from a dataset or the simulator (``fault`` code as float)."""
    EVENT = "event"
    """Discrete events (anomaly onset/clear, machine state changes)."""
    RUL = "rul"
    """Remaining useful life per model output: ``rul_cycles`` (median), ``rul_p10``,
    ``rul_p90`` (machine cycles), optional ``rul_h`` (hours); tag ``model`` (optional
    ``component``). Contract: :mod:`renkei.core.influx.contract` ``rul``."""
    QUALITY = "quality"
    """Data quality of a live source (:mod:`renkei.edge.sources.live.source`), one row per
    ``quality_interval_s``: counters ``link_up`` (1/0), ``readings``, ``bad``,
    ``uncertain``, ``gateway_time``, ``late``, ``dropped``, ``unknown`` over the interval,
    and, per signal with a non-good reading in it, its worst code (1 uncertain, 2 bad)."""
    MOLD = "mold"
    """Mold usage and predicted remaining shots per shot: ``shot_count``,
    ``shots_since_maintenance``, ``maintenance_interval_shots`` (whole numbers, written as
    InfluxDB integers, see :data:`INTEGER_FIELDS`), ``remaining_shots`` and optional
    ``remaining_shots_p10``/``_p90`` (shots); tag ``mold``. Contract:
    :mod:`renkei.core.influx.contract` ``mold``."""
    OEE = "oee"
    """OEE accounting per interval (:mod:`renkei.edge.features.oee`): seconds per run
    state (``planned_s``, ``run_s``, ``idle_s``, ``setup_s``, ``down_s``, ``unknown_s``),
    ``shots``, ``ideal_s``/``ideal_run_s``, ``good``/``reject`` and the basis codes
    ``availability_basis``, ``performance_basis``, ``quality_basis``
    (:data:`renkei.core.oee.BASIS_CODES`). Contract: :mod:`renkei.core.influx.contract`
    ``oee``."""


#: Fields that carry whole numbers for a kind: on the wire they are JSON numbers like every
#: field, but must be integral (``|x| < 2**53``), and the ingest writes them as InfluxDB
#: integers (the measurement contract of :mod:`renkei.core.influx.contract`).
INTEGER_FIELDS: Final[dict[MachineKind, frozenset[str]]] = {
    MachineKind.MOLD: frozenset(
        {"shot_count", "shots_since_maintenance", "maintenance_interval_shots"}
    ),
}
_MAX_EXACT_INT: Final = 2**53


# --------------------------------------------------------------------------- topics


class MachineTopic(BaseModel):
    """The levels of ``renkei/v1/{firm}/{site}/{area}/{line}/{machine}/{kind}``."""

    model_config = ConfigDict(frozen=True)

    firm: Level
    site: Level
    area: Level
    line: Level
    machine: Level
    kind: MachineKind


class GatewayTopic(BaseModel):
    """The levels of ``renkei/v1/{firm}/{site}/_gw/{gateway}/{state|health}``."""

    model_config = ConfigDict(frozen=True)

    firm: Level
    site: Level
    gateway: Level
    kind: Literal["state", "health"]


class RolloutTopic(BaseModel):
    """The levels of ``renkei/rollout/v1/{firm}/{site}/{gateway}/{desired|report}``."""

    model_config = ConfigDict(frozen=True)

    firm: Level
    site: Level
    gateway: Level
    kind: Literal["desired", "report"]


def reserved_name_problem(name: str, *, tag: bool = False) -> str | None:
    """Why ``name`` may not be a field key (or, with ``tag=True``, an extra tag key).

    A field may not be named like any tag key the ingest writes (:data:`RESERVED_NAMES`);
    an extra tag (``tags`` of a machine payload) may not override a topic tag
    (:data:`TOPIC_TAG_KEYS`). Neither may be ``time`` or start with ``_``.

    Returns:
        ``None`` when the name is allowed, else the explanation (for error messages).
    """
    if name.startswith("_"):
        return f"{name!r} starts with '_' (reserved by InfluxDB 2/3 for _field, _time, ...)"
    if name == "time":
        return "'time' is InfluxDB's timestamp column"
    if tag:
        if name in TOPIC_TAG_KEYS:
            return f"{name!r} would override the topic tag {name!r}"
    elif name in RESERVED_NAMES:
        return (
            f"{name!r} is a tag key the ingest writes {sorted(RESERVED_NAMES - {'time'})}; "
            "a field of that name would shadow the tag in InfluxQL WHERE clauses"
        )
    return None


def _check_level(name: str, value: str) -> str:
    if not _LEVEL_RE.match(value):
        raise WireError(
            "bad_topic",
            f"topic level {name}={value!r} must be 1-64 chars of [A-Za-z0-9_.-]",
        )
    return value


def machine_topic(
    *, firm: str, site: str, area: str, line: str, machine: str, kind: MachineKind | str
) -> str:
    """Build a machine topic. Raises :class:`WireError` (``bad_topic``) on a bad level."""
    levels = {"firm": firm, "site": site, "area": area, "line": line, "machine": machine}
    for name, value in levels.items():
        _check_level(name, value)
    try:
        kind_value = MachineKind(kind).value
    except ValueError:
        raise WireError(
            "bad_topic", f"kind {kind!r} is not one of {[k.value for k in MachineKind]}"
        ) from None
    return f"{TOPIC_ROOT}/{firm}/{site}/{area}/{line}/{machine}/{kind_value}"


def gateway_topic(*, firm: str, site: str, gateway: str, kind: Literal["state", "health"]) -> str:
    """Build a gateway topic (birth/Last Will state or health)."""
    for name, value in {"firm": firm, "site": site, "gateway": gateway}.items():
        _check_level(name, value)
    return f"{TOPIC_ROOT}/{firm}/{site}/_gw/{gateway}/{kind}"


def host_heartbeat_topic(group: str) -> str:
    """Topic on which the ingest workers of share group ``group`` publish heartbeats."""
    _check_level("group", group)
    return f"{HOST_PREFIX}/{group}/heartbeat"


def bridge_state_topic(*, firm: str, site: str) -> str:
    """The retained bridge state of site ``firm/site``'s broker (payload ``1`` or ``0``).

    Raises:
        WireError: ``bad_topic`` on a bad level.
    """
    for name, value in {"firm": firm, "site": site}.items():
        _check_level(name, value)
    return f"{BRIDGE_PREFIX}/{firm}/{site}/state"


def rollout_topic(*, firm: str, site: str, gateway: str, kind: Literal["desired", "report"]) -> str:
    """Build a model-rollout topic (desired state or report of one gateway).

    Raises:
        WireError: ``bad_topic`` on a bad level.
    """
    for name, value in {"firm": firm, "site": site, "gateway": gateway}.items():
        _check_level(name, value)
    return f"{ROLLOUT_PREFIX}/{firm}/{site}/{gateway}/{kind}"


def parse_rollout_topic(topic: str) -> RolloutTopic:
    """Parse ``renkei/rollout/v1/{firm}/{site}/{gateway}/{desired|report}``.

    Raises:
        WireError: ``bad_topic`` when the topic has another shape or a level is invalid.
    """
    parts = topic.split("/")
    if len(parts) != 7 or "/".join(parts[:3]) != ROLLOUT_PREFIX:
        raise WireError(
            "bad_topic",
            f"topic {topic!r} is not {ROLLOUT_PREFIX}/firm/site/gateway/desired|report",
        )
    if parts[6] not in ("desired", "report"):
        raise WireError("bad_topic", f"rollout topic {topic!r} must end in desired|report")
    _check_level("firm", parts[3])
    _check_level("site", parts[4])
    _check_level("gateway", parts[5])
    kind: Literal["desired", "report"] = "desired" if parts[6] == "desired" else "report"
    return RolloutTopic.model_construct(firm=parts[3], site=parts[4], gateway=parts[5], kind=kind)


def deadletter_topic(reason: str) -> str:
    """Dead-letter topic for ``reason`` (a :class:`WireError` reason code)."""
    return f"{DEADLETTER_PREFIX}/{reason}"


def parse_topic(topic: str) -> MachineTopic | GatewayTopic:
    """Parse a topic of the v1 tree.

    Raises:
        WireError: ``bad_topic`` when the topic is not in the tree or a level is invalid.
    """
    parts = topic.split("/")
    if len(parts) < 3 or parts[0] != "renkei" or parts[1] != "v1":
        raise WireError("bad_topic", f"topic {topic!r} is not under {TOPIC_ROOT}/")
    if len(parts) == 7 and parts[4] == "_gw":
        if parts[6] not in ("state", "health"):
            raise WireError("bad_topic", f"gateway topic {topic!r} must end in state|health")
        _check_level("firm", parts[2])
        _check_level("site", parts[3])
        _check_level("gateway", parts[5])
        gw_kind: Literal["state", "health"] = "state" if parts[6] == "state" else "health"
        return GatewayTopic.model_construct(
            firm=parts[2], site=parts[3], gateway=parts[5], kind=gw_kind
        )
    if len(parts) == 8:
        for name, value in zip(("firm", "site", "area", "line", "machine"), parts[2:7]):
            _check_level(name, value)
        try:
            kind = MachineKind(parts[7])
        except ValueError:
            raise WireError(
                "bad_topic",
                f"topic kind {parts[7]!r} is not one of {[k.value for k in MachineKind]}",
            ) from None
        return MachineTopic.model_construct(
            firm=parts[2], site=parts[3], area=parts[4], line=parts[5], machine=parts[6], kind=kind
        )
    raise WireError(
        "bad_topic",
        f"topic {topic!r} has {len(parts)} levels; expected "
        f"{TOPIC_ROOT}/firm/site/area/line/machine/kind or "
        f"{TOPIC_ROOT}/firm/site/_gw/gateway/state",
    )


# --------------------------------------------------------------------------- payloads

_STRICT = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


class Event(BaseModel):
    """A discrete event on a machine (``kind == "event"`` messages)."""

    model_config = _STRICT

    t_ms: WireInt
    code: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_.\-]{1,64}$")]
    severity: Literal["info", "warning", "alarm"]
    message: Annotated[str, StringConstraints(max_length=512)] = ""


class MachinePayload(BaseModel):
    """A batch of rows for one machine and kind (see the module docstring)."""

    model_config = _STRICT

    v: Literal[1]
    gw: Level
    seq: WireInt
    sent_ms: WireInt
    kind: MachineKind
    epoch: Annotated[int, Field(ge=0, lt=2**63)] = 0
    """Boot epoch of the gateway's outbox (bdSeq idea; see the module docstring);
    ``0`` = unknown (gateways older than the field)."""
    ts_ms: Annotated[list[WireInt], Field(max_length=MAX_ROWS)] = []
    fields: Annotated[dict[FieldName, list[WireFloat | None]], Field(max_length=MAX_FIELDS)] = {}
    tags: Annotated[dict[FieldName, Level], Field(max_length=8)] = {}
    events: Annotated[list[Event], Field(max_length=MAX_ROWS)] = []

    @model_validator(mode="after")
    def _columns_match(self) -> MachinePayload:
        n = len(self.ts_ms)
        for name, values in self.fields.items():
            if len(values) != n:
                raise ValueError(
                    f"fields.{name} has {len(values)} values but ts_ms has {n} timestamps"
                )
        for name in INTEGER_FIELDS.get(self.kind, frozenset()).intersection(self.fields):
            for value in self.fields[name]:
                if value is not None and not (
                    float(value).is_integer() and abs(value) < _MAX_EXACT_INT
                ):
                    raise ValueError(
                        f"fields.{name} of kind {self.kind.value!r} must hold whole numbers "
                        f"below 2**53, got {value!r}"
                    )
        for key in self.tags:
            problem = reserved_name_problem(key, tag=True)
            if problem is not None:
                raise PydanticCustomError(
                    "reserved_name", "tags.{key}: {problem}", {"key": key, "problem": problem}
                )
        for name in self.fields:
            problem = reserved_name_problem(name)
            if problem is not None:
                raise PydanticCustomError(
                    "reserved_name", "fields.{key}: {problem}", {"key": name, "problem": problem}
                )
        if self.kind is MachineKind.EVENT:
            if self.fields or self.ts_ms:
                raise ValueError("event messages carry 'events', not 'ts_ms'/'fields'")
        elif self.events:
            raise ValueError(f"'events' is only allowed when kind == 'event', not {self.kind}")
        return self


_MAX_MODELS: Final = 64
#: ``area/line/machine`` of one machine (three topic levels).
MachinePath = Annotated[
    str,
    StringConstraints(
        pattern=r"^[A-Za-z0-9_.\-]{1,64}/[A-Za-z0-9_.\-]{1,64}/[A-Za-z0-9_.\-]{1,64}$"
    ),
]


class GatewayState(BaseModel):
    """Retained birth (``online=True``) or Last Will / clean stop (``online=False``)."""

    model_config = _STRICT

    v: Literal[1]
    gw: Level
    online: bool
    sent_ms: Annotated[int, Field(ge=0, lt=2**63)]
    config_version: VersionStr = ""
    """The gateway config's hash (:func:`renkei.edge.config.load_config`: 12 hex)."""
    agent_version: VersionStr = ""
    models: Annotated[dict[ModelNameStr, VersionStr], Field(max_length=_MAX_MODELS)] = {}
    """Model name -> version loaded on the gateway."""
    machines: Annotated[list[MachinePath], Field(max_length=MAX_GATEWAY_MACHINES)] = []
    """The machines this gateway serves, each ``area/line/machine`` (its topic levels);
    empty = not stated (an older gateway): the ingest then checks nothing for it."""


class GatewayHealth(BaseModel):
    """Periodic gateway counters, published on ``_gw/{gateway}/health``."""

    model_config = _STRICT

    v: Literal[1]
    gw: Level
    seq: Annotated[int, Field(ge=0, lt=2**63)]
    sent_ms: Annotated[int, Field(ge=0, lt=2**63)]
    outbox_backlog: Annotated[int, Field(ge=0)]
    """Messages on disk not yet confirmed: by the ingest's end-to-end ack (``mqtt.ack:
    ingest``) or by the broker's PUBACK (``mqtt.ack: broker``)."""
    outbox_bytes: Annotated[int, Field(ge=0)]
    dropped_total: Annotated[int, Field(ge=0)]
    """Messages dropped by the outbox's full policy since the outbox was created."""
    published_total: Annotated[int, Field(ge=0)]
    """Messages acknowledged by the broker since the agent started."""
    epoch: Annotated[int, Field(ge=0)] = 0
    """The outbox's boot epoch (as in every machine payload); ``0`` = unknown (older
    gateways)."""
    lost_total: Annotated[int, Field(ge=0)] = 0
    """Committed messages gone with damaged storage (torn WAL tail, a quarantined
    database's backlog), persisted; see :mod:`renkei.edge.transport.outbox`."""
    gap_total: Annotated[int, Field(ge=0)] = 0
    """Seqs skipped after a possible power loss whose use could not be verified (an upper
    bound on further loss), persisted."""
    quarantined_total: Annotated[int, Field(ge=0)] = 0
    """Damaged outbox databases moved aside (kept on the gateway for forensics)."""
    disk_full: bool = False
    """The gateway's filesystem is full now (the outbox applies its full policy)."""
    publisher_restarts: Annotated[int, Field(ge=0)] = 0
    """Times the agent restarted a failed publisher thread since it started."""


class HostHeartbeat(BaseModel):
    """An ingest worker's liveness beat on ``renkei/host/v1/{group}/heartbeat``."""

    model_config = _STRICT

    v: Literal[1]
    group: Level
    client_id: str
    sent_ms: Annotated[int, Field(ge=0, lt=2**63)]


#: Semantic version ``MAJOR.MINOR.PATCH[-pre][+build]`` (the manifest's ``version``).
SemVer = Annotated[
    str,
    StringConstraints(
        pattern=r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
        r"(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$",
        max_length=64,
    ),
]
Sha256Str = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class DesiredModel(BaseModel):
    """One model a gateway should run (an entry of :class:`ModelDesired`).

    The gateway trusts nothing here except what the signature proves: ``signature`` is an
    Ed25519 signature (base64, 64 bytes) by key ``key_id`` over
    :func:`renkei.core.signing.signing_message` ``(name, version, sha256, manifest_sha256)``.
    Empty ``signature``/``key_id`` = unsigned (the gateway refuses it and says so).
    """

    model_config = _STRICT

    version: SemVer
    sha256: Sha256Str
    """SHA-256 (hex) of the ONNX bytes."""
    manifest_sha256: Sha256Str
    """SHA-256 (hex) of the exact ``manifest.json`` bytes."""
    key_id: Annotated[str, StringConstraints(pattern=r"^([0-9a-f]{16})?$")] = ""
    signature: Annotated[str, StringConstraints(max_length=128)] = ""
    deployment: Annotated[int, Field(strict=True, ge=1, lt=2**63)]
    """Id of the cloud deployment this entry belongs to (reports refer to it)."""


class ModelDesired(BaseModel):
    """Retained desired state of one gateway on ``renkei/rollout/v1/.../{gateway}/desired``."""

    model_config = _STRICT

    v: Literal[1]
    gw: Level
    sent_ms: Annotated[int, Field(ge=0, lt=2**63)]
    models: Annotated[dict[ModelNameStr, DesiredModel], Field(max_length=_MAX_MODELS)] = {}
    """Model name -> the version to run. Names not listed are left as they are."""


class RunningModel(BaseModel):
    """A model a gateway runs now (an entry of :class:`ModelReport`)."""

    model_config = _STRICT

    version: SemVer
    sha256: Sha256Str
    previous_version: SemVer | None = None
    """The version that ran before the last successful switch (rollback target)."""
    machines: Annotated[list[Level], Field(max_length=256)] = []
    """Machines scoring with it."""
    source: Literal["config", "deployed"] = "config"
    """``config``: the model directory of the gateway config; ``deployed``: a rollout."""


class DeployResult(BaseModel):
    """Outcome of the gateway's attempt at one :class:`DesiredModel` entry.

    ``status``: ``succeeded`` (the new version runs), ``rejected`` (it never ran; the
    previous model was kept) or ``rolled_back`` (it ran, failed its probation, and the
    previous model was restored). ``stage`` is where the attempt ended: ``verify``
    (signature, trusted key, config pin), ``download``, ``load`` (hashes, manifest, graph,
    fit to the machine), ``shadow`` (check on recent windows), ``switch``, ``probation``
    or ``done``.
    """

    model_config = _STRICT

    deployment: Annotated[int, Field(strict=True, ge=1, lt=2**63)]
    version: SemVer
    status: Literal["succeeded", "rejected", "rolled_back"]
    stage: Literal["verify", "download", "load", "shadow", "switch", "probation", "done"]
    reason: Annotated[str, StringConstraints(max_length=2000)] = ""
    finished_ms: Annotated[int, Field(ge=0, lt=2**63)]
    checks: Annotated[dict[FieldName, WireFloat], Field(max_length=32)] = {}
    """Shadow/probation numbers: ``windows``, ``latency_p95_ms``, ``alarm_fraction``, ..."""


class ModelReport(BaseModel):
    """Retained model state of one gateway on ``renkei/rollout/v1/.../{gateway}/report``."""

    model_config = _STRICT

    v: Literal[1]
    gw: Level
    sent_ms: Annotated[int, Field(ge=0, lt=2**63)]
    groups: Annotated[list[Level], Field(max_length=32)] = []
    """Rollout groups of the gateway (from its config), for ``group:NAME`` targets."""
    models: Annotated[dict[ModelNameStr, RunningModel], Field(max_length=_MAX_MODELS)] = {}
    results: Annotated[dict[ModelNameStr, DeployResult], Field(max_length=_MAX_MODELS)] = {}
    """Model name -> the last deployment attempt for that name."""


class DeadLetter(BaseModel):
    """What the ingest publishes on ``renkei/dlq/v1/{reason}`` for a rejected message."""

    model_config = ConfigDict(extra="forbid")

    v: Literal[1] = 1
    reason: str
    detail: str
    topic: str
    received_ms: int
    payload_b64: str
    """The original payload bytes, base64, so nothing is lost."""


def encode(payload: BaseModel) -> bytes:
    """Serialise a payload model to compact JSON bytes (``None`` values kept as ``null``)."""
    return orjson.dumps(payload.model_dump(mode="json", exclude_defaults=False))


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def decode_machine_payload(raw: bytes, *, now_ms: int | None = None) -> MachinePayload:
    """Validate a machine message.

    Args:
        raw: the MQTT payload bytes.
        now_ms: current UTC epoch ms for the future-timestamp check (default: clock).

    Raises:
        WireError: ``oversize``, ``malformed_json``, ``schema_version``,
            ``invalid_payload`` (missing/extra fields, NaN/inf, ragged columns) or
            ``bad_timestamp`` (before 1990 or more than 24 h in the future).
    """
    obj = _load_object(raw)
    try:
        msg = MachinePayload.model_validate(obj)
    except ValidationError as exc:
        reserved = any(e["type"] == "reserved_name" for e in exc.errors())
        raise WireError(
            "reserved_name" if reserved else "invalid_payload", _summarise(exc)
        ) from None
    _check_times(msg, _now_ms() if now_ms is None else now_ms)
    return msg


def check_time_window(
    payload: MachinePayload | GatewayState | GatewayHealth,
    *,
    now_ms: int,
    max_past_ms: int | None,
    max_future_ms: int,
) -> None:
    """Refuse a message with a timestamp outside ``[now - max_past_ms, now + max_future_ms]``.

    The ingest's admission window (``IngestSettings.max_past_s``/``max_future_s``): every
    point's time (``ts_ms``, event ``t_ms``, or a gateway message's ``sent_ms``) must lie in
    it, so one message cannot spread points over years and make InfluxDB create a shard
    per week (the "shard bomb" of issue 11).

    Args:
        payload: a validated message.
        now_ms: the ingest's clock, UTC epoch ms.
        max_past_ms: how far back a point may lie, ms; ``None`` = no bound (only 1990).
        max_future_ms: how far ahead (clock skew), ms.

    Raises:
        WireError: ``out_of_range_time`` naming the first offending timestamp and its index.
    """
    if isinstance(payload, MachinePayload):
        name = "ts_ms" if payload.kind is not MachineKind.EVENT else "events.t_ms"
        stamps = (
            payload.ts_ms
            if payload.kind is not MachineKind.EVENT
            else [e.t_ms for e in payload.events]
        )
    else:
        name, stamps = "sent_ms", [payload.sent_ms]
    if not stamps:
        return
    lo = -(2**63) if max_past_ms is None else now_ms - max_past_ms
    hi = now_ms + max_future_ms
    if lo <= min(stamps) and max(stamps) <= hi:
        return
    i, bad = next((i, t) for i, t in enumerate(stamps) if not lo <= t <= hi)
    where = f"{name}[{i}]" if name != "sent_ms" else name
    past = "unbounded" if max_past_ms is None else f"now-{max_past_ms}"
    raise WireError(
        "out_of_range_time",
        f"{where}={bad} ms is {'before' if bad < lo else 'after'} the accepted window "
        f"[{past}, now+{max_future_ms}] ms around the ingest time {now_ms} (UTC epoch ms)",
    )


def decode_gateway_payload(
    raw: bytes, kind: Literal["state", "health"]
) -> GatewayState | GatewayHealth:
    """Validate a gateway ``state`` or ``health`` message. Raises :class:`WireError`."""
    obj = _load_object(raw)
    model: type[GatewayState] | type[GatewayHealth] = (
        GatewayState if kind == "state" else GatewayHealth
    )
    try:
        return model.model_validate(obj)
    except ValidationError as exc:
        raise WireError("invalid_payload", _summarise(exc)) from None


def decode_rollout_payload(
    raw: bytes, kind: Literal["desired", "report"]
) -> ModelDesired | ModelReport:
    """Validate a rollout ``desired`` or ``report`` message. Raises :class:`WireError`."""
    obj = _load_object(raw)
    model: type[ModelDesired] | type[ModelReport] = (
        ModelDesired if kind == "desired" else ModelReport
    )
    try:
        return model.model_validate(obj)
    except ValidationError as exc:
        raise WireError("invalid_payload", _summarise(exc)) from None


def _load_object(raw: bytes) -> dict[str, object]:
    """Size, JSON syntax, top-level object and schema version checks."""
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise WireError("oversize", f"payload is {len(raw)} bytes; limit {MAX_PAYLOAD_BYTES}")
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise WireError("malformed_json", str(exc)) from None
    if not isinstance(obj, dict):
        raise WireError(
            "malformed_json", f"payload must be a JSON object, got {type(obj).__name__}"
        )
    v = obj.get("v")
    if type(v) is not int or v != SCHEMA_VERSION:  # not True, 1.0 or "1"
        raise WireError(
            "schema_version", f"v={obj.get('v')!r}; this ingest accepts v={SCHEMA_VERSION}"
        )
    return obj


def _check_times(msg: MachinePayload, now_ms: int) -> None:
    hi = now_ms + FUTURE_SLACK_MS
    stamps = msg.ts_ms if msg.kind is not MachineKind.EVENT else [e.t_ms for e in msg.events]
    if stamps:
        lo_v, hi_v = min(stamps), max(stamps)
        if lo_v < MIN_TS_MS or hi_v > hi:
            bad = lo_v if lo_v < MIN_TS_MS else hi_v
            raise WireError(
                "bad_timestamp",
                f"timestamp {bad} ms is outside [{MIN_TS_MS}, now+{FUTURE_SLACK_MS}] "
                "(UTC epoch ms)",
            )


def _summarise(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "<root>"
        # a reserved_name message names its own key path
        parts.append(err["msg"] if err["type"] == "reserved_name" else f"{loc}: {err['msg']}")
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


# --------------------------------------------------------------------------- end-to-end acks


def ack_topic(*, firm: str, site: str, gateway: str) -> str:
    """Topic of the ingest's end-to-end acks for one gateway (module docstring).

    Raises:
        WireError: ``bad_topic`` on a bad level.
    """
    for name, value in {"firm": firm, "site": site, "gateway": gateway}.items():
        _check_level(name, value)
    return f"{ACK_PREFIX}/{firm}/{site}/{gateway}"


class IngestAck(BaseModel):
    """The ingest confirms that messages ``(gw, epoch, seq in ranges)`` are handled: their
    points are durably in the store, or their dead letter was acknowledged by the broker.

    ``ranges`` are inclusive ``[lo, hi]`` seq ranges, sorted, not overlapping.
    """

    model_config = _STRICT

    v: Literal[1]
    gw: Level
    epoch: WireInt = 0
    ranges: Annotated[list[tuple[WireInt, WireInt]], Field(min_length=1, max_length=MAX_ACK_RANGES)]
    sent_ms: WireInt

    @model_validator(mode="after")
    def _ordered(self) -> IngestAck:
        prev = -2
        for lo, hi in self.ranges:
            if lo > hi:
                raise ValueError(f"range [{lo}, {hi}] has lo > hi")
            if lo <= prev + 1:
                raise ValueError(
                    f"range [{lo}, {hi}] is not sorted, or overlaps/touches the previous one"
                )
            prev = hi
        return self

    def seq_count(self) -> int:
        """How many sequence numbers the ranges cover."""
        return sum(hi - lo + 1 for lo, hi in self.ranges)


def seq_ranges(seqs: Iterable[int]) -> list[tuple[int, int]]:
    """Compact sequence numbers into sorted, disjoint inclusive ``(lo, hi)`` ranges."""
    out: list[tuple[int, int]] = []
    for s in sorted(set(seqs)):
        if out and s == out[-1][1] + 1:
            out[-1] = (out[-1][0], s)
        else:
            out.append((s, s))
    return out


def decode_ack_payload(raw: bytes) -> IngestAck:
    """Validate an end-to-end ack. Raises :class:`WireError` (like the other decoders)."""
    obj = _load_object(raw)
    try:
        return IngestAck.model_validate(obj)
    except ValidationError as exc:
        raise WireError("invalid_payload", _summarise(exc)) from None
