"""A firm's notification settings, its delivery log, and Grafana's webhook.

- ``GET /firms/{firm_id}/notifications``: the settings; secrets (Slack webhook URL, LINE
  channel access token) are never returned, only whether they are set and a masked form.
- ``PATCH /firms/{firm_id}/notifications``: change them; a field left out is kept, a
  secret given as ``null`` is removed. Owner firm only (operator, admin).
- ``GET /firms/{firm_id}/notifications/deliveries``: the newest deliveries (outcome, masked
  target, reason).
- ``POST /firms/{firm_id}/notifications/test``: send one short test message (in the firm's
  language) to each configured target *now* and answer with each outcome (``sent``,
  ``failed`` or ``skipped`` with the reason); recorded in the delivery log like any other
  (event ``test``). Owner firm only (operator, admin); no body. At most one test per firm
  every :data:`TEST_INTERVAL` (429 with ``Retry-After`` otherwise), so a key cannot spend
  the platform's LINE message quota or flood an inbox.
- ``POST /firms/{firm_id}/notifications/grafana?channels=line``: Grafana's webhook contact
  point. Authenticated with a key of the firm; the alert text goes only to the targets in
  *that firm's* settings (the payload names no target), after the response (202).
"""

from __future__ import annotations

import logging
import math
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from sqlalchemy import func, select

from renkei.cloud.api.deps import ClockDep, PrincipalDep, SessionDep, authorize
from renkei.cloud.api.errors import Invalid, NotFound, TooManyRequests
from renkei.cloud.api.params import FirmIdPath
from renkei.cloud.notify import (
    AlertLine,
    Dispatcher,
    Notification,
    alert_texts,
    enqueue,
    mask,
    trial_texts,
)
from renkei.cloud.registry import (
    DeliveryStatus,
    Firm,
    NotificationChannel,
    NotificationDelivery,
    NotificationSettings,
)

router = APIRouter(tags=["notifications"])
log = logging.getLogger(__name__)

