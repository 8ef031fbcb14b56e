"""What Grafana does with a panel query or an alert rule, re-implemented for tests and checks.

There is no Grafana server in the test environment, so the parts of Grafana that decide
*which InfluxQL reaches InfluxDB* and *how a rule's condition is computed from the answer*
are re-implemented here, following Grafana's source (v10-v12):

Template variables (``public/app/plugins/datasource/influxdb``, ``interpolateQueryExpr``):
    ``$name``, ``${name}`` and ``[[name]]`` are replaced. A multi-value or ``All`` variable
    becomes a regular expression: one value is regex-escaped (``[\\^$*+?.()|[]{}/]``),
    several become ``(v1|v2|...)``; ``All`` without a custom all-value means all options.
    Options come from the variable's query (``SHOW TAG VALUES`` → column ``value``,
    otherwise the first column), filtered by the variable's ``regex``.

Macros (``pkg/tsdb/influxdb/models/query.go``, ``Build``), in this order:
    ``$timeFilter`` → ``time >= {from}ms and time <= {to}ms``; ``$interval`` and
    ``$__interval`` → ``gtime.FormatInterval(interval)``; ``$__interval_ms`` → milliseconds.
    A dashboard's interval is ``max(min interval, roundInterval(range / maxDataPoints))``
    (``rangeutil.calculateInterval``); an alert query's is its ``intervalMs``.

Frames (``pkg/tsdb/influxdb/influxql``): each series of the answer and each value column
    becomes one series whose labels are the series' tags.

Server-side expressions (``pkg/expr``): Reduce, Math and Threshold over the frames, in
    :mod:`renkei.dashboards.expressions` (re-exported here).

Alert state (``ngalert/eval``): per number of the condition, 0 → ``Normal``, non-zero
    (also NaN) → ``Alerting``, null → ``NoData``; a condition without any number is
    ``NoData`` for the whole rule and becomes ``noDataState`` (``OK`` → ``Normal``). A
    query error is ``Error`` (``execErrState``). The pending period ``for`` is Grafana's
    state machine over successive evaluations and is not emulated: :func:`evaluate_rule`
    is one evaluation at one instant.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from renkei.core.errors import StoreError, StoreRejected
from renkei.dashboards.expressions import (
    Labels,
    Number,
    Series,
    evaluate_expressions,
    evaluate_math,
)

__all__ = [
    "AlertEvaluation",
    "Number",
    "QueryError",
    "Runner",
    "Series",
    "TimeRange",
    "calculate_interval_ms",
    "escape_regex",
    "evaluate_expressions",
    "evaluate_math",
    "evaluate_rule",
    "expand_macros",
    "format_interval",
    "influx_runner",
    "interpolate",
    "parse_duration_ms",
    "relative_range",
    "round_interval_ms",
    "series_from_answer",
    "variable_options",
]

State = Literal["Normal", "Alerting", "NoData", "Error"]
#: Runs one InfluxQL statement and returns the ``series`` list of its result.
Runner = Callable[[str], list[dict[str, Any]]]


class QueryError(StoreError, RuntimeError):
    """InfluxDB refused a query (InfluxQL error)."""


# --------------------------------------------------------------------------- time


@dataclass(frozen=True)
class TimeRange:
    """An absolute time range, UTC epoch milliseconds."""

    from_ms: int
    to_ms: int


_UNITS_MS: Final = {
    "ms": 1,
    "s": 1000,
    "m": 60_000,
    "h": 3_600_000,
    "d": 86_400_000,
    "w": 604_800_000,
    "M": 2_592_000_000,
    "y": 31_536_000_000,
}
_REL_RE: Final = re.compile(r"^now(?:([+-])(\d+)(ms|s|m|h|d|w|M|y))?(/[smhdwMy])?$")


def parse_duration_ms(text: str) -> int:
    """``"10s"``, ``"1m"``, ``"87h"`` → milliseconds."""
    m = re.fullmatch(r"(\d+)(ms|s|m|h|d|w|M|y)", text)
    if not m:
        raise ValueError(f"not a Grafana duration: {text!r}")
    return int(m.group(1)) * _UNITS_MS[m.group(2)]


def relative_range(time_from: str, time_to: str, *, now_ms: int) -> TimeRange:
    """Resolve a dashboard's relative range (``now-6h`` .. ``now``, ``now/d``, ``now+84d``).

    Rounding (``/d``) is done in UTC (Grafana rounds in the dashboard's time zone).
    """

    def resolve(expr: str, *, end: bool) -> int:
        m = _REL_RE.match(expr)
        if not m:
            raise ValueError(f"unsupported relative time {expr!r}")
        t = now_ms
        if m.group(4):
            unit = _UNITS_MS[m.group(4)[1:]]
            t = (t // unit) * unit + (unit - 1 if end else 0)
        if m.group(1):
            delta = int(m.group(2)) * _UNITS_MS[m.group(3)]
            t = t + delta if m.group(1) == "+" else t - delta
        return t

    return TimeRange(resolve(time_from, end=False), resolve(time_to, end=True))


def round_interval_ms(interval_ms: float) -> int:
    """Grafana's ``rangeutil.roundInterval``: snap an interval to a readable one."""
    table = (
        (15, 10),
        (35, 20),
        (75, 50),
        (150, 100),
        (350, 200),
        (750, 500),
        (1500, 1000),
        (3500, 2000),
        (7500, 5000),
        (12500, 10000),
        (17500, 15000),
        (25000, 20000),
        (45000, 30000),
        (90000, 60000),
        (210000, 120000),
        (450000, 300000),
        (750000, 600000),
        (1050000, 900000),
        (1500000, 1200000),
        (2700000, 1800000),
        (5400000, 3600000),
        (9000000, 7200000),
        (16200000, 10800000),
        (32400000, 21600000),
        (86400000, 43200000),
        (604800000, 86400000),
        (1814400000, 604800000),
        (3628800000, 2592000000),
    )
    for limit, value in table:
        if interval_ms < limit:
            return value
    return 31536000000


def calculate_interval_ms(
    time_range: TimeRange, *, max_data_points: int, min_interval: str | None
) -> int:
    """Grafana's ``rangeutil.calculateInterval`` for a panel."""
    interval = round_interval_ms((time_range.to_ms - time_range.from_ms) / max_data_points)
    low = parse_duration_ms(min_interval) if min_interval else 1
    return max(interval, low)


def format_interval(interval_ms: int) -> str:
    """Go ``gtime.FormatInterval``: the largest whole unit (``1d``, ``2h``, ``10s``...)."""
    for unit, size in (("y", 31_536_000_000), ("d", 86_400_000), ("h", 3_600_000)):
        if interval_ms >= size:
            return f"{interval_ms // size}{unit}"
    for unit, size in (("m", 60_000), ("s", 1000), ("ms", 1)):
        if interval_ms >= size:
            return f"{interval_ms // size}{unit}"
    return "1ms"


def expand_macros(query: str, time_range: TimeRange, interval_ms: int) -> str:
    """Grafana's InfluxQL macro expansion (same order as ``Query.Build``)."""
    time_filter = f"time >= {time_range.from_ms}ms and time <= {time_range.to_ms}ms"
    text = format_interval(interval_ms)
    query = query.replace("$timeFilter", time_filter)
    query = query.replace("$interval", text)
    query = query.replace("$__interval_ms", str(interval_ms))
    return query.replace("$__interval", text)


# --------------------------------------------------------------------------- variables

_VAR_RE: Final = re.compile(
    r"\$(\w+)|\[\[([\s\S]+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^\}]+))?(?::([^\}]+))?\}"
)
_REGEX_SPECIAL: Final = re.compile(r"[\\^$*+?.()|\[\]{}/]")


def escape_regex(value: str) -> str:
    """Grafana's ``escapeRegex``."""
    return _REGEX_SPECIAL.sub(lambda m: "\\" + m.group(0), value)


def interpolate(query: str, values: Mapping[str, Sequence[str]]) -> str:
    """Replace template variables (multi-value/All, InfluxDB regex format).

    Args:
        query: the query text.
        values: variable name -> selected values (for ``All``: every option).
    """

    def repl(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2) or m.group(4)
        if name not in values:
            return m.group(0)
        selected = [escape_regex(v) for v in values[name]]
        if len(selected) == 1:
            return selected[0]
        return "(" + "|".join(selected) + ")"

    return _VAR_RE.sub(repl, query)


def variable_options(variable: Mapping[str, Any], run: Runner) -> list[str]:
    """Options of a query variable (its query must already be interpolated)."""
    query = str(variable["query"])
    series = run(query)
    values: list[str] = []
    for s in series:
        columns: list[str] = s["columns"]
        col = columns.index("value") if "value" in columns else 0
        values.extend(str(row[col]) for row in s.get("values", []))
    pattern = variable.get("regex") or ""
    if pattern:
        rx = re.compile(pattern.strip("/"))
        kept = []
        for v in values:
            m = rx.search(v)
            if m:
                kept.append(m.group(1) if m.groups() else v)
        values = kept
    return sorted(set(values))


def dashboard_variables(model: Mapping[str, Any], run: Runner) -> dict[str, list[str]]:
    """Resolve every query variable of a dashboard model with ``All`` selected."""
    resolved: dict[str, list[str]] = {}
    for var in model.get("templating", {}).get("list", []):
        if var.get("type") != "query":
            continue
        query = interpolate(str(var["query"]), resolved)
        resolved[str(var["name"])] = variable_options({**var, "query": query}, run)
    return resolved


# --------------------------------------------------------------------------- InfluxDB


def influx_runner(
    url: str,
    database: str,
    *,
    timeout_s: float = 30.0,
    token: str | None = None,
    username: str | None = None,
    password: str | None = None,
) -> Runner:
    """A :data:`Runner` over the InfluxDB v1 HTTP API (``POST /query``, epoch ms), through
    :func:`renkei.cloud.store.run_query` (httpx, its error mapping).

    Args:
        url, database: the InfluxDB base URL and database.
        timeout_s: per-query timeout, seconds.
        token, username, password: credentials (a token, or a 1.x user and password).

    Raises:
        ConfigError: a bad URL or half a user/password pair (at once, naming the option).

    The runner raises :class:`QueryError` when InfluxDB refuses the statement (syntax,
    unknown function, ...: the query is broken) and
    :class:`~renkei.core.errors.StoreUnavailable` when the server cannot answer at all
    (unreachable, time-out, credentials refused, database missing, 5xx).
    """
    from renkei.cloud.store import influx_settings_from_options, run_query

    settings = influx_settings_from_options(
        url=url, database=database, token=token, username=username, password=password
    ).model_copy(update={"timeout_s": timeout_s})

    def run(query: str) -> list[dict[str, Any]]:
        try:
            results = run_query(settings, query)
        except StoreRejected as exc:
            raise QueryError(
                f"{exc.detail or exc}: {query}", status=exc.status, detail=exc.detail
            ) from exc
        series: list[dict[str, Any]] = results[0].get("series", []) if results else []
        return series

    return run


# --------------------------------------------------------------------------- frames


def _labels(tags: Mapping[str, str] | None) -> Labels:
    return tuple(sorted((tags or {}).items()))


def _float(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    raise QueryError(f"value {value!r} is not numeric")


def series_from_answer(answer: Sequence[Mapping[str, Any]]) -> list[Series]:
    """Grafana's time-series frames of an InfluxQL answer (one per series and column)."""
    out: list[Series] = []
    for s in answer:
        columns: list[str] = s["columns"]
        rows = s.get("values", [])
        labels = _labels(s.get("tags"))
        for j, name in enumerate(columns):
            if name == "time":
                continue
            points = tuple((int(row[0]), _float(row[j])) for row in rows)
            out.append(Series(labels=labels, points=points))
    return out


# --------------------------------------------------------------------------- alerting


@dataclass
class AlertEvaluation:
    """One evaluation of a rule at one instant.

    Attributes:
        states: alert instance labels -> state (``Normal``/``Alerting``/``NoData``).
        rule_state: the rule-level state when there are no instances (no data, error).
        queries: the exact InfluxQL sent per refId.
        values: condition value per instance (``None`` = null).
    """

    states: dict[Labels, State] = field(default_factory=dict)
    rule_state: State | None = None
    queries: dict[str, str] = field(default_factory=dict)
    values: dict[Labels, float | None] = field(default_factory=dict)
    error: str | None = None

    def firing(self) -> set[Labels]:
        """Labels of the instances in ``Alerting``."""
        return {labels for labels, state in self.states.items() if state == "Alerting"}

    def firing_values(self, key: str) -> set[str]:
        """The value of label ``key`` of every firing instance."""
        return {dict(labels)[key] for labels in self.firing() if key in dict(labels)}


def evaluate_rule(rule: Mapping[str, Any], run: Runner, *, now_ms: int) -> AlertEvaluation:
    """Evaluate a Grafana-managed rule (provisioning format) at ``now_ms``.

    Queries run with their ``relativeTimeRange`` ending at ``now_ms``; expressions and the
    state mapping follow the module docstring.
    """
    result = AlertEvaluation()
    series: dict[str, list[Series]] = {}
    expressions: list[Mapping[str, Any]] = []
    for node in rule["data"]:
        model = node["model"]
        if node["datasourceUid"] == "__expr__":
            expressions.append(model)
            continue
        rel = node.get("relativeTimeRange") or {"from": 600, "to": 0}
        time_range = TimeRange(now_ms - int(rel["from"]) * 1000, now_ms - int(rel["to"]) * 1000)
        query = expand_macros(str(model["query"]), time_range, int(model.get("intervalMs", 1000)))
        result.queries[str(node["refId"])] = query
        try:
            series[str(node["refId"])] = series_from_answer(run(query))
        except QueryError as exc:
            result.rule_state = "Error"
            result.error = str(exc)
            return result
    numbers = evaluate_expressions(expressions, series)
    condition = numbers.get(str(rule["condition"]), [])
    if not condition:
        no_data = rule.get("noDataState", "NoData")
        result.rule_state = "Normal" if no_data == "OK" else no_data
        return result
    for n in condition:
        result.values[n.labels] = n.value
        if n.value is None:
            result.states[n.labels] = "NoData"
        elif n.value == 0:
            result.states[n.labels] = "Normal"
        else:
            result.states[n.labels] = "Alerting"
    return result
