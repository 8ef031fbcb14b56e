"""Profile ``nab-temp-t2``: NAB machine temperature, 1 h window statistics of one signal.

Data: NAB (Ahmad et al. 2017; Lavin & Ahmad 2015; github.com/numenta/NAB @ ea702d7, MIT),
``nab/data/realKnownCause/machine_temperature_system_failure.csv`` (5 min samples) with
the anomaly windows of ``nab/labels/combined_windows.json``, read by the gateway's replay
preset ``nab`` (which repairs the file's one backwards clock step; labels on the original
stamps). Features: the gateway's ``slow_windower(3600 s)`` →
``machine_temperature_{mean,min,max,slope_per_s}``.

Protocol (NAB rule: a detector may only learn from the first 15 % of the file, the
"probationary period", which is not scored): fit on the 1 h windows that end inside the
probationary period, EXCLUDING those that touch a labelled anomaly window (the
2013-12-10 … 12-12 window lies inside the probationary period, so "normal only" needs the
labels there; they are used to drop rows, never to fit). Threshold: last 20 % of those
normal windows. Evaluation: windows starting after the probationary period, per window
(label = window touches a NAB anomaly window), plus how many of the NAB anomaly windows
get at least one alarm and how many alarm onsets fall outside them. This is not the NAB
score (use NAB's scorer for that).
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import numpy as np

from renkei.edge.features import SLOW_STATS
from renkei.edge.sources.replay import ReplayOptions, ReplaySource
from renkei.models.profiles._common import EvalSet, ProfileData, require_file, window_descriptions
from renkei.models.profiles._features import window_feature_rows

__all__ = ["PROBATION", "WINDOW_S", "build"]

WINDOW_S: Final = 3600.0
PROBATION: Final = 0.15
HOLDOUT_FRACTION: Final = 0.2
FILE: Final = "nab/data/realKnownCause/machine_temperature_system_failure.csv"
LABELS: Final = "nab/labels/combined_windows.json"


def build(data_dir: Path) -> ProfileData:
    """Build the ``nab-temp-t2`` training/evaluation data (see module docstring).

    Raises:
        FileNotFoundError: the CSV or the label file is missing (path named).
    """
    path = require_file(data_dir, FILE)
    require_file(data_dir, LABELS)
    src = ReplaySource(ReplayOptions(path=path, preset="nab", timestamps="keep", block_rows=256))
    table = window_feature_rows(src.blocks(), WINDOW_S)
    t = src.recorded_t_ms
    t_probation_end = int(t[int(PROBATION * t.size)])
    start = table.t_ms - round(WINDOW_S * 1000)
    ok = table.finite_rows()
    normal_prob = table.x[ok & (table.t_ms <= t_probation_end) & (table.labels == 0)]
    n_hold = round(HOLDOUT_FRACTION * len(normal_prob))
    test = ok & (start >= t_probation_end)
    x_test, y_test = table.x[test], (table.labels[test] > 0).astype(np.int8)
    field = next(iter(src.fields))
    unit = "unspecified (temperature; units not given upstream)"
    units = {f"{field}_{s}": (f"{unit} per s" if s == "slope_per_s" else unit) for s in SLOW_STATS}
    return ProfileData(
        names=table.names,
        units=units,
        descriptions=window_descriptions(
            table.names,
            WINDOW_S,
            {field: "temperature of an internal component of a large industrial machine"},
        ),
        x_fit=normal_prob[: len(normal_prob) - n_hold],
        x_holdout=normal_prob[len(normal_prob) - n_hold :],
        feature_kind="window",
        window_s=WINDOW_S,
        data_source=(
            "NAB (Numenta Anomaly Benchmark; Ahmad et al. 2017, doi:10.1016/j.neucom.2017.04.070; "
            f"github.com/numenta/NAB @ ea702d7; MIT): {FILE}, anomaly windows {LABELS}"
        ),
        fitted_on=(
            "normal only: 1 h windows inside the NAB probationary period (first 15 % of "
            "the file) that do not touch a labelled anomaly window; last 20 % of them set "
            "the threshold"
        ),
        eval_sets=[EvalSet("after_probation.window", x_test, y_test, events=True)],
        notes=[
            "Protocol: NAB probationary rule (learn on the first 15 %, evaluate the rest); "
            "windows touching a labelled anomaly window were removed from the fit data. "
            "`after_probation.window`: 1 h windows starting after the probationary "
            "period, label = window touches a NAB anomaly window. Event view: `.episodes`, "
            "`.episodes_detected`, `.alarm_onsets_outside` (see models/metrics.py). Not the "
            "NAB score.",
            "Gateway: replay preset `nab`, machine `window_s: 3600` "
            "(firmware-config/nab-machine.yaml).",
        ],
    )
