"""Per-shot features of a molding machine: the shot's values and deviations from normal.

For every numeric field ``f`` of a shot row:

- ``{f}``: the value itself (pass-through, units of ``f``);
- ``{f}_dev``: ``f`` minus an exponentially weighted moving average (EWMA) of the previous
  shots, ``ref <- ref + alpha * (f - ref)`` (units of ``f``). NaN for the first shot with a
  finite value and whenever ``f`` is NaN (NaN values do not update the reference).
  Counters listed in ``no_dev_fields`` (default ``shot_count``, ``lower_workpiece_id``) get
  no ``_dev``.

The EWMA (Roberts 1959; Montgomery, *Introduction to Statistical Quality Control*, ch. 9)
with the default ``alpha = 0.05`` remembers ~20 shots: it flags sudden shifts; a drift
slower than that is largely absorbed into the reference, so the pass-through values are
kept for the model.

Output order: all pass-through values (field order), then all ``_dev`` values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt

from renkei.edge.features.rows import FeatureRow
from renkei.edge.sources.base import SampleBlock, Stream

__all__ = ["ShotConfig", "ShotFeatures", "shot_feature_names"]

_MAX_NAME: Final = 64


@dataclass(frozen=True, slots=True)
class ShotConfig:
    """Settings of :class:`ShotFeatures`.

    Attributes:
        alpha: EWMA weight of the newest shot, in (0, 1].
        no_dev_fields: fields that get no ``_dev`` feature (counters, ids).
    """

    alpha: float = 0.05
    no_dev_fields: frozenset[str] = field(
        default_factory=lambda: frozenset({"shot_count", "lower_workpiece_id"})
    )

    def __post_init__(self) -> None:
        if not 0 < self.alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1], got {self.alpha!r}")


def shot_feature_names(fields: Iterable[str], config: ShotConfig = ShotConfig()) -> list[str]:
    """Feature names for shot ``fields``, in output order.

    Raises:
        ValueError: if a name would exceed 64 characters.
    """
    fields = list(fields)
    names = fields + [f"{f}_dev" for f in fields if f not in config.no_dev_fields]
    too_long = [n for n in names if len(n) > _MAX_NAME]
    if too_long:
        raise ValueError(f"feature names longer than {_MAX_NAME} characters: {too_long}")
    return names


class ShotFeatures:
    """:class:`~renkei.edge.features.rows.FeatureExtractor` for the ``shot`` stream (one row per
    shot).

    Args:
        fields: fields to use, in order (default: those of the first block).
        config: EWMA settings.

    Raises:
        ValueError: (from ``push``) for a block of another stream or one missing a field.
    """

    def __init__(
        self, fields: Sequence[str] | None = None, config: ShotConfig = ShotConfig()
    ) -> None:
        self._config = config
        self._fields: tuple[str, ...] | None = None
        if fields is not None:
            self._set_fields(fields)

    def _set_fields(self, fields: Sequence[str]) -> None:
        self._fields = tuple(fields)
        self._names = shot_feature_names(self._fields, self._config)
        self._dev_mask = np.array([f not in self._config.no_dev_fields for f in self._fields])
        self._ref = np.full(int(self._dev_mask.sum()), np.nan)

    @property
    def stream(self) -> Stream:
        """Always ``"shot"``."""
        return "shot"

    @property
    def feature_names(self) -> list[str] | None:
        """Output names, or ``None`` before the field set is known."""
        return None if self._fields is None else list(self._names)

    def update(self, values: Mapping[str, float]) -> dict[str, float]:
        """Features of one shot given as ``{field: value}`` (missing fields count as NaN).

        Same result as :meth:`push` of a one-row block; the field set is fixed by the first
        call (or ``fields``).
        """
        if self._fields is None:
            self._set_fields(list(values))
        assert self._fields is not None
        x = np.array([values.get(f, np.nan) for f in self._fields], dtype=np.float64)
        return dict(zip(self._names, self._step(x).tolist(), strict=True))

    def _step(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Features of one shot vector ``x`` (field order); updates the EWMA reference."""
        xd = x[self._dev_mask]
        dev = xd - self._ref
        ok = np.isfinite(xd)
        self._ref = np.where(
            ok, np.where(np.isnan(self._ref), xd, self._ref + self._config.alpha * dev), self._ref
        )
        return np.concatenate((x, dev))

    def push(self, block: SampleBlock) -> list[FeatureRow]:
        """One :class:`FeatureRow` per row of ``block`` (``t_ms`` = shot time)."""
        if block.stream != "shot":
            raise ValueError(f"ShotFeatures accepts 'shot' blocks, got {block.stream!r}")
        if self._fields is None:
            self._set_fields(list(block.fields))
        assert self._fields is not None
        missing = [f for f in self._fields if f not in block.fields]
        if missing:
            raise ValueError(f"shot block lacks fields {missing}; has {list(block.fields)}")
        values: npt.NDArray[np.float64] = np.vstack([block.fields[f] for f in self._fields])
        rows = []
        for j in range(values.shape[1]):
            feats = self._step(values[:, j])
            label = None if block.labels is None else int(block.labels[j])
            rows.append(
                FeatureRow(
                    int(block.t_ms[j]), dict(zip(self._names, feats.tolist(), strict=True)), label
                )
            )
        return rows

    def flush(self) -> list[FeatureRow]:
        """Shots are emitted immediately: nothing to flush."""
        return []
