"""Evaluation of the baseline check (:mod:`renkei.edge.model.baseline_check`) on real data.

Two kinds of periods, built from the datasets under ``RENKEI_DATA_DIR``:

- **clean** (must not be refused): SKAB each valve1/valve2 run's rows 0-399 (labelled
  normal; the leaderboard's train part), 400-row slices of SKAB ``anomaly-free.csv``, NAB
  probation periods (``min(floor(0.15 n), 750)`` rows) of files whose probation holds no
  labelled window, Kassel 200-shot slices of the reference runs, C-MAPSS FD001/FD002 the
  first 30 cycles of every engine (FD002 raw and after per-regime standardisation), CWRU the
  normal record's 0.2 s window features; SKAB runs checked against the previous run's
  first 400 rows as a reference (the rig's earlier normal data);
- **contaminated** (must be refused): SKAB 400-row windows (start every 25 rows) holding
  ≥ 10 % labelled anomaly, by where the anomaly sits (``end``: onset inside, normal first;
  ``start``: the window starts inside the anomaly, normal later; ``all``: ≥ 95 % anomaly,
  the hard case); NAB probation-length windows holding a labelled anomaly point
  (``combined_labels.json``) at 25 %, 50 % or 75 % of the window; Kassel 200-shot windows
  straddling the change from a reference run to a deviation run (deviation share 25 / 50 /
  75 %); CWRU normal windows whose last 25 % are replaced by a fault record's windows.

Figures: refusal rate per set (false refusals on clean sets, detections on contaminated
ones) and which checks fired. ``python -m renkei.models.baseline_eval`` prints the tables of
models/RESULTS.md ("Baseline and commissioning data checks").
"""

from __future__ import annotations

import csv
import itertools
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import numpy as np
from numpy.typing import NDArray

from renkei.edge.model.baseline_check import BaselineCheckConfig, BaselineReport, check_baseline
from renkei.edge.sources.presets import PresetName
from renkei.edge.sources.replay import ReplayOptions, ReplaySource
from renkei.models.nab_scoring import probationary_length
from renkei.models.profiles._common import require_file

__all__ = ["Period", "SetResult", "evaluate_sets", "main", "periods"]

SKAB_ROWS: Final = 400
SKAB_RUNS: Final = tuple(f"skab/data/valve1/{i}.csv" for i in range(16)) + tuple(
    f"skab/data/valve2/{i}.csv" for i in range(4)
)
#: Channels of ``skab-pump-mahal`` (what the gateway checks for that model).
SKAB_MODEL_CHANNELS: Final = (
    "accel1_rms_g",
    "accel2_rms_g",
    "current_A",
    "pressure_bar",
    "voltage_V",
    "flow_rate_l_min",
)
KASSEL_ROWS: Final = 200
CMAPSS_CYCLES: Final = 30


@dataclass(frozen=True)
class Period:
    """One candidate baseline: ``x`` (n, c), channel names, optional times, which set."""

    name: str
    group: str
    contaminated: bool
    x: NDArray[np.float64]
    channels: tuple[str, ...]
    t_s: NDArray[np.float64] | None = None
    min_rows: int | None = None
    reference: NDArray[np.float64] | None = None


@dataclass
class SetResult:
    """Refusals of one set of periods, with the checks that fired."""

    group: str
    contaminated: bool
    periods: int = 0
    refused: int = 0
    confirm: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    refused_names: list[str] = field(default_factory=list)


def _replay(
    data_dir: Path, rel: str, preset: PresetName
) -> tuple[dict[str, NDArray[np.float64]], NDArray[np.float64], NDArray[np.int8] | None]:
    src = ReplaySource(
        ReplayOptions(
            path=require_file(data_dir, rel), preset=preset, timestamps="keep", block_rows=4096
        )
    )
    blocks = list(src.blocks())
    names = list(blocks[0].fields)
    cols = {n: np.concatenate([b.fields[n] for b in blocks]).astype(np.float64) for n in names}
    t = np.concatenate([b.t_ms for b in blocks]).astype(np.float64) / 1000.0
    labels = (
        None
        if blocks[0].labels is None
        else np.concatenate([b.labels for b in blocks if b.labels is not None]).astype(np.int8)
    )
    return cols, t, labels


