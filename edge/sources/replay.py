"""Replay a recorded CSV file as live data (SKAB, NAB, Kassel CPC presets or any CSV).

The whole file is parsed when the source is built, so every data error surfaces before the
first block; :meth:`ReplaySource.blocks` then only slices arrays (no sleeping: the caller
paces by the data timestamps).

Timestamps:
    ``"rebase"``: ``t = start_ms + round((t_orig - t_first) / speed)``; ``start_ms``
    defaults to the wall clock when iteration starts. With ``loop=True`` every pass continues
    the timeline: pass ``k`` is offset by ``k * round((t_last - t_first + step) / speed)``
    where ``step`` is the median row step, so the first row of a pass follows the last row
    of the previous one by one step.
    ``"keep"``: the file's timestamps, read as UTC (after the preset's repairs, see
    :mod:`renkei.edge.sources.presets`). With ``loop=True`` pass ``k`` is shifted by
    ``k * (t_last - t_first + step)`` so time keeps increasing. ``keep`` cannot be combined
    with ``speed`` or ``start_ms``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Literal

import numpy as np
import numpy.typing as npt

from renkei.core.wire import reserved_name_problem
from renkei.edge.sources.base import SampleBlock, SourceError, Stream, check_field_name
from renkei.edge.sources.csv_table import CsvTable, read_csv_table
from renkei.edge.sources.presets import PRESETS, Preset, PresetName, nab_window_labels, parse_labels
from renkei.edge.sources.timefix import (
    TimeRepair,
    impute_unknown_times,
    make_increasing,
    median_step_ms,
)

__all__ = ["ReplayOptions", "ReplaySource", "sanitize_field_name"]

_ISO = "%Y-%m-%d %H:%M:%S"


def sanitize_field_name(column: str) -> str:
    """Turn a CSV header into a valid field name: ``"Volume Flow"`` -> ``"Volume_Flow"``.

    Characters outside ``[A-Za-z0-9_]`` become ``_``; a name starting with a digit or
    ``_`` gets an ``f`` prefix and a reserved name (a tag key such as ``machine``, or
    ``time``, :func:`renkei.core.wire.reserved_name_problem`) a ``_`` suffix; the result is cut
    to 64 characters.
    """
    name = re.sub(r"[^A-Za-z0-9_]", "_", column.strip()) or "_"
    if name[0].isdigit() or name[0] == "_":
        name = "f" + name
    name = name[:64]
    if reserved_name_problem(name) is not None:
        name = name[:63] + "_"
    return name


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplayOptions:
    """What to replay and how. ``None`` means "the preset's setting" (or the generic default).

    Attributes:
        path: CSV file.
        preset: ``"skab"``, ``"nab"``, ``"kassel"`` or ``None`` for a generic CSV.
        stream: ``"slow"`` or ``"shot"`` (generic default ``"slow"``).
        delimiter: cell separator (generic default ``","``).
        decimal: decimal separator (generic default ``"."``).
        time_columns: timestamp column(s), joined by a space before parsing (required
            without a preset).
        time_format: ``strptime`` format (generic default ``%Y-%m-%d %H:%M:%S``); UTC.
        columns: CSV column -> field name. Generic default: every column except the time
            and label columns, names made valid with :func:`sanitize_field_name`.
        units: field name -> unit (generic default ``""``).
        label_column: column of integer label codes (generic default: none).
        use_labels: ``False`` ignores the label column (labels ``None``).
        missing_values: cells read as NaN (generic default: none, so any non-number errors).
        time_repair: ``"error"``, ``"sort"`` or ``"shift"``, see
            :func:`renkei.edge.sources.timefix.make_increasing` (generic default ``"error"``).
        speed: replay speed factor for ``"rebase"`` (2.0 = twice as fast); > 0.
        timestamps: ``"rebase"`` or ``"keep"``.
        start_ms: epoch ms of the first row in ``"rebase"`` mode (default: now).
        loop: restart at the end, forever (later passes continue the timeline).
        block_rows: rows per yielded block (the last block of a pass may be shorter).

    Raises:
        SourceError: (from ``__post_init__``) on inconsistent settings.
    """

    path: Path
    preset: PresetName | None = None
    stream: Stream | None = None
    delimiter: str | None = None
    decimal: str | None = None
    time_columns: tuple[str, ...] | None = None
    time_format: str | None = None
    columns: Mapping[str, str] | None = None
    units: Mapping[str, str] | None = None
    label_column: str | None = None
    use_labels: bool = True
    missing_values: frozenset[str] | None = None
    time_repair: TimeRepair | None = None
    speed: float = 1.0
    timestamps: Literal["rebase", "keep"] = "rebase"
    start_ms: int | None = None
    loop: bool = False
    block_rows: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))
        if self.preset is not None and self.preset not in PRESETS:
            raise SourceError(
                f"unknown preset {self.preset!r}; expected one of {sorted(PRESETS)} or None"
            )
        if self.preset is None and not self.time_columns:
            raise SourceError(f"{self.path}: time_columns is required without a preset")
        if self.stream == "vibration":
            raise SourceError("replay supports the 'slow' and 'shot' streams, not 'vibration'")
        if not (np.isfinite(self.speed) and self.speed > 0):
            raise SourceError(f"speed must be a finite number > 0, got {self.speed!r}")
        if self.block_rows < 1:
            raise SourceError(f"block_rows must be >= 1, got {self.block_rows!r}")
        if self.timestamps not in ("rebase", "keep"):
            raise SourceError(f"timestamps must be 'rebase' or 'keep', got {self.timestamps!r}")
        if self.timestamps == "keep" and (self.speed != 1.0 or self.start_ms is not None):
            raise SourceError(
                "timestamps='keep' replays the file's own times: speed and "
                "start_ms need timestamps='rebase'"
            )


@dataclass(frozen=True, slots=True)
class _Recording:
    t_ms: npt.NDArray[np.int64]
    fields: dict[str, npt.NDArray[np.float64]]
    labels: npt.NDArray[np.int16] | None


def _resolve(opts: ReplayOptions) -> Preset:
    """Merge the options over the preset (or the generic defaults) into one Preset."""
    base = PRESETS[opts.preset] if opts.preset is not None else None
    label_column = opts.label_column or (base.label_column if base else None)
    return Preset(
        stream=opts.stream or (base.stream if base else "slow"),
        delimiter=opts.delimiter or (base.delimiter if base else ","),
        decimal=opts.decimal or (base.decimal if base else "."),
        time_columns=opts.time_columns or (base.time_columns if base else ()),
        time_format=opts.time_format or (base.time_format if base else _ISO),
        columns=opts.columns if opts.columns is not None else (base.columns if base else {}),
        units=opts.units if opts.units is not None else (base.units if base else {}),
        label_column=label_column if opts.use_labels else None,
        label_optional=(base.label_optional if base and opts.label_column is None else False),
        label_codes=base.label_codes if base else None,
        missing_values=(
            opts.missing_values
            if opts.missing_values is not None
            else (base.missing_values if base else frozenset())
        ),
        zero_is_missing=base.zero_is_missing if base else frozenset(),
        unknown_time=base.unknown_time if base else None,
        time_repair=opts.time_repair or (base.time_repair if base else "error"),
        nab_labels=bool(base and base.nab_labels and opts.use_labels),
    )


def _default_columns(table: CsvTable, spec: Preset) -> dict[str, str]:
    skip = {*spec.time_columns, spec.label_column}
    return {c: sanitize_field_name(c) for c in table.header if c not in skip}


def _load(path: Path, spec: Preset) -> _Recording:
    table = read_csv_table(path, delimiter=spec.delimiter)
    t_ms = table.epoch_ms(spec.time_columns, spec.time_format)
    if spec.unknown_time is not None:
        column, marker = spec.unknown_time
        unknown = np.array([s == marker for s in table.strings(column)], dtype=bool)
        t_ms = impute_unknown_times(t_ms, unknown, path=path)
    labels: npt.NDArray[np.int16] | None = None
    if spec.nab_labels:
        labels = nab_window_labels(path, t_ms)  # on the original (unrepaired) stamps
    elif spec.label_column and (table.has_column(spec.label_column) or not spec.label_optional):
        labels = parse_labels(table, spec.label_column, spec.label_codes)
    t_ms, order = make_increasing(
        t_ms, policy=spec.time_repair, path=path, line_numbers=table.line_numbers
    )
    columns = spec.columns or _default_columns(table, spec)
    fields: dict[str, npt.NDArray[np.float64]] = {}
    for column, name in columns.items():
        check_field_name(name)
        if name in fields:
            raise SourceError(f"{path}: field name {name!r} is used for two columns")
        values = table.floats(column, decimal=spec.decimal, missing=spec.missing_values)
        if column in spec.zero_is_missing:
            values[values == 0.0] = np.nan
        fields[name] = values[order]
        fields[name].setflags(write=False)
    t_ms.setflags(write=False)
    if labels is not None:
        labels = labels[order]
        labels.setflags(write=False)
    return _Recording(t_ms=t_ms, fields=fields, labels=labels)


class ReplaySource:
    """A :class:`~renkei.edge.sources.base.Source` that plays a recorded CSV file.

    Args:
        options: see :class:`ReplayOptions`.

    Raises:
        SourceFileNotFoundError: the file does not exist.
        SourceError: a missing column (names file, column, columns found), a bad cell
            (file, line, column, value), bad timestamps, or a speed so high that distinct
            rows would share a millisecond.
    """

    def __init__(self, options: ReplayOptions) -> None:
        self.options = options
        self._spec = _resolve(options)
        rec = _load(options.path, self._spec)
        if rec.t_ms.size == 0:
            raise SourceError(f"{options.path}: no data rows")
        self._rec = rec
        self._units = MappingProxyType(
            {name: self._spec.units.get(name, "") for name in rec.fields}
        )
        t0 = int(rec.t_ms[0])
        self._rel_ms = np.round((rec.t_ms - t0) / options.speed).astype(np.int64)
        if rec.t_ms.size > 1 and not bool(np.all(np.diff(self._rel_ms) > 0)):
            raise SourceError(
                f"{options.path}: speed {options.speed} maps distinct rows to "
                f"the same millisecond; use a lower speed"
            )
        span = int(rec.t_ms[-1]) - t0 + median_step_ms(rec.t_ms)
        self._period_ms = max(round(span / options.speed), int(self._rel_ms[-1]) + 1)

    @property
    def stream(self) -> Stream:
        """Stream of the yielded blocks (``"slow"`` or ``"shot"``)."""
        return self._spec.stream

    @property
    def fields(self) -> Mapping[str, str]:
        """Field name -> unit, in column order."""
        return self._units

    @property
    def n_rows(self) -> int:
        """Number of data rows in one pass."""
        return int(self._rec.t_ms.size)

    @property
    def recorded_t_ms(self) -> npt.NDArray[np.int64]:
        """(n,) read-only timestamps of the file after repair (what ``"keep"`` yields)."""
        return self._rec.t_ms

    @property
    def labels(self) -> npt.NDArray[np.int16] | None:
        """(n,) read-only label codes of one pass, or ``None``."""
        return self._rec.labels

    def blocks(self) -> Iterator[SampleBlock]:
        """Yield ``block_rows``-row blocks in time order (forever if ``loop``)."""
        opts, rec = self.options, self._rec
        if opts.timestamps == "keep":
            base, rel = 0, rec.t_ms
        else:
            base = opts.start_ms if opts.start_ms is not None else int(time.time() * 1000)
            rel = self._rel_ms
        n, step = rel.size, opts.block_rows
        offset = base
        while True:
            for i in range(0, n, step):
                j = min(i + step, n)
                yield SampleBlock(
                    stream=self._spec.stream,
                    t_ms=rel[i:j] + offset,
                    fields={name: v[i:j] for name, v in rec.fields.items()},
                    labels=None if rec.labels is None else rec.labels[i:j],
                    sample_rate_hz=None,
                )
            if not opts.loop:
                return
            offset += self._period_ms
