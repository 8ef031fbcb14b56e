"""``POST /gateways/enrol``: a gateway exchanges its one-time enrolment token for its MQTT
credentials (issue 16, "Gateway identity"; :func:`renkei.cloud.gateway_identity.redeem`).

This is the API's one route without an API key: the enrolment token *is* the credential
(``renkei cloud gateways enroll`` printed it; only its SHA-256 is stored). It is listed in
:data:`renkei.cloud.api.access.PUBLIC` with that reason.

- The token travels in the body (never in the URL, which proxies log) and is never logged.
- Single use and expiry are enforced by one conditional ``UPDATE`` in the request's
  transaction: of two simultaneous redemptions exactly one gets credentials.
- Not an oracle: an unknown, used, expired or revoked token all answer the same 401 with
  the same message (the CLI's ``redeem`` tells an operator the reason; a guesser learns
  nothing). Failures are counted per client address; more than
  ``enrol_failures_per_minute`` within 60 s answer 429 until the minute has passed.
- The broker is the API's ``dynsec_*`` settings; not configured or unreachable → 503 (the
  token stays usable: the transaction is rolled back).
"""

from __future__ import annotations

import logging
import math
import threading
from collections import deque
from datetime import datetime, timedelta

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from renkei.cloud.api.deps import ClockDep, SessionDep, SettingsDep
from renkei.cloud.api.errors import TooManyRequests, Unauthenticated, Unavailable
from renkei.cloud.api.settings import ApiSettings
from renkei.cloud.broker import broker_settings_from_options
from renkei.cloud.broker_dynsec import (
    DynsecAdmin,
    DynsecError,
    DynsecSettings,
    DynsecUnavailable,
)
from renkei.cloud.gateway_identity import EnrolmentRefused, claim, provision
from renkei.core.errors import ConfigError

__all__ = ["FailureLimiter", "router"]

router = APIRouter(tags=["gateways"])
log = logging.getLogger(__name__)

_WINDOW = timedelta(seconds=60)


class GatewayEnrol(BaseModel):
    """The gateway's one-time enrolment token."""

    model_config = ConfigDict(extra="forbid")
    token: SecretStr = Field(
        min_length=1,
        max_length=200,
        description="The token `renkei cloud gateways enroll` printed (`rkg_` + 43 "
        "characters); works once, before it expires.",
    )


class GatewayCredentialsPublic(BaseModel):
    """The gateway's MQTT credentials, shown once (only the broker keeps their hashes)."""

    firm: str = Field(description="The gateway's firm.")
    site: str = Field(description="The site level of its topics.")
    gateway_id: str = Field(description="The gateway id.")
    username: str = Field(description="MQTT user of the data connection (= its client id).")
    password: str = Field(description="Its generated password (43 URL-safe characters).")
    rollout_username: str = Field(description="MQTT user of the model-rollout connection.")
    rollout_password: str = Field(description="Its generated password.")
    broker_url: str | None = Field(
        description="The broker the gateway should connect to (`mqtt://host:port` or "
        "`mqtts://host:port`); null when the API was not told (keep the configured one)."
    )
    expires_at: datetime | None = Field(
        description="When these credentials expire (UTC, ISO-8601; rotate before); null: "
        "they do not expire."
    )


class FailureLimiter:
    """Failed attempts per client address in a sliding 60 s window (thread-safe).

    Keeps at most ``limit`` instants per address and at most 10,000 addresses (the
    oldest address is forgotten first), so a flood cannot grow it without bound.
    """

    MAX_ADDRESSES = 10_000

    def __init__(self, *, limit: int) -> None:
        self.limit = limit
        self._failures: dict[str, deque[datetime]] = {}
        self._lock = threading.Lock()

    def retry_after_s(self, address: str, now: datetime) -> int:
        """0 if ``address`` may try now, else whole seconds (>= 1) until it may."""
        with self._lock:
            times = self._failures.get(address)
            if times is None:
                return 0
            while times and now - times[0] >= _WINDOW:
                times.popleft()
            if len(times) < self.limit:
                return 0
            return max(1, math.ceil((times[0] + _WINDOW - now).total_seconds()))

    def failed(self, address: str, now: datetime) -> None:
        """Count one failure of ``address`` at ``now``."""
        with self._lock:
            if address not in self._failures and len(self._failures) >= self.MAX_ADDRESSES:
                del self._failures[next(iter(self._failures))]
            self._failures.setdefault(address, deque(maxlen=self.limit)).append(now)


_state_lock = threading.Lock()


