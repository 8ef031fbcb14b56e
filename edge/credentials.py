"""A gateway's MQTT credentials file: got once with an enrolment token, read at start.

``renkei edge enrol --config GW.yaml --api URL`` reads a one-time token (standard input or
``RENKEI_ENROL_TOKEN``; never the command line, which other users of the host can see),
posts it to the cloud API's ``POST /api/v1/gateways/enrol`` (:func:`enrol`) and writes the
answer to the config's ``mqtt.credentials_file`` (:func:`write_credentials`): JSON
``{"username", "password", "rollout_username", "rollout_password", "broker_url",
"expires_at"}``, created with mode 0600 and replaced atomically (a rotation rewrites it).
``renkei edge run`` reads it (:func:`read_credentials`; a file readable by group or others
is refused, as ssh does) and connects as its ``username``; :func:`expiry_problem` names the
user and says "expired" once ``expires_at`` has passed (the broker then refuses it).

Errors: :class:`CredentialsError` (a :class:`~renkei.core.errors.ConfigError`), never with
a token or password in its message.
"""

from __future__ import annotations

import json
import logging
import os
import stat
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Final

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from renkei.core.errors import ConfigError

__all__ = [
    "ENROL_PATH",
    "CredentialsError",
    "CredentialsWatch",
    "GatewayCredentialsFile",
    "enrol",
    "expiry_problem",
    "read_credentials",
    "write_credentials",
]

ENROL_PATH: Final = "/api/v1/gateways/enrol"
log = logging.getLogger("renkei.edge.credentials")


class CredentialsError(ConfigError):
    """The credentials file is missing, unreadable, too open or malformed, or the
    enrolment was refused (the message says which; never a secret)."""


class GatewayCredentialsFile(BaseModel):
    """The content of ``mqtt.credentials_file`` (immutable)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    username: str = Field(min_length=1, description="MQTT user of the data connection")
    password: SecretStr = Field(description="its password")
    rollout_username: str | None = Field(default=None, description="model-rollout user")
    rollout_password: SecretStr | None = Field(default=None, description="its password")
    broker_url: str | None = Field(default=None, description="broker the cloud named")
    expires_at: datetime | None = Field(
        default=None, description="when the credentials expire (aware); None: never"
    )

    def dump(self) -> str:
        """The file's text (secrets revealed: for the 0600 file only)."""
        return json.dumps(
            {
                "username": self.username,
                "password": self.password.get_secret_value(),
                "rollout_username": self.rollout_username,
                "rollout_password": (
                    None
                    if self.rollout_password is None
                    else self.rollout_password.get_secret_value()
                ),
                "broker_url": self.broker_url,
                "expires_at": None if self.expires_at is None else self.expires_at.isoformat(),
            },
            indent=2,
        )


def read_credentials(path: Path) -> GatewayCredentialsFile:
    """The credentials in ``path``.

    Raises:
        CredentialsError: missing or unreadable file, group/other permission bits set
            (expected mode 0600), or not the JSON :func:`write_credentials` writes.
    """
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CredentialsError(
            f"mqtt.credentials_file: {path}: {exc.strerror or exc}; enrol the gateway first "
            "(renkei edge enrol)"
        ) from None
    if mode & 0o077:
        raise CredentialsError(
            f"mqtt.credentials_file: {path}: mode {mode:04o} lets others read the password; "
            "expected 0600 (chmod 600)"
        )
    try:
        return GatewayCredentialsFile.model_validate_json(text)
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) or "(file)" for e in exc.errors())
        raise CredentialsError(
            f"mqtt.credentials_file: {path}: not a credentials file (bad: {fields})"
        ) from None


