"""Streaming anomaly detector of one scalar signal, row by row, in pure Python (no training).

The gateway runs it as a model *input* (:mod:`renkei.edge.model.inputs`): the detector's
per-row anomaly score in [0, 1] is the ONNX model's input and the ONNX graph passes it
through (so signing, rollout and thresholds stay those of every other model). Parameters come
from the manifest's flat ``algorithm_params`` (``"stream_detector": kind`` and
``"stream_detector.<attribute>"``; :meth:`StreamDetectorConfig.from_params`).

Algorithm (``kind = "transition_novelty"``), in the spirit of the Contextual Anomaly Detector
(CAD OSE, M. Smirnov 2016, as in NAB github.com/numenta/NAB @ ea702d7): an anomaly is a value
that does not follow from its recent context in a coarse level code, and one detection is
followed by a rest period.

1. **Scale from the stream itself**: ``lo``, ``hi`` = min and max of the first
   ``range_rows`` rows (score 0 on them), frozen after; ``level = floor((x - lo) / step)``
   with ``step = (hi - lo) / (2**value_bits - 1)`` (levels outside ``[0, 2**value_bits)``
   are simply new levels).
2. For each context length ``k = 1 .. context_rows``: the context is the last ``k`` levels;
   counts of how often each context and each (context, level) transition were seen. The raw
   score is the fraction of *established* contexts (seen ≥ ``min_context`` times before)
   whose transition to the current level was never seen; 0 if no context is established.
   Then the counts learn the row.
3. **Rest**: a raw score ≥ ``base_threshold`` silences the output for the next ``rest_rows``
   rows (the raw scores keep being computed and learnt).

Algorithm ``kind = "cad_ose"``: CAD OSE itself (:mod:`renkei.edge.model.cad_ose`, indexed so
a row does not cross the whole context memory), on a scale fixed by a rule a gateway can
follow: ``lo``, ``hi`` = min and max of the first ``range_rows`` rows widened by
``range_margin · (hi - lo)`` on each side (values outside are clipped); those rows score 0 and
are then replayed into the detector (learnt, outputs discarded; the freeze row pays for that
once). ``value_bits``, ``base_threshold`` and ``rest_rows`` (the original's ``restPeriod``)
apply; ``context_rows``, ``min_context`` and ``max_transitions`` do not.

``cad_ose`` with ``replay_rows > 0`` (3.0.0's **growing scale**, a causal stand-in for NAB's
wrapper, whose scale is the whole file's min / max): after the first ``range_rows`` rows the
scale is the min / max of every row seen so far (widened by ``range_margin`` as above);
whenever a value leaves it by more than ``range_trigger`` × its span on either side, a new
CAD OSE is built on the min / max of every row seen so far (this row included) and the last
``replay_rows`` rows kept by the detector are replayed into it silently (learnt, outputs
discarded, so its rest state is the replay's), then the row is scored by it. Values inside
the trigger band but outside the scale are clipped. The span grows by ≥ (1 + range_trigger)
at each rebuild, so rebuilds are few (on NAB's 52 files: ≤ 14 per file, 152 in all); one
costs up to ``replay_rows`` rows of work once (≤ ~1.7 s CPU with 5,000 rows on the shared
development machine) and the kept rows are bounded by ``replay_rows``.

``max_active`` sets CAD OSE's neurons per row and ``max_contexts`` bounds its memory: past
the bound a fresh detector starts on the same scale, muted (output 0) for its first
``range_rows`` rows; a rebuild's replay that crosses the bound is cut short the same way.
CAD OSE's per-row work grows with its memory, so the bound caps both (3.0.0: 8 neurons,
8,000 contexts: CPU p99 ≤ 1.51 ms per row on every NAB file, ``bench/bench_stream_detector.py``).

Cost per row (``transition_novelty``): O(context_rows) dictionary operations (a few µs);
memory: O(distinct transitions), bounded by ``max_transitions`` (past it, the counts are
cleared and learning starts over on the same scale; not reached on NAB's files).

``transition_novelty`` was 1.0.0's detector of ``nab-stream-generic``, written when CAD OSE
was thought too slow for the gateway (a first, whole-memory re-implementation: 11 ms per row);
``cad_ose`` (2.0.0) is CAD OSE indexed: see :mod:`renkei.edge.model.cad_ose` for its cost.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Final

from renkei.core.errors import ModelError
from renkei.edge.model.cad_ose import CadOse

__all__ = ["KINDS", "PARAM_KEY", "StreamDetector", "StreamDetectorConfig", "StreamDetectorError"]

#: ``algorithm_params`` key naming the detector kind; its attributes are ``PARAM_KEY.<name>``.
PARAM_KEY: Final = "stream_detector"
#: detector kinds
KINDS: Final = ("transition_novelty", "cad_ose")
_FLOAT_ATTRS: Final = frozenset({"base_threshold", "range_margin", "range_trigger"})


class StreamDetectorError(ModelError, ValueError):
    """Bad streaming-detector parameters (message names the parameter and value)."""


@dataclass(frozen=True, slots=True)
class StreamDetectorConfig:
    """Parameters of :class:`StreamDetector` (see the module docstring).

    Attributes:
        kind: algorithm, ``"transition_novelty"`` or ``"cad_ose"``.
        range_rows: rows whose min / max fix the level scale (≥ 2); score 0 on them.
        value_bits: level code width (2 bits = 4 levels over the range).
        context_rows: longest context, rows (contexts of 1 .. this many levels).
        min_context: times a context must have been seen before it can be surprised.
        base_threshold: raw score that starts a rest period, in (0, 1].
        rest_rows: rows silenced after such a score (≥ 0).
        max_transitions: memory bound (distinct transitions kept).
        range_margin: ``cad_ose`` only: the scale's widening on each side, fraction of the
            first rows' range (≥ 0).
        replay_rows: ``cad_ose`` only: 0 = the scale is frozen after ``range_rows`` rows;
            > 0 = growing scale, rows kept and replayed at a rebuild.
        range_trigger: ``cad_ose`` with ``replay_rows > 0``: a value beyond the scale by more
            than this fraction of its span rebuilds the detector (≥ 0).
        max_active: ``cad_ose`` only: active contexts kept per row as the next row's
            "neurons" (the original's ``maxActiveNeuronsNum``, 15 in NAB; 1..256).
        max_contexts: ``cad_ose`` only: bound of the context memory (0 = none). Past it, a
            fresh detector starts on the same scale and its output is 0 for ``range_rows``
            rows while it learns; a rebuild's replay that crosses it is cut short the same
            way. Bounds memory and the per-row work, which grow with the memory.
    """

    kind: str = "transition_novelty"
    range_rows: int = 150
    value_bits: int = 2
    context_rows: int = 3
    min_context: int = 5
    base_threshold: float = 0.75
    rest_rows: int = 100
    max_transitions: int = 1_000_000
    range_margin: float = 0.0
    replay_rows: int = 0
    range_trigger: float = 0.0
    max_active: int = 15
    max_contexts: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise StreamDetectorError(
                f"stream_detector.kind: {self.kind!r}, expected one of {list(KINDS)}"
            )
        if not (isinstance(self.range_margin, float) and 0.0 <= self.range_margin < 1e6):
            raise StreamDetectorError(
                f"stream_detector.range_margin: {self.range_margin!r}, expected a float ≥ 0"
            )
        if not (isinstance(self.range_trigger, float) and 0.0 <= self.range_trigger < 1e6):
            raise StreamDetectorError(
                f"stream_detector.range_trigger: {self.range_trigger!r}, expected a float ≥ 0"
            )
        if self.replay_rows and not (
            self.kind == "cad_ose" and self.replay_rows >= self.range_rows
        ):
            raise StreamDetectorError(
                f"stream_detector.replay_rows: {self.replay_rows!r}, expected 0 or (cad_ose "
                f"only) ≥ range_rows ({self.range_rows!r})"
            )
        if self.kind == "cad_ose" and not (self.rest_rows >= 1 and self.value_bits <= 16):
            raise StreamDetectorError(
                f"stream_detector (cad_ose): rest_rows {self.rest_rows!r} must be ≥ 1 and "
                f"value_bits {self.value_bits!r} ≤ 16"
            )
        for name, low in (
            ("range_rows", 2),
            ("value_bits", 1),
            ("context_rows", 1),
            ("min_context", 1),
            ("rest_rows", 0),
            ("replay_rows", 0),
            ("max_transitions", 100),
            ("max_active", 1),
            ("max_contexts", 0),
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise StreamDetectorError(
                    f"stream_detector.{name}: {value!r}, expected an integer ≥ {low}"
                )
        if not 0.0 < self.base_threshold <= 1.0:
            raise StreamDetectorError(
                f"stream_detector.base_threshold: {self.base_threshold!r}, expected (0, 1]"
            )

    @classmethod
    def from_params(cls, params: Mapping[str, object]) -> StreamDetectorConfig:
        """From a manifest's flat ``algorithm_params``: ``"stream_detector"`` = kind and
        ``"stream_detector.<attribute>"`` = value (JSON numbers such as ``150.0`` are
        accepted for integer attributes; absent attributes take the defaults).

        Raises:
            StreamDetectorError: no ``"stream_detector"`` key, an unknown attribute or a
                bad value.
        """
        if PARAM_KEY not in params:
            raise StreamDetectorError(f"algorithm_params has no {PARAM_KEY!r} key")
        known = {f.name for f in fields(cls)} - {"kind"}
        kwargs: dict[str, object] = {"kind": params[PARAM_KEY]}
        prefix = f"{PARAM_KEY}."
        for key, value in params.items():
            if not key.startswith(prefix):
                continue
            attr = key.removeprefix(prefix)
            if attr not in known:
                raise StreamDetectorError(
                    f"algorithm_params.{key}: unknown; known: {sorted(prefix + k for k in known)}"
                )
            if attr in _FLOAT_ATTRS and isinstance(value, int):
                value = float(value)
            elif attr not in _FLOAT_ATTRS and isinstance(value, float) and value.is_integer():
                value = int(value)
            kwargs[attr] = value
        return cls(**kwargs)  # type: ignore[arg-type]

    def to_params(self) -> dict[str, float | int | str]:
        """The flat ``algorithm_params`` entries :meth:`from_params` reads."""
        out: dict[str, float | int | str] = {PARAM_KEY: self.kind}
        for f in fields(self):
            if f.name != "kind":
                out[f"{PARAM_KEY}.{f.name}"] = getattr(self, f.name)
        return out


class StreamDetector:
    """One signal's streaming detector (see the module docstring). Not thread-safe.

    Args:
        config: parameters.
    """

    def __init__(self, config: StreamDetectorConfig) -> None:
        self.config = config
        self.rows = 0
        """Rows pushed so far (finite or not)."""
        self.restarts = 0
        """Times the counts were cleared (memory bound)."""
        self._seen: list[float] = []
        self._lo = 0.0
        self._step = 0.0
        self._levels: deque[int] = deque(maxlen=config.context_rows)
        self._contexts: dict[tuple[int, ...], int] = {}
        self._transitions: dict[tuple[tuple[int, ...], int], int] = {}
        self._recent: deque[float] = deque(maxlen=max(config.rest_rows, 1))
        self._cad: CadOse | None = None
        self.rebuilds = 0
        """``cad_ose`` growing scale: times the detector was rebuilt on a wider range."""
        self._muted = 0  # rows still muted after a fresh start (``max_contexts``)
        self._kept: deque[float] = deque(maxlen=max(config.replay_rows, 1))
        self._min = math.inf
        self._max = -math.inf
        self._band = (math.inf, -math.inf)  # values outside rebuild (growing scale)

    @property
    def contexts(self) -> int:
        """Size of the learnt memory: CAD OSE's contexts (``cad_ose``; 0 while the scale is
        collected) or the distinct transitions counted (``transition_novelty``)."""
        if self.config.kind == "cad_ose":
            return self._cad.contexts if self._cad is not None else 0
        return len(self._transitions)

    @property
    def scale(self) -> tuple[float, float] | None:
        """``(lo, step)`` of the level code once frozen, else ``None``."""
        return None if self._step == 0.0 else (self._lo, self._step)

    def _freeze(self) -> None:
        lo, hi = min(self._seen), max(self._seen)
        top = 2.0**self.config.value_bits - 1.0
        self._lo = lo
        self._step = (hi - lo) / top if hi > lo else 1.0
        self._seen = []

    def push(self, value: float) -> float:
        """Score one row's value: NaN for a non-finite value (not learnt), 0.0 while the
        scale is collected, else the score in [0, 1]."""
        self.rows += 1
        if not math.isfinite(value):
            return math.nan
        if self.config.kind == "cad_ose":
            return self._push_cad(value)
        if self._step == 0.0:
            self._seen.append(value)
            if len(self._seen) >= self.config.range_rows:
                self._freeze()
            return 0.0
        level = math.floor((value - self._lo) / self._step)
        history = tuple(self._levels)
        established = novel = 0
        for k in range(1, len(history) + 1):
            ctx = history[-k:]
            n_ctx = self._contexts.get(ctx, 0)
            key = (ctx, level)
            n_tr = self._transitions.get(key, 0)
            if n_ctx >= self.config.min_context:
                established += 1
                novel += n_tr == 0
            self._contexts[ctx] = n_ctx + 1
            self._transitions[key] = n_tr + 1
        self._levels.append(level)
        raw = novel / established if established else 0.0
        resting = (
            self.config.rest_rows > 0
            and len(self._recent) > 0
            and max(self._recent) >= self.config.base_threshold
        )
        if self.config.rest_rows > 0:
            self._recent.append(raw)
        if len(self._transitions) > self.config.max_transitions:
            self._contexts.clear()
            self._transitions.clear()
            self.restarts += 1
        return 0.0 if resting else raw

    def _new_cad(self, lo: float, hi: float) -> CadOse:
        cfg = self.config
        cad = CadOse(
            lo,
            hi,
            base_threshold=cfg.base_threshold,
            rest_period=float(cfg.rest_rows),
            value_bits=cfg.value_bits,
            max_active=cfg.max_active,
        )
        self._lo, self._step = cad.min_value, cad.step
        return cad

    def _build_cad(self, lo: float, hi: float, replay: Iterable[float]) -> CadOse:
        pad = self.config.range_margin * (hi - lo)
        cad = self._new_cad(lo - pad, hi + pad)
        cap = self.config.max_contexts
        for v in replay:
            cad.push(v)
            if cap and cad.contexts > cap:  # cut the replay short: fresh, muted start
                return self._restart(cad)
        return cad

    def _restart(self, cad: CadOse) -> CadOse:
        self.restarts += 1
        self._muted = self.config.range_rows
        return self._new_cad(cad.min_value, cad.max_value)

    def _score(self, cad: CadOse, value: float) -> float:
        """``cad.push(value)`` under the memory bound and the mute after a fresh start."""
        out = cad.push(value)
        if self._muted > 0:
            self._muted -= 1
            out = 0.0
        cap = self.config.max_contexts
        if cap and cad.contexts > cap:
            self._cad = self._restart(cad)
        return out

    def _push_growing(self, value: float) -> float:
        self._min, self._max = min(self._min, value), max(self._max, value)
        out = 0.0
        if self._cad is None:
            if len(self._kept) + 1 >= self.config.range_rows:
                self._cad = self._build_cad(self._min, self._max, self._kept)
                self._score(self._cad, value)
                self._set_band()
        elif not self._band[0] <= value <= self._band[1]:
            self._cad = self._build_cad(self._min, self._max, self._kept)
            self.rebuilds += 1
            self._set_band()
            out = self._score(self._cad, value)
        else:
            out = self._score(self._cad, value)
        self._kept.append(value)
        return out

    def _set_band(self) -> None:
        wide = self.config.range_trigger * (self._max - self._min)
        self._band = (self._min - wide, self._max + wide)

    def _push_cad(self, value: float) -> float:
        if self.config.replay_rows > 0:
            return self._push_growing(value)
        if self._cad is not None:
            return self._score(self._cad, value)
        self._seen.append(value)
        if len(self._seen) < self.config.range_rows:
            return 0.0
        self._cad = self._build_cad(min(self._seen), max(self._seen), self._seen)
        self._seen = []
        return 0.0

    def run(self, values: Iterable[float]) -> list[float]:
        """Scores of ``values`` pushed one by one (batch helper for recipes and tests)."""
        return [self.push(float(v)) for v in values]
