"""Platform settings of the notifiers (``RENKEI_NOTIFY_*``): SMTP server, LINE channel."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["LINE_API_BASE", "NotifySettings"]

LINE_API_BASE = "https://api.line.me"


class NotifySettings(BaseSettings):
    """How the platform sends notifications; every field is ``RENKEI_NOTIFY_<FIELD>``.

    A channel whose platform part is missing (no ``smtp_host``; no LINE token, neither here
    nor in the firm's settings) is *skipped* and the delivery log says so.
    """

    model_config = SettingsConfigDict(env_prefix="RENKEI_NOTIFY_", frozen=True, extra="forbid")

    smtp_host: str | None = Field(None, description="SMTP server host; unset = no e-mail.")
    smtp_port: Annotated[int, Field(ge=1, le=65535)] = Field(
        587, description="SMTP server port (587 submission with STARTTLS, 465 implicit TLS)."
    )
    smtp_security: Literal["starttls", "tls", "none"] = Field(
        "starttls",
        description="`starttls` (upgrade after EHLO), `tls` (implicit TLS) or `none` "
        "(plain, only for a relay on the same host).",
    )
    smtp_ca_file: str | None = Field(
        None, description="PEM file of the CA that signed the SMTP server's certificate."
    )
    smtp_username: str | None = Field(None, description="SMTP login; unset = no AUTH.")
    smtp_password: SecretStr | None = Field(None, description="SMTP password (never logged).")
    smtp_from: str = Field("renkei@localhost", description="Sender address (From header).")
    smtp_timeout_s: Annotated[float, Field(gt=0, le=120)] = Field(
        15.0, description="Socket timeout of one SMTP session, seconds."
    )
    line_api_base: str = Field(
        LINE_API_BASE, description="Base URL of the LINE Messaging API (tests: loopback)."
    )
    line_channel_token: SecretStr | None = Field(
        None,
        description="Channel access token of the platform's LINE Official Account "
        "(a firm may set its own); never logged.",
    )
    slack_hosts: tuple[str, ...] = Field(
        ("hooks.slack.com",),
        description="Hosts a firm's Slack webhook URL may point at (exact, case-insensitive; "
        'JSON list in the environment, e.g. ["hooks.slack.com"]). A URL on any other host is '
        "skipped and logged, so a firm cannot make the cloud post to internal addresses.",
    )
    http_timeout_s: Annotated[float, Field(gt=0, le=120)] = Field(
        10.0, description="Timeout of one Slack or LINE request, seconds."
    )
    attempts: Annotated[int, Field(ge=1, le=10)] = Field(
        3, description="Attempts per message on retryable errors (timeouts, 5xx, 429)."
    )
    backoff_s: Annotated[float, Field(ge=0, le=60)] = Field(
        1.0, description="First wait between attempts, seconds; doubles each time."
    )
    workers: Annotated[int, Field(ge=1, le=16)] = Field(
        2, description="Threads delivering notifications after the business transaction."
    )
