"""What more than one dashboard shows: the anomaly-state value map and the anomaly-flag
target (state timelines of the plant overview and the machine detail).
"""

from __future__ import annotations

from typing import Final

from renkei.core.influx import contract as c
from renkei.dashboards.panels import bi
from renkei.dashboards.targets import series

__all__ = ["ANOMALY_FLAG", "ANOMALY_STATES"]

ANOMALY_STATES: Final = {
    "0": (bi("正常", "Normal"), "green"),
    "1": (bi("異常", "Anomaly"), "red"),
}


#: Anomaly flag per machine and interval (state timelines).
ANOMALY_FLAG: Final = series(
    'max("is_anomaly") AS "anomaly"', c.ANOMALY, ("time", "anomaly"), fill="null"
)
