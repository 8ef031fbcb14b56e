"""共有可能能力 / Shared capacity: spare hours per machine and day/week over the planning
horizon, the availability ratio used, totals.
"""

from __future__ import annotations

from grafana_foundation_sdk.models import common

from renkei.core.influx import contract as c
from renkei.dashboards.panels import (
    Board,
    bargauge_panel,
    bi,
    machine_variables,
    table_panel,
    text_panel,
    timeseries_panel,
)
from renkei.dashboards.targets import series, table

__all__ = ["capacity"]


def capacity() -> Board:
    """共有可能能力 / Shared capacity: spare hours per machine over the planning horizon."""
    b = Board(
        uid="renkei-capacity",
        title=bi("共有可能能力", "Shared capacity"),
        description="Spare hours (available - booked - expected downtime) per machine and "
        "day over the 12-week horizon, from the capacity measurement.",
        variables=machine_variables(c.CAPACITY),
        time_from="now/d",
        time_to="now+84d",
        refresh="5m",
    )
    b.add(
        timeseries_panel("h").draw_style(common.GraphDrawStyle.BARS).fill_opacity(60),
        title=bi("日別の空き時間", "Spare hours per day"),
        targets=[series('"spare_h"', c.CAPACITY, ("time", "spare_h"), interval=None)],
        width=24,
    )
    b.add(
        timeseries_panel("h").draw_style(common.GraphDrawStyle.BARS).fill_opacity(60),
        title=bi("週別の空き時間", "Spare hours per week"),
        description="Weeks start on Monday 00:00 Japan time (offset 87 h from the epoch's "
        "Thursday).",
        targets=[
            series(
                'sum("spare_h") AS "spare_h"',
                c.CAPACITY,
                ("time", "spare_h"),
                interval="7d, 87h",
                fill="0",
            )
        ],
        width=14,
    )
    b.add(
        bargauge_panel("percentunit", min_value=0, max_value=1),
        title=bi("稼働率(計画に対する実績)", "Availability ratio used"),
        description="Availability ratio the spare-hour computation used (measured from "
        "telemetry against the shift calendar, or the 0.9 default).",
        targets=[
            series(
                'last("availability_ratio") AS "ratio"',
                c.CAPACITY,
                ("time", "ratio"),
                interval=None,
            )
        ],
        width=10,
    )
    b.add(
        table_panel(),
        title=bi("期間合計", "Totals over the range"),
        targets=[
            table(
                'sum("available_h") AS "available_h", sum("booked_h") AS "booked_h", '
                'sum("downtime_h") AS "downtime_h", sum("spare_h") AS "spare_h"',
                c.CAPACITY,
                ("time", "available_h", "booked_h", "downtime_h", "spare_h"),
            )
        ],
        width=24,
    )
    b.add(
        text_panel(
            "空き時間 = 計画稼働時間 − 予約済み時間 − 予想停止時間 (0 未満は 0)。\n\n"
            "Spare hours = scheduled hours − booked hours − expected downtime "
            "(scheduled × (1 − availability ratio)), clipped at 0 "
            "(`renkei.cloud.capacity.spare`). Written by the capacity service as the `capacity` "
            "measurement, one point per machine and site-local day."
        ),
        title=bi("定義", "Definition"),
        width=24,
        height=4,
    )
    return b
