"""One OPC UA session (asyncua ``Client``) of the ``opcua`` driver: connect, resolve the
signals' NodeIds, read EngineeringUnits, one subscription or batched Reads, loss detection.

Why this module is long: :class:`OpcuaSession` is one connection's state machine
(connect, security refusal, resolve, units, subscribe or poll, loss detection, close), and
its helpers (status names, the event request, certificates, NodeId and browse-path parsing)
serve only it; its steps share the live client and the session's bookkeeping, so splitting
them would spread one lifecycle over several files.

A session object lives for one connection: the driver builds a fresh one after every loss,
so nothing of a dead session (tasks, subscriptions, callbacks) is kept (bounded memory).
Services used (OPC 10000-4): CreateSession/ActivateSession (§5.6), Read (§5.10.2),
TranslateBrowsePathsToNodeIds (§5.8.4), CreateSubscription (§5.13.2), CreateMonitoredItems
(§5.12.2), Publish (§5.13.5); DataChangeFilter deadband (§7.22.2).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, cast

from asyncua import ua
from asyncua.client.client import Client
from asyncua.client.ua_client import UaClientState
from asyncua.common.subscription import Subscription, SubscriptionHandler
from asyncua.crypto import security_policies
from asyncua.ua.attribute_ids import AttributeIds
from asyncua.ua.object_ids import ObjectIds
from asyncua.ua.uaerrors import UaError, UaStatusCodeError

from renkei.core.errors import TransportError
from renkei.edge.sources.live.base import Reading, now_ms
from renkei.edge.sources.live.opcua.config import (
    BROWSE_SEGMENT_RE,
    NODE_ID_RE,
    OpcuaSignal,
    OpcuaSourceConfig,
)
from renkei.edge.sources.live.opcua.euromap77 import CycleEvents
from renkei.edge.sources.live.opcua.values import ReadingMaker

__all__ = ["Credentials", "OpcuaSession", "SessionLost", "Target"]

log = logging.getLogger(__name__)

#: Keep-alive period the subscription asks for, s (the server publishes at least this
#: often even without changes, which is how a silent server is detected).
KEEPALIVE_S: Final = 2.0
#: Session timeout requested, ms: a gateway that vanished frees the server within this.
SESSION_TIMEOUT_MS: Final = 60_000
#: Largest response message / chunks per message the client accepts (bounds a hostile
#: server's answers; 10,000 DataValues take well under 1 MiB).
MAX_MESSAGE_BYTES: Final = 64 * 1024 * 1024
MAX_CHUNKS: Final = 1024
#: Longest wait for a clean CloseSession before the socket is dropped, s.
CLOSE_S: Final = 0.8
#: Nodes per Read / TranslateBrowsePaths / CreateMonitoredItems request.
CHUNK: Final = 1000
#: Client handle of the cycle-event monitored item (data items use 0..n-1).
EVENT_HANDLE: Final = 0xFFFF_FFF0
#: Events the server may queue for us between two Publish responses.
EVENT_QUEUE: Final = 1000
#: ``Boolean`` fields of the generated structs (typed as a marker class by asyncua).
_TRUE: Final = cast(ua.Boolean, True)
_FALSE: Final = cast(ua.Boolean, False)
#: Max notifications the server may pack into one Publish response.
MAX_NOTIFICATIONS: Final = 10_000

_SECURITY_REFUSED: Final = frozenset(
    {
        "BadCertificateUntrusted",
        "BadCertificateInvalid",
        "BadCertificateRevoked",
        "BadCertificateTimeInvalid",
        "BadCertificateHostNameInvalid",
        "BadCertificateUriInvalid",
        "BadCertificateUseNotAllowed",
        "BadCertificateIssuerUntrusted",
        "BadSecurityChecksFailed",
        "BadSecurityPolicyRejected",
        "BadSecurityModeRejected",
        "BadIdentityTokenRejected",
        "BadIdentityTokenInvalid",
        "BadUserAccessDenied",
        "BadUserSignatureInvalid",
    }
)


class SessionLost(TransportError):
    """The connection or session failed (retry with backoff)."""


class SessionRefused(TransportError):
    """The server refused the certificate or the user (retrying does not help)."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """Key material (DER; the key unencrypted, in memory only) and the user's password,
    read once by ``make_driver`` (never logged)."""

    certificate: bytes | None = None
    private_key: bytes | None = None
    server_certificate: bytes | None = None
    password: str | None = None


@dataclass(frozen=True, slots=True)
class Target:
    """A signal resolved on this session: its NodeId and monitored-item settings."""

    signal: OpcuaSignal
    node_id: ua.NodeId


def status_name(code: ua.StatusCode) -> str:
    """Symbolic name of a StatusCode (``BadNodeIdUnknown``)."""
    try:
        return str(code.name)
    except Exception:  # unknown code
        return f"0x{int(code.value):08X}"


def error_text(exc: BaseException) -> str:
    """A short description of a failure (status name for UA errors)."""
    if isinstance(exc, UaStatusCodeError):
        return type(exc).__name__ if type(exc) is not UaStatusCodeError else str(exc)
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return "timeout"
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]


class OpcuaSession:
    """One connection to the server of ``config`` (see the module docstring).

    Args:
        config: the source config.
        creds: key material and secrets.
        deliver: called (on the event loop) with the readings of each Publish response.
        maker: the DataValue -> Reading mapper; the driver passes the same one to every
            session so re-sent samples are recognised across reconnects.
    """

    def __init__(
        self,
        config: OpcuaSourceConfig,
        creds: Credentials,
        deliver: Callable[[list[Reading]], None],
        maker: ReadingMaker | None = None,
    ) -> None:
        self.config = config
        self.creds = creds
        self.deliver = deliver
        self.timeout_s = config.link.timeout_s
        self.client = Client(
            config.endpoint, timeout=self.timeout_s, watchdog_intervall=self.timeout_s
        )
        self.client.session_timeout = SESSION_TIMEOUT_MS
        self.client.max_messagesize = MAX_MESSAGE_BYTES
        self.client.max_chunkcount = MAX_CHUNKS
        self.client.name = self.client.description = "Renkei gateway"
        self.client.product_uri = "urn:renkei:gateway"
        self.lost: str | None = None
        """Why the session is lost (set by callbacks), ``None`` while it is fine."""
        self.targets: list[Target] = []
        self.subscription: Subscription | None = None
        self.keepalive_s = KEEPALIVE_S
        self.data_seen = asyncio.Event()
        self.cycle_events: CycleEvents | None = None
        """The ``euromap77`` preset's cycle-event plan: subscribed next to the data items."""
        self.preset_units: dict[str, str] = {}
        """The ``euromap77`` preset's units (converted to the units in the signal names)."""
        self.maker = maker if maker is not None else ReadingMaker()

    # ------------------------------------------------------------------ connect

    async def connect(self) -> None:
        """Open the SecureChannel and the session (security and user of the config).

        Raises:
            SessionRefused: the server refused the client certificate or the user.
            SessionLost: the server is unreachable or failed (retryable).
        """
        sec = self.config.security
        try:
            if sec.policy != "None":
                await self._set_security()
            if self.config.username is not None:
                self.client.set_user(self.config.username)
                self.client.set_password(self.creds.password or "")

            async def lost(exc: Exception) -> None:
                self.lost = self.lost or f"connection lost ({error_text(exc)})"

            self.client.connection_lost_callback = lost
            await asyncio.wait_for(self.client.connect(auto_reconnect=False), self.timeout_s * 2)
        except UaStatusCodeError as exc:
            name = error_text(exc)
            if name in _SECURITY_REFUSED:
                raise SessionRefused(self._refusal(name)) from None
            raise SessionLost(name) from None
        except SessionRefused:
            raise
        except UaError as exc:
            if "certificate" in str(exc).lower():
                raise SessionRefused(f"{self.config.endpoint}: {exc}") from None
            raise SessionLost(error_text(exc)) from None
        except (OSError, TimeoutError, ConnectionError) as exc:
            raise SessionLost(error_text(exc)) from None

    def _refusal(self, name: str) -> str:
        who = self.config.endpoint
        if name.startswith("BadIdentityToken") or name.startswith("BadUser"):
            return (
                f"{who} refused user {self.config.username!r} ({name}): check username and password"
            )
        cert = self.config.security.certificate
        return (
            f"{who} refused the secure channel ({name}): the server does not trust the client "
            f"certificate {cert} (add it to the server's trusted certificates) or rejects "
            f"policy {self.config.security.policy}/{self.config.security.mode}"
        )

    async def _set_security(self) -> None:
        sec = self.config.security
        assert self.creds.certificate is not None and self.creds.private_key is not None
        from cryptography import x509

        cert = _load_cert(self.creds.certificate)
        if sec.application_uri is not None:
            self.client.application_uri = sec.application_uri
        else:
            with contextlib.suppress(x509.ExtensionNotFound):
                san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
                uris = san.value.get_values_for_type(x509.UniformResourceIdentifier)
                if uris:
                    self.client.application_uri = uris[0]
        mode = getattr(ua.MessageSecurityMode, sec.mode)
        try:
            await asyncio.wait_for(
                self.client.set_security(
                    security_policies.SecurityPolicyBasic256Sha256,
                    certificate=self.creds.certificate,
                    private_key=self.creds.private_key,
                    server_certificate=self.creds.server_certificate,
                    mode=mode,
                ),
                self.timeout_s,
            )
        except UaError as exc:
            if "endpoint" in str(exc).lower() or "no matching" in str(exc).lower():
                raise SessionRefused(
                    f"{self.config.endpoint} offers no {sec.policy}/{sec.mode} endpoint ({exc})"
                ) from None
            raise

    # ------------------------------------------------------------------ health

    def check(self) -> None:
        """Raise :class:`SessionLost` if the session is known to be gone."""
        if self.lost is not None:
            raise SessionLost(self.lost)
        if self.client.state is not UaClientState.CONNECTED:
            raise SessionLost(f"connection closed ({self.client.state.value})")
        sub = self.subscription
        if sub is not None and sub.last_publish_at is not None:
            silent = time.monotonic() - sub.last_publish_at
            if silent > 2 * self.keepalive_s + self.timeout_s:
                raise SessionLost(f"no publish response for {silent:.1f} s (keep-alive missed)")

    # ------------------------------------------------------------------ addresses

    async def resolve(self, signals: Sequence[OpcuaSignal]) -> dict[str, str]:
        """Resolve each signal's NodeId (namespace URIs, browse paths) on this server; sets
        :attr:`targets` and returns signal -> reason for those that cannot be resolved."""
        problems: dict[str, str] = {}
        ns_array: list[str] = await self._call(self.client.get_namespace_array())
        ns_index = {uri: i for i, uri in enumerate(ns_array)}
        default_ns = 0
        if self.config.namespace_uri is not None:
            default_ns = ns_index.get(self.config.namespace_uri, -1)
        paths: list[tuple[OpcuaSignal, ua.BrowsePath]] = []
        self.targets = []
        for s in signals:
            try:
                if s.node_id is not None:
                    self.targets.append(Target(s, _node_id(s.node_id, ns_index)))
                else:
                    assert s.browse_path is not None
                    paths.append((s, _browse_path(s.browse_path, ns_index, default_ns)))
            except LookupError as exc:
                problems[s.name] = str(exc)
        for i in range(0, len(paths), CHUNK):
            chunk = paths[i : i + CHUNK]
            results = await self._call(
                self.client.uaclient.translate_browsepaths_to_nodeids([p for _, p in chunk])
            )
            for (s, _), res in zip(chunk, results, strict=True):
                if not res.StatusCode.is_good() or not res.Targets:
                    problems[s.name] = f"browse path not found ({status_name(res.StatusCode)})"
                    continue
                self.targets.append(Target(s, _plain(res.Targets[0].TargetId)))
        return problems

    async def units(self) -> dict[str, str]:
        """Signal -> DisplayName of its ``EngineeringUnits`` property (OPC 10000-8 §5.6.3),
        for the targets that have one (two batched requests per ``CHUNK`` nodes)."""
        out: dict[str, str] = {}
        eu_name = ua.QualifiedName("EngineeringUnits", 0)
        for i in range(0, len(self.targets), CHUNK):
            chunk = self.targets[i : i + CHUNK]
            paths = []
            for t in chunk:
                el = ua.RelativePathElement()
                el.ReferenceTypeId = _std(ObjectIds.HasProperty)
                el.IncludeSubtypes = _TRUE
                el.IsInverse = _FALSE
                el.TargetName = eu_name
                bp = ua.BrowsePath()
                bp.StartingNode = t.node_id
                bp.RelativePath = ua.RelativePath(Elements=[el])
                paths.append(bp)
            results = await self._call(self.client.uaclient.translate_browsepaths_to_nodeids(paths))
            found = [
                (t, _plain(r.Targets[0].TargetId))
                for t, r in zip(chunk, results, strict=True)
                if r.StatusCode.is_good() and r.Targets
            ]
            if not found:
                continue
            values = await self._call(
                self.client.uaclient.read_attributes([n for _, n in found], AttributeIds.Value)
            )
            for (t, _), dv in zip(found, values, strict=True):
                eu = dv.Value.Value if dv.Value is not None else None
                text = getattr(getattr(eu, "DisplayName", None), "Text", None)
                if isinstance(text, str) and text:
                    out[t.signal.name] = text[:32]
        return out

    # ------------------------------------------------------------------ subscribe

    async def subscribe(self) -> dict[str, str]:
        """Create ONE subscription with a monitored item per target; returns signal ->
        reason for items the server refused (BadNodeIdUnknown, BadFilterNotAllowed, ...)."""
        interval = self.config.publishing_interval_ms
        keepalive = max(1, math.ceil(KEEPALIVE_S * 1000 / interval))
        params = ua.CreateSubscriptionParameters()
        params.RequestedPublishingInterval = interval
        params.RequestedMaxKeepAliveCount = keepalive
        params.RequestedLifetimeCount = max(3 * keepalive, math.ceil(60_000 / interval))
        params.MaxNotificationsPerPublish = MAX_NOTIFICATIONS
        params.PublishingEnabled = True
        params.Priority = 0
        sub = _Subscription(self.client.uaclient.session, params, self)
        res = await self._call(sub.init())
        self.subscription = sub
        self.keepalive_s = max(
            KEEPALIVE_S, res.RevisedPublishingInterval * res.RevisedMaxKeepAliveCount / 1000
        )
        problems: dict[str, str] = {}
        for i in range(0, len(self.targets), CHUNK):
            requests = [
                self._item_request(handle, self.targets[handle])
                for handle in range(i, min(i + CHUNK, len(self.targets)))
            ]
            results = await self._call(sub.create_monitored_items(requests))
            for req, r in zip(requests, results, strict=True):
                if isinstance(r, ua.StatusCode):
                    name = self.targets[req.RequestedParameters.ClientHandle].signal.name
                    problems[name] = status_name(r)
        ce = self.cycle_events
        if ce is not None:
            (r,) = await self._call(sub.create_monitored_items([_event_request(ce)]))
            if isinstance(r, ua.StatusCode):
                for name, _ in ce.signals:
                    problems[name] = f"cycle event not monitored ({status_name(r)})"
        return problems

    def _item_request(self, handle: int, target: Target) -> ua.MonitoredItemCreateRequest:
        s = target.signal
        rv = ua.ReadValueId()
        rv.NodeId = target.node_id
        rv.AttributeId = AttributeIds.Value
        mp = ua.MonitoringParameters()
        mp.ClientHandle = handle
        mp.SamplingInterval = (
            s.sampling_interval_ms
            if s.sampling_interval_ms is not None
            else self.config.publishing_interval_ms
        )
        mp.QueueSize = s.queue_size
        mp.DiscardOldest = True
        if s.deadband is not None:
            f = ua.DataChangeFilter()
            f.Trigger = ua.DataChangeTrigger.StatusValue
            f.DeadbandType = 1 if s.deadband.type == "absolute" else 2
            f.DeadbandValue = s.deadband.value
            mp.Filter = f
        req = ua.MonitoredItemCreateRequest()
        req.ItemToMonitor = rv
        req.MonitoringMode = ua.MonitoringMode.Reporting
        req.RequestedParameters = mp
        return req

    async def unsubscribe(self) -> None:
        """Delete the subscription (and its monitored items) on the server."""
        sub, self.subscription = self.subscription, None
        if sub is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(sub.delete(), self.timeout_s)

    def on_publish(self, result: ua.PublishResult) -> None:
        """A Publish response of the subscription: hand its values over."""
        data = result.NotificationMessage.NotificationData
        self.data_seen.set()
        if not data:
            return
        now = now_ms()
        readings: list[Reading] = []
        n = len(self.targets)
        for notif in data:
            if isinstance(notif, ua.DataChangeNotification):
                for item in notif.MonitoredItems:
                    h = item.ClientHandle
                    if not 0 <= h < n:
                        continue
                    r = self._reading(self.targets[h].signal.name, item.Value, now)
                    if r is not None:
                        readings.append(r)
            elif isinstance(notif, ua.EventNotificationList):
                ce = self.cycle_events
                for ev in notif.Events:
                    if ce is not None and ev.ClientHandle == EVENT_HANDLE:
                        readings.extend(ce.readings(ev.EventFields))
            elif isinstance(notif, ua.StatusChangeNotification):
                status = notif.Status
                if status is not None and not status.is_good():
                    self.lost = self.lost or f"subscription ended ({status_name(status)})"
        if readings:
            self.deliver(readings)

    def _reading(self, signal: str, dv: ua.DataValue | None, now: int) -> Reading | None:
        if dv is None:
            return None
        code = dv.StatusCode if dv.StatusCode is not None else ua.StatusCode()
        value = dv.Value.Value if dv.Value is not None else None
        return self.maker.make(
            signal,
            value,
            int(code.value),
            status_name(code),
            dv.SourceTimestamp,
            dv.ServerTimestamp,
            now,
        )

    # ------------------------------------------------------------------ poll

    async def read(self) -> list[Reading]:
        """One batched Read (per ``CHUNK`` nodes) of all targets' values."""
        readings: list[Reading] = []
        for i in range(0, len(self.targets), CHUNK):
            chunk = self.targets[i : i + CHUNK]
            params = ua.ReadParameters()
            params.TimestampsToReturn = ua.TimestampsToReturn.Both
            params.MaxAge = 0
            for t in chunk:
                rv = ua.ReadValueId()
                rv.NodeId = t.node_id
                rv.AttributeId = AttributeIds.Value
                params.NodesToRead.append(rv)
            values = await self._call(self.client.uaclient.read(params))
            now = now_ms()
            for t, dv in zip(chunk, values, strict=True):
                r = self._reading(t.signal.name, dv, now)
                if r is not None:
                    readings.append(r)
        self.data_seen.set()
        return readings

    # ------------------------------------------------------------------ close

    async def close(self) -> None:
        """Close the session and the connection (bounded: at most ~timeout, never raises)."""
        self.subscription = None
        try:
            await asyncio.wait_for(self.client.disconnect(), min(CLOSE_S, self.timeout_s))
        except BaseException as exc:  # a dead server: drop the socket below
            if isinstance(exc, asyncio.CancelledError):
                self._drop()
                raise
            log.debug("%s: disconnect failed: %s", self.config.endpoint, error_text(exc))
        self._drop()

    def _drop(self) -> None:
        with contextlib.suppress(Exception):
            self.client.disconnect_socket()

    async def _call(self, coro: Any) -> Any:
        """Await a request with the link timeout; failures become :class:`SessionLost`."""
        try:
            return await asyncio.wait_for(coro, self.timeout_s)
        except UaStatusCodeError as exc:
            raise SessionLost(error_text(exc)) from None
        except (OSError, TimeoutError, ConnectionError, UaError) as exc:
            raise SessionLost(error_text(exc)) from None


