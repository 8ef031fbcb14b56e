"""The exception tree of Renkei: every exception Renkei raises on purpose is a :class:`RenkeiError`.

Third-party errors (onnxruntime, paho, httpx, SQLAlchemy, pydantic, sqlite3, urllib, the
machine protocols' libraries) are caught where Renkei calls those libraries and re-raised
as one of these with the original chained (``raise ... from exc``), as httpx maps its
transport's errors. A caller that wants "anything Renkei refused, with a message meant
for an operator" catches :class:`RenkeiError`; a caller that can act on one kind catches
that kind. Classes keep a builtin base (``ValueError``, ``RuntimeError``...) where
callers already catch that builtin. The tree (module of each class in brackets; ``core``
= this module)::

    RenkeiError [core]
    ├── ConfigError [core]               unusable config file, environment or options
    │   │                                (also a ValueError; names file and key path)
    │   └── AclConfigError [cloud.broker_acl]
    ├── DecodeError [core]               bytes from a peer do not parse (also a ValueError)
    │   ├── WireError [core.wire]        a topic or payload breaks the v1 wire contract
    │   ├── FrameError [edge.sources.live.slmp.frames]
    │   ├── DocumentError [edge.sources.live.mtconnect.parse]
    │   ├── MultipartError [edge.sources.live.mtconnect.multipart]
    │   │   └── PartTooLarge
    │   ├── TooLarge [edge.sources.live.mtconnect.transport]
    │   └── MalformedPayload [edge.sources.live.sparkplug.codec]
    ├── TransportError [core]            a peer cannot be reached, refuses or drops the link
    │   ├── MqttError [core]             the MQTT broker
    │   │   └── PublisherError [edge.transport.publisher]   (also a RuntimeError)
    │   ├── FetchError [edge.rollout.fetch]                 model release download
    │   ├── ApiClientError [models.api_client]              the cloud API, as a client
    │   ├── SessionLost, SessionRefused [edge.sources.live.opcua.session]
    │   ├── RequestTimeout [edge.sources.live.slmp.link]
    │   └── AgentError [edge.sources.live.mtconnect.parse]  an MTConnectError document
    ├── StoreError [core]                a time-series store call failed
    │   ├── StoreUnavailable [core]      retryable: refused, timeout, 5xx, 429, auth, no db
    │   ├── StoreRejected [core]         not retryable: the store refused *this data* (4xx)
    │   │   └── LineProtocolError [core] not valid line protocol (also a ValueError)
    │   └── QueryError [dashboards.emulate]   (also a RuntimeError)
    ├── ModelError [core]                a model cannot be loaded, verified or run
    │   ├── ModelIntegrityError [edge.model.inference]   SHA-256 mismatch, missing pin
    │   ├── ModelInputError [edge.model.inference]       rows do not fit (also a ValueError)
    │   ├── ModelRunError [edge.model.inference]         onnxruntime failed while scoring
    │   ├── InputPlanError [edge.model.inputs]           (also a ValueError)
    │   │   └── RulPlanError [edge.model.rul]
    │   └── SignatureError [core.signing]                (also a ValueError)
    ├── SigningKeyError [core.signing]   a key that cannot be read (also a ValueError)
    ├── SourceError [edge.sources.base]  bad data or configuration of a source (ValueError)
    │   ├── SourceFileNotFoundError      (also a FileNotFoundError)
    │   └── LiveSourceError [edge.sources.live.source]
    ├── SecretError [edge.sources.live.signals]          (also a ValueError)
    ├── MappingError [edge.sources.live.mtconnect.mapping] (also a ValueError)
    ├── OutboxError [edge.transport.outbox]              (also a RuntimeError)
    │   └── OutboxFullError
    ├── AgentError [edge.agent]          the gateway agent cannot go on (RuntimeError)
    ├── CloudError [cloud._exceptions]   the cloud services' own errors
    │   ├── IngestError [cloud._exceptions]
    │   ├── PortabilityError [cloud.portability.errors]
    │   │   ├── ArchiveError
    │   │   ├── ImportConflict
    │   │   └── MissingPartners
    │   ├── PlannerInputError [cloud.planner.errors]     (also a ValueError)
    │   ├── RolloutError [cloud.rollout.service]         (also a ValueError)
    │   ├── RegistryImportError, RegistryOwnershipError [cloud.registry.bulk] (ValueError)
    │   └── ApiError [cloud.api.errors]  an HTTP status, code and detail for the client
    │       └── Unauthenticated, Forbidden, NotFound, Conflict, Invalid
    └── BodyTooLarge [cloud.api.limits]  (also starlette's HTTPException, which FastAPI
                                         must see to pass it through body parsing)

Control-flow signals private to one module (``_Outcome``, ``_Stopped``, ``_Abandon``,
``_LinkLost``, ``_Restarted``, ``_Closed``, ``Stopped``) derive from :class:`RenkeiError`
too; they never leave their module.

``tests/unit/test_error_tree.py`` imports every module of :mod:`renkei` and fails on an
exception class outside this tree.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "ConfigError",
    "DecodeError",
    "LineProtocolError",
    "ModelError",
    "MqttError",
    "RenkeiError",
    "StoreError",
    "StoreRejected",
    "StoreUnavailable",
    "TransportError",
]


class RenkeiError(Exception):
    """Base class of every exception Renkei raises on purpose (see the module docstring)."""


class ConfigError(RenkeiError, ValueError):
    """A configuration that cannot be used: a gateway config file, environment variables
    or command-line options.

    Two forms:

    - ``ConfigError(file, problems)``: a gateway config file with its problems, each a
      ``(key path, message)`` pair (``""`` = the whole file); the message is
      ``invalid gateway config`` followed by one ``file: key.path: problem`` line each.
    - ``ConfigError(message)``: settings from options or environment (a URL with an
      unsupported scheme, conflicting auth options...); ``file`` is ``""`` and
      ``problems`` empty.

    Attributes:
        file: the config file (as given), or ``""``.
        problems: ``(key path, message)`` pairs, in the order found.
    """

    def __init__(self, source: Path | str, problems: list[tuple[str, str]] | None = None) -> None:
        if problems is None:
            self.file = ""
            self.problems: list[tuple[str, str]] = []
            super().__init__(str(source))
            return
        self.file = str(source)
        self.problems = problems
        lines = [f"{self.file}: {path or '<root>'}: {msg}" for path, msg in problems]
        super().__init__("invalid gateway config\n  " + "\n  ".join(lines))


class DecodeError(RenkeiError, ValueError):
    """Bytes received from a peer (an MQTT payload, a PLC frame, an HTTP document) do not
    parse as what the protocol says they must be."""


class TransportError(RenkeiError):
    """A peer (MQTT broker, HTTP service, machine controller) cannot be reached, refuses
    the request or drops the connection. Retrying later may succeed unless the subclass
    says otherwise."""


class MqttError(TransportError):
    """The MQTT broker cannot be reached, refuses the session or drops it (paho's errors
    are chained as ``__cause__``)."""


class StoreError(RenkeiError):
    """A call to a time-series store failed.

    Attributes:
        status: the HTTP status code when the store answered over HTTP, else ``None``.
        detail: the store's own error text (e.g. InfluxDB's ``{"error": ...}``), verbatim.
    """

    def __init__(self, message: str, *, status: int | None = None, detail: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail


class StoreUnavailable(StoreError):
    """The store cannot take the request now; retrying the same request later may succeed.

    Raised for connection refused/reset, timeouts, HTTP 5xx, 429 (rate limited),
    401/403 (credentials: an operator must fix them, the data is fine) and 404
    (database missing). ``retry_after_s`` carries the server's ``Retry-After`` if any.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        detail: str = "",
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message, status=status, detail=detail)
        self.retry_after_s = retry_after_s


class StoreRejected(StoreError):
    """The store refused the data itself (HTTP 400/413/422...); retrying is pointless.

    InfluxDB 1.x answers 400 with ``partial write: field type conflict ...`` or
    ``unable to parse ...`` and may have written the valid points of the body.
    """


class LineProtocolError(StoreRejected, ValueError):
    """A body is not valid InfluxDB line protocol (raised by the embedded parser).

    Attributes:
        line_no: 1-based line number of the offending line within the body.
    """

    def __init__(self, message: str, *, line_no: int = 0) -> None:
        super().__init__(message, status=400, detail=message)
        self.line_no = line_no


class ModelError(RenkeiError):
    """A model cannot be loaded, verified or run (missing files, invalid manifest, bad
    graph, refused signature, an onnxruntime failure chained as ``__cause__``)."""
