"""Per-firm notification settings and the delivery log.

:class:`NotificationSettings` holds, for one firm, where its people are told about takeover
offers and answers and about Grafana alerts: e-mail addresses, a Slack incoming-webhook
URL, LINE push targets (user, group or room ids of the platform's LINE Official Account)
and the language of the texts. The Slack URL and an optional per-firm LINE channel access
token are secrets: the API accepts them but never returns them (only a masked form), and
nothing logs them. They are stored as given (the database is the platform's own; see
``cloud/notify/README.md``).

:class:`NotificationDelivery` is one attempt to tell one firm something on one channel:
what (``event``, ``reference``), where (``channel`` and a masked ``target``), the outcome
(``sent``/``failed``/``skipped``) and, when it failed, why (``reason``, without secrets).
The firm's operators list it; a failed notification never undoes the business action.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import DateTime, Enum, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from renkei.cloud.registry.models import ID, Base, _now, _values

__all__ = [
    "DeliveryStatus",
    "NotificationChannel",
    "NotificationDelivery",
    "NotificationSettings",
]


class NotificationChannel(enum.StrEnum):
    """Where a notification goes."""

    EMAIL = "email"
    SLACK = "slack"
    LINE = "line"


class DeliveryStatus(enum.StrEnum):
    """Outcome of one delivery attempt."""

    SENT = "sent"
    """Accepted by the SMTP server, Slack or the LINE platform."""
    FAILED = "failed"
    """Refused or unreachable after the retries; ``reason`` says why."""
    SKIPPED = "skipped"
    """Not attempted: the channel is not configured on the platform (e.g. no SMTP host)."""


class NotificationSettings(Base):
    """Where and in which language one firm is notified (one row per firm, optional)."""

    __tablename__ = "notification_settings"

    firm_id: Mapped[str] = mapped_column(
        ID, ForeignKey("firm.id", ondelete="CASCADE"), primary_key=True
    )
    language: Mapped[str] = mapped_column(String(2), default="ja")
    email_to: Mapped[list[str]] = mapped_column(default=list)
    slack_webhook_url: Mapped[str | None] = mapped_column(String(500), default=None)
    line_to: Mapped[list[str]] = mapped_column(default=list)
    line_channel_token: Mapped[str | None] = mapped_column(String(500), default=None)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class NotificationDelivery(Base):
    """One notification to one firm on one channel, and its outcome."""

    __tablename__ = "notification_delivery"
    __table_args__ = (Index("ix_notification_delivery_firm_at", "firm_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    firm_id: Mapped[str] = mapped_column(ID, ForeignKey("firm.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(32))
    reference: Mapped[str] = mapped_column(String(200), default="")
    channel: Mapped[NotificationChannel] = mapped_column(
        Enum(NotificationChannel, values_callable=_values, native_enum=False, length=16)
    )
    target: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[DeliveryStatus] = mapped_column(
        Enum(DeliveryStatus, values_callable=_values, native_enum=False, length=16)
    )
    reason: Mapped[str] = mapped_column(String(500), default="")
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
