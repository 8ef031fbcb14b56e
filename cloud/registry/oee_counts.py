"""Good and reject part counts an operator recorded for one machine over an interval.

One :class:`OperatorCount` row is what a firm's operator counted for one of its machines
over the half-open interval ``[start, end)`` (aware UTC; at most
:data:`MAX_INTERVAL_S` long): ``good`` and ``reject`` parts (integers >= 0) and, optionally,
a reject reason code and a note. Entries of one machine never overlap (the API refuses an
overlapping one with 409 naming it; a correction replaces an entry by its id), so each
instant of a machine has at most one operator count.

Where a machine has an operator count for an interval, OEE quality of that interval comes
from it (basis ``operator``, :mod:`renkei.core.oee`; written to InfluxDB by
:mod:`renkei.cloud.oee.operator`). The rows are the firm's own: never shared with
partners, never part of capacity sharing; ``recorded_by`` names the API key that wrote
them (the change itself is also in the audit log).
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from renkei.cloud.registry.models import ID, Base, _now

__all__ = ["MAX_INTERVAL_S", "OperatorCount"]

MAX_INTERVAL_S: Final = 24 * 3600
"""Longest interval one entry may cover, s (one day: a shift or a day's total)."""


class OperatorCount(Base):
    """Good/reject parts of one machine over ``[start, end)`` counted by an operator."""

    __tablename__ = "operator_count"
    __table_args__ = (Index("ix_operator_count_machine_start", "machine_id", "start"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    firm_id: Mapped[str] = mapped_column(ID, ForeignKey("firm.id", ondelete="CASCADE"), index=True)
    machine_id: Mapped[str] = mapped_column(ID, ForeignKey("machine.id", ondelete="CASCADE"))
    start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    end: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    good: Mapped[int] = mapped_column(Integer)
    reject: Mapped[int] = mapped_column(Integer)
    reject_reason: Mapped[str | None] = mapped_column(String(32), default=None)
    note: Mapped[str] = mapped_column(String(500), default="")
    recorded_by: Mapped[str] = mapped_column(String(32), default="")
    """Key id of the API key that recorded (or last corrected) the entry."""
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