class _Subscription(Subscription):
    """A subscription whose Publish responses go straight to :meth:`OpcuaSession.on_publish`
    (one batch per response; no per-item task or queue)."""

    def __init__(self, server: Any, params: ua.CreateSubscriptionParameters, owner: OpcuaSession):
        super().__init__(server, params, cast(SubscriptionHandler, owner))
        self._owner = owner

    async def publish_callback(self, publish_result: ua.PublishResult) -> None:
        self.last_publish_at = time.monotonic()
        self._owner.on_publish(publish_result)


def _event_request(ce: CycleEvents) -> ua.MonitoredItemCreateRequest:
    """The monitored item of the machine's cycle events (OPC 10000-4 §5.12.1.5: attribute
    EventNotifier of the event source, an EventFilter; client handle :data:`EVENT_HANDLE`)."""
    rv = ua.ReadValueId()
    rv.NodeId = ce.source
    rv.AttributeId = AttributeIds.EventNotifier
    mp = ua.MonitoringParameters()
    mp.ClientHandle = EVENT_HANDLE
    mp.SamplingInterval = 0
    mp.QueueSize = EVENT_QUEUE
    mp.DiscardOldest = True
    mp.Filter = ce.event_filter
    req = ua.MonitoredItemCreateRequest()
    req.ItemToMonitor = rv
    req.MonitoringMode = ua.MonitoringMode.Reporting
    req.RequestedParameters = mp
    return req


