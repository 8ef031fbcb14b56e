"""Wire messages -> InfluxDB line protocol (the ingest hot path).

Escaping and the format of single points are the core's codec
(:mod:`renkei.core.influx.lineproto`); measurement names are those of
:mod:`renkei.core.influx.contract`. This module only turns wire messages into points.

Mapping of Renkei messages (one row -> one point, timestamp precision **ms**):

=====================  ===================  ==================================================
topic                  measurement          tags / fields / time
=====================  ===================  ==================================================
machine ``{kind}``     ``{kind}``           tags firm, site, area, line, machine, gw + payload
                                            ``tags``; fields = the non-null values of the row;
                                            time = ``ts_ms[i]``. Rows whose values are all
                                            null are skipped.
machine ``mold``       ``mold``             as ``{kind}``, but the whole-number fields of
                                            ``renkei.core.wire.INTEGER_FIELDS`` (``shot_count``,
                                            ``shots_since_maintenance``,
                                            ``maintenance_interval_shots``) are written as
                                            integers (``123i``), as core/influx/contract.py
                                            fixes; ``rul`` is the generic mapping.
machine ``event``      ``event``            same tags; string fields code, severity, message;
                                            time = ``t_ms``
``_gw/{gw}/state``     ``gateway_state``    tags firm, site, gw; ``online`` (0i/1i),
                                            ``config_version``, ``agent_version`` and one
                                            string field ``model.{name}`` per loaded model;
                                            time = ``sent_ms``
``_gw/{gw}/health``    ``gateway_health``   tags firm, site, gw; integer fields seq,
                                            outbox_backlog, outbox_bytes, dropped_total,
                                            published_total; time = ``sent_ms``
=====================  ===================  ==================================================

Speed: a machine message is column-oriented JSON; line protocol is row-oriented. Instead of
formatting value by value in Python (``repr`` alone costs ~200 ns per float here), every
column is serialised in one call (``orjson.dumps``, shortest round-trip floats), turned into
per-row tokens with ``bytes.replace``/``bytes.split`` and transposed with strided slice
assignment into one list that is joined once. All per-value work happens in C; Python work
is per column and per message. See ``bench/bench_ingest.py``.
"""

from __future__ import annotations

from typing import Final, NamedTuple

import orjson

from renkei.cloud.ingest.binding import GatewayBindings
from renkei.core.influx.contract import DEADLETTERS, GATEWAY_HEALTH, GATEWAY_STATE
from renkei.core.influx.lineproto import (
    FORBIDDEN_IN_NAMES,
    FieldValue,
    format_point,
    quote_string,
)
from renkei.core.wire import (
    FUTURE_SLACK_MS,
    INTEGER_FIELDS,
    MIN_TS_MS,
    GatewayHealth,
    GatewayState,
    GatewayTopic,
    MachineKind,
    MachinePayload,
    MachineTopic,
    WireError,
    check_time_window,
    decode_gateway_payload,
    decode_machine_payload,
    parse_topic,
)

__all__ = [
    "Encoded",
    "TimeWindow",
    "encode_deadletter_point",
    "encode_gateway_health",
    "encode_gateway_state",
    "encode_machine",
    "encode_message",
]


class Encoded(NamedTuple):
    """Line protocol for one message.

    Attributes:
        body: ``\\n``-terminated lines (empty when the message carries no values).
        points: number of lines (points) in ``body``.
        values: number of field values in ``body``.
    """

    body: bytes
    points: int
    values: int


EMPTY: Final = Encoded(b"", 0, 0)


# --------------------------------------------------------------------------- machine messages


def _head(topic: MachineTopic, msg: MachinePayload) -> bytes:
    tags = {
        "firm": topic.firm,
        "site": topic.site,
        "area": topic.area,
        "line": topic.line,
        "machine": topic.machine,
        "gw": msg.gw,
    }
    # renkei.core.wire refused payload tags that are reserved or override a topic tag.
    tags.update(msg.tags)
    # Topic levels, gw and tag keys/values are [A-Za-z0-9_.-]: nothing to escape.
    return (topic.kind.value + "".join(f",{k}={tags[k]}" for k in sorted(tags))).encode()


