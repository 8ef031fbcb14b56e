"""Recipe ``cmapss-fd001-rul`` 3.0.0: NASA C-MAPSS FD001 (one operating condition) RUL.

The one C-MAPSS recipe (:mod:`renkei.models.profiles.cmapss_recipe`: regime
normalisation, any-length history features, boosted trees with a cross-conformal band per
history-length × predicted-RUL cell, trained on the true RUL of engines truncated like the
test sets), fitted on FD001's 100 training engines and scored on
its 100 official test engines. :mod:`renkei.models.profiles.cmapss_fd002` is the same
recipe on FD002 (six operating conditions).

History: 2.0.0 (target min(RUL, 125), band of min(RUL, 125)) scored test RMSE 12.05 vs the
true RUL, band coverage 74 % of min(RUL, 125). 1.x (EWMA/slope features of the raw
sensors, drift from a frozen 25-cycle baseline, so engines shorter than 25 cycles got no
RUL) scored test RMSE 12.26 / PHM08 215 (models/RESULTS.md §5).
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from renkei.core.manifest import ModelManifest
from renkei.models.profiles import cmapss_recipe
from renkei.models.profiles.cmapss_export import evaluate_subset, train_subset
from renkei.models.reporting.data import ReportData

__all__ = ["CONFIG", "FILES", "NAME", "SUBSET", "VERSION", "evaluate", "report", "train"]

NAME: Final = "cmapss-fd001-rul"
VERSION: Final = "3.0.0"
SUBSET: Final = "FD001"
FILES: Final = cmapss_recipe.files(SUBSET)
#: history features of the regime fields (``{s}_rn``, ``{s}_rb`` of each sensor)
CONFIG: Final = cmapss_recipe.CONFIG


def train(data_dir: Path, out_dir: Path) -> ModelManifest:
    """Fit, export and evaluate ``cmapss-fd001-rul`` into ``out_dir``."""
    return train_subset(SUBSET, NAME, VERSION, data_dir, out_dir)


def evaluate(data_dir: Path, model_dir: Path) -> dict[str, float]:
    """Re-score the FD001 test engines with the artifact in ``model_dir``."""
    return evaluate_subset(SUBSET, data_dir, model_dir)


def report(data_dir: Path, model_dir: Path) -> ReportData:
    """Report data of the artifact in ``model_dir`` (see :mod:`.cmapss_report`)."""
    from renkei.models.profiles.cmapss_report import report_subset

    return report_subset(SUBSET, NAME, data_dir, model_dir)
