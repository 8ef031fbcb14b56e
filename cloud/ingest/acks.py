"""End-to-end acknowledgements and per-gateway sequence accounting of the ingest.

After a batch is durably written (the store answered 204) and the dead letters of its
invalid messages were acknowledged by the broker, the worker hands the batch's messages to
:meth:`AckTracker.handled`. For every message that came from a gateway outbox -- a machine
topic ``renkei/v1/{firm}/{site}/...`` whose payload names ``gw`` and ``seq`` -- it

1. publishes one :class:`renkei.core.wire.IngestAck` per ``(firm, site, gw, epoch)`` of the batch
   on ``renkei/ack/v1/{firm}/{site}/{gw}`` (QoS 1, not retained, not awaited: a lost ack
   only makes the gateway re-publish, and the ingest rewrites identical points), naming
   exactly the seqs handled, as compact ranges;
2. accounts the seqs per ``(gw, epoch)``: messages handled, duplicates (a seq handled
   before: re-publication after a lost ack, a broker or ingest restart), jumps (a seq above
   the highest seen + 1) and seqs still missing below the highest seen (late ones fill
   them in: a backlog drain interleaves with live data).

Why a gateway waits for this ack instead of the broker's PUBACK: see
:mod:`renkei.core.wire`, "End-to-end acknowledgement".

Only a bound gateway is confirmed: an ack makes a gateway *delete* data, so the worker
passes a ``bound(firm, site, machine path, gw)`` check (:mod:`renkei.cloud.ingest.binding`: the
gateway's own birth lists that machine). A message whose payload ``gw`` is not bound to
its topic -- another gateway forging ``gw`` on its own machine topic, with a valid or an
invalid payload, or any message in the moment after an ingest restart before the retained
births arrive -- is still written or dead-lettered as usual, but not confirmed: the real
gateway keeps its message and re-publishes it after its confirmation timeout, so a forged
ack can never make it delete data the store does not hold.

Epoch: a message's boot epoch (``MachinePayload.epoch``, ``0`` for gateways older than
the field) is carried in the ack; seqs are never reused by one outbox, so the gateway
accepts acks of its current and earlier epochs.

Memory is bounded: at most :data:`MAX_TRACKED` ``(gw, epoch)`` entries (the least recently
seen is forgotten first) with at most :data:`MAX_INTERVALS` seen-seq intervals each (when
more are needed, the lowest hole is given up: counted in ``missing_given_up``).
"""

from __future__ import annotations

import bisect
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Final

import orjson

from renkei.core.wire import TOPIC_ROOT, IngestAck, ack_topic, encode, seq_ranges

__all__ = [
    "MAX_INTERVALS",
    "MAX_TRACKED",
    "UNCONFIRMED_REASONS",
    "AckKey",
    "AckTracker",
    "GatewaySeqStats",
    "identify",
]

log = logging.getLogger("renkei.cloud.ingest")

#: Most ``(gw, epoch)`` entries the accounting keeps.
MAX_TRACKED: Final = 10_000
#: Most seen-seq intervals kept per ``(gw, epoch)``.
MAX_INTERVALS: Final = 256
#: At most one "seq jump" warning per gateway per this many seconds.
_JUMP_LOG_EVERY_S: Final = 60.0
#: Dead-letter reasons after which the claimed gateway must NOT be told "handled": the
#: payload's ``gw`` is not trustworthy (a gateway claiming another gateway's id).
#: ``bad_topic`` has no firm/site to address the ack anyway.
UNCONFIRMED_REASONS: Final = frozenset({"bad_topic", "gateway_mismatch", "gw_mismatch"})

_MACHINE_LEVELS: Final = 8
_TOPIC_PREFIX: Final = TOPIC_ROOT + "/"
# The gateway's own encoding (renkei.core.wire.encode: model field order) starts like this.
_HEAD: Final = re.compile(
    rb'\{"v":1,"gw":"([A-Za-z0-9_.\-]{1,64})","seq":(0|[1-9][0-9]{0,18})(?:,"epoch":(0|[1-9][0-9]{0,18}))?[,}]'
)
#: Object keys the fast path must see exactly once (a repeated key is judged by the slow
#: path, which sees what the validator sees: the last occurrence).
_KEYS: Final = re.compile(rb'"(gw|seq|epoch)"\s*:')
_TAIL_EPOCH: Final = re.compile(rb',"epoch":(0|[1-9][0-9]{0,18})\}\s*$')
_LEVEL: Final = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
_MAX_INT: Final = 2**63


@dataclass(frozen=True, slots=True)
class AckKey:
    """Where a message came from: its topic's firm/site and its payload's gw/epoch/seq."""

    firm: str
    site: str
    gw: str
    epoch: int
    seq: int


