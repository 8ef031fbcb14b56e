"""Common types for every data source of the edge gateway.

A *source* turns something (a recorded CSV, a simulator, later a fieldbus) into a time-ordered
stream of :class:`SampleBlock` objects, stamped in *data time*. Sources never sleep: pacing a
replay to the wall clock is the caller's job, using the timestamps the blocks carry.

Streams:

- ``"slow"``: process values sampled at a low rate (≤ 1 kHz); one timestamp per row.
- ``"shot"``: one row per machine cycle (injection-molding shot, press stroke).
- ``"vibration"``: a fixed-rate waveform. Millisecond stamps cannot resolve samples at
  5-50 kHz, so a vibration block carries a *single* timestamp ``t_ms[0]`` (first sample) and
  ``sample_rate_hz``; sample ``i`` is at ``t_ms[0] + i * 1000 / sample_rate_hz`` ms.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal, Protocol

import numpy as np
import numpy.typing as npt

from renkei.core.errors import RenkeiError
from renkei.core.wire import reserved_name_problem

__all__ = [
    "FIELD_NAME_RE",
    "STREAMS",
    "SampleBlock",
    "Source",
    "SourceError",
    "Stream",
    "check_field_name",
    "field_matrix",
]

Stream = Literal["slow", "vibration", "shot"]
STREAMS: Final[tuple[Stream, ...]] = ("slow", "vibration", "shot")

#: Field names become InfluxDB field keys and wire-payload keys (see ``renkei.core.wire``).
FIELD_NAME_RE: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class SourceError(RenkeiError, ValueError):
    """Bad input data or configuration of a source.

    The message always names the offending file / column / value and what was expected.
    A missing file raises :class:`SourceFileNotFoundError`, which is also a
    :class:`FileNotFoundError`.
    """


class SourceFileNotFoundError(SourceError, FileNotFoundError):
    """The file a source was asked to read does not exist."""


#: Field-name tuples of blocks already checked (bounded; cleared when full).
_CHECKED_KEYS: set[tuple[str, ...]] = set()
_MAX_CHECKED_KEYS: Final = 256


@functools.lru_cache(maxsize=4096)
def _is_valid_field_name(name: str) -> bool:
    return FIELD_NAME_RE.match(name) is not None and reserved_name_problem(name) is None


def check_field_name(name: str) -> str:
    """Return ``name`` if it matches :data:`FIELD_NAME_RE` and is not reserved
    (:func:`renkei.core.wire.reserved_name_problem`: a tag key such as ``firm``, ``time``, or a
    name starting with ``_``), else raise :class:`SourceError`."""
    if not _is_valid_field_name(name):
        problem = reserved_name_problem(name)
        if problem is not None:
            raise SourceError(f"field name {name!r} is reserved: {problem}")
        raise SourceError(
            f"field name {name!r} is invalid: expected 1-64 characters matching "
            f"{FIELD_NAME_RE.pattern}"
        )
    return name


@dataclass(frozen=True, slots=True)
class SampleBlock:
    """A chunk of samples of one stream, in data time.

    Attributes:
        stream: ``"slow"``, ``"vibration"`` or ``"shot"``.
        t_ms: int64 UTC epoch milliseconds. Shape ``(n,)``, strictly increasing, for ``slow``
            and ``shot``; shape ``(1,)`` (time of the first sample) for ``vibration``.
        fields: field name -> float64 array of shape ``(n,)``; NaN = missing reading.
        labels: int16 ``(n,)`` ground-truth fault code per sample (0 = normal), or ``None``.
        sample_rate_hz: sampling rate of a ``vibration`` block; ``None`` for other streams.

    Raises:
        SourceError: on inconsistent shapes/dtypes, a non-increasing ``t_ms``, a bad field
            name, or a ``sample_rate_hz`` that does not match the stream.
    """

    stream: Stream
    t_ms: IntArray
    fields: dict[str, FloatArray]
    labels: npt.NDArray[np.int16] | None
    sample_rate_hz: float | None
    matrix: FloatArray | None = None
    """Optional: the fields stacked in ``fields`` order, shape ``(len(fields), n)``, when
    the source built them as rows of one array (a live source's 5,000 signals): consumers
    use it instead of stacking the columns again (:func:`field_matrix`). With it, each
    ``fields`` value must be the matching row of the matrix (``dict(zip(names, matrix))``);
    only the matrix's dtype and shape are checked."""

    def __post_init__(self) -> None:
        if self.stream not in STREAMS:
            raise SourceError(f"stream {self.stream!r} is not one of {STREAMS}")
        if self.t_ms.dtype != np.int64 or self.t_ms.ndim != 1:
            raise SourceError(
                f"t_ms must be a 1-D int64 array, got {self.t_ms.dtype} "
                f"with shape {self.t_ms.shape}"
            )
        waveform = self.stream == "vibration"
        if waveform != (self.sample_rate_hz is not None):
            raise SourceError(
                f"sample_rate_hz must be set for 'vibration' blocks and None otherwise "
                f"(stream {self.stream!r}, sample_rate_hz={self.sample_rate_hz!r})"
            )
        if waveform:
            if self.t_ms.shape != (1,):
                raise SourceError(
                    f"a vibration block has t_ms of shape (1,), got {self.t_ms.shape}"
                )
            if self.sample_rate_hz is None or not self.sample_rate_hz > 0:
                raise SourceError(f"sample_rate_hz must be > 0, got {self.sample_rate_hz!r}")
        elif self.t_ms.size > 1 and not bool(np.all(np.diff(self.t_ms) > 0)):
            raise SourceError("t_ms must be strictly increasing within a block")
        n = self.n_samples
        keys = tuple(self.fields)
        if keys not in _CHECKED_KEYS:  # a live source sends the same 5,000 names each block
            for name in keys:
                check_field_name(name)
            if len(_CHECKED_KEYS) >= _MAX_CHECKED_KEYS:
                _CHECKED_KEYS.clear()
            _CHECKED_KEYS.add(keys)
        if self.matrix is not None:
            # the fields are the matrix's rows (one check instead of one per field)
            if self.matrix.dtype != np.float64 or self.matrix.shape != (len(keys), n):
                raise SourceError(
                    f"matrix must be float64 of shape ({len(keys)}, {n}), got "
                    f"{self.matrix.dtype} {self.matrix.shape}"
                )
        else:
            shape = (n,)
            for name, values in self.fields.items():
                if values.dtype != np.float64 or values.shape != shape:
                    raise SourceError(
                        f"field {name!r} must be float64 of shape ({n},), got "
                        f"{values.dtype} {values.shape}"
                    )
        if self.labels is not None and (self.labels.dtype != np.int16 or self.labels.shape != (n,)):
            raise SourceError(
                f"labels must be int16 of shape ({n},), got {self.labels.dtype} {self.labels.shape}"
            )

    @property
    def n_samples(self) -> int:
        """Number of samples (rows) in the block."""
        if self.stream == "vibration":
            return int(next(iter(self.fields.values())).shape[0]) if self.fields else 0
        return int(self.t_ms.shape[0])

    @property
    def end_ms(self) -> float:
        """Data time at which the block is complete, in epoch ms.

        The last row's timestamp for ``slow``/``shot``; for ``vibration`` the time just after
        the last sample, ``t_ms[0] + n * 1000 / sample_rate_hz`` (a float, may be fractional).
        """
        if self.stream == "vibration":
            assert self.sample_rate_hz is not None
            return float(self.t_ms[0]) + self.n_samples * 1000.0 / self.sample_rate_hz
        return float(self.t_ms[-1])


class Source(Protocol):
    """Anything that yields :class:`SampleBlock` objects in data-time order."""

    def blocks(self) -> Iterator[SampleBlock]:
        """Yield blocks in time order, stamped in data time. Never sleeps."""
        ...

    @property
    def fields(self) -> Mapping[str, str]:
        """Field name -> unit (``""`` when dimensionless or unknown)."""
        ...


def field_matrix(block: SampleBlock, names: Sequence[str] | None = None) -> FloatArray:
    """The block's fields as one ``(len(names), n)`` float64 array, rows in ``names`` order
    (default: the block's own order); a missing field is a row of NaN. Uses
    :attr:`SampleBlock.matrix` without copying when the order matches."""
    order = tuple(block.fields) if names is None else tuple(names)
    if block.matrix is not None and order == tuple(block.fields):
        return block.matrix
    n = block.n_samples
    if not order:
        return np.empty((0, n))
    return np.vstack([block.fields[f] if f in block.fields else np.full(n, np.nan) for f in order])