def write_credentials(path: Path, credentials: GatewayCredentialsFile) -> None:
    """Write ``credentials`` to ``path`` with mode 0600, atomically (a temporary file in
    the same folder, fsynced, then renamed over ``path``).

    Raises:
        CredentialsError: the folder cannot be written.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.fchmod(fd, 0o600)  # O_CREAT's mode is masked by the umask; this is not
            os.write(fd, credentials.dump().encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise CredentialsError(
            f"mqtt.credentials_file: {path}: cannot write: {exc.strerror or exc}"
        ) from None


def enrol(
    api_url: str,
    token: str,
    *,
    timeout_s: float = 30.0,
    verify: str | bool = True,
    transport: httpx.BaseTransport | None = None,
) -> GatewayCredentialsFile:
    """Exchange ``token`` at the cloud API ``api_url`` (``https://host``; the path
    :data:`ENROL_PATH` is added) for the gateway's credentials.

    Args:
        verify: CA bundle path, or ``True`` for the system's, for an ``https`` API.

    Raises:
        CredentialsError: the API refused the token (401: unknown, used, expired or
            revoked), asked to wait (429), failed (503, 5xx) or could not be reached.
    """
    url = api_url.rstrip("/") + ENROL_PATH
    try:
        with httpx.Client(timeout=timeout_s, verify=verify, transport=transport) as client:
            response = client.post(url, json={"token": token})
    except httpx.HTTPError as exc:
        raise CredentialsError(f"enrol: {url}: {type(exc).__name__}: {exc}") from None
    if response.status_code != 200:
        try:
            message = str(response.json()["error"]["message"])
        except (ValueError, KeyError, TypeError):
            message = response.reason_phrase
        raise CredentialsError(f"enrol: {url}: HTTP {response.status_code}: {message}")
    try:
        return GatewayCredentialsFile.model_validate_json(response.content)
    except ValidationError:
        raise CredentialsError(f"enrol: {url}: the answer is not a credentials object") from None


def expiry_problem(credentials: GatewayCredentialsFile, now: datetime) -> str | None:
    """A sentence naming the user and saying "expired" if ``credentials`` expired at or
    before ``now`` (aware), else ``None``."""
    expires = credentials.expires_at
    if expires is None or now < expires:
        return None
    return (
        f"MQTT user {credentials.username!r}: credentials expired at {expires.isoformat()}; "
        "the broker refuses them. Ask the operator for a rotation token "
        "(renkei cloud gateways rotate) and run renkei edge enrol"
    )


class CredentialsWatch:
    """Notices a rewritten credentials file (a rotation: ``renkei edge enrol`` with a
    rotation token) and credentials that have expired, for the agent's main loop.

    :meth:`poll` looks at the file at most once per ``interval_s`` (a ``stat``; the file
    is read only when its size or modification time changed) and returns the new
    credentials when their user or password differ from the last ones; it logs, once per
    credentials, an error naming the user and saying "expired" when ``expires_at`` has
    passed. A file that cannot be read is logged once and ignored (the current
    credentials stay in use).
    """

    def __init__(
        self,
        *,
        path: Path,
        current: GatewayCredentialsFile,
        now: Callable[[], datetime],
        monotonic: Callable[[], float],
        interval_s: float = 1.0,
    ) -> None:
        self.path = path
        self.current = current
        self._now = now
        self._monotonic = monotonic
        self._interval_s = interval_s
        self._next = monotonic()
        self._seen = self._stamp()
        self._expiry_logged = False
        self._error_logged: str | None = None

    def _stamp(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def poll(self) -> GatewayCredentialsFile | None:
        """New credentials if the file now holds others, else ``None`` (see class doc)."""
        now = self._monotonic()
        if now < self._next:
            return None
        self._next = now + self._interval_s
        if not self._expiry_logged:
            problem = expiry_problem(self.current, self._now())
            if problem is not None:
                self._expiry_logged = True
                log.error("%s", problem)
        stamp = self._stamp()
        if stamp is None or stamp == self._seen:
            return None
        try:
            fresh = read_credentials(self.path)
        except CredentialsError as exc:
            if str(exc) != self._error_logged:
                self._error_logged = str(exc)
                log.error("%s; keeping the current credentials", exc)
            return None
        self._seen = stamp
        self._error_logged = None
        same = (fresh.username, fresh.password) == (self.current.username, self.current.password)
        if same:
            return None
        self.current = fresh
        self._expiry_logged = False
        return fresh
