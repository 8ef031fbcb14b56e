"""Check the commissioning period before it is trusted, and decide: refuse, confirm or go.

The checks are the gateway's own (:func:`renkei.edge.model.baseline_check.check_baseline`,
one rule for the in-run baseline and for commissioning; its thresholds live there). This
module only turns the :class:`~renkei.edge.model.baseline_check.BaselineReport` into a
decision an engineer can act on:

- ``refuse`` issues (``short``, ``contamination``), and a period whose held-back part
  would be smaller than ``min_holdout_rows`` -> :class:`CommissionRefused`, listing every
  issue with its kind, channels and UTC time range;
- ``confirm`` issues (``gap``, ``flat``, ``drift``) -> the engineer confirms (prompt or
  ``--yes``); flat and drifting channels are then dropped from the model's inputs;
- nothing -> go.

Before the check, fields the machine carries in fewer than :data:`MIN_PRESENT` of the rows
(e.g. a window slope that needs two samples per window) are left out: they would make most
rows incomplete and the period "short". They are reported as ``sparse``.

After the fit, one multivariate finding of commissioning's own (:func:`shift_finding`,
severity "confirm"): the held-back rows' median score over :data:`MAX_HOLDOUT_SHIFT` × the
fit rows' median. The per-channel checks cannot see a fault that moves channels against
each other (SKAB's valve closure passes them); a model fitted on the period's start sees
it in the held-back end. Clean SKAB valve1 periods give ratios 1.1-2.7 (5-row means),
periods with the closure in the held-back part 2.9-46; the limit was set after looking at
those (valve1 files 0, 1, 3, 5).

Automatic choice (``--auto``), a rule fixed in code: candidate periods start and end on a
grid of ``step = max(min_rows // 4, n // 40)`` rows over the searched rows and hold at least
``min_rows`` rows; a candidate qualifies when the check reports no ``refuse`` issue and no
``gap`` or ``drift`` (``flat`` channels are allowed, they are dropped) and, when the caller
gives ``accept`` (the CLI: a fit whose held-back shift is within the limit), ``accept``
agrees. The qualifying candidate that ends latest is chosen, the longest among those. The
search cannot tell a fault lasting the whole candidate from normal operation, so the chosen
range is printed and confirmed like any other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import numpy as np

from renkei.core.errors import RenkeiError
from renkei.edge.model.baseline_check import BaselineIssue, BaselineReport, check_baseline
from renkei.models.commission.query import FeatureTable, iso_utc

__all__ = [
    "MAX_HOLDOUT_SHIFT",
    "MIN_PRESENT",
    "CommissionRefused",
    "Decision",
    "choose_auto_period",
    "decide",
    "present_channels",
    "shift_finding",
]

MAX_HOLDOUT_SHIFT: Final = 3.0
"""Largest median held-back score / median fit score accepted without confirmation."""
MIN_PRESENT: Final = 0.95
"""Share of rows a field must be present in to be a candidate input."""
_MAX_GRID: Final = 40


class CommissionRefused(RenkeiError):
    """The period cannot be a machine's normal; ``lines`` lists why (one issue a line)."""

    def __init__(self, summary: str, lines: list[str]) -> None:
        super().__init__(summary + "".join(f"\n  - {ln}" for ln in lines))
        self.summary = summary
        self.lines = lines


@dataclass(frozen=True, slots=True)
class Decision:
    """What the checks say about a period.

    Attributes:
        table: the period's rows, restricted to the present channels.
        report: the check's report on them.
        sparse: fields left out before the check (present in < :data:`MIN_PRESENT` rows).
        confirm: one line per issue needing confirmation (kind, channels, UTC range).
        dropped: channels dropped from the inputs (flat or drifting).
    """

    table: FeatureTable
    report: BaselineReport
    sparse: tuple[str, ...]
    confirm: tuple[str, ...]
    dropped: tuple[str, ...]

    @property
    def channels(self) -> tuple[str, ...]:
        """Channels left for the fit (present, not flat, not drifting), in column order."""
        return tuple(c for c in self.table.names if c not in self.dropped)


