"""The three senders against real loopback servers: a recording HTTP server standing in
for the LINE platform and Slack (request shape per their published APIs), and aiosmtpd."""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import ssl
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from renkei.cloud.notify import (
    LINE_TEXT_MAX,
    DeliveryFailed,
    EmailNotifier,
    LineNotifier,
    Message,
    SlackNotifier,
    mask,
)
from tests.notify_servers import RecordingServer, SmtpSink

TOKEN = "line-channel-token-SECRET-0123456789abcdef"
TO = "U" + "0123456789abcdef" * 2
MSG = Message(subject="[Renkei] テスト", text="金型 m1 の保全が近い", language="ja")


def no_sleep(_: float) -> None:
    pass


@pytest.fixture
def http() -> Iterator[RecordingServer]:
    server = RecordingServer()
    try:
        yield server
    finally:
        server.close()


def line(http: RecordingServer, **kw: object) -> LineNotifier:
    return LineNotifier(token=TOKEN, base_url=http.url, sleep=no_sleep, **kw)  # type: ignore[arg-type]


def test_line_push_request_shape(http: RecordingServer) -> None:
    n = line(http)
    n.send(TO, MSG)
    n.send(TO, Message(subject="s", text="x" * 6000))
    n.close()
    first, long = http.requests
    assert (first.method, first.path) == ("POST", "/v2/bot/message/push")
    assert first.headers["authorization"] == f"Bearer {TOKEN}"
    assert first.headers["content-type"] == "application/json"
    assert uuid.UUID(first.headers["x-line-retry-key"])  # a UUID, as the reference asks
    assert first.json() == {
        "to": TO,
        "messages": [{"type": "text", "text": "[Renkei] テスト\n金型 m1 の保全が近い"}],
    }
    text = long.json()["messages"][0]["text"]
    assert len(text) == LINE_TEXT_MAX and text.endswith("…")
    assert long.headers["x-line-retry-key"] != first.headers["x-line-retry-key"]


def test_line_retries_with_the_same_retry_key(http: RecordingServer) -> None:
    # 500, then 409 (the first attempt was accepted after all): sent, once, same key.
    http.replies.extend([(500, '{"message":"boom"}'), (409, '{"message":"conflict"}')])
    n = line(http)
    n.send(TO, MSG)
    keys = {r.headers["x-line-retry-key"] for r in http.requests}
    assert len(http.requests) == 2 and len(keys) == 1
    # 429 on every attempt: fails after `attempts` tries, retryable.
    http.requests.clear()
    http.replies.extend([(429, '{"message":"Too many requests"}')] * 3)
    with pytest.raises(DeliveryFailed, match="HTTP 429 Too many requests") as err:
        n.send(TO, MSG)
    assert err.value.retryable and len(http.requests) == 3
    # 400: not retried; the LINE error message is kept, the token is not.
    http.requests.clear()
    http.replies.append((400, '{"message":"The property, \'to\', in the request body is invalid"}'))
    with pytest.raises(DeliveryFailed) as err:
        n.send(TO, MSG)
    assert not err.value.retryable and len(http.requests) == 1
    assert "HTTP 400" in str(err.value) and TOKEN not in str(err.value)
    # 409 on a *first* attempt is a failure (that key was never ours).
    http.replies.append((409, "{}"))
    with pytest.raises(DeliveryFailed, match="409"):
        n.send(TO, MSG)
    n.close()


def test_line_unreachable_is_a_retryable_delivery_failure() -> None:
    n = LineNotifier(token=TOKEN, base_url="http://127.0.0.1:9", sleep=no_sleep, attempts=2)
    with pytest.raises(DeliveryFailed, match="connection failed") as err:
        n.send(TO, MSG)
    assert err.value.retryable
    n.close()


def test_slack_webhook_request_shape_and_errors(http: RecordingServer) -> None:
    url = f"{http.url}/services/T000/B000/SECRETsecretSECRET"
    n = SlackNotifier(sleep=no_sleep)
    n.send(url, MSG)
    (req,) = http.requests
    assert (req.method, req.path) == ("POST", "/services/T000/B000/SECRETsecretSECRET")
    assert req.headers["content-type"] == "application/json"
    assert req.json() == {"text": "*[Renkei] テスト*\n金型 m1 の保全が近い"}
    http.replies.append((404, "no_service"))
    with pytest.raises(DeliveryFailed) as err:
        n.send(url, MSG)
    assert "HTTP 404 no_service" in str(err.value) and "SECRET" not in str(err.value)
    n.close()
    assert mask("slack", url) == "http://127.0.0.1/…CRET"
    assert "SECRETsecret" not in mask("slack", url)


def test_email_plain_delivers_to_subject_and_utf8_body() -> None:
    sink = SmtpSink()
    try:
        n = EmailNotifier(host="127.0.0.1", port=sink.port, security="none", sender="r@example.jp")
        n.send("ops@example.jp", MSG)
        ((envelope, msg),) = sink.messages
        assert envelope.rcpt_tos == ["ops@example.jp"]
        assert msg["To"] == "ops@example.jp" and msg["From"] == "r@example.jp"
        assert msg["Subject"] == "[Renkei] テスト"
        assert msg["Content-Language"] == "ja"
        assert msg.get_content().strip() == "金型 m1 の保全が近い"
    finally:
        sink.close()
    with pytest.raises(DeliveryFailed, match="unreachable") as err:
        n.send("ops@example.jp", MSG)
    assert err.value.retryable


def _cert(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    start = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=365 * 30))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp / "smtp.pem", tmp / "smtp.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def test_email_starttls_and_login_never_log_the_password(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    cert_file, key_file = _cert(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    password = "smtp-PASSWORD-never-logged"

    def auth(server: object, session: object, envelope: object, mechanism: str, data: object):
        ok = isinstance(data, LoginPassword) and data.password == password.encode()
        return AuthResult(success=ok)

    sink = SmtpSink(
        tls_context=context, require_starttls=True, authenticator=auth, auth_require_tls=True
    )
    try:
        common = {"host": "127.0.0.1", "port": sink.port, "ca_file": str(cert_file)}
        n = EmailNotifier(security="starttls", username="renkei", password=password, **common)  # type: ignore[arg-type]
        n.send("partner@example.jp", Message(subject="Offer", text="Hello", language="en"))
        ((envelope, msg),) = sink.messages
        assert envelope.rcpt_tos == ["partner@example.jp"] and msg["Subject"] == "Offer"
        # Without STARTTLS the server refuses the mail: a clear failure.
        plain = EmailNotifier(security="none", **common)  # type: ignore[arg-type]
        with pytest.raises(DeliveryFailed, match="SMTP"):
            plain.send("partner@example.jp", MSG)
    finally:
        sink.close()
    assert password not in caplog.text
