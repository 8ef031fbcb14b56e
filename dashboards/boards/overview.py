"""設備概要 / Plant overview: machine state, OEE and its three factors, anomaly heat map,
alarms.
"""

from __future__ import annotations

from typing import Final

from grafana_foundation_sdk.builders import dashboard
from grafana_foundation_sdk.models import dashboard as dm

from renkei.core.influx import contract as c
from renkei.core.oee import BASIS_CODES
from renkei.dashboards.boards.common import ANOMALY_FLAG, ANOMALY_STATES
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
    thresholds,
    timeline_panel,
    value_map,
)
from renkei.dashboards.queries import Target
from renkei.dashboards.targets import BY_MACHINE, MACHINE_TAGS, M, series, table

__all__ = [
    "AVAILABILITY_Q",
    "BASIS_Q",
    "BASIS_TEXT",
    "OPERATOR_Q",
    "PERFORMANCE_Q",
    "QUALITY_Q",
    "plant_overview",
]

# --------------------------------------------------------------------------- OEE queries

# Definitions: renkei.core.oee (Nakajima; ISO 22400-2:2014); the gateways account each
# interval (renkei.edge.features.oee) and the queries sum the ``oee`` rows over the range.

#: Availability = actual production time / planned busy time (ISO 22400 APT / PBT).
AVAILABILITY_Q: Final = (
    'SELECT sum("run_s") / sum("planned_s") AS "availability" '
    f'FROM "{c.OEE}" WHERE $timeFilter AND {M} GROUP BY {BY_MACHINE}'
)
#: Performance = ideal cycle time x shots / run time, over intervals with an ideal.
PERFORMANCE_Q: Final = (
    'SELECT sum("ideal_s") / sum("ideal_run_s") AS "performance" '
    f'FROM "{c.OEE}" WHERE $timeFilter AND {M} GROUP BY {BY_MACHINE}'
)
#: Quality = good / (good + reject) parts (or scored rows for the proxy basis).
QUALITY_Q: Final = (
    'SELECT sum("good") / (sum("good") + sum("reject")) AS "quality" '
    f'FROM "{c.OEE}" WHERE $timeFilter AND {M} GROUP BY {BY_MACHINE}'
)
#: The basis of each component in the range's latest interval (codes: BASIS_CODES).
BASIS_Q: Final = (
    'SELECT last("availability_basis") AS "availability_basis", '
    'last("performance_basis") AS "performance_basis", '
    'last("quality_basis") AS "quality_basis" '
    f'FROM "{c.OEE}" WHERE $timeFilter AND {M} GROUP BY {BY_MACHINE}'
)
#: Share of the machine's intervals in the range whose quality an operator's counts replace
#: (masked gateway rows, renkei.cloud.oee.operator); null when none ever was.
OPERATOR_Q: Final = (
    'SELECT sum("operator_masked") / count("planned_s") AS "operator_share" '
    f'FROM "{c.OEE}" WHERE $timeFilter AND {M} AND "src"::tag != \'operator\' '
    f"GROUP BY {BY_MACHINE}"
)

#: Basis code -> (ja / en text, colour): measured bases green, proxies orange.
BASIS_TEXT: Final = {
    str(BASIS_CODES["unknown"]): (bi("不明", "unknown"), "text"),
    str(BASIS_CODES["run_state"]): (bi("稼働信号", "run_state"), "green"),
    str(BASIS_CODES["status"]): (bi("設備ステータス", "status"), "green"),
    str(BASIS_CODES["proxy_data_arrival"]): (
        bi("代替: データ受信", "proxy_data_arrival"),
        "orange",
    ),
    str(BASIS_CODES["mold_registry"]): (bi("金型の理想サイクル", "mold_registry"), "green"),
    str(BASIS_CODES["machine_nominal"]): (bi("設備の標準サイクル", "machine_nominal"), "green"),
    str(BASIS_CODES["counts"]): (bi("良品・不良数", "counts"), "green"),
    str(BASIS_CODES["operator"]): (bi("作業者入力の良品・不良数", "operator"), "green"),
    str(BASIS_CODES["proxy_anomaly_rate"]): (bi("代替: 異常率", "proxy_anomaly_rate"), "orange"),
}


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
            table(
                'last("score") / last("threshold") AS "score_ratio", '
                'last("is_anomaly") AS "anomaly"',
                c.ANOMALY,
                ("time", "score_ratio", "anomaly"),
            )
        ],
        width=10,
    )
    b.add(
        timeline_panel().mappings(value_map(ANOMALY_STATES)).max_data_points(200),
        title=bi("状態の推移", "State timeline"),
        description="Anomaly flag per machine and interval (max of is_anomaly); gaps = no "
        "scored data.",
        targets=[ANOMALY_FLAG],
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
        description="OEE = availability × performance × quality (Nakajima; ISO 22400-2), "
        "Grafana expressions over the three factor queries of the gateways' oee rows. No "
        "ideal cycle time (mold registry or machine) = no performance and no OEE.",
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
        description="Availability: run time / planned busy time (run-state signal or machine "
        "status; proxy: time with data). Performance: ideal cycle time × shots / run time. "
        "Quality: good / (good + reject) parts, from the machine's counters or, for the "
        "intervals an operator recorded them, the operator's counts (proxy: share of "
        "unflagged scored rows). "
        "The basis of each is in the table below.",
        targets=[
            Target("A", AVAILABILITY_Q, ("time", "availability"), "table", tags=MACHINE_TAGS),
            Target("P", PERFORMANCE_Q, ("time", "performance"), "table", tags=MACHINE_TAGS),
            Target("Q", QUALITY_Q, ("time", "quality"), "table", tags=MACHINE_TAGS),
        ],
        width=16,
        height=9,
    )
    b.add(
        table_panel()
        .mappings(value_map(BASIS_TEXT))
        .override_by_regexp(
            "operator_share",
            [
                # a share, not a basis code: no code -> text mapping, shown in percent
                dm.DynamicConfigValue(id_val="mappings", value=[]),
                dm.DynamicConfigValue(id_val="unit", value="percentunit"),
            ],
        )
        .with_transformation(dm.DataTransformerConfig(id_val="merge", options={})),
        title=bi("OEE 3要素の根拠", "OEE basis per factor"),
        description="Where each factor comes from in the latest interval of the range: "
        "run_state / status / mold_registry / machine_nominal / counts are measured, "
        "operator = good/reject counts recorded by an operator; proxy_* are fallbacks (data "
        "arrival, anomaly rate); unknown = not available. operator_share: share of the range's "
        "intervals whose quality uses an operator's good/reject counts instead of the "
        "machine's.",
        targets=[
            Target(
                "B",
                BASIS_Q,
                ("time", "availability_basis", "performance_basis", "quality_basis"),
                "table",
                tags=MACHINE_TAGS,
            ),
            Target("O", OPERATOR_Q, ("time", "operator_share"), "table", tags=MACHINE_TAGS),
        ],
        width=24,
        height=7,
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
            series(
                'max("score") / max("threshold") AS "score_ratio"',
                c.ANOMALY,
                ("time", "score_ratio"),
                fill="null",
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
