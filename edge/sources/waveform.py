"""Replay of a recorded vibration waveform (MATLAB ``.mat``) as a live ``vibration`` stream.

Made for the CWRU bearing records (Case Western Reserve University Bearing Data Center;
``../shared/datasets/bearing/cwru``, see its SOURCE.md): one ``.mat`` file per record with
the drive-end acceleration ``X<nnn>_DE_time`` (g) and the shaft speed ``X<nnn>RPM``. Any
``.mat`` file (MATLAB v4-v7.2, read by :func:`scipy.io.loadmat`) with a 1-D numeric
variable works.

Decimation (``decimate > 1``): the whole record is low-pass filtered and down-sampled once,
at load, with :func:`scipy.signal.decimate` (FIR, zero phase), exactly as the training
recipe :mod:`renkei.models.profiles.cwru` turns the 48 kHz normal record into 12 kHz, so the
gateway's windows hold the samples the model was evaluated on.

Time: the recording has no clock. Its first sample is at data time 0 (UTC epoch ms), so
the gateway's tumbling windows (multiples of ``window_s``) start on sample 0; the machine
pipeline re-bases data time to the wall clock when publishing. With ``loop=True`` pass
``k`` continues the timeline (from ``k * ceil(duration in ms)``), forever.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from renkei.edge.sources.base import SampleBlock, SourceError, SourceFileNotFoundError, Stream

__all__ = ["WaveformOptions", "WaveformSource", "load_mat_waveform"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True, kw_only=True)
class WaveformOptions:
    """Settings of :class:`WaveformSource`.

    Attributes:
        path: the ``.mat`` file.
        sample_rate_hz: sampling rate of the recording, Hz.
        variable: the waveform variable; default: the only ``*_DE_time`` variable (CWRU).
        field: field name of the stream (its feature prefix is the machine's
            ``vibration.prefix``).
        decimate: down-sampling factor q (1 = none); the stream rate is
            ``sample_rate_hz / q``.
        label: ground-truth fault code of every sample (0 = normal), or ``None``.
        block_s: length of one yielded block, s.
        loop: restart at the end, forever.
    """

    path: Path
    sample_rate_hz: float
    variable: str | None = None
    field: str = "accel_de_g"
    decimate: int = 1
    label: int | None = None
    block_s: float = 0.1
    loop: bool = False

    def __post_init__(self) -> None:
        if not self.sample_rate_hz > 0:
            raise SourceError(f"sample_rate_hz must be > 0, got {self.sample_rate_hz!r}")
        if not 1 <= self.decimate <= 64:
            raise SourceError(f"decimate must be in 1..64, got {self.decimate!r}")
        if not self.block_s > 0:
            raise SourceError(f"block_s must be > 0, got {self.block_s!r}")


def load_mat_waveform(path: Path, variable: str | None = None) -> FloatArray:
    """The 1-D waveform ``variable`` of a ``.mat`` file, float64.

    Raises:
        SourceFileNotFoundError: no such file.
        SourceError: unreadable file, no such variable (the message lists them), several
            ``*_DE_time`` candidates, or a variable that is not a non-empty finite vector.
    """
    from scipy.io import loadmat

    if not path.is_file():
        raise SourceFileNotFoundError(f"{path}: no such file")
    try:
        mat = loadmat(path)
    # scipy raises these for truncated / foreign files (IndexError for a short header)
    except (OSError, ValueError, NotImplementedError, IndexError, TypeError) as exc:
        raise SourceError(f"{path}: not a readable .mat file: {exc}") from None
    names = sorted(k for k in mat if not k.startswith("__"))
    if variable is None:
        found = [k for k in names if k.endswith("_DE_time")]
        if len(found) != 1:
            raise SourceError(
                f"{path}: expected exactly one *_DE_time variable, found {found}; set "
                f"'variable' to one of {names}"
            )
        variable = found[0]
    if variable not in mat:
        raise SourceError(f"{path}: no variable {variable!r}; it has {names}")
    raw = np.asarray(mat[variable])
    vector = raw.ndim <= 1 or max(raw.shape) == raw.size
    if raw.dtype.kind not in "fiu" or raw.size == 0 or not vector:
        raise SourceError(
            f"{path}: variable {variable!r} must be a non-empty numeric vector, got "
            f"{raw.dtype} {raw.shape}"
        )
    x = raw.astype(np.float64).ravel()
    if not np.all(np.isfinite(x)):
        raise SourceError(f"{path}: variable {variable!r} has NaN or infinite samples")
    return x


class WaveformSource:
    """Yields a ``.mat`` waveform as ``vibration`` blocks (see the module docstring).

    Args:
        options: file, rates, block length, label.

    Raises:
        SourceFileNotFoundError, SourceError: from :func:`load_mat_waveform`; a record
            shorter than one block after decimation.
    """

    def __init__(self, options: WaveformOptions) -> None:
        from scipy.signal import decimate

        self.options = options
        x = load_mat_waveform(options.path, options.variable)
        if options.decimate > 1:
            if x.size <= 27 * options.decimate:  # decimate()'s FIR filter needs this much
                raise SourceError(f"{options.path}: record too short to decimate")
            x = np.asarray(decimate(x, options.decimate, ftype="fir", zero_phase=True))
        self.samples: FloatArray = np.ascontiguousarray(x, dtype=np.float64)
        self.sample_rate_hz = options.sample_rate_hz / options.decimate
        self._block = max(1, round(options.block_s * self.sample_rate_hz))
        if self.samples.size < self._block:
            raise SourceError(
                f"{options.path}: {self.samples.size} samples, shorter than one block "
                f"({self._block})"
            )

    @property
    def stream(self) -> Stream:
        """Always ``vibration``."""
        return "vibration"

    @property
    def fields(self) -> Mapping[str, str]:
        """The one field and its unit (g)."""
        return {self.options.field: "g_n"}

    @property
    def duration_s(self) -> float:
        """Length of one pass, s."""
        return self.samples.size / self.sample_rate_hz

    def blocks(self) -> Iterator[SampleBlock]:
        """Yield blocks of ``block_s`` in time order (forever with ``loop``); the last
        block of a pass may be shorter."""
        n, fs, step = self.samples.size, self.sample_rate_hz, self._block
        label = self.options.label
        pass_ms = math.ceil(n * 1000.0 / fs)  # pass k starts at k * pass_ms (whole ms)
        passes = 0
        while True:
            for i in range(0, n, step):
                seg = self.samples[i : i + step]
                # a block's time is its first sample's, in whole ms (exact when block_s
                # holds a whole number of ms of samples, e.g. 1,200 samples at 12 kHz)
                t0 = passes * pass_ms + math.floor(i * 1000.0 / fs + 1e-9)
                yield SampleBlock(
                    stream="vibration",
                    t_ms=np.array([t0], dtype=np.int64),
                    fields={self.options.field: seg},
                    labels=None if label is None else np.full(seg.size, label, dtype=np.int16),
                    sample_rate_hz=fs,
                )
            passes += 1
            if not self.options.loop:
                return