def _limiter(request: Request, settings: ApiSettings) -> FailureLimiter:
    with _state_lock:
        limiter: FailureLimiter | None = getattr(request.app.state, "enrol_limiter", None)
        if limiter is None:
            limiter = FailureLimiter(limit=settings.enrol_failures_per_minute)
            request.app.state.enrol_limiter = limiter
        return limiter


def _admin(request: Request, settings: ApiSettings) -> DynsecAdmin:
    """The process's one admin connection, connected on first use.

    One, shared and serialised: the broker binds client ids to user names, so a second
    connection of the admin user would end the first (give the API its own admin user,
    ``RENKEI_API_DYNSEC_USERNAME``; a connection ended anyway is replaced here).

    Raises:
        Unavailable: not configured, or the broker cannot be reached.
    """
    dynsec = _dynsec(settings)
    with _state_lock:
        admin: DynsecAdmin | None = getattr(request.app.state, "enrol_admin", None)
        if admin is not None and not admin.connected:
            admin.close()  # ended by the broker, e.g. the same admin user logged in elsewhere
            admin = None
        if admin is None:
            admin = DynsecAdmin(settings=dynsec)
            try:
                admin.connect()
            except DynsecError as exc:
                log.warning("gateway enrolment: %s", exc)
                raise Unavailable(
                    "the broker cannot be reached; the token stays usable, retry later"
                ) from None
            request.app.state.enrol_admin = admin
        return admin


def _drop_admin(request: Request, admin: DynsecAdmin) -> None:
    """Forget a failed admin connection (the next request connects anew)."""
    with _state_lock:
        if getattr(request.app.state, "enrol_admin", None) is admin:
            request.app.state.enrol_admin = None
    admin.close()


def _dynsec(settings: ApiSettings) -> DynsecSettings:
    if settings.dynsec_broker is None:
        raise Unavailable(
            "gateway enrolment is not configured on this API (RENKEI_API_DYNSEC_BROKER)"
        )
    try:
        broker = broker_settings_from_options(
            url=settings.dynsec_broker,
            username=settings.dynsec_username,
            password=(
                None
                if settings.dynsec_password is None
                else settings.dynsec_password.get_secret_value()
            ),
            tls_ca_file=settings.dynsec_tls_ca_file,
        )
    except ConfigError as exc:
        raise Unavailable(f"gateway enrolment is misconfigured: {exc}") from None
    return DynsecSettings(broker=broker)


@router.post(
    "/gateways/enrol",
    name="gateways.enrol",
    responses={401: {"description": "Unknown, used, expired or revoked token (one answer)."}},
)
def enrol_gateway(
    body: GatewayEnrol,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    now: ClockDep,
) -> GatewayCredentialsPublic:
    """Exchange a one-time enrolment token for the gateway's MQTT credentials (no API key:
    the token is the credential). Answers 401 for any token that cannot be exchanged, 429
    after too many failures from one address, 503 when the broker is unavailable."""
    address = request.client.host if request.client is not None else "unknown"
    limiter = _limiter(request, settings)
    wait = limiter.retry_after_s(address, now)
    if wait:
        raise TooManyRequests(
            f"too many failed enrolments from this address; retry in {wait} s",
            retry_after_s=wait,
        )
    try:
        row = claim(session, body.token.get_secret_value(), now=now)
    except EnrolmentRefused:
        limiter.failed(address, now)
        raise Unauthenticated(
            "enrolment token refused: unknown, already used, expired or revoked "
            "(ask the operator for a new one: renkei cloud gateways enroll)"
        ) from None
    # Claimed (still uncommitted): a broker failure below rolls the claim back.
    admin = _admin(request, settings)
    try:
        credentials = provision(
            session,
            admin,
            row,
            now=now,
            credential_ttl=(
                None
                if settings.gateway_credential_days is None
                else timedelta(days=settings.gateway_credential_days)
            ),
        )
    except DynsecError as exc:
        # The broker's words stay in the server log: the caller has no API key.
        log.warning("gateway enrolment: the broker failed: %s", exc)
        if isinstance(exc, DynsecUnavailable):
            _drop_admin(request, admin)
        raise Unavailable(
            "the broker could not create the gateway's users; the token stays usable, retry later"
        ) from None
    return GatewayCredentialsPublic(
        firm=credentials.firm,
        site=credentials.site,
        gateway_id=credentials.gateway_id,
        username=credentials.username,
        password=credentials.password.get_secret_value(),
        rollout_username=credentials.rollout_username,
        rollout_password=credentials.rollout_password.get_secret_value(),
        broker_url=settings.gateway_broker_url or settings.dynsec_broker,
        expires_at=credentials.expires_at,
    )