LINE_ID = re.compile(r"^[UCR][0-9a-f]{32}$")
"""A LINE user (``U…``), group (``C…``) or room (``R…``) id: a letter and 32 hex digits."""
EmailAddress = Annotated[
    str, Field(max_length=254, pattern=r"^[^@\s<>,;\"]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
]
"""An e-mail address (local part @ a domain with a dot; no display name)."""
TEST_INTERVAL = timedelta(seconds=30)
"""Least time between two test messages of one firm (from the last one's delivery rows)."""
SLACK_URL = re.compile(r"^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?/\S{1,450}$")


class NotificationSettingsPublic(BaseModel):
    """Where the firm is notified; secrets appear only masked."""

    language: Literal["ja", "en"] = Field(description="Language of the texts.")
    email_to: list[str] = Field(description="E-mail addresses, one message each.")
    line_to: list[str] = Field(description="LINE user (U…), group (C…) or room (R…) ids.")
    slack_webhook_set: bool = Field(description="Whether a Slack webhook URL is stored.")
    slack_webhook_masked: str | None = Field(
        description="Scheme, host and last 4 characters of the Slack webhook URL."
    )
    line_channel_token_set: bool = Field(
        description="Whether the firm has its own LINE channel access token (else the "
        "platform's is used)."
    )
    updated_at: datetime | None = Field(description="Last change (UTC); null if never set.")


class NotificationSettingsUpdate(BaseModel):
    """Partial update: fields left out keep their value; ``null`` removes a secret."""

    model_config = ConfigDict(extra="forbid")
    language: Literal["ja", "en"] | None = Field(None, description="Language of the texts.")
    email_to: Annotated[list[EmailAddress], Field(max_length=20)] | None = Field(
        None, description="E-mail addresses (at most 20)."
    )
    line_to: Annotated[list[str], Field(max_length=20)] | None = Field(
        None,
        description="LINE user/group/room ids (at most 20): a letter U, C or R and "
        "32 lowercase hex digits.",
    )
    slack_webhook_url: SecretStr | None = Field(
        None, description="Slack incoming-webhook URL (https); write-only, null removes it."
    )
    line_channel_token: SecretStr | None = Field(
        None,
        description="The firm's own LINE channel access token; write-only, null removes it.",
    )


class DeliveryPublic(BaseModel):
    """One notification on one channel."""

    model_config = ConfigDict(from_attributes=True)
    id: int = Field(description="Delivery id.")
    event: str = Field(description="offer, accepted, declined, alert or test.")
    reference: str = Field(description="What it was about (takeover, assignment).")
    channel: NotificationChannel = Field(description="email, slack or line.")
    target: str = Field(description="Masked target.")
    status: DeliveryStatus = Field(description="sent, failed or skipped.")
    reason: str = Field(description="Why it failed or was skipped (empty when sent).")
    at: datetime = Field(description="When it was attempted (UTC).")


class NotificationTrialPublic(BaseModel):
    """What the test message did: one outcome per configured target."""

    language: Literal["ja", "en"] = Field(
        description="Language the test message was sent in (the firm's setting)."
    )
    deliveries: list[DeliveryPublic] = Field(
        description="One row per configured target, e-mail addresses first, then the Slack "
        "webhook, then LINE ids: `sent`; `failed` with the reason (SMTP or HTTP status, "
        "timeout); or `skipped` with the reason (a channel off on this platform, a Slack "
        "host not allowed). Empty when no target is set up: then nothing was sent. Targets "
        "are masked; no URL, token or password appears."
    )


class GrafanaAlert(BaseModel):
    """One alert of Grafana's webhook payload (only what the text uses)."""

    model_config = ConfigDict(extra="ignore")
    status: Annotated[str, Field(max_length=16)] = Field("firing", description="firing/resolved.")
    labels: dict[str, Annotated[str, Field(max_length=200)]] = Field(
        default_factory=dict, description="Alert labels (alertname, site, machine, ...)."
    )
    annotations: dict[str, Annotated[str, Field(max_length=2000)]] = Field(
        default_factory=dict, description="Annotations (summary, description)."
    )


class GrafanaWebhook(BaseModel):
    """Grafana's webhook contact point payload (version 1); other fields are ignored."""

    model_config = ConfigDict(extra="ignore")
    status: Annotated[str, Field(max_length=16)] = Field("firing", description="Group status.")
    title: Annotated[str, Field(max_length=1000)] = Field("", description="Rendered title.")
    alerts: Annotated[list[GrafanaAlert], Field(max_length=200)] = Field(
        default_factory=list, description="The alerts of the group (at most 200)."
    )


class WebhookAccepted(BaseModel):
    """What the webhook queued."""

    alerts: int = Field(description="Alerts in the payload.")
    channels: list[NotificationChannel] = Field(description="Channels the text goes to.")


def _public(row: NotificationSettings | None) -> NotificationSettingsPublic:
    if row is None:
        return NotificationSettingsPublic(
            language="ja",
            email_to=[],
            line_to=[],
            slack_webhook_set=False,
            slack_webhook_masked=None,
            line_channel_token_set=False,
            updated_at=None,
        )
    return NotificationSettingsPublic(
        language="en" if row.language == "en" else "ja",
        email_to=list(row.email_to),
        line_to=list(row.line_to),
        slack_webhook_set=row.slack_webhook_url is not None,
        slack_webhook_masked=(
            mask(NotificationChannel.SLACK, row.slack_webhook_url)
            if row.slack_webhook_url
            else None
        ),
        line_channel_token_set=row.line_channel_token is not None,
        updated_at=row.updated_at,
    )


@router.get(
    "/firms/{firm_id}/notifications",
    name="notifications.get",
    dependencies=[authorize("notifications.get")],
)
def get_settings(firm_id: FirmIdPath, session: SessionDep) -> NotificationSettingsPublic:
    """The firm's notification settings (secrets masked)."""
    return _public(session.get(NotificationSettings, firm_id))


def _secret(value: SecretStr | None, *, field: str, pattern: re.Pattern[str]) -> str | None:
    if value is None:
        return None
    raw = value.get_secret_value().strip()
    if not pattern.match(raw):
        # The value itself is never echoed (it is a secret).
        raise Invalid(
            f"{field}: not a valid value (expected {pattern.pattern})",
            detail=[{"loc": ["body", field], "msg": "invalid format (value not shown)"}],
        )
    return raw


@router.patch(
    "/firms/{firm_id}/notifications",
    name="notifications.update",
    dependencies=[authorize("notifications.update")],
)
def update_settings(
    firm_id: FirmIdPath, body: NotificationSettingsUpdate, session: SessionDep, now: ClockDep
) -> NotificationSettingsPublic:
    """Change the firm's notification settings; returns them with secrets masked.

    Errors: 422 naming the field (a bad secret's value is never echoed).
    """
    row = session.get(NotificationSettings, firm_id)
    if row is None:
        row = NotificationSettings(firm_id=firm_id, language="ja", email_to=[], line_to=[])
        session.add(row)
    given = body.model_fields_set
    if body.language is not None:
        row.language = body.language
    if body.email_to is not None:
        row.email_to = sorted({str(a) for a in body.email_to})
    if body.line_to is not None:
        bad = [i for i, t in enumerate(body.line_to) if not LINE_ID.match(t)]
        if bad:
            raise Invalid(
                f"line_to[{bad[0]}]: expected a LINE id: U, C or R and 32 hex digits",
                detail=[{"loc": ["body", "line_to", i], "msg": "not a LINE id"} for i in bad],
            )
        row.line_to = list(dict.fromkeys(body.line_to))
    if "slack_webhook_url" in given:
        row.slack_webhook_url = _secret(
            body.slack_webhook_url, field="slack_webhook_url", pattern=SLACK_URL
        )
    if "line_channel_token" in given:
        row.line_channel_token = _secret(
            body.line_channel_token,
            field="line_channel_token",
            pattern=re.compile(r"^[A-Za-z0-9+/=._-]{20,400}$"),
        )
    row.updated_at = now
    session.flush()
    return _public(row)


@router.get(
    "/firms/{firm_id}/notifications/deliveries",
    name="notifications.deliveries",
    dependencies=[authorize("notifications.deliveries")],
)
def list_deliveries(
    firm_id: FirmIdPath,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=1000, description="Most rows (newest first).")] = 100,
) -> list[DeliveryPublic]:
    """The firm's newest notification deliveries."""
    rows = session.scalars(
        select(NotificationDelivery)
        .where(NotificationDelivery.firm_id == firm_id)
        .order_by(NotificationDelivery.id.desc())
        .limit(limit)
    )
    return [DeliveryPublic.model_validate(r) for r in rows]