def _skab(data_dir: Path) -> Iterator[Period]:
    firsts: dict[str, NDArray[np.float64]] = {}
    for rel in SKAB_RUNS:
        cols, _, _ = _replay(data_dir, rel, "skab")
        firsts[rel] = np.column_stack([cols[n] for n in SKAB_MODEL_CHANNELS])[:SKAB_ROWS]
    for k, rel in enumerate(SKAB_RUNS):
        # reference: the rig's previous run's first 400 rows (same valve group)
        prev = SKAB_RUNS[k - 1] if k and SKAB_RUNS[k - 1][:16] == rel[:16] else SKAB_RUNS[k + 1]
        ref6 = firsts[prev]
        cols, t, labels = _replay(data_dir, rel, "skab")
        assert labels is not None
        names = tuple(cols)
        x = np.column_stack([cols[n] for n in names])
        six = np.column_stack([cols[n] for n in SKAB_MODEL_CHANNELS])
        run = rel.removeprefix("skab/data/")
        yield Period(run, "skab first 400 (8 ch)", False, x[:SKAB_ROWS], names, t[:SKAB_ROWS])
        yield Period(
            run,
            "skab first 400 (model 6 ch)",
            False,
            six[:SKAB_ROWS],
            SKAB_MODEL_CHANNELS,
            t[:SKAB_ROWS],
        )
        yield Period(
            run,
            "skab first 400 (6 ch, reference previous run)",
            False,
            six[:SKAB_ROWS],
            SKAB_MODEL_CHANNELS,
            t[:SKAB_ROWS],
            reference=ref6,
        )
        for s in range(0, x.shape[0] - SKAB_ROWS + 1, 25):
            frac = float(labels[s : s + SKAB_ROWS].mean())
            if frac < 0.10:
                continue
            where = "all" if frac >= 0.95 else ("start" if labels[s] else "end")
            sl = slice(s, s + SKAB_ROWS)
            yield Period(f"{run}@{s}", f"skab anomaly {where} (8 ch)", True, x[sl], names, t[sl])
            yield Period(
                f"{run}@{s}",
                f"skab anomaly {where} (model 6 ch)",
                True,
                six[sl],
                SKAB_MODEL_CHANNELS,
                t[sl],
            )
            yield Period(
                f"{run}@{s}",
                f"skab anomaly {where} (6 ch, reference previous run)",
                True,
                six[sl],
                SKAB_MODEL_CHANNELS,
                t[sl],
                reference=ref6,
            )
    cols, t, _ = _replay(data_dir, "skab/data/anomaly-free/anomaly-free.csv", "skab")
    names = tuple(cols)
    x = np.column_stack([cols[n] for n in names])
    for s in range(0, x.shape[0] - SKAB_ROWS + 1, SKAB_ROWS):
        sl = slice(s, s + SKAB_ROWS)
        yield Period(
            f"anomaly-free@{s}", "skab anomaly-free slices (8 ch)", False, x[sl], names, t[sl]
        )


