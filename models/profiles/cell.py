"""Profile ``cell-t2``: the simulated injection-molding cell, 1 s slow + vibration windows.

Data: :class:`renkei.edge.sources.simulated.SimulatedCell` with the default (reference-cell)
options — 5 barrel zones + 6 process channels at 10 Hz, pump vibration at 10 kHz, 20 s
cycles — generated here, no files. Features: the gateway's ``slow_windower(1 s)`` (mean,
min, max, slope of each slow channel) and ``vibration_windower(1 s)`` (``vib_*``), merged
per window end, i.e. what the pipeline computes for a simulated machine with
``window_s: 1`` (``firmware-config/sim-cell.yaml``).

Every seed is a different machine: the simulator draws the phases of the pump's shaft
harmonics per seed, which sets the waveform shape and so its kurtosis and crest factor
(e.g. kurtosis -0.60 … -0.38 across seeds, ±0.007 within a run). A model fitted on one seed
flags every other seed, so this is a FLEET model: fit on NORMAL runs of ``FIT_SEEDS``
(``RUN_S`` simulated seconds each, no faults; one full 900 s period of the simulated
hydraulic-oil temperature cycle, so every normal oil temperature and slope is seen); the
threshold comes from normal runs of other machines (``HOLDOUT_SEEDS``), so it includes the
machine-to-machine spread. ``FIT_SEEDS`` includes seed 7, the demo machine of
``firmware-config/sim-cell.yaml`` (commissioning on the machine's own normal data); seed 7
is never used for evaluation. Evaluation: one
faulted run per fault kind on yet other seeds (``FAULT_RUN_S`` s, fault from
``FAULT_START_S`` with a ``FAULT_RAMP_S`` s linear ramp to severity 1); window label = fault
label (any sample at/after onset, also during the ramp when the effect may be invisible).
"""

from __future__ import annotations

import multiprocessing as mp
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Final, cast

import numpy as np

from renkei.edge.sources.faults import FAULT_CODES, FaultKind, FaultSpec
from renkei.edge.sources.simulated import SimulatedCell, SimulatorOptions
from renkei.models.profiles._common import EvalSet, ProfileData, window_descriptions
from renkei.models.profiles._features import FeatureTable, window_feature_rows

__all__ = [
    "FAULT_RAMP_S",
    "FAULT_RUN_S",
    "FAULT_START_S",
    "FIT_SEEDS",
    "HOLDOUT_SEEDS",
    "RUN_S",
    "WINDOW_S",
    "build",
]

WINDOW_S: Final = 1.0
RUN_S: Final = 900.0
FIT_SEEDS: Final = (7, 101, 102, 103, 104)
HOLDOUT_SEEDS: Final = (111, 112)
FAULT_SEED0: Final = 201
FAULT_RUN_S: Final = 400.0
FAULT_START_S: Final = 150.0
FAULT_RAMP_S: Final = 60.0
_START_MS: Final = 1_700_000_000_000  # fixed data time: windows are epoch-aligned


def _run(job: tuple[int, float, tuple[FaultSpec, ...]]) -> FeatureTable:
    """Window features of one simulated run ``(seed, duration_s, faults)``; finite rows."""
    seed, duration_s, faults = job
    options = SimulatorOptions(
        seed=seed,
        start_ms=_START_MS,
        duration_s=duration_s,
        streams=("slow", "vibration"),
        faults=faults,
    )
    table = window_feature_rows(SimulatedCell(options).blocks(), WINDOW_S)
    return table.rows(table.finite_rows())


