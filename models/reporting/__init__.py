"""Model reports: what a recipe shows an engineer (:mod:`.data`) and its HTML rendering.

A recipe module (``kind="recipe"`` in :mod:`renkei.models.profiles`) may define
``report(data_dir: Path, model_dir: Path) -> ReportData``; ``renkei models report NAME``
renders it to one self-contained HTML file (plots embedded) that the model card links to.
"""

from renkei.models.reporting.data import (
    Classification,
    ReportData,
    RulTrace,
    ScoreTrace,
    Table,
)

__all__ = ["Classification", "ReportData", "RulTrace", "ScoreTrace", "Table"]
