"""Checks on a stretch of data before it is trusted as a machine's "normal".

Used twice with the same code and settings: by ``renkei models commission`` on the
telemetry range an engineer marks as normal (or one chosen automatically), and by the
gateway on an in-run baseline (the first ``baseline_rows`` rows a history model collects,
SKAB-style), which it reports as ``baseline_suspect`` instead of silently freezing it
(:class:`renkei.edge.model.inputs.ModelInputs`).

Input: ``x`` (n rows, c channels) float64, oldest first, NaN = missing; optional ``t_s``
(n,) row times, epoch seconds; optional ``reference`` (m, c) rows of the same machine known
to be normal. Output: a :class:`BaselineReport` whose issues name the check, the channels
and the row range (first, last; inclusive) responsible. Issues have a severity:
``"refuse"`` (the data cannot be a baseline: too short, contaminated) or ``"confirm"``
(usable if the engineer confirms: gaps, flat or drifting channels; flat channels are
dropped from a model's inputs by the caller).

The period is cut into blocks of ``L = max(min_block_rows, n // blocks)`` rows (the last
block takes the remainder); per channel, ``m_b`` / ``s_b`` are the block means / standard
deviations and ``s_w = median(s_b)`` is the channel's within-block noise. Checks (settings
in :class:`BaselineCheckConfig`, fixed in code; models/RESULTS.md "Baseline and
commissioning data checks" gives the figures they were chosen on):

- ``short``: fewer than ``min_rows`` rows with every channel finite;
- ``gap``: a row spacing over ``gap_factor`` × the median spacing (needs ``t_s``), or a
  run of rows with a NaN channel;
- ``flat``: a channel whose standard deviation is ≤ ``flat_rel`` × max(|median|, 1), or
  with at least ``flat_share`` of its rows at one value (a set-point with rare one-step
  changes); flat channels are not checked for drift or contamination;
- ``drift``: a channel whose least-squares line over the period explains at least
  ``drift_r2`` of its variance and moves its level by at least ``drift_min_noise`` × ``s_w``
  (warm-up, slow leak: usable, but the level the model learns is a moment of a trend);
- ``contamination`` (level): a contiguous stretch of blocks, at most half of them, whose
  mean level sits more than ``level_sigma`` spreads from the median of the *other* blocks'
  means -- the spread being the largest of their robust spread (1.4826 × MAD),
  ``s_w`` × max(``level_floor``, 1/sqrt(L)) and the level a random walk fitted to the
  neighbouring block means moves over the stretch's distance (a wandering channel such as
  motor temperature) -- and at least ``level_min_noise`` × ``s_w`` away, and whose level
  no other blocks reach (else it is a recurring state: a cycle, a second shift). A smooth
  drift spreads the block means evenly and is not contamination; a fault or a stop is a
  stretch of blocks apart from the rest. The reported range is widened over neighbouring
  blocks nearer the stretch's level (the gateway discards up to its end). When the
  stretch is more than half the period the *normal* part is the minority and is the one
  reported (the refusal is the same);
- ``contamination`` (variance): a block whose row-to-row differences vary more than
  ``variance_ratio`` × their usual (median over blocks) standard deviation -- bursts of
  vibration, chattering, spikes (a level step or ramp inside a block is not a burst);
- ``contamination`` (reference; only with ``reference``): the period's median level of a
  channel sits more than ``reference_sigma`` spreads from the reference's block-mean median
  (the hard case where the whole period is the anomaly: it has no normal part to compare
  against, only the machine's earlier normal data can tell).

Why this module is long: the five checks, the report types and the gateway's verdict are
one rule that commissioning and the gateway must share unchanged; splitting it would spread
one set of thresholds over several files.

Findings of the same kind whose row ranges overlap are merged into one issue naming all
their channels. Limits (see RESULTS.md): an anomaly covering the whole period is caught
only against a reference; an anomaly that shows only on channels that wander in normal
operation (motor temperature) is not caught.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "BaselineCheckConfig",
    "BaselineIssue",
    "BaselineReport",
    "BaselineVerdict",
    "IssueKind",
    "check_baseline",
]

IssueKind = Literal["short", "gap", "flat", "drift", "contamination"]
_REFUSE: Final[frozenset[str]] = frozenset({"short", "contamination"})
_MAX_GAP_ISSUES: Final = 10


@dataclass(frozen=True, slots=True)
class BaselineCheckConfig:
    """Settings of :func:`check_baseline` (defaults are the shipped rule).

    Attributes:
        min_rows: fewest complete rows a baseline may have.
        gap_factor: a spacing over this × the median spacing is a gap.
        flat_rel: a channel whose sd is ≤ ``flat_rel`` × max(|median|, 1) is flat.
        flat_share: a channel with at least this share of its rows at one value is flat
            (quasi-constant: a set-point with rare one-step changes).
        drift_r2: share of a channel's variance a straight line must explain to be drift.
        drift_min_noise: the line must also move the level by this × the within-block noise.
        blocks: blocks the period is cut into (fewer when blocks would be shorter than
            ``min_block_rows``).
        min_block_rows: shortest block, rows.
        level_sigma: contamination when a stretch of blocks sits this many spreads from
            the rest.
        level_floor: the spread of the other blocks' means is at least this × the
            within-block noise (quantised or very steady channels).
        level_min_noise: a contaminated stretch must also differ by this × the within-block
            noise.
        variance_ratio: a block whose row-to-row differences' sd exceeds this × their usual
            sd is contaminated.
        reference_sigma: with a reference: level offset, in reference spreads, above which
            the period is contaminated.
        walk_margin: neighbouring block means must vary more than this × what independent
            rows explain before a channel counts as wandering.
    """

    min_rows: int = 100
    gap_factor: float = 5.0
    flat_rel: float = 1e-9
    flat_share: float = 0.9
    drift_r2: float = 0.5
    drift_min_noise: float = 1.0
    blocks: int = 16
    min_block_rows: int = 5
    level_sigma: float = 6.0
    level_floor: float = 0.25
    level_min_noise: float = 1.0
    variance_ratio: float = 8.0
    reference_sigma: float = 6.0
    walk_margin: float = 2.0

    def __post_init__(self) -> None:
        if self.min_rows < 1 or self.blocks < 4 or self.min_block_rows < 2:
            raise ValueError("min_rows must be >= 1, blocks >= 4 and min_block_rows >= 2")
        if self.gap_factor <= 1 or not 0 < self.drift_r2 <= 1:
            raise ValueError("gap_factor must be > 1 and drift_r2 in (0, 1]")
        limits = (self.level_sigma, self.level_floor, self.variance_ratio, self.reference_sigma)
        if min(limits) <= 0 or self.flat_rel < 0 or self.level_min_noise < 0:
            raise ValueError("level, variance and reference limits must be > 0")


@dataclass(frozen=True, slots=True)
class BaselineIssue:
    """One finding.

    Attributes:
        kind: which check.
        channels: channel names responsible (empty for ``short``/time gaps).
        first_row: first row of the range responsible (0-based, inclusive).
        last_row: last row of the range responsible (inclusive).
        detail: a sentence with the measured value and the limit.
    """

    kind: IssueKind
    channels: tuple[str, ...]
    first_row: int
    last_row: int
    detail: str

    @property
    def severity(self) -> Literal["refuse", "confirm"]:
        """``"refuse"`` for ``short`` and ``contamination``, else ``"confirm"``."""
        return "refuse" if self.kind in _REFUSE else "confirm"

    def describe(self, t_s: NDArray[np.float64] | None = None) -> str:
        """One line: kind, channels, range (ISO UTC times when ``t_s`` is given), detail."""
        if t_s is not None and len(t_s) > self.last_row:
            start = np.datetime64(int(t_s[self.first_row] * 1000), "ms")
            end = np.datetime64(int(t_s[self.last_row] * 1000), "ms")
            where = f"{start}Z .. {end}Z"
        else:
            where = f"rows {self.first_row}..{self.last_row}"
        chans = f" [{', '.join(self.channels)}]" if self.channels else ""
        return f"{self.kind}{chans} {where}: {self.detail}"


@dataclass(frozen=True, slots=True)
class BaselineReport:
    """All findings on one period.

    Attributes:
        rows: rows checked.
        channels: channel names, in column order.
        issues: findings, in check order.
    """

    rows: int
    channels: tuple[str, ...]
    issues: tuple[BaselineIssue, ...]

    @property
    def ok(self) -> bool:
        """No issue at all."""
        return not self.issues

    @property
    def refused(self) -> bool:
        """Some issue has severity ``"refuse"``."""
        return any(i.severity == "refuse" for i in self.issues)

    @property
    def flat_channels(self) -> tuple[str, ...]:
        """Channels found flat (to drop from a model's inputs)."""
        return tuple(c for i in self.issues if i.kind == "flat" for c in i.channels)

    @property
    def refusing(self) -> tuple[BaselineIssue, ...]:
        """The issues of severity ``"refuse"``."""
        return tuple(i for i in self.issues if i.severity == "refuse")


@dataclass(frozen=True, slots=True)
class BaselineVerdict:
    """The gateway's check of one candidate in-run baseline
    (:class:`renkei.edge.model.inputs.ModelInputs`).

    Attributes:
        report: the check's report (row numbers relative to the candidate's first row).
        t_s: (n,) the candidate rows' times, UTC epoch seconds.
        discarded: rows released unscored (refused: up to the last refusing issue; 0 when
            the baseline was frozen).
    """

    report: BaselineReport
    t_s: NDArray[np.float64]
    discarded: int

    def describe(self) -> list[str]:
        """One line per issue (refusing issues only when refused), with UTC times."""
        issues = self.report.refusing if self.report.refused else self.report.issues
        return [i.describe(self.t_s) for i in issues]

    def event(self, model: str, *, after_refusal: bool) -> tuple[str, str, str] | None:
        """(code, severity, message) of the gateway event: ``baseline_suspect`` (warning)
        for a refused baseline; ``baseline_frozen`` (info) for a frozen one after a refusal
        or with issues to confirm; ``None`` for a clean first baseline."""
        rows = self.report.rows
        if self.report.refused:
            msg = (
                f"{model}: baseline of {rows} rows refused, not frozen: "
                f"{'; '.join(self.describe())}. {self.discarded} rows left unscored; "
                "collecting a fresh baseline"
            )
            return "baseline_suspect", "warning", msg
        if not (after_refusal or self.report.issues):
            return None
        lines = "; ".join(self.describe()) or "no issue"
        return "baseline_frozen", "info", f"{model}: baseline of {rows} rows frozen: {lines}"


def _runs(mask: NDArray[np.bool_]) -> list[tuple[int, int]]:
    """(first, last) inclusive index ranges where ``mask`` is true."""
    if not mask.any():
        return []
    padded = np.concatenate(([False], mask, [False])).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def _mode_share(v: NDArray[np.float64]) -> float:
    """Share of the values equal to the most frequent one."""
    if v.size == 0:
        return 0.0
    return float(np.unique(v, return_counts=True)[1].max() / v.size)


def _mad_sd(v: NDArray[np.float64]) -> float:
    """1.4826 × median absolute deviation of the finite values of ``v`` (0 if none)."""
    v = v[np.isfinite(v)]
    if v.size == 0:
        return 0.0
    return float(np.median(np.abs(v - np.median(v))) * 1.4826)


@dataclass(frozen=True, slots=True)
class _Blocks:
    """Per-channel block statistics: ``bounds`` (B + 1,) row edges; ``mean``/``sd``/
    ``rough`` (B, c): block means, standard deviations and standard deviations of the
    row-to-row differences (a level step or ramp inside a block adds little to ``rough``,
    a burst of noise a lot)."""

    bounds: NDArray[np.int64]
    mean: NDArray[np.float64]
    sd: NDArray[np.float64]
    rough: NDArray[np.float64]

    @property
    def noise(self) -> NDArray[np.float64]:
        """(c,) within-block noise: the larger of the median block sd and half the mean
        block sd per channel (a channel steady in most blocks keeps a non-zero noise)."""
        med = np.nanmedian(self.sd, axis=0)
        out: NDArray[np.float64] = np.maximum(med, 0.5 * np.nanmean(self.sd, axis=0))
        return out


def _blocks(x: NDArray[np.float64], cfg: BaselineCheckConfig) -> _Blocks:
    n = x.shape[0]
    size = max(cfg.min_block_rows, n // cfg.blocks)
    count = max(1, n // size)
    bounds = np.array([i * size for i in range(count)] + [n], dtype=np.int64)
    mean = np.full((count, x.shape[1]), np.nan)
    sd = np.full((count, x.shape[1]), np.nan)
    rough = np.full((count, x.shape[1]), np.nan)
    for b in range(count):
        seg = x[bounds[b] : bounds[b + 1]]
        ok = np.isfinite(seg)
        cnt = ok.sum(axis=0)
        for j in np.flatnonzero(cnt >= 2).tolist():
            v = seg[ok[:, j], j]
            mean[b, j] = v.mean()
            sd[b, j] = v.std()
            rough[b, j] = np.diff(v).std() if v.size > 2 else np.nan
    return _Blocks(bounds, mean, sd, rough)


def _level_stretch(
    m: NDArray[np.float64], noise: float, block_rows: int, cfg: BaselineCheckConfig
) -> tuple[int, int, float, float] | None:
    """The contiguous stretch of blocks (at most half) furthest from the others' level.

    The others' spread is at least ``noise`` × max(``level_floor``, 1/sqrt(block_rows))
    (the sd of a block mean of independent rows), and at least the level a random walk
    moves over the mean distance (blocks) between the stretch and the others: a channel
    that wanders (motor temperature) has a per-block walk step ``w`` with ``w² =
    var(Δm) - walk_margin × 2 noise² / block_rows`` (0 if negative), ``var(Δm)`` from the
    median absolute difference of neighbouring block means without the two largest (the
    one or two steps a fault makes). A stretch whose level other blocks reach as well (at
    least half as many as the stretch has, beyond the midpoint between the two levels) is a
    recurring state (a cycle, a second shift), not contamination.

    Returns ``(first block, last block, offset in spreads, offset in noise)`` when it is
    over both limits, else ``None``.
    """
    count = m.size
    floor = noise * max(cfg.level_floor, 1.0 / np.sqrt(block_rows))
    steps = np.sort(np.abs(np.diff(m)))
    steps = steps[np.isfinite(steps)][:-2]  # without the (up to) two steps of a fault
    step_var = (1.4826 * float(np.median(steps))) ** 2 if steps.size else 0.0
    walk = np.sqrt(max(0.0, step_var - cfg.walk_margin * 2.0 * noise**2 / block_rows))
    idx = np.arange(count, dtype=np.float64)
    best: tuple[int, int, float, float] | None = None
    for a in range(count):
        for b in range(a, min(a + count // 2, count)):
            inside = m[a : b + 1]
            rest = np.concatenate((m[:a], m[b + 1 :]))
            inside, rest = inside[np.isfinite(inside)], rest[np.isfinite(rest)]
            if inside.size == 0 or rest.size < 2:
                continue
            level, base = float(inside.mean()), float(np.median(rest))
            offset = abs(level - base)
            others = np.concatenate((idx[:a], idx[b + 1 :]))
            dist = float(np.abs(idx[a : b + 1, None] - others[None, :]).mean())
            spread = max(_mad_sd(rest), floor, walk * np.sqrt(dist))
            if spread <= 0 or offset < cfg.level_min_noise * noise:
                continue
            z = offset / spread
            if z <= cfg.level_sigma or (best is not None and z <= best[2]):
                continue
            mid = (level + base) / 2.0
            reached = int(np.sum(rest > mid) if level > base else np.sum(rest < mid))
            if reached >= max(1, (b - a + 1) // 2):
                continue
            best = (a, b, z, offset / noise if noise > 0 else float("inf"))
    return None if best is None else _extend(m, best)


def _extend(
    m: NDArray[np.float64], found: tuple[int, int, float, float]
) -> tuple[int, int, float, float]:
    """Widen a contaminated stretch over neighbouring blocks nearer its level than the
    others' (so the reported rows cover the whole excursion, which the gateway discards)."""
    a, b, z, in_noise = found
    level = float(np.nanmean(m[a : b + 1]))
    base = float(np.nanmedian(np.concatenate((m[:a], m[b + 1 :]))))
    mid = (level + base) / 2.0

    def near(v: float) -> bool:
        return bool(np.isfinite(v) and (v > mid if level > base else v < mid))

    while a > 0 and near(float(m[a - 1])):
        a -= 1
    while b < m.size - 1 and near(float(m[b + 1])):
        b += 1
    return a, b, z, in_noise


def _merge(issues: list[BaselineIssue]) -> list[BaselineIssue]:
    """Merge issues of one kind whose row ranges overlap (channels joined, details kept)."""
    out: list[BaselineIssue] = []
    for issue in sorted(issues, key=lambda i: (i.first_row, i.last_row)):
        prev = out[-1] if out else None
        if prev is not None and issue.first_row <= prev.last_row:
            chans = prev.channels + tuple(c for c in issue.channels if c not in prev.channels)
            out[-1] = BaselineIssue(
                prev.kind,
                chans,
                prev.first_row,
                max(prev.last_row, issue.last_row),
                f"{prev.detail}; {issue.detail}",
            )
        else:
            out.append(issue)
    return out


def _gaps(
    x: NDArray[np.float64], names: tuple[str, ...], t_s: NDArray[np.float64] | None, gap: float
) -> list[BaselineIssue]:
    issues: list[BaselineIssue] = []
    n = x.shape[0]
    if t_s is not None and n > 2:
        dt = np.diff(np.asarray(t_s, dtype=np.float64))
        step = float(np.median(dt))
        for i in np.flatnonzero(dt > gap * step).tolist():
            detail = f"{dt[i]:.1f} s between rows, median spacing {step:.3g} s"
            issues.append(BaselineIssue("gap", (), i, i + 1, detail))
    for j, name in enumerate(names):
        for a, b in _runs(~np.isfinite(x[:, j])):
            issues.append(BaselineIssue("gap", (name,), a, b, f"{b - a + 1} rows missing"))
    if len(issues) > _MAX_GAP_ISSUES:
        rest = issues[_MAX_GAP_ISSUES - 1 :]
        chans = tuple(dict.fromkeys(c for i in rest for c in i.channels))
        first, last = min(i.first_row for i in rest), max(i.last_row for i in rest)
        summary = BaselineIssue("gap", chans, first, last, f"{len(rest)} more gaps")
        issues = [*issues[: _MAX_GAP_ISSUES - 1], summary]
    return issues


def _drift(
    good: NDArray[np.float64], j: int, noise: float, cfg: BaselineCheckConfig
) -> tuple[float, float] | None:
    """(R², level moved / noise) of channel ``j``'s straight line, when it is drift."""
    v = good[:, j]
    var = float(v.var())
    if var <= 0 or v.size < 3:
        return None
    t = np.arange(v.size, dtype=np.float64)
    tc = t - t.mean()
    slope = float(tc @ (v - v.mean()) / float(tc @ tc))
    r2 = slope * slope * float(tc @ tc) / (var * v.size)
    moved = abs(slope) * (v.size - 1)
    if r2 >= cfg.drift_r2 and moved >= cfg.drift_min_noise * noise:
        return r2, moved / noise if noise > 0 else float("inf")
    return None


def check_baseline(
    x: NDArray[np.float64],
    channels: Sequence[str],
    *,
    t_s: NDArray[np.float64] | None = None,
    config: BaselineCheckConfig | None = None,
    reference: NDArray[np.float64] | None = None,
) -> BaselineReport:
    """Check a candidate baseline period (see the module docstring).

    Args:
        x: (n, c) values, oldest first; NaN = missing.
        channels: c channel names.
        t_s: optional (n,) row times, epoch seconds, increasing.
        config: settings; default :class:`BaselineCheckConfig`.
        reference: optional (m, c) rows of the same machine known to be normal (same
            channels); enables the reference level check.

    Returns:
        The :class:`BaselineReport`.

    Raises:
        ValueError: ``x`` not 2-D, or ``channels``/``t_s``/``reference`` not matching it.
    """
    cfg = config or BaselineCheckConfig()
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"x: expected (rows, channels), got shape {x.shape}")
    n, c = x.shape
    if len(channels) != c:
        raise ValueError(f"channels: {len(channels)} names for {c} columns")
    if t_s is not None and len(t_s) != n:
        raise ValueError(f"t_s: {len(t_s)} times for {n} rows")
    if reference is not None and (np.ndim(reference) != 2 or np.shape(reference)[1] != c):
        raise ValueError(f"reference: expected (rows, {c}), got shape {np.shape(reference)}")
    names = tuple(channels)
    complete = np.isfinite(x).all(axis=1)
    if int(complete.sum()) < cfg.min_rows:
        detail = f"{int(complete.sum())} complete rows, at least {cfg.min_rows} needed"
        issue = BaselineIssue("short", (), 0, max(n - 1, 0), detail)
        return BaselineReport(n, names, (issue,))
    issues = _gaps(x, names, t_s, cfg.gap_factor)
    good = x[complete]
    sd_all = good.std(axis=0)
    med = np.median(good, axis=0)
    flat = sd_all <= cfg.flat_rel * np.maximum(np.abs(med), 1.0)
    mode_share = np.array([_mode_share(good[:, j]) for j in range(c)])
    for j in range(c):
        if flat[j]:
            detail = f"sd {sd_all[j]:.3g} around {med[j]:.6g}: the channel is constant"
        elif mode_share[j] >= cfg.flat_share:
            detail = (
                f"{mode_share[j]:.0%} of the rows hold one value (limit {cfg.flat_share:.0%}): "
                "a set-point or a stuck sensor, not checked for drift or contamination"
            )
        else:
            continue
        issues.append(BaselineIssue("flat", (names[j],), 0, n - 1, detail))
    flat |= mode_share >= cfg.flat_share
    blocks = _blocks(x, cfg)
    noise = blocks.noise
    live = np.flatnonzero(~flat).tolist()
    drifts: list[BaselineIssue] = []
    for j in live:
        found = _drift(good, j, float(noise[j]), cfg)
        if found is not None:
            r2, moved = found
            detail = (
                f"a straight line explains {r2:.0%} of the variance (limit {cfg.drift_r2:.0%}) "
                f"and moves the level by {moved:.1f} × the within-block noise"
            )
            drifts.append(BaselineIssue("drift", (names[j],), 0, n - 1, detail))
    issues += _merge(drifts)
    found_c: list[BaselineIssue] = []
    for j in live:
        size = int(blocks.bounds[1] - blocks.bounds[0])
        stretch = _level_stretch(blocks.mean[:, j], float(noise[j]), size, cfg)
        if stretch is not None:
            a, b, z, in_noise = stretch
            detail = (
                f"{names[j]} level {z:.1f} spreads ({in_noise:.1f} × noise) from the rest "
                f"of the period, limit {cfg.level_sigma}"
            )
            first, last = int(blocks.bounds[a]), int(blocks.bounds[b + 1]) - 1
            found_c.append(BaselineIssue("contamination", (names[j],), first, last, detail))
        r = blocks.rough[:, j]
        usual = max(float(np.nanmedian(r)), 0.5 * float(np.nanmean(r))) if r.size else 0.0
        ratio = r / usual if usual > 0 else np.zeros(r.size)
        for a, b in _runs(np.nan_to_num(ratio) > cfg.variance_ratio):
            detail = (
                f"{names[j]} row-to-row variation {float(np.nanmax(ratio[a : b + 1])):.1f} × "
                f"its usual, limit {cfg.variance_ratio}"
            )
            first, last = int(blocks.bounds[a]), int(blocks.bounds[b + 1]) - 1
            found_c.append(BaselineIssue("contamination", (names[j],), first, last, detail))
    if reference is not None:
        found_c += _against_reference(x, names, np.asarray(reference, np.float64), noise, cfg)
    issues += _merge(found_c)
    return BaselineReport(n, names, tuple(issues))


def _against_reference(
    x: NDArray[np.float64],
    names: tuple[str, ...],
    reference: NDArray[np.float64],
    noise: NDArray[np.float64],
    cfg: BaselineCheckConfig,
) -> list[BaselineIssue]:
    ref = _blocks(reference, cfg)
    out: list[BaselineIssue] = []
    level = np.nanmedian(x, axis=0)
    for j, name in enumerate(names):
        means = ref.mean[:, j][np.isfinite(ref.mean[:, j])]
        ref_noise = float(np.nanmedian(ref.sd[:, j])) if means.size else 0.0
        spread = max(_mad_sd(means), cfg.level_floor * ref_noise, cfg.level_floor * noise[j])
        if means.size < 2 or spread <= 0:
            continue
        z = abs(float(level[j]) - float(np.median(means))) / spread
        if z > cfg.reference_sigma:
            detail = (
                f"{name} median level {level[j]:.4g} is {z:.1f} spreads from the reference's "
                f"{float(np.median(means)):.4g}, limit {cfg.reference_sigma}"
            )
            out.append(BaselineIssue("contamination", (name,), 0, x.shape[0] - 1, detail))
    return out
