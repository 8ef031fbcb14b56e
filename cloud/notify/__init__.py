"""Notifications: e-mail, Slack and LINE (Messaging API), per-firm channels and language.

- :mod:`.senders`: :class:`Notifier` and its three senders (SMTP, Slack webhook, LINE push).
- :mod:`.texts`: the ja/en texts (takeover offers and answers, Grafana alerts, the test message).
- :mod:`.dispatch`: delivery after commit on a thread pool, the delivery log.
- :mod:`.events`: the takeover hooks (``offered``, ``answered``).
- :mod:`.settings`: the platform's ``RENKEI_NOTIFY_*`` settings.

The per-firm settings and the delivery log are registry tables
(:mod:`renkei.cloud.registry.notifications`); the HTTP side is
``cloud/api/routers/notifications.py``.
"""

from renkei.cloud.notify.dispatch import Dispatcher, Notification, enqueue, install
from renkei.cloud.notify.errors import DeliveryFailed, NotifyError
from renkei.cloud.notify.events import answered, offered
from renkei.cloud.notify.senders import (
    LINE_TEXT_MAX,
    EmailNotifier,
    LineNotifier,
    Message,
    Notifier,
    SlackNotifier,
    mask,
)
from renkei.cloud.notify.settings import NotifySettings
from renkei.cloud.notify.texts import AlertLine, alert_texts, trial_texts

__all__ = [
    "LINE_TEXT_MAX",
    "AlertLine",
    "DeliveryFailed",
    "Dispatcher",
    "EmailNotifier",
    "LineNotifier",
    "Message",
    "Notification",
    "Notifier",
    "NotifyError",
    "NotifySettings",
    "SlackNotifier",
    "alert_texts",
    "answered",
    "enqueue",
    "install",
    "mask",
    "offered",
    "trial_texts",
]
