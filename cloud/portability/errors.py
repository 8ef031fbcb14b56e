"""Exceptions of :mod:`renkei.cloud.portability` (all are
:class:`~renkei.cloud._exceptions.CloudError`)::

PortabilityError            export or import cannot proceed (firm not found, ...)
├── ArchiveError            the archive is not a valid, intact Renkei firm archive
├── ImportConflict          the firm (or one of its ids) already exists in the target
└── MissingPartners         --strict: rows reference firms absent from the target
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from renkei.cloud._exceptions import CloudError

__all__ = ["ArchiveError", "ImportConflict", "MissingPartners", "PortabilityError"]


class PortabilityError(CloudError):
    """An export or import cannot proceed; the message says why."""


class ArchiveError(PortabilityError):
    """The archive is unreadable, corrupted, tampered with or of an unknown format.

    Attributes:
        member: the archive member at fault (``None`` for the container itself).
    """

    def __init__(self, message: str, *, member: str | None = None) -> None:
        super().__init__(message)
        self.member = member


class ImportConflict(PortabilityError):
    """The target already holds the firm or some of the archive's ids.

    Attributes:
        conflicts: table (or ``InfluxDB measurements``) -> conflicting ids as text (for
            the firm's own rows, the first 10 of each table).
        replaceable: whether ``--replace`` resolves them (``False`` when an id belongs to
            another firm of the target: such rows are never overwritten).
    """

    def __init__(
        self, message: str, *, conflicts: Mapping[str, Sequence[str]], replaceable: bool
    ) -> None:
        super().__init__(message)
        self.conflicts = {k: list(v) for k, v in conflicts.items()}
        self.replaceable = replaceable


class MissingPartners(PortabilityError):
    """Rows reference firms that do not exist in the target (raised with ``strict``).

    Attributes:
        missing: firm id -> ``table[key]`` descriptions of the rows that need it.
    """

    def __init__(self, message: str, *, missing: Mapping[str, Sequence[str]]) -> None:
        super().__init__(message)
        self.missing = {k: list(v) for k, v in missing.items()}
