"""The output type of every feature extractor and the extractor protocol."""

from __future__ import annotations

from typing import NamedTuple, Protocol

from renkei.edge.sources.base import SampleBlock, Stream

__all__ = ["FeatureExtractor", "FeatureRow"]


class FeatureRow(NamedTuple):
    """One feature vector.

    Attributes:
        t_ms: epoch ms the row refers to: the window end (exclusive) for windowed streams,
            the shot time for shots.
        values: feature name -> value (NaN = undefined); names are deterministic, see the
            ``*_feature_names`` functions.
        label: max ground-truth label code of the samples used, or ``None`` if unknown.
    """

    t_ms: int
    values: dict[str, float]
    label: int | None


class FeatureExtractor(Protocol):
    """Consumes the blocks of one stream and returns feature rows as they complete."""

    @property
    def stream(self) -> Stream:
        """The stream this extractor accepts."""
        ...

    def push(self, block: SampleBlock) -> list[FeatureRow]:
        """Add a block (time-ordered); return the rows completed by it (often none)."""
        ...

    def flush(self) -> list[FeatureRow]:
        """Return the rows of buffered, incomplete data (end of stream) and reset."""
        ...