def encode_machine(topic: MachineTopic, msg: MachinePayload) -> Encoded:
    """Line protocol for a validated machine message (see the module docstring).

    Reserved tag and field names were refused by :mod:`renkei.core.wire` (``reserved_name``).
    """
    head = _head(topic, msg)
    if msg.kind is MachineKind.EVENT:
        return _encode_events(head, msg)
    n_rows = len(msg.ts_ms)
    if n_rows == 0 or not msg.fields:
        return EMPTY
    names = list(msg.fields)
    integer = INTEGER_FIELDS.get(msg.kind, frozenset())
    dumped = [
        _dump_integers(col) if name in integer else orjson.dumps(col)
        for name, col in msg.fields.items()
    ]
    # orjson writes None as ``null``; no float it writes contains an ``n``.
    nulls = [d.count(b"null") if b"n" in d else 0 for d in dumped]
    values = n_rows * len(dumped) - sum(nulls)
    # A column without nulls goes first, so every row starts with a real field and needs
    # no fix-up. Without one, rows are marked and fixed after the join (slower, rare).
    first = next((j for j, k in enumerate(nulls) if k == 0), None)
    marker = first is None
    order = list(range(len(names)))
    if first is not None and first != 0:
        order.remove(first)
        order.insert(0, first)

    stride = len(names) + 1
    flat: list[bytes] = [b""] * (n_rows * stride + 1)
    flat[0] = head + (b"\x02" if marker else b"")
    for pos, j in enumerate(order):
        name = names[j].encode()
        sep = (b" " if pos == 0 and not marker else b",") + name + b"="
        inner = dumped[j][1:-1]
        col = sep + inner.replace(b",", b"\x00" + sep)
        if nulls[j]:
            col = col.replace(sep + b"null", b"")
        flat[1 + pos :: stride] = col.split(b"\x00")
    ts_inner = orjson.dumps(msg.ts_ms)[1:-1]
    ts_tokens = (b" " + ts_inner.replace(b",", b"\n" + flat[0] + b"\x00 ") + b"\n").split(b"\x00")
    flat[stride::stride] = ts_tokens
    body = b"".join(flat)
    if not marker:
        return Encoded(body, n_rows, values)
    if b"\x02 " in body:  # rows whose values are all null: drop them
        body = b"\n".join([ln for ln in body.split(b"\n") if b"\x02 " not in ln])
    body = body.replace(b"\x02,", b" ")
    return Encoded(body, body.count(b"\n"), values)


def _dump_integers(col: list[float | None]) -> bytes:
    """A column of whole numbers as ``[12i,null,...]`` (the wire checked they are whole)."""
    return b"[" + b",".join(b"null" if v is None else b"%di" % int(v) for v in col) + b"]"


def _encode_events(head: bytes, msg: MachinePayload) -> Encoded:
    lines = [
        b"%s code=%s,message=%s,severity=%s %d\n"
        % (
            head,
            quote_string(ev.code).encode(),
            quote_string(ev.message).encode(),
            quote_string(ev.severity).encode(),
            ev.t_ms,
        )
        for ev in msg.events
    ]
    return Encoded(b"".join(lines), len(lines), 3 * len(lines))


# --------------------------------------------------------------------------- gateway messages


def _check_sent_ms(sent_ms: int, now_ms: int) -> None:
    if not MIN_TS_MS <= sent_ms <= now_ms + FUTURE_SLACK_MS:
        raise WireError(
            "bad_timestamp",
            f"sent_ms {sent_ms} is outside [{MIN_TS_MS}, now+{FUTURE_SLACK_MS}] (UTC epoch ms)",
        )


def _gateway_tags(topic: GatewayTopic) -> dict[str, str]:
    return {"firm": topic.firm, "site": topic.site, "gw": topic.gateway}


def encode_gateway_state(topic: GatewayTopic, state: GatewayState, *, now_ms: int) -> Encoded:
    """``gateway_state`` point for a birth / Last Will message (see the module docstring).

    Raises:
        WireError: ``bad_timestamp`` for an absurd ``sent_ms``; ``invalid_payload`` for a
            model name line protocol cannot carry (newline, backslash).
    """
    _check_sent_ms(state.sent_ms, now_ms)
    fields: dict[str, FieldValue] = {
        "online": int(state.online),
        "config_version": state.config_version,
        "agent_version": state.agent_version,
    }
    for name, version in state.models.items():
        fields[f"model.{name}"] = version
    try:
        body = format_point(GATEWAY_STATE, _gateway_tags(topic), fields, state.sent_ms)
    except ValueError as exc:
        raise WireError("invalid_payload", str(exc)) from None
    return Encoded(body, 1, len(fields))