def present_channels(table: FeatureTable) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(kept, sparse): fields present in at least :data:`MIN_PRESENT` of the rows, and the
    others."""
    if len(table) == 0:
        return (), table.names
    share = np.isfinite(table.x).mean(axis=0)
    kept = tuple(n for n, s in zip(table.names, share, strict=True) if s >= MIN_PRESENT)
    sparse = tuple(n for n in table.names if n not in kept)
    return kept, sparse


def _describe(issue: BaselineIssue, table: FeatureTable) -> str:
    return issue.describe(table.t_s)


def decide(table: FeatureTable, *, min_holdout_rows: int, holdout_fraction: float) -> Decision:
    """Check ``table`` as a commissioning period (see the module docstring).

    Args:
        table: the period's rows, oldest first.
        min_holdout_rows: fewest held-back rows the threshold rule needs.
        holdout_fraction: share of the period held back (the last rows).

    Raises:
        CommissionRefused: no field present often enough, a ``refuse`` issue, or a
            held-back part below ``min_holdout_rows``; every issue is listed.
    """
    kept, sparse = present_channels(table)
    where = f"{iso_utc(int(table.t_ms[0]))} .. {iso_utc(int(table.t_ms[-1]))}" if len(table) else ""
    if not kept:
        raise CommissionRefused(
            f"period {where}: no field is present in {MIN_PRESENT:.0%} of the {len(table)} rows",
            [f"sparse [{', '.join(sparse)}]"],
        )
    sub = table.columns(kept)
    report = check_baseline(sub.x, kept, t_s=sub.t_s)
    refuse = [_describe(i, sub) for i in report.issues if i.severity == "refuse"]
    confirm = [_describe(i, sub) for i in report.issues if i.severity == "confirm"]
    complete = int(np.isfinite(sub.x).all(axis=1).sum())
    n_hold = round(complete * holdout_fraction)
    if not report.refused and n_hold < min_holdout_rows:
        refuse.append(
            f"short {where}: {complete} complete rows hold back {n_hold} "
            f"({holdout_fraction:.0%}) for the threshold, at least {min_holdout_rows} needed"
        )
    if refuse:
        raise CommissionRefused(
            f"commissioning refused: the period {where} ({len(table)} rows) cannot be this "
            f"machine's normal",
            refuse + confirm,
        )
    dropped = tuple(
        dict.fromkeys(c for i in report.issues if i.kind in ("flat", "drift") for c in i.channels)
    )
    if sparse:
        confirm.insert(
            0,
            f"sparse [{', '.join(sparse)}] {where}: present in fewer than {MIN_PRESENT:.0%} "
            "of the rows, left out",
        )
    return Decision(sub, report, sparse, tuple(confirm), dropped)


def shift_finding(shift: float, holdout: tuple[int, int]) -> str | None:
    """A "confirm" line when the held-back rows score ``shift`` × the fit rows' median,
    above :data:`MAX_HOLDOUT_SHIFT`; else ``None``. ``holdout``: first/last held-back row time."""
    if shift <= MAX_HOLDOUT_SHIFT:
        return None
    return (
        f"shift {iso_utc(holdout[0])} .. {iso_utc(holdout[1])}: the held-back rows score "
        f"{shift:.2g}× the fit rows (median), limit {MAX_HOLDOUT_SHIFT:g}: the machine may have "
        "changed state (a fault or another regime) inside the period"
    )


def _qualifies(report: BaselineReport) -> bool:
    return not report.refused and not any(i.kind in ("gap", "drift") for i in report.issues)


def choose_auto_period(
    table: FeatureTable,
    *,
    min_rows: int,
    accept: Callable[[FeatureTable], bool] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> FeatureTable:
    """The most recent clean stretch of ``table`` (see the module docstring for the rule).

    Args:
        table: the searched rows, oldest first.
        min_rows: fewest rows of a candidate.
        accept: a further test of a candidate that passed the checks.
        progress: called with (candidates checked, candidates in all).

    Raises:
        CommissionRefused: fewer than ``min_rows`` rows, or no candidate qualifies.
    """
    kept, _sparse = present_channels(table)
    n = len(table)
    if n < min_rows or not kept:
        raise CommissionRefused(
            f"--auto: {n} rows searched, at least {min_rows} needed",
            [f"short: {n} rows with {len(kept)} usable fields"],
        )
    sub = table.columns(kept)
    step = max(min_rows // 4, -(-n // _MAX_GRID), 1)
    ends = sorted({*range(min_rows, n + 1, step), n}, reverse=True)
    candidates = [
        (a, b)
        for b in ends
        for a in sorted({*range(0, b - min_rows + 1, step)})
        if b - a >= min_rows
    ]
    for k, (a, b) in enumerate(candidates):
        report = check_baseline(sub.x[a:b], kept, t_s=sub.t_s[a:b])
        if progress is not None:
            progress(k + 1, len(candidates))
        if _qualifies(report):
            candidate = table.take(slice(a, b))
            if accept is None or accept(candidate):
                return candidate
    raise CommissionRefused(
        f"--auto: no stretch of at least {min_rows} rows between {iso_utc(int(table.t_ms[0]))} "
        f"and {iso_utc(int(table.t_ms[-1]))} passes the checks "
        "(no short/contamination/gap/drift issue); mark a period with --start/--end",
        [],
    )
