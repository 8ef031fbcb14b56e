"""設備詳細 / Machine detail: anomaly score vs threshold, features, RUL, events, and the
data-quality row of live sources.
"""

from __future__ import annotations

from typing import Final

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as dm

from renkei.core.influx import contract as c
from renkei.dashboards.boards.common import ANOMALY_FLAG, ANOMALY_STATES
from renkei.dashboards.panels import (
    DASHED,
    Board,
    bi,
    dashed_band,
    machine_variables,
    table_panel,
    timeline_panel,
    timeseries_panel,
    value_map,
)
from renkei.dashboards.targets import M, series, table

__all__ = ["LINK_STATES", "data_quality", "machine_detail"]


def machine_detail() -> Board:
    """設備詳細 / Machine detail: features, anomaly score vs threshold, RUL, events."""
    feature = (
        dashboard.QueryVariable("feature")
        .label(bi("特徴量", "Feature"))
        .datasource(
            dm.DataSourceRef(type_val="influxdb", uid="renkei-influxdb"),
        )
        .query(f'SHOW FIELD KEYS FROM "{c.FEATURES}"')
        .regex("/^.*(?:_mean|_rms_g)$/")
        .multi(True)
        .include_all(True)
        .refresh(dm.VariableRefresh.ON_DASHBOARD_LOAD)
        .sort(dm.VariableSort.ALPHABETICAL_ASC)
        .current(dm.VariableOption(selected=True, text=["All"], value=["$__all"]))
    )
    b = Board(
        uid="renkei-machine-detail",
        title=bi("設備詳細", "Machine detail"),
        description="Anomaly score against its threshold, window features, remaining useful "
        "life with its uncertainty, ground truth and events of the selected machines.",
        variables=[*machine_variables(), feature],
        time_from="now-6h",
    )
    b.add(
        timeseries_panel()
        .override_by_regexp(
            ".*threshold",
            [
                dm.DynamicConfigValue(id_val="custom.lineStyle", value=DASHED),
                dm.DynamicConfigValue(id_val="color", value={"mode": "fixed", "fixedColor": "red"}),
                dm.DynamicConfigValue(id_val="custom.fillOpacity", value=0),
            ],
        )
        .scale_distribution(
            cb.ScaleDistributionConfig().type(common.ScaleDistribution.LOG).log(10)
        ),
        title=bi("異常スコアとしきい値", "Anomaly score vs threshold"),
        description="Mean model score per interval and the model's alarm threshold "
        "(dashed); log scale.",
        targets=[
            series(
                'mean("score") AS "score", max("threshold") AS "threshold"',
                c.ANOMALY,
                ("time", "score", "threshold"),
            )
        ],
        width=24,
        height=9,
    )
    b.add(
        timeline_panel().mappings(value_map(ANOMALY_STATES)).max_data_points(200),
        title=bi("異常判定", "Anomaly flag"),
        targets=[ANOMALY_FLAG],
        width=12,
        height=6,
    )
    b.add(
        timeline_panel()
        .mappings(
            value_map(
                {
                    "0": (bi("正常", "normal"), "green"),
                    "1": (bi("故障コード1", "fault 1"), "orange"),
                    "2": (bi("故障コード2", "fault 2"), "orange"),
                    "3": (bi("故障コード3", "fault 3"), "orange"),
                    "4": (bi("故障コード4", "fault 4"), "orange"),
                    "5": (bi("故障コード5", "fault 5"), "orange"),
                }
            )
        )
        .max_data_points(200),
        title=bi("正解ラベル(シミュレータ・データセット)", "Ground truth (simulator/datasets)"),
        description="Fault label published by replayed datasets and the simulator "
        "(0 = normal; simulator: 1 heater band, 2 bearing, 3 cooling, 4 mold wear).",
        targets=[series('max("fault") AS "fault"', c.LABEL, ("time", "fault"), fill="null")],
        width=12,
        height=6,
    )
    b.add(
        timeseries_panel(),
        title=bi("特徴量", "Features"),
        description="Window features selected with the Feature variable (mean per interval).",
        targets=[series("mean(/^$feature$/)", c.FEATURES, ("time", "mean_*"))],
        width=24,
        height=10,
    )
    b.add(
        timeseries_panel("none").override_by_regexp(".*(p10|p90)", dashed_band()),
        title=bi("残存寿命(RUL)と不確かさ", "Remaining useful life (RUL) with uncertainty"),
        description="Median RUL in cycles and its 10 %/90 % quantiles (dashed), from the "
        "rul measurement (RUL model).",
        targets=[
            series(
                'mean("rul_cycles") AS "rul", min("rul_p10") AS "p10", max("rul_p90") AS "p90"',
                c.RUL,
                ("time", "rul", "p10", "p90"),
            )
        ],
        width=14,
        height=8,
    )
    b.add(
        table_panel(),
        title=bi("RUL(最新)", "RUL (latest)"),
        targets=[
            table(
                'last("rul_cycles") AS "rul", last("rul_p10") AS "p10", last("rul_p90") AS "p90"',
                c.RUL,
                ("time", "rul", "p10", "p90"),
            )
        ],
        width=10,
        height=8,
    )
    b.add(
        table_panel(),
        title=bi("イベント", "Events"),
        targets=[
            table(
                '"code", "severity", "message"',
                c.EVENT,
                ("time", "code", "severity", "message"),
                by=("machine",),
                tail=" ORDER BY time DESC LIMIT 100",
            )
        ],
        width=24,
        height=8,
    )
    data_quality(b)
    return b


LINK_STATES: Final = {
    "0": (bi("切断", "Down"), "red"),
    "1": (bi("接続", "Up"), "green"),
}


def data_quality(b: Board) -> None:
    """データ品質 / Data quality row: link state, bad readings, gateway-stamped share of the
    live sources' ``quality`` rows (machines with recorded sources have none)."""
    b.row(bi("データ品質(ライブ接続)", "Data quality (live sources)"))
    b.add(
        timeline_panel().mappings(value_map(LINK_STATES)).max_data_points(200),
        title=bi("接続状態", "Link state"),
        description="Link between the gateway and the machine (min of link_up per interval: "
        "Down if the link was down at any quality row of the interval). Empty = no live source "
        "or the gateway sent nothing.",
        targets=[
            series('min("link_up") AS "link_up"', c.QUALITY, ("time", "link_up"), fill="null")
        ],
        width=24,
        height=5,
    )
    b.add(
        timeseries_panel("short").draw_style(common.GraphDrawStyle.BARS).fill_opacity(60),
        title=bi("不良・不確かな読み取り", "Bad and uncertain readings"),
        description="Readings the device marked bad (published as null, never as a value) "
        "and uncertain (published), per interval.",
        targets=[
            series(
                'sum("bad") AS "bad", sum("uncertain") AS "uncertain"',
                c.QUALITY,
                ("time", "bad", "uncertain"),
            )
        ],
        width=12,
    )
    b.add(
        timeseries_panel("percentunit").min(0).max(1),
        title=bi("ゲートウェイ時刻の割合", "Gateway-stamped share"),
        description="Share of readings stamped with the gateway's clock instead of the "
        "device's: 100 % for protocols without timestamps (Modbus, SLMP); elsewhere a "
        "device clock off by more than max_clock_skew_s.",
        targets=[
            series(
                'sum("gateway_time") / sum("readings") AS "gateway_time_share"',
                c.QUALITY,
                ("time", "gateway_time_share"),
                where=f'{M} AND "readings" > 0',
            )
        ],
        width=12,
    )