def encode_gateway_health(topic: GatewayTopic, health: GatewayHealth, *, now_ms: int) -> Encoded:
    """``gateway_health`` point (integer fields; ``disk_full`` boolean).

    Besides the outbox backlog and counters it carries the storage-damage accounting of
    :class:`renkei.core.wire.GatewayHealth` (``epoch``, ``lost_total``, ``gap_total``,
    ``quarantined_total``, ``disk_full``, ``publisher_restarts``), so a loss after power
    failure or a full disk is visible on the dashboards, never silent.

    Raises:
        WireError: ``bad_timestamp`` for an absurd ``sent_ms``; ``invalid_payload`` for a
            counter beyond int64.
    """
    _check_sent_ms(health.sent_ms, now_ms)
    fields: dict[str, FieldValue] = {
        "seq": health.seq,
        "outbox_backlog": health.outbox_backlog,
        "outbox_bytes": health.outbox_bytes,
        "dropped_total": health.dropped_total,
        "published_total": health.published_total,
        "epoch": health.epoch,
        "lost_total": health.lost_total,
        "gap_total": health.gap_total,
        "quarantined_total": health.quarantined_total,
        "disk_full": health.disk_full,
        "publisher_restarts": health.publisher_restarts,
    }
    try:
        body = format_point(GATEWAY_HEALTH, _gateway_tags(topic), fields, health.sent_ms)
    except ValueError as exc:
        raise WireError("invalid_payload", str(exc)) from None
    return Encoded(body, 1, len(fields))


# --------------------------------------------------------------------------- entry points


class TimeWindow(NamedTuple):
    """The ingest's admission window around its clock (see
    :func:`renkei.core.wire.check_time_window`).

    Attributes:
        max_past_ms: how far before ``now`` a point may lie, ms (``None``: no bound).
        max_future_ms: how far after ``now`` (gateway clock skew), ms.
    """

    max_past_ms: int | None
    max_future_ms: int


def encode_message(
    topic: str,
    payload: bytes,
    *,
    now_ms: int,
    window: TimeWindow | None = None,
    bindings: GatewayBindings | None = None,
) -> Encoded:
    """Validate one MQTT message with :mod:`renkei.core.wire` and encode it.

    Args:
        topic: the MQTT topic.
        payload: the MQTT payload bytes.
        now_ms: current UTC epoch ms, for the future-timestamp check.
        window: admission window for point times (``None``: only the wire's absolute
            bounds, 1990 .. now + 24 h).
        bindings: machine -> gateway bindings: a valid gateway state teaches them, a
            machine message is checked against them (``None``: no check).

    Returns:
        The message's line protocol (``EMPTY`` for a valid message without values).

    Raises:
        WireError: the message breaks the wire contract; ``reason`` is the dead-letter
            reason (``bad_topic``, ``oversize``, ``malformed_json``, ``schema_version``,
            ``invalid_payload``, ``reserved_name``, ``bad_timestamp``,
            ``out_of_range_time``, ``gateway_mismatch``).
    """
    parsed = parse_topic(topic)
    if isinstance(parsed, MachineTopic):
        msg = decode_machine_payload(payload, now_ms=now_ms)
        if msg.kind is not parsed.kind:
            raise WireError(
                "invalid_payload",
                f"payload kind {msg.kind.value!r} differs from topic kind {parsed.kind.value!r}",
            )
        if window is not None:
            check_time_window(msg, now_ms=now_ms, **window._asdict())
        if bindings is not None:
            bindings.check(parsed, msg)
        return encode_machine(parsed, msg)
    gw_msg = decode_gateway_payload(payload, parsed.kind)
    if isinstance(gw_msg, GatewayState):
        if bindings is not None:
            bindings.learn(parsed, gw_msg)
        if window is not None:
            check_time_window(gw_msg, now_ms=now_ms, **window._asdict())
        return encode_gateway_state(parsed, gw_msg, now_ms=now_ms)
    if window is not None:
        check_time_window(gw_msg, now_ms=now_ms, **window._asdict())
    return encode_gateway_health(parsed, gw_msg, now_ms=now_ms)


def encode_deadletter_point(
    *, reason: str, worker: str, topic: str, detail: str, time_ms: int
) -> bytes:
    """The ``ingest_deadletters`` point recorded for one dead letter.

    Tags ``reason`` and ``worker``; fields ``count=1i`` (sum it for dashboards),
    ``topic`` and ``detail`` (truncated to 512 characters). ``time_ms`` must be unique
    per worker and reason, or points overwrite each other.
    """
    return format_point(
        DEADLETTERS,
        {"reason": _safe_name(reason), "worker": _safe_name(worker)},
        {"count": 1, "topic": topic[:512], "detail": detail[:512]},
        time_ms,
    )


def _safe_name(value: str) -> str:
    cleaned = "".join("_" if ch in FORBIDDEN_IN_NAMES else ch for ch in value)
    return cleaned or "_"
