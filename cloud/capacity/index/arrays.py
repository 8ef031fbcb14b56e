"""One immutable version of the capacity index: numpy arrays of machines and spare hours.

Per machine row: firm, site, capability class, calendar, availability ratio, the
compatibility attributes (kN, mm, g; ``NaN`` = not applicable) and a row of *booked
hours* per day (``float32``) in an append-only :class:`BookedStore`; per calendar:
scheduled hours per day; per firm: name, region and its live machine rows (CSR layout
``by_firm``/``firm_ptr``). Spare hours are computed on the fly for the rows a request
selects (:meth:`CapacityIndex.spare`). Built by :mod:`renkei.cloud.capacity.index.build`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Final

import numpy as np
import numpy.typing as npt

__all__ = [
    "ATTRIBUTES",
    "BookedStore",
    "BoolArray",
    "CapacityIndex",
    "FloatArray",
    "IntArray",
    "normalize_label",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: Machine attributes kept per row (units in the names); NaN where not applicable.
ATTRIBUTES: Final = (
    "clamp_force_kN",
    "tie_bar_h_mm",
    "tie_bar_v_mm",
    "min_mold_height_mm",
    "max_mold_height_mm",
    "shot_capacity_g",
    "locating_ring_mm",
)
_NORMALIZE = re.compile(r"[\s\-_]+")


def normalize_label(value: str) -> str:
    """Resin/certification label for matching: case-folded, without spaces, ``-``, ``_``.

    ``"IATF 16949"`` and ``"iatf16949"`` match, as do ``"PA66-GF30"`` and ``"pa66gf30"``.
    """
    return _NORMALIZE.sub("", value).casefold()


class BookedStore:
    """Append-only rows of booked hours per day (``float32``), shared by index versions.

    Rows are only ever appended (under the service lock), never overwritten, so an index
    object a request is reading stays consistent while a newer one is being made.
    """

    def __init__(self, rows: int, days: int) -> None:
        self.data = np.zeros((max(rows, 1024), days), dtype=np.float32)
        self.used = 0

    def append(self, block: npt.NDArray[np.float32]) -> IntArray | None:
        """Store ``block`` (k × days); its row numbers, or ``None`` when full."""
        k = block.shape[0]
        if self.used + k > self.data.shape[0]:
            return None
        self.data[self.used : self.used + k] = block
        rows = np.arange(self.used, self.used + k, dtype=np.int64)
        self.used += k
        return rows


@dataclass(frozen=True, eq=False, kw_only=True)
class CapacityIndex:
    """One immutable version of the index (see the module docstring).

    Row arrays are indexed by machine row; rows of replaced firms stay in the arrays with
    ``m_live`` false until the next full rebuild. ``by_firm[firm_ptr[f]:firm_ptr[f+1]]``
    are the live rows of firm position ``f``.

    Attributes:
        start: site-local date of column 0; days: number of columns.
        version: the :class:`ChangeLog` version it reflects.
        built_at, full_built_at: ``time.monotonic()`` of the last change and of the start of
            the last full build (what it read is at least that fresh).
        cal_hours: scheduled hours (h) per calendar row and day, shape (calendars, days).
    """

    start: date
    days: int
    version: int
    built_at: float
    full_built_at: float
    cal_hours: FloatArray
    cal_keys: Mapping[str, int]
    firm_ids: list[str]
    firm_names: list[str]
    firm_regions: list[str]
    firm_pos: Mapping[str, int]
    site_ids: list[str]
    site_firm: list[int]
    site_regions: list[str]
    site_resins: list[tuple[str, ...]]
    site_certs: list[tuple[str, ...]]
    site_resins_norm: list[str]
    """Normalised labels joined as ``|a|b|`` (strings and tuples of strings are not
    tracked by Python's cyclic GC, which keeps full collections short)."""
    site_certs_norm: list[str]
    site_pos: Mapping[str, int]
    class_ids: list[str]
    class_pos: Mapping[str, int]
    class_process: IntArray
    processes: list[str]
    machine_ids: list[str]
    machine_names: list[str]
    m_line: list[str]
    m_live: BoolArray
    m_firm: IntArray
    m_site: IntArray
    m_class: IntArray
    m_cal: IntArray
    m_row: IntArray
    m_ratio: FloatArray
    m_measured: BoolArray
    attrs: Mapping[str, FloatArray]
    by_firm: IntArray
    firm_ptr: IntArray
    store: BookedStore = field(repr=False)

    @property
    def live_machines(self) -> int:
        """Number of machines in the index."""
        return int(self.by_firm.shape[0])

    def column(self, day: date) -> int:
        """Column of site-local date ``day`` (may be outside ``0..days``)."""
        return (day - self.start).days

    def rows_of(self, firm_positions: IntArray) -> tuple[IntArray, IntArray]:
        """Live machine rows of the given firm positions, and the position index of each.

        Returns:
            ``(rows, owner)`` where ``owner[i]`` indexes ``firm_positions``.
        """
        lo = self.firm_ptr[firm_positions]
        lengths = self.firm_ptr[firm_positions + 1] - lo
        total = int(lengths.sum())
        if total == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        owner = np.repeat(np.arange(len(firm_positions), dtype=np.int64), lengths)
        ends = np.cumsum(lengths)
        offsets = np.arange(total, dtype=np.int64) - np.repeat(ends - lengths, lengths)
        return self.by_firm[np.repeat(lo, lengths) + offsets], owner

    def spare(self, rows: IntArray, lo: int, hi: int) -> FloatArray:
        """Spare hours of machine ``rows`` on day columns ``[lo, hi)``, shape (rows, hi-lo).

        ``max(0, available - booked - available × (1 - ratio))`` per row and day (hours).

        Raises:
            IndexError: columns outside ``0..days``.
        """
        if lo < 0 or hi > self.days or lo > hi:
            raise IndexError(f"columns [{lo}, {hi}) outside the index's 0..{self.days}")
        # available - booked - available * (1 - ratio) == available * ratio - booked
        spare = self.cal_hours[:, lo:hi][self.m_cal[rows]]
        spare *= self.m_ratio[rows][:, None]
        spare -= self.store.data[self.m_row[rows], lo:hi]
        np.maximum(spare, 0.0, out=spare)
        return spare

    def stats(self) -> dict[str, Any]:
        """Sizes for logs and the benchmark."""
        return {
            "machines": self.live_machines,
            "rows": len(self.machine_ids),
            "firms": len(self.firm_ids),
            "calendars": int(self.cal_hours.shape[0]),
            "classes": len(self.class_ids),
            "days": self.days,
            "booked_store_MB": round(self.store.data.nbytes / 1e6, 1),
        }
