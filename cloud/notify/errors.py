"""Exceptions of :mod:`renkei.cloud.notify`, a branch of ``CloudError``.

``smtplib``, ``ssl``, ``OSError`` and ``httpx`` errors are mapped to :class:`DeliveryFailed`
where a sender calls them; its message never contains a secret (no webhook URL, token or
password), so it can be logged and stored as a delivery's ``reason``.
"""

from __future__ import annotations

from renkei.cloud._exceptions import CloudError

__all__ = ["DeliveryFailed", "NotifyError"]


class NotifyError(CloudError):
    """Base class of the notification errors."""


class DeliveryFailed(NotifyError):
    """One message could not be delivered to one target.

    Attributes:
        retryable: a later attempt may succeed (timeout, 5xx, 429).
    """

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable
