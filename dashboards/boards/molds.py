"""金型 / Molds: shots against the maintenance interval, predicted remaining shots, process
deviations per shot, cycle time.
"""

from __future__ import annotations

from renkei.core.influx import contract as c
from renkei.dashboards.panels import (
    Board,
    bargauge_panel,
    bi,
    dashed_band,
    machine_variables,
    table_panel,
    thresholds,
    timeseries_panel,
)
from renkei.dashboards.targets import MACHINE_TAGS, series, table

__all__ = ["molds"]


def molds() -> Board:
    """金型 / Molds: shots vs maintenance interval, remaining shots, deviations per shot."""
    b = Board(
        uid="renkei-molds",
        title=bi("金型", "Molds"),
        description="Mold shot counts against their maintenance interval, predicted remaining "
        "shots, and per-shot process deviations.",
        variables=machine_variables(),
        time_from="now-24h",
    )
    b.add(
        table_panel(),
        title=bi("金型の状態", "Mold status"),
        description="Latest mold counters: lifetime shots, shots since maintenance, "
        "maintenance interval and remaining shots until maintenance is due.",
        targets=[
            table(
                'last("shot_count") AS "shot_count", '
                'last("shots_since_maintenance") AS "since_maintenance", '
                'last("maintenance_interval_shots") AS "interval", '
                'last("remaining_shots") AS "remaining_shots"',
                c.MOLD,
                ("time", "shot_count", "since_maintenance", "interval", "remaining_shots"),
                by=(*MACHINE_TAGS, "mold"),
            )
        ],
        width=14,
    )
    b.add(
        bargauge_panel("percentunit", min_value=0, max_value=1).thresholds(
            thresholds((None, "green"), (0.8, "orange"), (0.95, "red"))
        ),
        title=bi("保全間隔に対するショット数", "Shots against maintenance interval"),
        description="Shots since maintenance / maintenance interval.",
        targets=[
            series(
                'last("shots_since_maintenance") / last("maintenance_interval_shots") AS "used"',
                c.MOLD,
                ("time", "used"),
                by=("machine", "mold"),
                interval=None,
                alias="$tag_mold ($tag_machine)",
            )
        ],
        width=10,
    )
    b.add(
        timeseries_panel("none").override_by_regexp(".*(p10|p90)", dashed_band()),
        title=bi("残りショット数(予測)", "Remaining shots (predicted)"),
        description="Remaining shots until maintenance (min of interval and wear model) "
        "with the wear model's 10 %/90 % band (dashed).",
        targets=[
            series(
                'mean("remaining_shots") AS "remaining", '
                'min("remaining_shots_p10") AS "p10", max("remaining_shots_p90") AS "p90"',
                c.MOLD,
                ("time", "remaining", "p10", "p90"),
                by=("machine", "mold"),
            )
        ],
        width=12,
    )
    b.add(
        timeseries_panel("none"),
        title=bi("ショットカウンタ", "Shot counter"),
        description="The machine's shot counter (shot.shot_count).",
        targets=[series('max("shot_count") AS "shot_count"', c.SHOT, ("time", "shot_count"))],
        width=12,
    )
    b.add(
        timeseries_panel(),
        title=bi("ショットごとのプロセス偏差", "Process deviations per shot"),
        description="Every *_dev shot feature: the shot's value minus the running (EWMA) "
        "reference of the previous shots (renkei.edge.features.shot).",
        targets=[series("mean(/_dev$/)", c.SHOT, ("time", "mean_*"))],
        width=24,
        height=10,
    )
    b.add(
        timeseries_panel("s"),
        title=bi("サイクルタイム", "Cycle time"),
        targets=[
            series('mean("cycle_time_s") AS "cycle_time_s"', c.SHOT, ("time", "cycle_time_s"))
        ],
        width=24,
    )
    return b
