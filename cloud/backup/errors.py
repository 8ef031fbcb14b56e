"""The backup's one exception (a :class:`~renkei.cloud._exceptions.CloudError`)."""

from __future__ import annotations

from renkei.cloud._exceptions import CloudError

__all__ = ["BackupError"]


class BackupError(CloudError):
    """A backup or restore cannot proceed; the message names the file, table or tool."""
