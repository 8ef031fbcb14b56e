"""Profile ``kassel-shot-t2``: Kassel CPC injection molding, per-shot machine actual values.

Data: Cross-Process Chain data, lower workpiece (N. West, Univ. Kassel, 2025;
github.com/nikolaiwest/cpc-data @ e079115; MIT), ``molding/kassel_cpc_lower_workpiece/
static_data.csv`` (7,861 shots), read by the gateway's replay preset ``kassel`` and turned
into per-shot features by the gateway's :class:`renkei.edge.features.ShotFeatures` (the whole file
streamed in production order, as a replay would).

Inputs: the pass-through values of the machine's per-shot ACTUAL process values (vendor
codes, semantics not documented upstream; upstream ``extraction.yml`` lists them as
"actual"): ``t4052_s``, ``t4015_s``, ``p4055_bar``, ``p4072_bar``, ``t4018_s``,
``V4062_cm3``, ``t4012_s``. Left out on purpose: set-points (the designed deviations change
them, which would make detection trivial), ``V4065_cm3`` (constant in all reference shots),
the barrel/hot-runner temperature actuals ``T8xxI_C``, ``V301I_cm3`` and ``t007_s`` (0 in
the 1,625 shots whose values were not recorded, 1,589 of them in reference_04), the part
weight (measured offline, missing for 2,853 shots) and the ``_dev`` EWMA features (they
forget a persistent deviation within ~20 shots, while the designed deviations last whole
runs of 50-180 shots).

Protocol (2.0.0, recipe :mod:`renkei.models.profiles.kassel_recipe`): only ``reference_*``
shots are normal. Each of the five reference runs (different days) is split in production
order: first 75 % → calibration (fit + cross-conformal threshold), last 25 % → evaluation
negatives (the same negatives as 1.x). Evaluation: those held-out reference shots vs every
deviation family (cooling_time, injection_velocity, switching_point, mold_temperature,
glass_fiber_content), ROC-AUC and detection rate at the threshold per family. Shots with a
missing value (32) are not scored, as on the gateway.

:func:`build` keeps the 1.x split (first 60 % fit, next 15 % threshold hold-out) for the
:class:`~renkei.models.profiles._common.ProfileData` interface (ONNX parity test); the
shipped model is trained by :func:`train`.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np

from renkei.edge.sources.presets import KASSEL_CLASS_CODES
from renkei.edge.sources.replay import ReplayOptions, ReplaySource
from renkei.models.profiles._common import EvalSet, ProfileData, require_file
from renkei.models.profiles._features import shot_feature_rows

if TYPE_CHECKING:
    from renkei.core.manifest import ModelManifest
    from renkei.models.reporting import ReportData

__all__ = ["FEATURES", "build", "evaluate", "report", "train"]

FILE: Final = "molding/kassel_cpc_lower_workpiece/static_data.csv"
FEATURES: Final = (
    "t4052_s",
    "t4015_s",
    "p4055_bar",
    "p4072_bar",
    "t4018_s",
    "V4062_cm3",
    "t4012_s",
)
FIT_FRACTION: Final = 0.60
HOLDOUT_FRACTION: Final = 0.15


def train(data_dir: Path, out_dir: Path) -> ModelManifest:
    """Fit, threshold (cross-conformal), export and evaluate ``kassel-shot-t2`` 2.x
    (:func:`renkei.models.profiles.kassel_recipe.train`)."""
    from renkei.models.profiles import kassel_recipe

    return kassel_recipe.train(data_dir, out_dir)


def evaluate(data_dir: Path, model_dir: Path) -> dict[str, float]:
    """Re-compute the evaluation numbers with the artifact in ``model_dir``."""
    from renkei.models.profiles import kassel_recipe

    return kassel_recipe.evaluate(data_dir, model_dir)


def report(data_dir: Path, model_dir: Path) -> ReportData:
    """Report data (score traces, ROC/PR, drift trace, tables) of the artifact."""
    from renkei.models.profiles import kassel_report

    return kassel_report.report(data_dir, model_dir)


def _run_ids(path: Path) -> np.ndarray:
    """(n,) ``class_value`` of every shot in file order (production order)."""
    with path.open(newline="", encoding="utf-8-sig") as fh:
        return np.array([row["class_value"] for row in csv.DictReader(fh, delimiter=";")])


def build(data_dir: Path) -> ProfileData:
    """Build the ``kassel-shot-t2`` training/evaluation data (see module docstring).

    Raises:
        FileNotFoundError: the CSV is missing (path named).
        ValueError: the file's shot order or run labels are not as documented.
    """
    path = require_file(data_dir, FILE)
    src = ReplaySource(ReplayOptions(path=path, preset="kassel", timestamps="keep", block_rows=256))
    table = shot_feature_rows(src.blocks()).select(FEATURES)
    runs = _run_ids(path)
    if runs.size != table.x.shape[0] or not np.all(np.diff(src.recorded_t_ms) > 0):
        raise ValueError(f"{path}: expected one feature row per shot in file order")
    ok = table.finite_rows()
    part = np.full(runs.size, "", dtype=object)  # fit / hold / eval for reference shots
    for run in sorted({r for r in runs if r.startswith("reference")}):
        idx = np.flatnonzero((runs == run) & ok)
        n_fit = round(FIT_FRACTION * idx.size)
        n_hold = round(HOLDOUT_FRACTION * idx.size)
        part[idx[:n_fit]] = "fit"
        part[idx[n_fit : n_fit + n_hold]] = "hold"
        part[idx[n_fit + n_hold :]] = "eval"
    ref_eval = table.x[part == "eval"]
    code_of = {code: family for family, code in KASSEL_CLASS_CODES.items()}
    eval_sets: list[EvalSet] = []
    deviation = ok & (table.labels > 0)
    eval_sets.append(_vs_reference("all_deviations", ref_eval, table.x[deviation]))
    for code in sorted(code_of):
        if code == 0:
            continue
        rows = ok & (table.labels == code)
        eval_sets.append(_vs_reference(code_of[code], ref_eval, table.x[rows]))
    # Design-of-experiment centre points: runs of a family whose varied parameter is a
    # recorded set-point, with every set-point equal to the reference runs' (normal by
    # design). Identified from the set-point columns only, never from scores.
    centre = _centre_point_runs(path, runs)
    for family in _SETPOINT_FAMILIES:
        code = KASSEL_CLASS_CODES[family]
        rows = ok & (table.labels == code) & ~np.isin(runs, sorted(centre))
        eval_sets.append(_vs_reference(f"{family}_without_centre_points", ref_eval, table.x[rows]))
    for run in sorted({r for r in runs if r.startswith("injection_velocity")}):
        rows = ok & (runs == run)
        ev = _vs_reference(f"level_{run}", ref_eval, table.x[rows])
        eval_sets.append(EvalSet(ev.name, ev.x, ev.labels, what="auc"))
    units = dict(src.fields)
    return ProfileData(
        names=list(FEATURES),
        units={n: units.get(n, "") or "1" for n in FEATURES},
        descriptions={
            n: f"per-shot actual value of machine parameter {n.split('_')[0]} (vendor code; "
            "semantics not documented upstream)"
            for n in FEATURES
        },
        x_fit=table.x[part == "fit"],
        x_holdout=table.x[part == "hold"],
        feature_kind="shot",
        window_s=None,
        data_source=(
            "Kassel CPC data, lower workpiece (N. West, Univ. Kassel 2025; "
            f"github.com/nikolaiwest/cpc-data @ e079115; MIT): {FILE}"
        ),
        fitted_on=(
            "normal only: first 60 % (production order) of each reference_01…05 run; "
            "next 15 % of each run set the threshold"
        ),
        eval_sets=eval_sets,
        notes=[
            "Protocol: the last 25 % of every reference run (never fitted) are the "
            "negatives; each deviation family's shots are the positives. "
            "`*_without_centre_points`: the same without the design's centre-point runs "
            "(injection_velocity_030_1/_2, switching_point_22_1: every recorded set-point "
            "equals the reference, i.e. normal by design; identified from the set-point "
            "columns). `level_*`: ROC-AUC of each injection-velocity level. "
            "`<family>.recall` = share of that family's shots above the threshold; "
            "`<family>.far` = share of held-out reference shots above it (same for all).",
            "Inputs are the machine's per-shot actual values only (see models/profiles/"
            "kassel.py for why set-points, temperatures, weight and `_dev` features are "
            "left out). Vendor parameter semantics are not documented upstream.",
            "Gateway: replay preset `kassel` (shot stream); the model scores every shot "
            "with all 7 inputs finite.",
        ],
    )


#: Families whose varied parameter is a recorded set-point column (Q305 = injection flow of
#: stage 2, V305 = switch-over volume; their reference values are 30 and 22).
_SETPOINT_FAMILIES: Final = ("injection_velocity", "switching_point")
_SETPOINT_COLUMNS: Final = (
    *(f"T{n}" for n in (*range(801, 807), *range(831, 838))),
    "V403",
    "Q304",
    "Q305",
    "V304",
    "V305",
    *(f"{p}{n}" for p in ("Q", "p", "t") for n in (311, 312, 313)),
)


def _centre_point_runs(path: Path, runs: np.ndarray) -> set[str]:
    """Runs of :data:`_SETPOINT_FAMILIES` whose median set-points equal the reference's.

    The reference set-points are the median over reference shots with recorded (non-zero)
    set-points (reference_04 has all set-points 0: not recorded).
    """
    with path.open(newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh, delimiter=";"))
    sp = np.array(
        [[float(r[c].replace(",", ".") or "nan") for c in _SETPOINT_COLUMNS] for r in rows]
    )
    is_ref = np.char.startswith(runs.astype(str), "reference") & (np.nansum(sp, axis=1) > 0)
    ref = np.nanmedian(sp[is_ref], axis=0)
    centre = set()
    for run in sorted(set(runs.tolist())):
        if run.startswith(_SETPOINT_FAMILIES) and np.allclose(
            np.nanmedian(sp[runs == run], axis=0), ref
        ):
            centre.add(run)
    return centre


def _vs_reference(name: str, negatives: np.ndarray, positives: np.ndarray) -> EvalSet:
    x = np.vstack([negatives, positives])
    y = np.r_[np.zeros(len(negatives), np.int8), np.ones(len(positives), np.int8)]
    return EvalSet(f"ref_heldout_vs_{name}", x, y)
