"""CSV dialects and column maps for the three real datasets the replay source knows.

Each :class:`Preset` documents the quirks of its file and how the replay handles them.

SKAB (Katser & Kozitsin 2020, doi:10.34740/KAGGLE/DSV/1693952), ``skab/data/*/*.csv``:
    ``;``-separated, ``datetime`` ``YYYY-MM-DD HH:MM:SS``, ~1 Hz with ~5 % 2 s gaps and a
    few longer gaps. 8 signals; label column ``anomaly`` (0/1) in the anomalous runs, absent
    in ``anomaly-free.csv`` (labels are then ``None``). No missing values: a non-numeric cell
    is an error. Timestamps are strictly increasing (else an error).
NAB (Lavin & Ahmad 2015, arXiv:1510.03336), ``machine_temperature_system_failure.csv``:
    ``timestamp,value``, 5 min steps, one value (units not given upstream). Quirk: at
    2014-01-07 02:55 the clock steps back to 02:00 (an hour recorded twice with different
    values). Policy ``"shift"``: file order is kept and every row from the step on is moved
    +60 min so the step becomes 5 min. Labels: 1 inside the windows of
    ``<nab root>/labels/combined_windows.json`` (bounds inclusive, evaluated on the
    *original* timestamps); ``None`` if that file is absent. Non-numeric cells are errors.
Kassel CPC lower workpiece (West 2025, github.com/nikolaiwest/cpc-data, MIT),
    ``static_data.csv``: ``;``-separated with DECIMAL COMMAS, ``date`` ``DD.MM.YYYY`` +
    ``time``, one row per shot, rows in production order (``lower_workpiece_id`` = 1..7861).
    Quirks and their handling:

    - 2,874 rows have time ``00:00:00`` (exactly the rows whose curve ``file_name`` is
      ``Missing``): the time was not recorded. Sorting the raw stamps would move them to
      midnight, out of production order, so their time is imputed by linear interpolation in
      file order between the neighbouring recorded shots (the longest run, 1,607 overnight
      shots of reference_04, gets 37.2 s spacing = the normal cycle). After imputation the
      rows are stable-sorted by time, which equals file order; no duplicates remain.
    - ``weight`` 0 means "not weighed" (2,853 rows) -> NaN.
    - 32 rows have empty cells in t4052, t4015, V4065, p4055, p4072, t4018, V4062, t4012
      -> NaN (empty cells are the only accepted missing-value marker).
    - Labels from ``class_value``: 0 for ``reference_*``, else the deviation family code of
      :data:`KASSEL_CLASS_CODES`. An unknown family is an error.

    Fields keep the vendor codes plus a unit suffix: set-points ``T801_C`` … ``T837_C``,
    actual values (vendor suffix ``I`` = "Istwert") ``T801I_C`` …; ``t*`` -> ``_s``,
    ``V*`` -> ``_cm3``, ``Q*`` -> ``_cm3_s``, ``p*`` -> ``_bar``; ``weight_g``;
    ``lower_workpiece_id`` (production counter). Semantics of the codes are not documented
    upstream (see ``molding/SOURCE.md``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from renkei.edge.sources.base import SourceError, Stream
from renkei.edge.sources.csv_table import CsvTable
from renkei.edge.sources.timefix import TimeRepair

__all__ = [
    "KASSEL_CLASS_CODES",
    "PRESETS",
    "Preset",
    "PresetName",
    "nab_window_labels",
    "parse_labels",
]

PresetName = Literal["skab", "nab", "kassel"]

#: Stable label codes of the Kassel CPC ``class_value`` families (0 = reference runs).
KASSEL_CLASS_CODES: Final[Mapping[str, int]] = MappingProxyType(
    {
        "reference": 0,
        "cooling_time": 1,
        "injection_velocity": 2,
        "switching_point": 3,
        "mold_temperature": 4,
        "glass_fiber_content": 5,
    }
)
_KASSEL_CLASS_RE: Final = re.compile(r"^([a-z_]+?)(?:_\d+)+$")


@dataclass(frozen=True, slots=True)
class Preset:
    """How to read one known dataset file. See the module docstring for each file's quirks.

    Attributes:
        stream: stream the rows belong to.
        delimiter, decimal: CSV dialect.
        time_columns, time_format: timestamp columns (joined by a space) and strptime format.
        columns: CSV column -> field name (insertion order = field order).
        units: field name -> unit.
        label_column: label column, or None.
        label_optional: a file without ``label_column`` is accepted (labels ``None``).
        label_codes: maps label strings to codes (None: the cells are numeric codes).
        missing_values: cell strings read as NaN (empty set: any non-number is an error).
        zero_is_missing: CSV columns where 0 means "no reading" (-> NaN).
        unknown_time: ``(column, value)``: rows whose cell equals value have no valid time.
        time_repair: policy of :func:`renkei.edge.sources.timefix.make_increasing`.
        nab_labels: read labels from NAB's ``combined_windows.json``.
    """

    stream: Stream
    delimiter: str
    decimal: str
    time_columns: tuple[str, ...]
    time_format: str
    columns: Mapping[str, str]
    units: Mapping[str, str]
    label_column: str | None = None
    label_optional: bool = False
    label_codes: Mapping[str, int] | None = None
    missing_values: frozenset[str] = frozenset()
    zero_is_missing: frozenset[str] = frozenset()
    unknown_time: tuple[str, str] | None = None
    time_repair: TimeRepair = "error"
    nab_labels: bool = False


_SKAB_COLUMNS: Final = {
    "Accelerometer1RMS": ("accel1_rms_g", "g_n"),
    "Accelerometer2RMS": ("accel2_rms_g", "g_n"),
    "Current": ("current_A", "A"),
    "Pressure": ("pressure_bar", "bar"),
    "Temperature": ("temperature_C", "°C"),  # motor body temperature
    "Thermocouple": ("thermocouple_C", "°C"),  # fluid temperature
    "Voltage": ("voltage_V", "V"),
    "Volume Flow RateRMS": ("flow_rate_l_min", "L/min"),
}

_KASSEL_SETPOINTS: Final = tuple(f"T{n}" for n in (*range(801, 807), *range(831, 838)))
_KASSEL_ACTUALS: Final = tuple(f"{c}I" for c in _KASSEL_SETPOINTS)
_KASSEL_PARAMS: Final = (
    "t4052",
    "V403",
    "V301I",
    "t4015",
    "Q304",
    "Q305",
    "V304",
    "V305",
    "V4065",
    "p4055",
    "p4072",
    "t4018",
    "Q311",
    "Q312",
    "Q313",
    "p311",
    "p312",
    "p313",
    "t311",
    "t312",
    "t313",
    "V4062",
    "t4012",
    "t007",
)
_KASSEL_UNIT: Final = {
    "T": ("C", "°C"),
    "t": ("s", "s"),
    "V": ("cm3", "cm³"),
    "Q": ("cm3_s", "cm³/s"),
    "p": ("bar", "bar"),
}


def _kassel_columns() -> dict[str, tuple[str, str]]:
    cols: dict[str, tuple[str, str]] = {"lower_workpiece_id": ("lower_workpiece_id", "")}
    for code in (*_KASSEL_SETPOINTS, *_KASSEL_ACTUALS, *_KASSEL_PARAMS):
        suffix, unit = _KASSEL_UNIT[code[0]]
        cols[code] = (f"{code}_{suffix}", unit)
    cols["weight"] = ("weight_g", "g")
    return cols


_KASSEL_COLUMNS: Final = _kassel_columns()
_NAB_COLUMNS: Final = {"value": ("machine_temperature", "")}


def _columns(cols: Mapping[str, tuple[str, str]]) -> Mapping[str, str]:
    return MappingProxyType({c: f for c, (f, _) in cols.items()})


def _units(cols: Mapping[str, tuple[str, str]]) -> Mapping[str, str]:
    return MappingProxyType({f: u for f, u in cols.values()})


PRESETS: Final[Mapping[PresetName, Preset]] = MappingProxyType(
    {
        "skab": Preset(
            stream="slow",
            columns=_columns(_SKAB_COLUMNS),
            units=_units(_SKAB_COLUMNS),
            delimiter=";",
            decimal=".",
            time_columns=("datetime",),
            time_format="%Y-%m-%d %H:%M:%S",
            label_column="anomaly",
            label_optional=True,
        ),
        "nab": Preset(
            stream="slow",
            columns=_columns(_NAB_COLUMNS),
            units=_units(_NAB_COLUMNS),
            delimiter=",",
            decimal=".",
            time_columns=("timestamp",),
            time_format="%Y-%m-%d %H:%M:%S",
            time_repair="shift",
            nab_labels=True,
        ),
        "kassel": Preset(
            stream="shot",
            columns=_columns(_KASSEL_COLUMNS),
            units=_units(_KASSEL_COLUMNS),
            delimiter=";",
            decimal=",",
            time_columns=("date", "time"),
            time_format="%d.%m.%Y %H:%M:%S",
            label_column="class_value",
            label_codes=KASSEL_CLASS_CODES,
            missing_values=frozenset({""}),
            zero_is_missing=frozenset({"weight"}),
            unknown_time=("time", "00:00:00"),
        ),
    }
)


def parse_labels(
    table: CsvTable, column: str, codes: Mapping[str, int] | None
) -> npt.NDArray[np.int16]:
    """Label codes of ``column``, int16 ``(len(table),)``.

    With ``codes`` (Kassel), a cell ``family`` or ``family_<digits>[_<digits>…]`` maps to
    ``codes[family]``. Without, cells must be integral numbers (``"1"``, ``"1.0"``).

    Raises:
        SourceError: naming file, line, column and value for an unknown family or a
            non-integral / out-of-range number.
    """
    cells = table.strings(column)
    out = np.empty(len(cells), dtype=np.int16)
    for i, cell in enumerate(cells):
        code: int | None = None
        if codes is not None:
            m = _KASSEL_CLASS_RE.match(cell)
            code = codes.get(m.group(1) if m else cell)
            expected = f"one of the families {sorted(codes)} with optional _<number> suffixes"
        else:
            expected = "an integer label code (0 = normal)"
            try:
                value = float(cell)
            except ValueError:
                value = float("nan")
            if value.is_integer() and -32768 <= value <= 32767:
                code = int(value)
        if code is None:
            raise SourceError(
                f"{table.path}: line {table.line_numbers[i]}, column {column!r}: "
                f"label {cell!r} is not {expected}"
            )
        out[i] = code
    return out


def nab_window_labels(path: Path, t_ms: npt.NDArray[np.int64]) -> npt.NDArray[np.int16] | None:
    """NAB labels for ``path``: 1 where ``t_ms`` lies in a window (inclusive), else 0.

    Looks for ``<nab root>/labels/combined_windows.json`` with ``path`` at
    ``<nab root>/data/<folder>/<file>.csv`` and key ``"<folder>/<file>.csv"``.

    Returns:
        int16 ``(n,)`` labels, or ``None`` if the JSON file or the key is absent.

    Raises:
        SourceError: if the JSON file exists but cannot be parsed.
    """
    windows_path = path.resolve().parents[2] / "labels" / "combined_windows.json"
    if not windows_path.is_file():
        return None
    key = f"{path.parent.name}/{path.name}"
    try:
        windows = json.loads(windows_path.read_text(encoding="utf-8")).get(key)
        if windows is None:
            return None
        bounds = np.array(
            [[np.datetime64(s.replace(" ", "T"), "ms") for s in w] for w in windows],
            dtype="datetime64[ms]",
        ).astype(np.int64)
    except (ValueError, TypeError, AttributeError) as exc:
        raise SourceError(
            f"{windows_path}: cannot read windows for {key!r}: expected "
            f"[[start, end], ...] timestamps ({exc})"
        ) from exc
    labels = np.zeros(t_ms.size, dtype=np.int16)
    for start, end in bounds.reshape(-1, 2):
        labels[(t_ms >= start) & (t_ms <= end)] = 1
    return labels