def _wire_int(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < _MAX_INT:
        return value
    return None


def identify(topic: str | None, payload: bytes) -> AckKey | None:
    """``(firm, site, gw, epoch, seq)`` of a gateway machine message, else ``None``.

    Never raises. Fast path for the gateways' own encoding (``{"v":1,"gw":..,"seq":..``,
    each key once); anything else is parsed in full (``orjson``), so a payload repeating a
    key is judged by its last occurrence, exactly as the validator sees it.
    """
    if topic is None or not topic.startswith(_TOPIC_PREFIX):
        return None
    levels = topic.split("/")
    if len(levels) != _MACHINE_LEVELS or levels[4] == "_gw":
        return None
    firm, site = levels[2], levels[3]
    if not (_LEVEL.match(firm) and _LEVEL.match(site)):
        return None
    m = _HEAD.match(payload)
    keys = _KEYS.findall(payload) if m is not None else []  # one pass, ~0.5 ns/byte
    if m is not None and keys.count(b"gw") == 1 and keys.count(b"seq") == 1:
        n_epoch = keys.count(b"epoch")
        if m.group(3) is not None and n_epoch == 1:
            epoch = int(m.group(3))
        elif n_epoch == 0:
            epoch = 0
        else:
            tail = _TAIL_EPOCH.search(payload) if n_epoch == 1 else None
            if tail is None:
                return _identify_slow(firm, site, payload)
            epoch = int(tail.group(1))
        seq = int(m.group(2))
        if seq >= _MAX_INT or epoch >= _MAX_INT:
            return None
        return AckKey(firm, site, m.group(1).decode("ascii"), epoch, seq)
    return _identify_slow(firm, site, payload)


def _machine_path(topic: str | None) -> str:
    """``area/line/machine`` of a machine topic that :func:`identify` accepted."""
    assert topic is not None
    return "/".join(topic.split("/")[4:7])


def _identify_slow(firm: str, site: str, payload: bytes) -> AckKey | None:
    try:
        obj = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(obj, dict):
        return None
    gw = obj.get("gw")
    seq = _wire_int(obj.get("seq"))
    epoch = _wire_int(obj.get("epoch", 0))
    if not isinstance(gw, str) or not _LEVEL.match(gw) or seq is None or epoch is None:
        return None
    return AckKey(firm, site, gw, epoch, seq)


@dataclass(frozen=True, slots=True)
class GatewaySeqStats:
    """Sequence accounting of one ``(gw, epoch)`` at the ingest (since the worker started).

    Attributes:
        handled: messages written (or dead-lettered), duplicates included.
        duplicates: messages whose seq had been handled before.
        jumps: times a seq arrived more than one above the highest seen so far.
        missing: seqs between the lowest and highest seen that were not seen (yet).
        missing_given_up: seqs no longer tracked (interval limit), never seen.
        lowest, highest: lowest and highest seq seen.
    """

    gw: str
    epoch: int
    handled: int
    duplicates: int
    jumps: int
    missing: int
    missing_given_up: int
    lowest: int
    highest: int


class _Seqs:
    """Seen seqs of one ``(gw, epoch)`` as sorted disjoint inclusive intervals."""

    __slots__ = (
        "dups",
        "given_up",
        "handled",
        "his",
        "jump_logged",
        "jumps",
        "los",
        "pending_jumps",
    )

    def __init__(self) -> None:
        self.los: list[int] = []
        self.his: list[int] = []
        self.handled = 0
        self.dups = 0
        self.jumps = 0
        self.given_up = 0
        self.jump_logged = -float("inf")
        self.pending_jumps = 0

    def add(self, seq: int) -> bool:
        """Record one seq; ``True`` when it is a jump above the highest seen + 1."""
        self.handled += 1
        los, his = self.los, self.his
        i = bisect.bisect_right(los, seq) - 1
        if i >= 0 and seq <= his[i]:
            self.dups += 1
            return False
        jump = bool(his) and seq > his[-1] + 1
        if jump:
            self.jumps += 1
        joins_left = i >= 0 and his[i] == seq - 1
        joins_right = i + 1 < len(los) and los[i + 1] == seq + 1
        if joins_left and joins_right:
            his[i] = his[i + 1]
            del los[i + 1], his[i + 1]
        elif joins_left:
            his[i] = seq
        elif joins_right:
            los[i + 1] = seq
        else:
            los.insert(i + 1, seq)
            his.insert(i + 1, seq)
            if len(los) > MAX_INTERVALS:  # give up the lowest hole
                self.given_up += los[1] - his[0] - 1
                his[0] = his[1]
                del los[1], his[1]
        return jump

    def snapshot(self, gw: str, epoch: int) -> GatewaySeqStats:
        covered = sum(h - lo + 1 for lo, h in zip(self.los, self.his, strict=True))
        span = self.his[-1] - self.los[0] + 1 if self.los else 0
        return GatewaySeqStats(
            gw=gw,
            epoch=epoch,
            handled=self.handled,
            duplicates=self.dups,
            jumps=self.jumps,
            missing=span - covered,
            missing_given_up=self.given_up,
            lowest=self.los[0] if self.los else -1,
            highest=self.his[-1] if self.his else -1,
        )


PublishFn = Callable[[str, bytes], bool]
#: ``bound(firm, site, machine path "area/line/machine", gw)``: may ``gw`` be confirmed for
#: a message on that machine's topic (:meth:`renkei.cloud.ingest.binding.GatewayBindings.bound`).
BoundFn = Callable[[str, str, str, str], bool]
"""Publishes ``(topic, payload)`` at QoS 1 without waiting; ``False`` if not sent."""


class AckTracker:
    """Publishes end-to-end acks and keeps the per-gateway accounting (module docstring).

    Args:
        publish: sends one ack (QoS 1, not retained); called on the caller's thread.
        enabled: publish acks (accounting happens either way).
        bound: confirm only messages whose ``gw`` is bound to their machine topic (module
            docstring); ``None`` confirms every identified message (no bindings kept).

    Thread safety: :meth:`handled` is called by one thread (the ingest writer);
    :meth:`snapshot` may be called from any thread.
    """

    def __init__(
        self, *, publish: PublishFn, enabled: bool = True, bound: BoundFn | None = None
    ) -> None:
        self._publish = publish
        self._enabled = enabled
        self._bound = bound
        self.unbound_total = 0
        """Handled messages not confirmed because their ``gw`` is not bound to the topic."""
        self._lock = threading.Lock()
        self._seqs: OrderedDict[tuple[str, int], _Seqs] = OrderedDict()
        self.acks_published = 0
        self.acks_unsent = 0

    def handled(self, messages: Iterable[tuple[str | None, bytes, str | None]]) -> int:
        """Acknowledge and account one handled batch; return the number of acks sent.

        Args:
            messages: ``(topic, payload, dead-letter reason or None)`` of every message of
                the batch that is durably handled.
        """
        groups: dict[tuple[str, str, str, int], list[int]] = {}
        with self._lock:
            for topic, payload, reason in messages:
                if reason in UNCONFIRMED_REASONS:
                    continue
                key = identify(topic, payload)
                if key is None:
                    continue
                if self._bound is not None and not self._bound(
                    key.firm, key.site, _machine_path(topic), key.gw
                ):
                    self.unbound_total += 1
                    continue
                groups.setdefault((key.firm, key.site, key.gw, key.epoch), []).append(key.seq)
                self._account(key)
        if not self._enabled:
            return 0
        sent = 0
        now_ms = time.time_ns() // 1_000_000
        for (firm, site, gw, epoch), seqs in groups.items():
            ack = IngestAck(v=1, gw=gw, epoch=epoch, ranges=seq_ranges(seqs), sent_ms=now_ms)
            if self._publish(ack_topic(firm=firm, site=site, gateway=gw), encode(ack)):
                sent += 1
            else:
                self.acks_unsent += 1
        self.acks_published += sent
        return sent

    def _account(self, key: AckKey) -> None:
        k = (key.gw, key.epoch)
        entry = self._seqs.get(k)
        if entry is None:
            entry = self._seqs[k] = _Seqs()
            if len(self._seqs) > MAX_TRACKED:
                self._seqs.popitem(last=False)
        else:
            self._seqs.move_to_end(k)
        if entry.add(key.seq):
            entry.pending_jumps += 1
            now = time.monotonic()
            if now - entry.jump_logged >= _JUMP_LOG_EVERY_S:
                entry.jump_logged = now
                log.warning(
                    "gateway %s (epoch %d): seq jumped to %d; %d jump(s) since the last "
                    "warning, %d seqs missing so far (a backlog drain interleaves; missing "
                    "seqs that never arrive were lost or dropped at the gateway)",
                    key.gw,
                    key.epoch,
                    key.seq,
                    entry.pending_jumps,
                    entry.snapshot(key.gw, key.epoch).missing,
                )
                entry.pending_jumps = 0

    def snapshot(self) -> Mapping[str, GatewaySeqStats]:
        """Accounting per ``"{gw}@{epoch}"``."""
        with self._lock:
            return {f"{gw}@{ep}": s.snapshot(gw, ep) for (gw, ep), s in self._seqs.items()}