def _plain(node: ua.NodeId) -> ua.NodeId:
    """A (local) NodeId from a TranslateBrowsePaths target (an ExpandedNodeId)."""
    return ua.NodeId(node.Identifier, node.NamespaceIndex, node.NodeIdType)


def _std(identifier: int) -> ua.NodeId:
    """A namespace-0 NodeId of the standard (OPC 10000-6 A.3 ``ObjectIds``)."""
    return ua.NodeId(ua.Int32(identifier))


def _load_cert(data: bytes) -> Any:
    from cryptography import x509

    if data.lstrip().startswith(b"-----BEGIN"):
        return x509.load_pem_x509_certificate(data)
    return x509.load_der_x509_certificate(data)


def _node_id(text: str, ns_index: dict[str, int]) -> ua.NodeId:
    m = NODE_ID_RE.match(text)
    assert m is not None  # validated by the config
    if m["nsu"] is not None:
        idx = ns_index.get(m["nsu"])
        if idx is None:
            raise LookupError(f"namespace {m['nsu']!r} is not on this server")
        text = f"ns={idx};{m['kind']}={m['id']}"
    try:
        return ua.NodeId.from_string(text)
    except UaError as exc:  # UaStringParsingError: from_string wraps every ValueError
        raise LookupError(f"bad NodeId {text!r}: {exc}") from None


def _browse_path(segments: list[str], ns_index: dict[str, int], default_ns: int) -> ua.BrowsePath:
    elements = []
    for seg in segments:
        m = BROWSE_SEGMENT_RE.match(seg)
        assert m is not None  # validated by the config
        if m["nsu"] is not None:
            ns = ns_index.get(m["nsu"], -1)
            if ns < 0:
                raise LookupError(f"namespace {m['nsu']!r} is not on this server")
        elif m["ns"] is not None:
            ns = int(m["ns"])
        else:
            if default_ns < 0:
                raise LookupError("namespace_uri is not on this server")
            ns = default_ns
        el = ua.RelativePathElement()
        el.ReferenceTypeId = _std(ObjectIds.HierarchicalReferences)
        el.IncludeSubtypes = _TRUE
        el.IsInverse = _FALSE
        el.TargetName = ua.QualifiedName(m["name"], ns)
        elements.append(el)
    bp = ua.BrowsePath()
    bp.StartingNode = _std(ObjectIds.ObjectsFolder)
    bp.RelativePath = ua.RelativePath(Elements=elements)
    return bp
