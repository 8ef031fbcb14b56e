"""ゲートウェイ / Gateway fleet: online, last seen, outbox backlog, drops and losses,
acknowledged rate, model versions, deployments, dead letters.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as dm

from renkei.core.influx import contract as c
from renkei.dashboards.panels import (
    Board,
    bi,
    table_panel,
    tag_variable,
    thresholds,
    timeline_panel,
    timeseries_panel,
    value_map,
)
from renkei.dashboards.targets import G, series, table

__all__ = ["gateway_fleet"]


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
            series(
                'count("seq") AS "health_msgs"',
                c.GATEWAY_HEALTH,
                ("time", "health_msgs"),
                where=G,
                by=("gw",),
                fill="0",
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
            table(
                'last("seq") AS "health_seq"',
                c.GATEWAY_HEALTH,
                ("time", "health_seq"),
                where=G,
                by=("site", "gw"),
            )
        ],
        width=8,
    )
    b.add(
        timeseries_panel("short"),
        title=bi("送信待ちメッセージ", "Outbox backlog"),
        description="Messages on the gateway's disk not yet acknowledged by the broker.",
        targets=[
            series(
                'max("outbox_backlog") AS "backlog"',
                c.GATEWAY_HEALTH,
                ("time", "backlog"),
                where=G,
                by=("gw",),
            )
        ],
    )
    b.add(
        timeseries_panel("short"),
        title=bi("破棄されたメッセージ(累計)", "Dropped messages (total)"),
        description="Messages dropped by a full outbox since it was created.",
        targets=[
            series(
                'max("dropped_total") AS "dropped_total"',
                c.GATEWAY_HEALTH,
                ("time", "dropped_total"),
                where=G,
                by=("gw",),
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
            series(
                'max("lost_total") AS "lost_total", max("gap_total") AS "gap_total"',
                c.GATEWAY_HEALTH,
                ("time", "lost_total", "gap_total"),
                where=G,
                by=("gw",),
            )
        ],
    )
    b.add(
        timeseries_panel("reqps"),
        title=bi("送信完了レート", "Acknowledged messages per second"),
        targets=[
            series(
                'non_negative_derivative(max("published_total"), 1s) AS "acked_per_s"',
                c.GATEWAY_HEALTH,
                ("time", "acked_per_s"),
                where=G,
                by=("gw",),
            )
        ],
    )
    b.add(
        table_panel(),
        title=bi("モデルとバージョン", "Model versions"),
        description="Latest birth message per gateway: agent and config version and one "
        "column per loaded model (last_model.<name> = version).",
        targets=[
            table(
                "last(/^(agent_version|config_version|model\\..+)$/)",
                c.GATEWAY_STATE,
                ("time", "last_agent_version", "last_config_version", "last_model.*"),
                where=G,
                by=("site", "gw"),
            )
        ],
        width=12,
    )
    b.add(
        table_panel(),
        title=bi("最新のデプロイ", "Last deployment"),
        description="Latest deployment result per gateway and model (model_deploy).",
        targets=[
            table(
                '"deployment", "version", "result", "stage", "reason"',
                c.MODEL_DEPLOY,
                ("time", "deployment", "version", "result", "stage", "reason"),
                where=G,
                by=("site", "gw", "model"),
                tail=" ORDER BY time DESC LIMIT 1",
            )
        ],
        width=12,
    )
    b.add(
        timeseries_panel("short").draw_style(common.GraphDrawStyle.BARS),
        title=bi("デッドレター(インジェスト)", "Dead letters (ingest)"),
        description="Messages the cloud ingest rejected, by reason (all gateways).",
        targets=[
            series(
                'sum("count") AS "dead_letters"',
                c.DEADLETTERS,
                ("time", "dead_letters"),
                where="",
                by=("reason",),
            )
        ],
    )
    b.add(
        table_panel(),
        title=bi("最近のデッドレター", "Recent dead letters"),
        targets=[
            table(
                '"topic", "detail"',
                c.DEADLETTERS,
                ("time", "topic", "detail"),
                where="",
                by=("reason",),
                tail=" ORDER BY time DESC LIMIT 20",
            )
        ],
    )
    return b