@router.post(
    "/firms/{firm_id}/notifications/test",
    name="notifications.test",
    dependencies=[authorize("notifications.test")],
)
def send_test(
    firm_id: FirmIdPath,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    now: ClockDep,
) -> NotificationTrialPublic:
    """Send one short test message to each of the firm's targets now; answer the outcomes.

    Blocks until every target is tried (SMTP timeouts and HTTP retries included, see
    ``RENKEI_NOTIFY_*``). The outcomes are also in ``.../notifications/deliveries``.

    Errors: 404 if the firm does not exist; 429 (``Retry-After``) within
    :data:`TEST_INTERVAL` of the firm's last test message.
    """
    firm = session.get(Firm, firm_id)
    if firm is None:
        raise NotFound(f"no firm {firm_id!r}")
    last = session.scalar(
        select(func.max(NotificationDelivery.at)).where(
            NotificationDelivery.firm_id == firm_id, NotificationDelivery.event == "test"
        )
    )
    if last is not None:
        last = last if last.tzinfo is not None else last.replace(tzinfo=UTC)  # SQLite: naive
        wait = (last + TEST_INTERVAL - now).total_seconds()
        if wait > 0:
            raise TooManyRequests(
                f"a test message was sent {int((now - last).total_seconds())} s ago; the next "
                f"one can be sent in {math.ceil(wait)} s",
                retry_after_s=math.ceil(wait),
            )
    prefs = session.get(NotificationSettings, firm_id)
    dispatcher: Dispatcher = request.app.state.notify
    log.info("test notification for firm %s requested by key %s", firm_id, principal.key_id)
    rows = dispatcher.send(
        session,
        Notification(
            firm_id=firm_id,
            event="test",
            reference=f"requested by key {principal.key_id}",
            texts=trial_texts(firm=firm.name),
        ),
    )
    session.flush()
    return NotificationTrialPublic(
        language="en" if prefs is not None and prefs.language == "en" else "ja",
        deliveries=[DeliveryPublic.model_validate(r) for r in rows],
    )


def _channels(raw: str) -> frozenset[NotificationChannel]:
    out = set()
    for name in (p.strip() for p in raw.split(",") if p.strip()):
        try:
            out.add(NotificationChannel(name))
        except ValueError:
            raise Invalid(
                f"channels: unknown channel {name!r} (expected email, slack, line)"
            ) from None
    if not out:
        raise Invalid("channels: at least one of email, slack, line")
    return frozenset(out)


@router.post(
    "/firms/{firm_id}/notifications/grafana",
    name="notifications.grafana",
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[authorize("notifications.grafana")],
)
def grafana_webhook(
    firm_id: FirmIdPath,
    body: GrafanaWebhook,
    session: SessionDep,
    channels: Annotated[
        str, Query(max_length=40, description="Comma-separated: email, slack, line.")
    ] = "line",
) -> WebhookAccepted:
    """Forward a Grafana notification as a short text to the firm's own targets.

    Delivered after the response; outcomes in ``.../notifications/deliveries``.
    """
    chosen = _channels(channels)
    alerts = [
        AlertLine(
            status=a.status,
            name=a.labels.get("alertname", "alert"),
            summary=a.annotations.get("summary", "") or a.annotations.get("description", ""),
            labels=a.labels,
        )
        for a in body.alerts
    ]
    fingerprint: dict[str, Any] = {"status": body.status, "alerts": len(alerts)}
    enqueue(
        session,
        Notification(
            firm_id=firm_id,
            event="alert",
            reference=f"grafana {fingerprint['status']} ({fingerprint['alerts']} alerts)",
            texts=alert_texts(status=body.status, alerts=alerts, title=body.title),
            channels=chosen,
        ),
    )
    return WebhookAccepted(alerts=len(alerts), channels=sorted(chosen))
