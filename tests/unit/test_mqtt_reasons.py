"""renkei.core.mqtt.reasons: the four kinds of a failed broker connection (pure logic)."""

from __future__ import annotations

import errno
import socket
import ssl

import pytest

from renkei.core.mqtt.reasons import connect_error_reason, failure_kind, refusal_reason


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"), "refused"),
        (socket.gaierror(-2, "Name or service not known"), "unreachable"),
        (TimeoutError("timed out"), "unreachable"),
        (OSError(errno.EHOSTUNREACH, "No route to host"), "unreachable"),
        (ssl.SSLCertVerificationError(1, "certificate verify failed"), "TLS"),
        (ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number"), "TLS"),
        (ConnectionResetError(errno.ECONNRESET, "reset"), "other"),
    ],
)
def test_failure_kind(exc: OSError, kind: str) -> None:
    assert failure_kind(exc) == kind
    text = connect_error_reason(exc)
    assert text.startswith("connection failed" if kind == "other" else kind), text
    assert type(exc).__name__ in text


def test_refusal_reason_names_auth() -> None:
    assert refusal_reason("Not authorized").startswith("auth: ")
    assert refusal_reason("Bad user name or password").startswith("auth: ")
    assert refusal_reason("Server unavailable") == "refused by the broker: Server unavailable"
    assert connect_error_reason(None) == "connection failed"
