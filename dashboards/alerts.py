"""Grafana-managed alert rules as code.

Every rule has the same shape, so Grafana and the tests evaluate it the same way:

- ``A``: one InfluxQL query (one value column, one series per alert instance via
  ``GROUP BY`` tags) over ``relativeTimeRange`` seconds up to the evaluation time;
- ``B``: a Reduce expression (``dropNN``: nulls/NaN skipped) turning each series into one
  number;
- ``C``: a Threshold expression on ``B`` — the rule's condition. ``C`` = 1 is *Alerting*,
  0 is *Normal*; no series at all is *NoData*, handled by ``noDataState``.

Persistence ("for N windows") is expressed in the query where it can be counted exactly
(``ORDER BY time DESC LIMIT N`` + ``min``), not only with Grafana's pending period ``for``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, Literal

from grafana_foundation_sdk.builders import alerting, expr

from renkei.core.influx import contract as c
from renkei.dashboards.panels import bi
from renkei.dashboards.queries import DATASOURCE_UID, Target

__all__ = [
    "ANOMALY_WINDOWS",
    "BACKLOG_GROWTH",
    "FOLDER_TITLE",
    "FOLDER_UID",
    "MOLD_DUE_SHOTS",
    "OFFLINE_BUCKETS",
    "RULES",
    "RUL_LIMIT_CYCLES",
    "RuleSpec",
    "rule_groups",
]

FOLDER_UID: Final = "renkei"
FOLDER_TITLE: Final = "Renkei"

#: Consecutive anomalous windows (or shots) before the anomaly rule fires.
ANOMALY_WINDOWS: Final = 5
#: The RUL rule fires when the pessimistic (10 %) RUL is below this many cycles.
RUL_LIMIT_CYCLES: Final = 500.0
#: The mold rule fires when maintenance is due within this many shots.
MOLD_DUE_SHOTS: Final = 5000.0
#: Gateway offline: this many most recent 15-second buckets without a health message
#: (the newest bucket is still filling, so >= 45 s of silence; health every 10 s).
OFFLINE_BUCKETS: Final = 4
#: Outbox backlog growth (messages) over the rule's 10-minute range that fires the rule.
BACKLOG_GROWTH: Final = 100.0

Reducer = Literal["last", "mean", "min", "max", "sum", "count"]
ThresholdType = Literal["gt", "lt", "gte", "lte", "eq", "ne"]
Group = Literal["renkei-machines", "renkei-fleet"]

#: Evaluation interval of each rule group, seconds.
GROUP_INTERVAL_S: Final[dict[str, int]] = {"renkei-machines": 60, "renkei-fleet": 30}


@dataclass(frozen=True)
class RuleSpec:
    """One alert rule: query ``A`` → Reduce ``B`` → Threshold ``C``.

    Attributes:
        uid: stable rule uid (provisioning and push are idempotent on it).
        title: bilingual title.
        group: rule group (evaluation interval :data:`GROUP_INTERVAL_S`).
        query: the InfluxQL query ``A`` and its expected columns.
        range_s: ``relativeTimeRange.from`` of ``A``, seconds before the evaluation.
        reducer: Reduce function of ``B``.
        threshold: Threshold function of ``C`` and its parameter.
        pending: Grafana's ``for`` (condition must hold this long before firing).
        no_data: ``noDataState`` (what a query without any series means).
        summary, description: annotations.
        severity: ``severity`` label.
    """

    uid: str
    title: str
    group: Group
    query: Target
    range_s: int
    reducer: Reducer
    threshold: tuple[ThresholdType, float]
    pending: str
    no_data: Literal["OK", "NoData", "Alerting"]
    summary: str
    description: str
    severity: Literal["warning", "critical"] = "warning"
    labels: dict[str, str] = field(default_factory=dict)

    def expressions(self) -> list[dict[str, Any]]:
        """The models of ``B`` (reduce) and ``C`` (threshold) as Grafana stores them."""
        reduce = (
            expr.TypeReduce()
            .ref_id("B")
            .expression("A")
            .reducer(self.reducer)
            .settings(expr.ExprTypeReduceSettings().mode("dropNN"))
            .build()
        )
        op, value = self.threshold
        threshold = (
            expr.TypeThreshold()
            .ref_id("C")
            .expression("B")
            .conditions(
                [
                    expr.ExprTypeThresholdConditions().evaluator(
                        expr.ExprTypeThresholdConditionsEvaluator().type(op).params([value])
                    )
                ]
            )
            .build()
        )
        out = []
        for model in (reduce, threshold):
            payload = model.to_json()
            payload["datasource"] = {"type": "__expr__", "uid": "__expr__"}
            out.append(_plain(payload))
        return out

    def query_model(self) -> dict[str, Any]:
        """The model of query ``A`` (with Grafana's alerting defaults made explicit)."""
        model = _plain(self.query.build().to_json())
        model["intervalMs"] = 1000
        model["maxDataPoints"] = 43200
        return model

    def data(self) -> list[dict[str, Any]]:
        """The rule's ``data`` list (provisioning-file and API format)."""
        exprs = self.expressions()
        return [
            {
                "refId": "A",
                "datasourceUid": DATASOURCE_UID,
                "relativeTimeRange": {"from": self.range_s, "to": 0},
                "model": self.query_model(),
            },
            *(
                {
                    "refId": e["refId"],
                    "datasourceUid": "__expr__",
                    "relativeTimeRange": {"from": 0, "to": 0},
                    "model": e,
                }
                for e in exprs
            ),
        ]

    def to_api(self, *, folder_uid: str = FOLDER_UID) -> dict[str, Any]:
        """The rule as ``POST/PUT /api/v1/provisioning/alert-rules`` expects it (built with
        the SDK's :class:`~grafana_foundation_sdk.builders.alerting.Rule`)."""
        rule = (
            alerting.Rule(self.title)
            .uid(self.uid)
            .folder_uid(folder_uid)
            .rule_group(self.group)
            .org_id(1)
            .condition("C")
            .for_val(self.pending)
            .no_data_state(self.no_data)
            .exec_err_state("Error")
            .is_paused(False)
            .labels({"severity": self.severity, "team": "renkei", **self.labels})
            .annotations(
                {
                    "summary": self.summary,
                    "description": self.description,
                    "runbook_url": "dashboards/README.md#alert-rules",
                }
            )
            .build()
        )
        payload = _plain(rule.to_json())
        payload["data"] = self.data()
        return payload

    def to_file(self) -> dict[str, Any]:
        """The rule in Grafana's file-provisioning format (``groups[].rules[]``)."""
        api = self.to_api()
        return {
            "uid": api["uid"],
            "title": api["title"],
            "condition": api["condition"],
            "data": api["data"],
            "noDataState": api["noDataState"],
            "execErrState": api["execErrState"],
            "for": api["for"],
            "annotations": api["annotations"],
            "labels": api["labels"],
            "isPaused": False,
        }


def _plain(obj: object) -> dict[str, Any]:
    import json

    from grafana_foundation_sdk.cog.encoder import JSONEncoder

    result: dict[str, Any] = json.loads(json.dumps(obj, cls=JSONEncoder))
    return result


RULES: Final[tuple[RuleSpec, ...]] = (
    RuleSpec(
        uid="renkei-anomaly-persistent",
        title=bi("異常スコアがしきい値超過(連続)", "Anomaly score above threshold"),
        group="renkei-machines",
        query=Target(
            "A",
            'SELECT "score" / "threshold" AS "score_ratio" '
            f'FROM "{c.ANOMALY}" WHERE $timeFilter '
            'GROUP BY "site"::tag, "line"::tag, "machine"::tag '
            f"ORDER BY time DESC LIMIT {ANOMALY_WINDOWS}",
            ("time", "score_ratio"),
            tags=("site", "line", "machine"),
        ),
        range_s=6 * 3600,
        reducer="min",
        threshold=("gt", 1.0),
        pending="1m",
        no_data="OK",
        summary="{{ $labels.machine }}: anomaly score above threshold for "
        f"{ANOMALY_WINDOWS} consecutive windows",
        description=f"The last {ANOMALY_WINDOWS} scored windows (or shots) of the machine "
        "all have score > threshold (min of score/threshold > 1).",
    ),
    RuleSpec(
        uid="renkei-rul-low",
        title=bi("残存寿命が下限未満", "Remaining useful life below limit"),
        group="renkei-machines",
        query=Target(
            "A",
            f'SELECT last("rul_p10") AS "rul_p10" FROM "{c.RUL}" WHERE $timeFilter '
            'GROUP BY "site"::tag, "line"::tag, "machine"::tag',
            ("time", "rul_p10"),
            tags=("site", "line", "machine"),
        ),
        range_s=24 * 3600,
        reducer="last",
        threshold=("lt", RUL_LIMIT_CYCLES),
        pending="0s",
        no_data="OK",
        summary="{{ $labels.machine }}: RUL (10 % quantile) below "
        f"{RUL_LIMIT_CYCLES:.0f} cycles",
        description="The latest pessimistic (10 % quantile) remaining useful life of the "
        f"machine is below {RUL_LIMIT_CYCLES:.0f} cycles: plan maintenance.",
        severity="critical",
    ),
    RuleSpec(
        uid="renkei-mold-maintenance-due",
        title=bi("金型保全が近い", "Mold due for maintenance"),
        group="renkei-machines",
        query=Target(
            "A",
            f'SELECT last("remaining_shots") AS "remaining_shots" FROM "{c.MOLD}" '
            'WHERE $timeFilter GROUP BY "site"::tag, "line"::tag, "machine"::tag, "mold"::tag',
            ("time", "remaining_shots"),
            tags=("site", "line", "machine", "mold"),
        ),
        range_s=24 * 3600,
        reducer="last",
        threshold=("lt", MOLD_DUE_SHOTS),
        pending="0s",
        no_data="OK",
        summary="{{ $labels.mold }} on {{ $labels.machine }}: maintenance due within "
        f"{MOLD_DUE_SHOTS:.0f} shots",
        description="Remaining shots until maintenance (the smaller of the interval and the "
        f"wear model's prediction) is below {MOLD_DUE_SHOTS:.0f}.",
    ),
    RuleSpec(
        uid="renkei-gateway-offline",
        title=bi("ゲートウェイがオフライン", "Gateway offline"),
        group="renkei-fleet",
        query=Target(
            "A",
            f'SELECT count("seq") AS "health_msgs" FROM "{c.GATEWAY_HEALTH}" '
            'WHERE $timeFilter GROUP BY time(15s), "site"::tag, "gw"::tag fill(0) '
            f"ORDER BY time DESC LIMIT {OFFLINE_BUCKETS}",
            ("time", "health_msgs"),
            tags=("site", "gw"),
        ),
        range_s=6 * 3600,
        reducer="max",
        threshold=("lt", 1.0),
        pending="1m",
        no_data="OK",
        summary="{{ $labels.gw }}: no health message for 45 s or more",
        description=f"The last {OFFLINE_BUCKETS} 15-second buckets hold no health message "
        "of a gateway seen in the last 6 hours (Last Will or not: data-driven).",
        severity="critical",
    ),
    RuleSpec(
        uid="renkei-outbox-backlog-growing",
        title=bi("送信待ちが増加中", "Outbox backlog growing"),
        group="renkei-fleet",
        query=Target(
            "A",
            'SELECT last("outbox_backlog") - first("outbox_backlog") AS "growth" '
            f'FROM "{c.GATEWAY_HEALTH}" WHERE $timeFilter GROUP BY "site"::tag, "gw"::tag',
            ("time", "growth"),
            tags=("site", "gw"),
        ),
        range_s=600,
        reducer="last",
        threshold=("gt", BACKLOG_GROWTH),
        pending="2m",
        no_data="OK",
        summary="{{ $labels.gw }}: outbox backlog grew by more than "
        f"{BACKLOG_GROWTH:.0f} messages in 10 minutes",
        description="The gateway stores more than it can deliver (broker unreachable, "
        "no ingest subscribed, or too little bandwidth); its disk buffer is filling.",
    ),
    RuleSpec(
        uid="renkei-dead-letters",
        title=bi("デッドレター発生", "Dead letters appearing"),
        group="renkei-fleet",
        query=Target(
            "A",
            f'SELECT sum("count") AS "dead_letters" FROM "{c.DEADLETTERS}" '
            'WHERE $timeFilter GROUP BY "reason"::tag',
            ("time", "dead_letters"),
            tags=("reason",),
        ),
        range_s=900,
        reducer="last",
        threshold=("gt", 0.0),
        pending="0s",
        no_data="OK",
        summary="Ingest rejected {{ $values.B }} message(s) ({{ $labels.reason }}) in 15 min",
        description="The cloud ingest dead-lettered messages that break the wire contract; "
        "see the gateway fleet dashboard for topics and details.",
    ),
)


def rule_groups() -> list[dict[str, Any]]:
    """The rules in Grafana's alerting file-provisioning format (``groups``)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for rule in RULES:
        groups.setdefault(rule.group, []).append(rule.to_file())
    return [
        {
            "orgId": 1,
            "name": name,
            "folder": FOLDER_TITLE,
            "interval": f"{GROUP_INTERVAL_S[name]}s",
            "rules": rules,
        }
        for name, rules in groups.items()
    ]
