"""The five Renkei dashboards, as code (see ``dashboards/README.md`` for the definitions).

Every panel query is InfluxQL over the measurements of :mod:`renkei.core.influx.contract`; the
expected result columns next to each query are checked by the integration tests against a
real InfluxDB filled by the pipeline. Column patterns ending in ``*`` stand for one or more
columns with that prefix (regex field selections such as ``mean(/_dev$/)``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as dm

from renkei.core.influx import contract as c
from renkei.dashboards.panels import (
    Board,
    alertlist_panel,
    bargauge_panel,
    bi,
    expression_math,
    expression_reduce,
    history_panel,
    machine_variables,
    table_panel,
    tag_variable,
    text_panel,
    thresholds,
    timeline_panel,
    timeseries_panel,
    value_map,
)
from renkei.dashboards.queries import GATEWAY_FILTER, MACHINE_FILTER, Target

__all__ = ["BOARDS", "build_boards"]

M: Final = MACHINE_FILTER
G: Final = GATEWAY_FILTER
BY_MACHINE: Final = '"site"::tag, "line"::tag, "machine"::tag'
ANOMALY_STATES: Final = {
    "0": (bi("正常", "Normal"), "green"),
    "1": (bi("異常", "Anomaly"), "red"),
}

# --------------------------------------------------------------------------- OEE queries

#: Availability: share of 1-minute buckets of the range with at least one scored row.
AVAILABILITY_Q: Final = (
    'SELECT mean("up") AS "availability" FROM ('
    f'SELECT count("score") / count("score") AS "up" FROM "{c.ANOMALY}" '
    f"WHERE $timeFilter AND {M} GROUP BY time(1m), {BY_MACHINE} fill(0)"
    f") GROUP BY {BY_MACHINE}"
)
#: Performance: best demonstrated cycle (5th percentile) / mean cycle time.
PERFORMANCE_Q: Final = (
    'SELECT percentile("cycle_time_s", 5) / mean("cycle_time_s") AS "performance" '
    f'FROM "{c.SHOT}" WHERE $timeFilter AND {M} GROUP BY {BY_MACHINE}'
)
#: Quality: share of scored windows/shots the model did not flag.
QUALITY_Q: Final = (
    'SELECT 1 - mean("is_anomaly") AS "quality" '
    f'FROM "{c.ANOMALY}" WHERE $timeFilter AND {M} GROUP BY {BY_MACHINE}'
)
MACHINE_TAGS: Final = ("site", "line", "machine")


def plant_overview() -> Board:
    """設備概要 / Plant overview: state, OEE and its factors, anomaly heat map, alarms."""
    b = Board(
        uid="renkei-plant-overview",
        title=bi("設備概要", "Plant overview"),
        description="Every machine's state, OEE (availability × performance × quality), "
        "anomaly heat map and active alarms.",
        variables=machine_variables(),
        time_from="now-24h",
    )
    b.row(bi("状態", "State"))
    b.add(
        table_panel()
        .mappings(value_map(ANOMALY_STATES))
        .override_by_name(
            "score_ratio",
            [
                dm.DynamicConfigValue(id_val="unit", value="percentunit"),
                dm.DynamicConfigValue(
                    id_val="thresholds",
                    value=thresholds((None, "green"), (0.8, "orange"), (1.0, "red")).build(),
                ),
                dm.DynamicConfigValue(
                    id_val="custom.cellOptions", value={"type": "color-background"}
                ),
            ],
        ),
        title=bi("設備状態(最新)", "Machine state (latest)"),
        description="Latest anomaly score relative to the model threshold (score_ratio, "
        "> 100 % = anomalous) and the latest anomaly flag, per machine.",
        targets=[
            Target(
                "A",
                'SELECT last("score") / last("threshold") AS "score_ratio", '
                f'last("is_anomaly") AS "anomaly" FROM "{c.ANOMALY}" '
                f"WHERE $timeFilter AND {M} GROUP BY {BY_MACHINE}",
                ("time", "score_ratio", "anomaly"),
                result_format="table",
                tags=MACHINE_TAGS,
            )
        ],
        width=10,
    )
    b.add(
        timeline_panel().mappings(value_map(ANOMALY_STATES)).max_data_points(200),
        title=bi("状態の推移", "State timeline"),
        description="Anomaly flag per machine and interval (max of is_anomaly); gaps = no "
        "scored data.",
        targets=[
            Target(
                "A",
                f'SELECT max("is_anomaly") AS "anomaly" FROM "{c.ANOMALY}" '
                f'WHERE $timeFilter AND {M} GROUP BY time($__interval), "machine"::tag fill(null)',
                ("time", "anomaly"),
                alias="$tag_machine",
                tags=("machine",),
            )
        ],
        width=14,
    )
    b.row(bi("総合設備効率", "OEE"))
    oee_targets = [
        Target("A", AVAILABILITY_Q, ("time", "availability"), hide=True, tags=MACHINE_TAGS),
        Target("P", PERFORMANCE_Q, ("time", "performance"), hide=True, tags=MACHINE_TAGS),
        Target("Q", QUALITY_Q, ("time", "quality"), hide=True, tags=MACHINE_TAGS),
    ]
    b.add(
        bargauge_panel("percentunit", min_value=0, max_value=1)
        .thresholds(thresholds((None, "red"), (0.6, "orange"), (0.85, "green")))
        .display_name("${__field.labels.site} ${__field.labels.machine}"),
        title=bi("OEE(総合設備効率)", "OEE"),
        description="OEE = availability × performance × quality (Grafana expressions over "
        "the three factor queries). Machines without shots have no performance and no OEE.",
        targets=oee_targets,
        expressions=[
            expression_reduce("rA", "A", "last", hide=True),
            expression_reduce("rP", "P", "last", hide=True),
            expression_reduce("rQ", "Q", "last", hide=True),
            expression_math("OEE", "$rA * $rP * $rQ"),
        ],
        width=8,
        height=9,
    )
    b.add(
        table_panel()
        .override_by_regexp(
            "availability|performance|quality",
            [
                dm.DynamicConfigValue(id_val="unit", value="percentunit"),
                dm.DynamicConfigValue(
                    id_val="custom.cellOptions", value={"type": "gauge", "mode": "basic"}
                ),
                dm.DynamicConfigValue(id_val="min", value=0),
                dm.DynamicConfigValue(id_val="max", value=1),
            ],
        )
        .with_transformation(dm.DataTransformerConfig(id_val="merge", options={})),
        title=bi("OEE 3要素", "OEE factors"),
        description="Availability: share of 1-minute buckets with at least one scored window "
        "or shot. Performance: 5th-percentile cycle time / mean cycle time (shots). Quality: "
        "1 - share of scored windows/shots flagged anomalous.",
        targets=[
            Target("A", AVAILABILITY_Q, ("time", "availability"), "table", tags=MACHINE_TAGS),
            Target("P", PERFORMANCE_Q, ("time", "performance"), "table", tags=MACHINE_TAGS),
            Target("Q", QUALITY_Q, ("time", "quality"), "table", tags=MACHINE_TAGS),
        ],
        width=16,
        height=9,
    )
    b.row(bi("異常", "Anomalies"))
    b.add(
        history_panel()
        .thresholds(thresholds((None, "green"), (0.8, "yellow"), (1.0, "red")))
        .color_scheme(dashboard.FieldColor().mode(dm.FieldColorModeId.THRESHOLDS))
        .unit("percentunit")
        .max_data_points(60),
        title=bi("異常ヒートマップ", "Anomaly heat map"),
        description="Max anomaly score / threshold per machine and interval "
        "(green < 80 %, yellow < 100 %, red >= 100 %).",
        targets=[
            Target(
                "A",
                'SELECT max("score") / max("threshold") AS "score_ratio" '
                f'FROM "{c.ANOMALY}" WHERE $timeFilter AND {M} '
                'GROUP BY time($__interval), "machine"::tag fill(null)',
                ("time", "score_ratio"),
                alias="$tag_machine",
                tags=("machine",),
            )
        ],
        width=24,
        height=10,
    )
    b.add(
        table_panel(),
        title=bi("発生中の異常", "Active alarms"),
        description="Machines whose latest event in the range is an anomaly onset.",
        targets=[
            Target(
                "A",
                'SELECT "code", "severity", "message" FROM ('
                'SELECT last("code") AS "code", last("severity") AS "severity", '
                f'last("message") AS "message" FROM "{c.EVENT}" '
                f"WHERE $timeFilter AND {M} GROUP BY {BY_MACHINE}"
                f") WHERE \"code\" = 'anomaly_onset' GROUP BY {BY_MACHINE}",
                ("time", "code", "severity", "message"),
                result_format="table",
                tags=MACHINE_TAGS,
            )
        ],
        width=14,
    )
    b.add(
        alertlist_panel(),
        title=bi("アラート(Grafana)", "Firing alerts (Grafana)"),
        description="Firing and pending Renkei alert rules (Grafana alert state).",
        width=10,
    )
    return b


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
    dashed = {"fill": "dash", "dash": [10, 10]}
    b.add(
        timeseries_panel()
        .override_by_regexp(
            ".*threshold",
            [
                dm.DynamicConfigValue(id_val="custom.lineStyle", value=dashed),
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
            Target(
                "A",
                'SELECT mean("score") AS "score", max("threshold") AS "threshold" '
                f'FROM "{c.ANOMALY}" WHERE $timeFilter AND {M} '
                'GROUP BY time($__interval), "machine"::tag fill(none)',
                ("time", "score", "threshold"),
                alias="$tag_machine $col",
                tags=("machine",),
            )
        ],
        width=24,
        height=9,
    )
    b.add(
        timeline_panel().mappings(value_map(ANOMALY_STATES)).max_data_points(200),
        title=bi("異常判定", "Anomaly flag"),
        targets=[
            Target(
                "A",
                f'SELECT max("is_anomaly") AS "anomaly" FROM "{c.ANOMALY}" '
                f'WHERE $timeFilter AND {M} GROUP BY time($__interval), "machine"::tag fill(null)',
                ("time", "anomaly"),
                alias="$tag_machine",
                tags=("machine",),
            )
        ],
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
        targets=[
            Target(
                "A",
                f'SELECT max("fault") AS "fault" FROM "{c.LABEL}" '
                f'WHERE $timeFilter AND {M} GROUP BY time($__interval), "machine"::tag fill(null)',
                ("time", "fault"),
                alias="$tag_machine",
                tags=("machine",),
            )
        ],
        width=12,
        height=6,
    )
    b.add(
        timeseries_panel(),
        title=bi("特徴量", "Features"),
        description="Window features selected with the Feature variable (mean per interval).",
        targets=[
            Target(
                "A",
                f'SELECT mean(/^$feature$/) FROM "{c.FEATURES}" WHERE $timeFilter AND {M} '
                'GROUP BY time($__interval), "machine"::tag fill(none)',
                ("time", "mean_*"),
                alias="$tag_machine $col",
                tags=("machine",),
            )
        ],
        width=24,
        height=10,
    )
    b.add(
        timeseries_panel("none").override_by_regexp(
            ".*(p10|p90)",
            [
                dm.DynamicConfigValue(id_val="custom.lineStyle", value=dashed),
                dm.DynamicConfigValue(id_val="custom.fillOpacity", value=0),
            ],
        ),
        title=bi("残存寿命(RUL)と不確かさ", "Remaining useful life (RUL) with uncertainty"),
        description="Median RUL in cycles and its 10 %/90 % quantiles (dashed), from the "
        "rul measurement (RUL model).",
        targets=[
            Target(
                "A",
                'SELECT mean("rul_cycles") AS "rul", min("rul_p10") AS "p10", '
                f'max("rul_p90") AS "p90" FROM "{c.RUL}" WHERE $timeFilter AND {M} '
                'GROUP BY time($__interval), "machine"::tag fill(none)',
                ("time", "rul", "p10", "p90"),
                alias="$tag_machine $col",
                tags=("machine",),
            )
        ],
        width=14,
        height=8,
    )
    b.add(
        table_panel(),
        title=bi("RUL(最新)", "RUL (latest)"),
        targets=[
            Target(
                "A",
                'SELECT last("rul_cycles") AS "rul", last("rul_p10") AS "p10", '
                f'last("rul_p90") AS "p90" FROM "{c.RUL}" WHERE $timeFilter AND {M} '
                f"GROUP BY {BY_MACHINE}",
                ("time", "rul", "p10", "p90"),
                result_format="table",
                tags=MACHINE_TAGS,
            )
        ],
        width=10,
        height=8,
    )
    b.add(
        table_panel(),
        title=bi("イベント", "Events"),
        targets=[
            Target(
                "A",
                f'SELECT "code", "severity", "message" FROM "{c.EVENT}" '
                f'WHERE $timeFilter AND {M} GROUP BY "machine"::tag ORDER BY time DESC LIMIT 100',
                ("time", "code", "severity", "message"),
                result_format="table",
                tags=("machine",),
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
            Target(
                "A",
                f'SELECT min("link_up") AS "link_up" FROM "{c.QUALITY}" '
                f'WHERE $timeFilter AND {M} GROUP BY time($__interval), "machine"::tag fill(null)',
                ("time", "link_up"),
                alias="$tag_machine",
                tags=("machine",),
            )
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
            Target(
                "A",
                'SELECT sum("bad") AS "bad", sum("uncertain") AS "uncertain" '
                f'FROM "{c.QUALITY}" WHERE $timeFilter AND {M} '
                'GROUP BY time($__interval), "machine"::tag fill(none)',
                ("time", "bad", "uncertain"),
                alias="$tag_machine $col",
                tags=("machine",),
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
            Target(
                "A",
                'SELECT sum("gateway_time") / sum("readings") AS "gateway_time_share" '
                f'FROM "{c.QUALITY}" WHERE $timeFilter AND {M} AND "readings" > 0 '
                'GROUP BY time($__interval), "machine"::tag fill(none)',
                ("time", "gateway_time_share"),
                alias="$tag_machine",
                tags=("machine",),
            )
        ],
        width=12,
    )


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
    by_mold = f'{BY_MACHINE}, "mold"::tag'
    b.add(
        table_panel(),
        title=bi("金型の状態", "Mold status"),
        description="Latest mold counters: lifetime shots, shots since maintenance, "
        "maintenance interval and remaining shots until maintenance is due.",
        targets=[
            Target(
                "A",
                'SELECT last("shot_count") AS "shot_count", '
                'last("shots_since_maintenance") AS "since_maintenance", '
                'last("maintenance_interval_shots") AS "interval", '
                'last("remaining_shots") AS "remaining_shots" '
                f'FROM "{c.MOLD}" WHERE $timeFilter AND {M} GROUP BY {by_mold}',
                ("time", "shot_count", "since_maintenance", "interval", "remaining_shots"),
                result_format="table",
                tags=(*MACHINE_TAGS, "mold"),
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
            Target(
                "A",
                'SELECT last("shots_since_maintenance") / last("maintenance_interval_shots") '
                f'AS "used" FROM "{c.MOLD}" WHERE $timeFilter AND {M} '
                'GROUP BY "machine"::tag, "mold"::tag',
                ("time", "used"),
                alias="$tag_mold ($tag_machine)",
                tags=("machine", "mold"),
            )
        ],
        width=10,
    )
    b.add(
        timeseries_panel("none").override_by_regexp(
            ".*(p10|p90)",
            [
                dm.DynamicConfigValue(
                    id_val="custom.lineStyle", value={"fill": "dash", "dash": [10, 10]}
                ),
                dm.DynamicConfigValue(id_val="custom.fillOpacity", value=0),
            ],
        ),
        title=bi("残りショット数(予測)", "Remaining shots (predicted)"),
        description="Remaining shots until maintenance (min of interval and wear model) "
        "with the wear model's 10 %/90 % band (dashed).",
        targets=[
            Target(
                "A",
                'SELECT mean("remaining_shots") AS "remaining", '
                'min("remaining_shots_p10") AS "p10", max("remaining_shots_p90") AS "p90" '
                f'FROM "{c.MOLD}" WHERE $timeFilter AND {M} '
                'GROUP BY time($__interval), "machine"::tag, "mold"::tag fill(none)',
                ("time", "remaining", "p10", "p90"),
                alias="$tag_mold $col",
                tags=("machine", "mold"),
            )
        ],
        width=12,
    )
    b.add(
        timeseries_panel("none"),
        title=bi("ショットカウンタ", "Shot counter"),
        description="The machine's shot counter (shot.shot_count).",
        targets=[
            Target(
                "A",
                f'SELECT max("shot_count") AS "shot_count" FROM "{c.SHOT}" '
                f'WHERE $timeFilter AND {M} GROUP BY time($__interval), "machine"::tag fill(none)',
                ("time", "shot_count"),
                alias="$tag_machine",
                tags=("machine",),
            )
        ],
        width=12,
    )
    b.add(
        timeseries_panel(),
        title=bi("ショットごとのプロセス偏差", "Process deviations per shot"),
        description="Every *_dev shot feature: the shot's value minus the running (EWMA) "
        "reference of the previous shots (renkei.edge.features.shot).",
        targets=[
            Target(
                "A",
                f'SELECT mean(/_dev$/) FROM "{c.SHOT}" WHERE $timeFilter AND {M} '
                'GROUP BY time($__interval), "machine"::tag fill(none)',
                ("time", "mean_*"),
                alias="$tag_machine $col",
                tags=("machine",),
            )
        ],
        width=24,
        height=10,
    )
    b.add(
        timeseries_panel("s"),
        title=bi("サイクルタイム", "Cycle time"),
        targets=[
            Target(
                "A",
                f'SELECT mean("cycle_time_s") AS "cycle_time_s" FROM "{c.SHOT}" '
                f'WHERE $timeFilter AND {M} GROUP BY time($__interval), "machine"::tag fill(none)',
                ("time", "cycle_time_s"),
                alias="$tag_machine",
                tags=("machine",),
            )
        ],
        width=24,
    )
    return b


def gateway_fleet() -> Board:
    """ゲートウェイ / Gateway fleet: online, backlog, drops, model versions, deployments."""
    b = Board(
        uid="renkei-gateway-fleet",
        title=bi("ゲートウェイ", "Gateway fleet"),
        description="Gateway health: online (health messages received), outbox backlog, "
        "dropped and acknowledged messages, model versions, last deployments, dead letters.",
        variables=[
            tag_variable("site", bi("拠点", "Site"), "site", measurement=c.GATEWAY_HEALTH),
            tag_variable(
                "gateway",
                bi("ゲートウェイ", "Gateway"),
                "gw",
                where='"site"::tag =~ /^$site$/',
                measurement=c.GATEWAY_HEALTH,
            ),
        ],
        time_from="now-6h",
    )
    b.add(
        timeline_panel()
        .mappings(value_map({"0": (bi("オフライン", "offline"), "red")}))
        .thresholds(thresholds((None, "red"), (1, "green")))
        .color_scheme(dashboard.FieldColor().mode(dm.FieldColorModeId.THRESHOLDS))
        .max_data_points(200),
        title=bi("オンライン", "Online"),
        description="Health messages received per interval (at least 1 minute); 0 = offline. "
        "Based on health messages, not on the retained state topic.",
        interval="1m",
        targets=[
            Target(
                "A",
                f'SELECT count("seq") AS "health_msgs" FROM "{c.GATEWAY_HEALTH}" '
                f'WHERE $timeFilter AND {G} GROUP BY time($__interval), "gw"::tag fill(0)',
                ("time", "health_msgs"),
                alias="$tag_gw",
                tags=("gw",),
            )
        ],
        width=16,
    )
    b.add(
        table_panel().override_by_name(
            "Time", [dm.DynamicConfigValue(id_val="unit", value="dateTimeFromNow")]
        ),
        title=bi("最終受信", "Last seen"),
        description="Time of the latest health message of each gateway.",
        targets=[
            Target(
                "A",
                f'SELECT last("seq") AS "health_seq" FROM "{c.GATEWAY_HEALTH}" '
                f'WHERE $timeFilter AND {G} GROUP BY "site"::tag, "gw"::tag',
                ("time", "health_seq"),
                result_format="table",
                tags=("site", "gw"),
            )
        ],
        width=8,
    )
    b.add(
        timeseries_panel("short"),
        title=bi("送信待ちメッセージ", "Outbox backlog"),
        description="Messages on the gateway's disk not yet acknowledged by the broker.",
        targets=[
            Target(
                "A",
                f'SELECT max("outbox_backlog") AS "backlog" FROM "{c.GATEWAY_HEALTH}" '
                f'WHERE $timeFilter AND {G} GROUP BY time($__interval), "gw"::tag fill(none)',
                ("time", "backlog"),
                alias="$tag_gw",
                tags=("gw",),
            )
        ],
    )
    b.add(
        timeseries_panel("short"),
        title=bi("破棄されたメッセージ(累計)", "Dropped messages (total)"),
        description="Messages dropped by a full outbox since it was created.",
        targets=[
            Target(
                "A",
                f'SELECT max("dropped_total") AS "dropped_total" FROM "{c.GATEWAY_HEALTH}" '
                f'WHERE $timeFilter AND {G} GROUP BY time($__interval), "gw"::tag fill(none)',
                ("time", "dropped_total"),
                alias="$tag_gw",
                tags=("gw",),
            )
        ],
    )
    b.add(
        timeseries_panel("short"),
        title=bi("記憶装置の損傷による欠損(累計)", "Lost to storage damage (total)"),
        description="Messages lost with a damaged outbox (torn write-ahead log after power "
        "loss, a quarantined database) and sequence numbers skipped after a possible power "
        "loss whose use could not be verified (an upper bound). Both are persisted on the "
        "gateway; a rise means data is missing.",
        targets=[
            Target(
                "A",
                f'SELECT max("lost_total") AS "lost_total", max("gap_total") AS "gap_total" '
                f'FROM "{c.GATEWAY_HEALTH}" WHERE $timeFilter AND {G} '
                'GROUP BY time($__interval), "gw"::tag fill(none)',
                ("time", "lost_total", "gap_total"),
                alias="$tag_gw $col",
                tags=("gw",),
            )
        ],
    )
    b.add(
        timeseries_panel("reqps"),
        title=bi("送信完了レート", "Acknowledged messages per second"),
        targets=[
            Target(
                "A",
                'SELECT non_negative_derivative(max("published_total"), 1s) AS "acked_per_s" '
                f'FROM "{c.GATEWAY_HEALTH}" WHERE $timeFilter AND {G} '
                'GROUP BY time($__interval), "gw"::tag fill(none)',
                ("time", "acked_per_s"),
                alias="$tag_gw",
                tags=("gw",),
            )
        ],
    )
    b.add(
        table_panel(),
        title=bi("モデルとバージョン", "Model versions"),
        description="Latest birth message per gateway: agent and config version and one "
        "column per loaded model (last_model.<name> = version).",
        targets=[
            Target(
                "A",
                "SELECT last(/^(agent_version|config_version|model\\..+)$/) "
                f'FROM "{c.GATEWAY_STATE}" WHERE $timeFilter AND {G} '
                'GROUP BY "site"::tag, "gw"::tag',
                ("time", "last_agent_version", "last_config_version", "last_model.*"),
                result_format="table",
                tags=("site", "gw"),
            )
        ],
        width=12,
    )
    b.add(
        table_panel(),
        title=bi("最新のデプロイ", "Last deployment"),
        description="Latest deployment result per gateway and model (model_deploy).",
        targets=[
            Target(
                "A",
                'SELECT "deployment", "version", "result", "stage", "reason" '
                f'FROM "{c.MODEL_DEPLOY}" WHERE $timeFilter AND {G} '
                'GROUP BY "site"::tag, "gw"::tag, "model"::tag ORDER BY time DESC LIMIT 1',
                ("time", "deployment", "version", "result", "stage", "reason"),
                result_format="table",
                tags=("site", "gw", "model"),
            )
        ],
        width=12,
    )
    b.add(
        timeseries_panel("short").draw_style(common.GraphDrawStyle.BARS),
        title=bi("デッドレター(インジェスト)", "Dead letters (ingest)"),
        description="Messages the cloud ingest rejected, by reason (all gateways).",
        targets=[
            Target(
                "A",
                f'SELECT sum("count") AS "dead_letters" FROM "{c.DEADLETTERS}" '
                'WHERE $timeFilter GROUP BY time($__interval), "reason"::tag fill(none)',
                ("time", "dead_letters"),
                alias="$tag_reason",
                tags=("reason",),
            )
        ],
    )
    b.add(
        table_panel(),
        title=bi("最近のデッドレター", "Recent dead letters"),
        targets=[
            Target(
                "A",
                f'SELECT "topic", "detail" FROM "{c.DEADLETTERS}" WHERE $timeFilter '
                'GROUP BY "reason"::tag ORDER BY time DESC LIMIT 20',
                ("time", "topic", "detail"),
                result_format="table",
                tags=("reason",),
            )
        ],
    )
    return b


def capacity() -> Board:
    """共有可能能力 / Shared capacity: spare hours per machine over the planning horizon."""
    cap_vars = [
        tag_variable("site", bi("拠点", "Site"), "site", measurement=c.CAPACITY),
        tag_variable(
            "line",
            bi("ライン", "Line"),
            "line",
            where='"site"::tag =~ /^$site$/',
            measurement=c.CAPACITY,
        ),
        tag_variable(
            "machine",
            bi("設備", "Machine"),
            "machine",
            where='"site"::tag =~ /^$site$/ AND "line"::tag =~ /^$line$/',
            measurement=c.CAPACITY,
        ),
    ]
    b = Board(
        uid="renkei-capacity",
        title=bi("共有可能能力", "Shared capacity"),
        description="Spare hours (available - booked - expected downtime) per machine and "
        "day over the 12-week horizon, from the capacity measurement.",
        variables=cap_vars,
        time_from="now/d",
        time_to="now+84d",
        refresh="5m",
    )
    b.add(
        timeseries_panel("h").draw_style(common.GraphDrawStyle.BARS).fill_opacity(60),
        title=bi("日別の空き時間", "Spare hours per day"),
        targets=[
            Target(
                "A",
                f'SELECT "spare_h" FROM "{c.CAPACITY}" WHERE $timeFilter AND {M} '
                'GROUP BY "machine"::tag',
                ("time", "spare_h"),
                alias="$tag_machine",
                tags=("machine",),
            )
        ],
        width=24,
    )
    b.add(
        timeseries_panel("h").draw_style(common.GraphDrawStyle.BARS).fill_opacity(60),
        title=bi("週別の空き時間", "Spare hours per week"),
        description="Weeks start on Monday 00:00 Japan time (offset 87 h from the epoch's "
        "Thursday).",
        targets=[
            Target(
                "A",
                f'SELECT sum("spare_h") AS "spare_h" FROM "{c.CAPACITY}" '
                f'WHERE $timeFilter AND {M} GROUP BY time(7d, 87h), "machine"::tag fill(0)',
                ("time", "spare_h"),
                alias="$tag_machine",
                tags=("machine",),
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
            Target(
                "A",
                f'SELECT last("availability_ratio") AS "ratio" FROM "{c.CAPACITY}" '
                f'WHERE $timeFilter AND {M} GROUP BY "machine"::tag',
                ("time", "ratio"),
                alias="$tag_machine",
                tags=("machine",),
            )
        ],
        width=10,
    )
    b.add(
        table_panel(),
        title=bi("期間合計", "Totals over the range"),
        targets=[
            Target(
                "A",
                'SELECT sum("available_h") AS "available_h", sum("booked_h") AS "booked_h", '
                'sum("downtime_h") AS "downtime_h", sum("spare_h") AS "spare_h" '
                f'FROM "{c.CAPACITY}" WHERE $timeFilter AND {M} GROUP BY {BY_MACHINE}',
                ("time", "available_h", "booked_h", "downtime_h", "spare_h"),
                result_format="table",
                tags=MACHINE_TAGS,
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