def _nab_time(s: str) -> float:
    return datetime.strptime(s[:19], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp()


def _nab(data_dir: Path) -> Iterator[Period]:
    root = data_dir / "nab"
    windows = json.loads(require_file(data_dir, "nab/labels/combined_windows.json").read_text())
    points = json.loads(require_file(data_dir, "nab/labels/combined_labels.json").read_text())
    for key in sorted(windows):
        path = root / "data" / key
        if not path.is_file():
            continue
        with path.open(newline="") as fh:
            rows = list(csv.reader(fh))[1:]
        t = np.array([_nab_time(r[0]) for r in rows])
        x = np.array([[float(r[1])] for r in rows])
        p = probationary_length(len(rows))
        spans = [(_nab_time(a), _nab_time(b)) for a, b in windows[key]]
        if not any(a <= t[p - 1] and b >= t[0] for a, b in spans):
            yield Period(key, "nab probation, no window", False, x[:p], ("value",), t[:p])
        for ts in points.get(key, []):
            i = int(np.searchsorted(t, _nab_time(ts)))
            for pos in (0.25, 0.5, 0.75):
                s = i - int(pos * p)
                if s < 0 or s + p > len(rows):
                    continue
                sl = slice(s, s + p)
                yield Period(
                    f"{key}@{i}", f"nab anomaly at {pos:.0%}", True, x[sl], ("value",), t[sl]
                )


def _kassel(data_dir: Path) -> Iterator[Period]:
    from renkei.models.profiles import kassel

    rel = kassel.FILE
    cols, t, _ = _replay(data_dir, rel, "kassel")
    with require_file(data_dir, rel).open(newline="", encoding="utf-8-sig") as fh:
        runs = np.array([r["class_value"] for r in csv.DictReader(fh, delimiter=";")])
    from renkei.edge.features.shot import ShotFeatures  # noqa: F401  (actuals are raw fields)

    names = kassel.FEATURES
    x = np.column_stack([cols[n] for n in names])
    change = np.flatnonzero(runs[1:] != runs[:-1]) + 1
    bounds = np.r_[0, change, runs.size]
    for a, b in itertools.pairwise(bounds.tolist()):
        if not runs[a].startswith("reference"):
            continue
        for s in range(a, b - KASSEL_ROWS + 1, KASSEL_ROWS):
            sl = slice(s, s + KASSEL_ROWS)
            yield Period(f"{runs[a]}@{s}", "kassel reference slices", False, x[sl], names, t[sl])
        if b < runs.size and not runs[b].startswith("reference"):
            for share in (0.25, 0.5, 0.75):
                s = b - round((1 - share) * KASSEL_ROWS)
                sl = slice(s, s + KASSEL_ROWS)
                yield Period(
                    f"{runs[a]}->{runs[b]}",
                    f"kassel deviation {share:.0%}",
                    True,
                    x[sl],
                    names,
                    t[sl],
                )


def _cmapss(data_dir: Path) -> Iterator[Period]:
    sensors = [1, 2, 3, 6, 7, 8, 10, 11, 12, 13, 14, 16, 19, 20]  # informative on FD001
    names = tuple(f"s{j + 1}" for j in sensors)
    for sub in ("FD001", "FD002"):
        table = np.loadtxt(require_file(data_dir, f"cmapss/train_{sub}.txt"))
        settings = np.round(table[:, 2:5], 0 if sub == "FD002" else 3)
        regime = np.unique(np.round(table[:, 2:5], 0), axis=0, return_inverse=True)[1].ravel()
        sens = table[:, 5:26][:, sensors]
        del settings
        first = np.concatenate(
            [np.flatnonzero(table[:, 0] == u)[:CMAPSS_CYCLES] for u in np.unique(table[:, 0])]
        )
        norm = sens.copy()
        for r in np.unique(regime):  # per-regime standardisation from the early cycles only
            ref = sens[first][regime[first] == r]
            sd = ref.std(axis=0)
            norm[regime == r] = (sens[regime == r] - ref.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
        for u in np.unique(table[:, 0]).astype(int):
            idx = np.flatnonzero(table[:, 0] == u)[:CMAPSS_CYCLES]
            yield Period(
                f"{sub}#{u}", f"cmapss {sub} first 30 cycles", False, sens[idx], names, None, 25
            )
            if sub == "FD002":
                yield Period(
                    f"{sub}#{u}",
                    "cmapss FD002 first 30, per-regime",
                    False,
                    norm[idx],
                    names,
                    None,
                    25,
                )


def _cwru(data_dir: Path) -> Iterator[Period]:
    from renkei.models.profiles import cwru

    data = cwru.build(data_dir)
    feats = {k: cwru.window_features(cwru.windows(r.x)) for k, r in data.records.items()}
    names = tuple(f"f{i}" for i in range(next(iter(feats.values())).shape[1]))
    normal = next(v for k, v in feats.items() if "normal" in k)
    yield Period("normal", "cwru normal windows", False, normal, names, None, 20)
    k = normal.shape[0] // 4
    for key, v in feats.items():
        if "normal" in key:
            continue
        x = np.vstack([normal[: normal.shape[0] - k], v[:k]])
        yield Period(f"normal+{key}", "cwru normal + 25 % fault", True, x, names, None, 20)


def periods(data_dir: Path) -> Iterator[Period]:
    """Every evaluation period (see the module docstring), dataset by dataset."""
    yield from _skab(data_dir)
    yield from _nab(data_dir)
    yield from _kassel(data_dir)
    yield from _cmapss(data_dir)
    yield from _cwru(data_dir)


def run_check(p: Period, config: BaselineCheckConfig) -> BaselineReport:
    """The check on one period (its ``min_rows`` override for short datasets)."""
    cfg = config if p.min_rows is None else replace(config, min_rows=p.min_rows)
    return check_baseline(p.x, p.channels, t_s=p.t_s, config=cfg, reference=p.reference)


def evaluate_sets(data_dir: Path, config: BaselineCheckConfig | None = None) -> list[SetResult]:
    """Run the check on every period; one :class:`SetResult` per set, in first-seen order."""
    cfg = config or BaselineCheckConfig()
    out: dict[str, SetResult] = {}
    for p in periods(data_dir):
        res = out.setdefault(p.group, SetResult(p.group, p.contaminated))
        rep = run_check(p, cfg)
        res.periods += 1
        res.refused += int(rep.refused)
        res.confirm += int(not rep.refused and not rep.ok)
        res.kinds.update(
            {
                f"{i.kind}:{','.join(i.channels)}" if i.severity == "refuse" else i.kind
                for i in rep.issues
            }
        )
        if rep.refused:
            res.refused_names.append(p.name)
    return list(out.values())


def main() -> None:
    """Print the table of RESULTS.md."""
    import os
    import sys

    data_dir = Path(os.environ.get("RENKEI_DATA_DIR", "../shared/datasets"))
    verbose = "-v" in sys.argv
    print("| set | periods | refused | rate | confirm only | checks that fired |")
    print("|---|---|---|---|---|---|")
    for r in evaluate_sets(data_dir):
        rate = r.refused / r.periods if r.periods else 0.0
        top = ", ".join(f"{k} {v}" for k, v in r.kinds.most_common(4))
        kind = "contaminated" if r.contaminated else "clean"
        print(
            f"| {r.group} ({kind}) | {r.periods} | {r.refused} | {rate:.0%} | {r.confirm} | {top} |"
        )
        if verbose and r.refused_names and not r.contaminated:
            print("   refused:", r.refused_names[:12])


if __name__ == "__main__":
    main()
