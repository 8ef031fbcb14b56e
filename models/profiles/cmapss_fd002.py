"""Recipe ``cmapss-fd002-rul`` 2.0.0: NASA C-MAPSS FD002 (six operating conditions) RUL.

The same recipe and constants as ``cmapss-fd001-rul`` 3.0.0
(:mod:`renkei.models.profiles.cmapss_recipe`), fitted on FD002's 260 training engines and
scored on its 259 official test engines (three of them shorter than 25 cycles).

History: 1.0.0 (target min(RUL, 125)) scored test RMSE 22.38 vs the true RUL (10.04 vs
min(RUL, 125)), band coverage 84 % of min(RUL, 125).
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from renkei.core.manifest import ModelManifest
from renkei.models.profiles import cmapss_recipe
from renkei.models.profiles.cmapss_export import evaluate_subset, train_subset
from renkei.models.reporting.data import ReportData

__all__ = ["FILES", "NAME", "SUBSET", "VERSION", "evaluate", "report", "train"]

NAME: Final = "cmapss-fd002-rul"
VERSION: Final = "2.0.0"
SUBSET: Final = "FD002"
FILES: Final = cmapss_recipe.files(SUBSET)


def train(data_dir: Path, out_dir: Path) -> ModelManifest:
    """Fit, export and evaluate ``cmapss-fd002-rul`` into ``out_dir``."""
    return train_subset(SUBSET, NAME, VERSION, data_dir, out_dir)


def evaluate(data_dir: Path, model_dir: Path) -> dict[str, float]:
    """Re-score the FD002 test engines with the artifact in ``model_dir``."""
    return evaluate_subset(SUBSET, data_dir, model_dir)


def report(data_dir: Path, model_dir: Path) -> ReportData:
    """Report data of the artifact in ``model_dir`` (see :mod:`.cmapss_report`)."""
    from renkei.models.profiles.cmapss_report import report_subset

    return report_subset(SUBSET, NAME, data_dir, model_dir)