def build(
    data_dir: Path,
    *,
    run_s: float = RUN_S,
    fit_seeds: tuple[int, ...] = FIT_SEEDS,
    holdout_seeds: tuple[int, ...] = HOLDOUT_SEEDS,
    fault_run_s: float = FAULT_RUN_S,
    fault_start_s: float = FAULT_START_S,
    fault_ramp_s: float = FAULT_RAMP_S,
    workers: int | None = None,
) -> ProfileData:
    """Build the ``cell-t2`` training/evaluation data (``data_dir`` is not used).

    The keyword arguments shorten the runs for tests; the defaults are the documented
    profile. The simulated runs are independent and run in ``workers`` processes
    (default: up to 2, the CPU count permitting); results do not depend on it.
    """
    del data_dir  # simulated: no files
    kinds = sorted(FAULT_CODES)
    jobs: list[tuple[int, float, tuple[FaultSpec, ...]]] = [
        (seed, run_s, ()) for seed in (*fit_seeds, *holdout_seeds)
    ]
    jobs += [
        (
            FAULT_SEED0 + i,
            fault_run_s,
            (FaultSpec(cast(FaultKind, kind), fault_start_s, fault_ramp_s),),
        )
        for i, kind in enumerate(kinds)
    ]
    tables = _run_all(jobs, workers)
    names = tables[0].names
    tables = [t.select(names) for t in tables]
    fit, hold = (
        tables[: len(fit_seeds)],
        tables[len(fit_seeds) : len(fit_seeds) + len(holdout_seeds)],
    )
    units = dict(SimulatedCell(SimulatorOptions(seed=0)).fields)
    eval_sets = [
        EvalSet(kind, t.x, (t.labels > 0).astype(np.int8), events=True)
        for kind, t in zip(kinds, tables[len(fit) + len(hold) :], strict=True)
    ]
    seeds = f"seeds {fit_seeds[0]}-{fit_seeds[-1]}"
    hold_seeds = f"seeds {holdout_seeds[0]}-{holdout_seeds[-1]}"
    return ProfileData(
        names=names,
        units=_feature_units(names, units),
        descriptions=window_descriptions(names, WINDOW_S),
        x_fit=np.vstack([t.x for t in fit]),
        x_holdout=np.vstack([t.x for t in hold]),
        feature_kind="window",
        window_s=WINDOW_S,
        data_source=(
            "simulated: renkei.edge.sources.simulated.SimulatedCell default options (10 Hz slow, "
            f"10 kHz pump vibration, 20 s cycle), {run_s:g} s per seed; generated data"
        ),
        fitted_on=(
            f"normal only: fault-free simulated runs, {seeds} (fit) and {hold_seeds} "
            "(threshold), i.e. the threshold is set on unseen machines"
        ),
        eval_sets=eval_sets,
        notes=[
            "Fleet model: each simulator seed is a different machine (own harmonic phases, "
            "so own kurtosis/crest level); fitted on several seeds, threshold from others.",
            f"Evaluation: one {fault_run_s:g} s run per fault kind (seeds {FAULT_SEED0}+), "
            f"fault from {fault_start_s:g} s with a {fault_ramp_s:g} s ramp to severity 1; "
            "windows labelled from the fault onset (including the ramp, when the effect may "
            "be invisible, which caps recall). `.far` = alarms on the pre-fault windows; "
            "`.episodes_detected` = the fault was flagged at least once; "
            "`.alarm_onsets_outside` = alarm onsets before the fault.",
            "`mold_wear` acts on the shot stream only (cavity pressure peak, part weight), "
            "which this window model does not see: its metrics are expected to be at chance "
            "level and show that the evaluation is not biased by the run's time course.",
            "Gateway: simulated source with default rates/channels (10 Hz slow, 10 kHz "
            "vibration, no extra slow channels, 20 s cycle) and machine `window_s: 1`; other "
            "simulator settings change the inputs (e.g. 5 kHz vibration renames the top band).",
        ],
    )


def _run_all(
    jobs: list[tuple[int, float, tuple[FaultSpec, ...]]], workers: int | None
) -> list[FeatureTable]:
    n = workers if workers is not None else min(2, os.cpu_count() or 1)
    if n <= 1:
        return [_run(job) for job in jobs]
    with ProcessPoolExecutor(max_workers=n, mp_context=mp.get_context("fork")) as pool:
        return list(pool.map(_run, jobs))


def _feature_units(names: list[str], field_units: dict[str, str]) -> dict[str, str]:
    vib_units = {
        "rms_g": "g",
        "peak_g": "g",
        "crest": "1",
        "kurtosis": "1",
        "velocity_rms_mm_s": "mm/s",
    }
    out: dict[str, str] = {}
    for name in names:
        if name.startswith("vib_"):
            stem = name[len("vib_") :]
            out[name] = vib_units.get(stem, "g^2" if stem.endswith("_g2") else "1")
            continue
        field, _, stat = name.rpartition("_")
        if stat == "s" and name.endswith("_slope_per_s"):
            field = name[: -len("_slope_per_s")]
            out[name] = f"{field_units.get(field, '') or '1'}/s"
        else:
            out[name] = field_units.get(field, "") or "1"
    return out
