"""Grafana contact points and notification policies as code.

``provisioning/alerting/renkei-notifications.yaml`` (mounted by default): one contact
point ``renkei`` whose webhook calls Renkei's API,
``POST ${RENKEI_API_URL}/api/v1/firms/${RENKEI_ALERT_FIRM_ID}/notifications/grafana``
(``?channels=line,email,slack``) with ``Authorization: Bearer ${RENKEI_ALERT_API_KEY}``
(a key of that firm; engineer or operator role). Renkei sends the alert text to the
channels in the firm's own notification settings (LINE Messaging API push, e-mail,
Slack) in the firm's language: LINE Notify, Grafana's old LINE integration, shut down on 2025-03-31.

``provisioning-direct/alerting/renkei-notifications.yaml`` (an alternative, not mounted):
Grafana itself sends e-mail (SMTP from Grafana's ``GF_SMTP_*`` settings; the password as
``GF_SMTP_PASSWORD__FILE``) to ``${RENKEI_ALERT_EMAILS}`` and posts to the Slack webhook
``${RENKEI_ALERT_SLACK_WEBHOOK_URL}``; the webhook to Renkei then carries LINE only. Use it
*instead of* the default file (one policy tree per organisation).

Secrets are never in these files: Grafana expands the ``${VAR}`` references from its
environment when it provisions them.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = ["CONTACT_POINT", "contact_points", "policies", "provisioning"]

CONTACT_POINT: Final = "renkei"

_WEBHOOK_URL: Final = (
    "${RENKEI_API_URL}/api/v1/firms/${RENKEI_ALERT_FIRM_ID}/notifications/grafana?channels="
)


def _webhook(channels: str) -> dict[str, Any]:
    return {
        "uid": f"renkei-webhook-{channels.replace(',', '-')}",
        "type": "webhook",
        "disableResolveMessage": False,
        "settings": {
            "url": _WEBHOOK_URL + channels,
            "httpMethod": "POST",
            "authorization_scheme": "Bearer",
            "authorization_credentials": "${RENKEI_ALERT_API_KEY}",
            "maxAlerts": 50,
        },
    }


def contact_points(*, direct: bool = False) -> list[dict[str, Any]]:
    """The ``contactPoints`` list; ``direct``: Grafana sends e-mail and Slack itself."""
    if not direct:
        receivers = [_webhook("line,email,slack")]
    else:
        receivers = [
            {
                "uid": "renkei-email",
                "type": "email",
                "disableResolveMessage": False,
                "settings": {"addresses": "${RENKEI_ALERT_EMAILS}", "singleEmail": True},
            },
            {
                "uid": "renkei-slack",
                "type": "slack",
                "disableResolveMessage": False,
                "settings": {"url": "${RENKEI_ALERT_SLACK_WEBHOOK_URL}"},
            },
            _webhook("line"),
        ]
    return [{"orgId": 1, "name": CONTACT_POINT, "receivers": receivers}]


def policies() -> list[dict[str, Any]]:
    """The notification policy tree: everything to :data:`CONTACT_POINT`, critical alerts
    sooner and repeated more often than warnings."""
    return [
        {
            "orgId": 1,
            "receiver": CONTACT_POINT,
            "group_by": ["grafana_folder", "alertname"],
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": "4h",
            "routes": [
                {
                    "receiver": CONTACT_POINT,
                    "object_matchers": [["severity", "=", "critical"]],
                    "group_wait": "10s",
                    "repeat_interval": "1h",
                },
                {
                    "receiver": CONTACT_POINT,
                    "object_matchers": [["severity", "=", "warning"]],
                    "repeat_interval": "12h",
                },
            ],
        }
    ]


def provisioning(*, direct: bool = False) -> dict[str, Any]:
    """The whole provisioning document."""
    return {
        "apiVersion": 1,
        "contactPoints": contact_points(direct=direct),
        "policies": policies(),
    }
