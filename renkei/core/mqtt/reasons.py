"""Why a broker connection failed, in words an operator can act on (for log lines).

Every failed connect falls into one of four kinds, named first in the text so that a log
search finds them: ``refused`` (nothing accepts connections on the port: the broker is
down or the port is wrong), ``unreachable`` (no route, time-out, unknown host name),
``auth`` (the broker answered the CONNECT with "bad user name or password" or "not
authorized") and ``TLS`` (the handshake failed: untrusted certificate, plain port, ...).
The original error follows in parentheses. No text here contains credentials: paho's and
the socket's errors never hold them.
"""

from __future__ import annotations

import errno
import socket
import ssl
from typing import Final, Literal

__all__ = ["FailureKind", "connect_error_reason", "failure_kind", "refusal_reason"]

FailureKind = Literal["refused", "unreachable", "auth", "TLS", "other"]

#: CONNACK reason texts (paho's ``str(ReasonCode)``, MQTT 5 0x86/0x87/0x8C and the
#: MQTT 3.1.1 return codes 4/5 it maps to them) that mean "your credentials".
_AUTH_REFUSALS: Final = frozenset(
    {"Bad user name or password", "Not authorized", "Bad authentication method"}
)
_UNREACHABLE_ERRNOS: Final = frozenset(
    {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN, errno.EHOSTDOWN, errno.ETIMEDOUT}
)


def failure_kind(exc: BaseException) -> FailureKind:
    """The kind of a socket/TLS error raised while connecting (module docstring)."""
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return "TLS"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, socket.gaierror | TimeoutError):
        return "unreachable"
    if isinstance(exc, OSError) and exc.errno in _UNREACHABLE_ERRNOS:
        return "unreachable"
    return "other"


_TEXT: Final[dict[FailureKind, str]] = {
    "refused": "refused: nothing accepts connections on that port (broker down or wrong port)",
    "unreachable": "unreachable: no route to the broker or no answer (network, host name)",
    "TLS": "TLS handshake failed (certificate not trusted, wrong CA file, or not a TLS port)",
    "other": "connection failed",
}


def connect_error_reason(exc: BaseException | None) -> str:
    """``"<kind>: <what it means> (<ErrorType>: <error>)"`` for a failed TCP/TLS connect.

    Example: ``"refused: nothing accepts connections on that port (broker down or wrong
    port) (ConnectionRefusedError: [Errno 111] Connection refused)"``.
    """
    if exc is None:
        return _TEXT["other"]
    return f"{_TEXT[failure_kind(exc)]} ({type(exc).__name__}: {exc})"


def refusal_reason(reason: str) -> str:
    """The text for a CONNACK that refused the connection with reason ``reason``.

    Example: ``"auth: the broker refused the credentials (Not authorized); check the
    user name, password or client certificate"``.
    """
    if reason in _AUTH_REFUSALS:
        return (
            f"auth: the broker refused the credentials ({reason}); check the user name, "
            "password or client certificate"
        )
    return f"refused by the broker: {reason}"
