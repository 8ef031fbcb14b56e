"""The five Renkei dashboards, as code (see ``dashboards/README.md`` for the definitions).

Every panel query is InfluxQL over the measurements of :mod:`renkei.core.influx.contract`; the
expected result columns next to each query are checked by the integration tests against a
real InfluxDB filled by the pipeline. Column patterns ending in ``*`` stand for one or more
columns with that prefix (regex field selections such as ``mean(/_dev$/)``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from renkei.dashboards.boards.capacity import capacity
from renkei.dashboards.boards.fleet import gateway_fleet
from renkei.dashboards.boards.machine import data_quality, machine_detail
from renkei.dashboards.boards.molds import molds
from renkei.dashboards.boards.overview import plant_overview
from renkei.dashboards.panels import Board

__all__ = [
    "BOARDS",
    "build_boards",
    "capacity",
    "data_quality",
    "gateway_fleet",
    "machine_detail",
    "molds",
    "plant_overview",
]

#: Dashboard factories, in the order they are listed.
BOARDS: Final[tuple[Callable[[], Board], ...]] = (
    plant_overview,
    machine_detail,
    molds,
    gateway_fleet,
    capacity,
)


def build_boards() -> list[Board]:
    """Build every dashboard."""
    return [factory() for factory in BOARDS]
