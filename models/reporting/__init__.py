"""Model reports: what a recipe shows an engineer (:mod:`.data`) and its HTML rendering.

A recipe module (``kind="recipe"`` in :mod:`renkei.models.profiles`) may define
``report(data_dir: Path, model_dir: Path) -> ReportData``; ``renkei models report NAME``
renders it to one self-contained HTML file (plots embedded, :mod:`.render`, drawn by
:mod:`.plots` with matplotlib's Agg canvas) that the model card links to. matplotlib and
scikit-learn are imported only when a page is rendered.
"""

from renkei.models.reporting.data import (
    Classification,
    ReportData,
    RulTrace,
    ScoreTrace,
    Table,
)
from renkei.models.reporting.render import REPORT_FILE, render_report, write_report

__all__ = [
    "REPORT_FILE",
    "Classification",
    "ReportData",
    "RulTrace",
    "ScoreTrace",
    "Table",
    "render_report",
    "write_report",
]
