"""The Grafana emulation used to run panel queries and alert rules in the tests."""

from __future__ import annotations

import math
from typing import Any

import pytest

from renkei.dashboards.emulate import (
    Number,
    QueryError,
    Series,
    TimeRange,
    calculate_interval_ms,
    escape_regex,
    evaluate_expressions,
    evaluate_math,
    evaluate_rule,
    expand_macros,
    format_interval,
    interpolate,
    relative_range,
    round_interval_ms,
    variable_options,
)


def test_macros_expand_like_grafanas_influxql_builder() -> None:
    q = 'SELECT mean("x") FROM "m" WHERE $timeFilter GROUP BY time($__interval) -- $__interval_ms'
    out = expand_macros(q, TimeRange(1000, 61_000), 10_000)
    assert out == (
        'SELECT mean("x") FROM "m" WHERE time >= 1000ms and time <= 61000ms '
        "GROUP BY time(10s) -- 10000"
    )
    assert expand_macros("time($interval)", TimeRange(0, 1), 60_000) == "time(1m)"


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (1, "1ms"),
        (500, "500ms"),
        (1000, "1s"),
        (90_000, "1m"),
        (7_200_000, "2h"),
        (86_400_000, "1d"),
    ],
)
def test_format_interval(ms: int, text: str) -> None:
    assert format_interval(ms) == text


def test_interval_rounding_and_min_interval() -> None:
    assert round_interval_ms(21_600) == 20_000
    assert round_interval_ms(900) == 1000
    six_hours = TimeRange(0, 6 * 3600 * 1000)
    assert calculate_interval_ms(six_hours, max_data_points=1000, min_interval="1s") == 20_000
    assert calculate_interval_ms(six_hours, max_data_points=1000, min_interval="1m") == 60_000


def test_relative_ranges() -> None:
    now = 10 * 86_400_000 + 3_600_000
    assert relative_range("now-6h", "now", now_ms=now) == TimeRange(now - 6 * 3_600_000, now)
    tr = relative_range("now/d", "now+84d", now_ms=now)
    assert tr.from_ms == 10 * 86_400_000
    assert tr.to_ms == now + 84 * 86_400_000


def test_interpolation_of_multi_value_variables() -> None:
    values = {"site": ["osaka"], "machine": ["imm-1", "gw.2"], "line": []}
    q = '"site" =~ /^$site$/ AND "machine" =~ /^${machine}$/ AND x = [[site]] $timeFilter'
    assert interpolate(q, values) == (
        '"site" =~ /^osaka$/ AND "machine" =~ /^(imm-1|gw\\.2)$/ AND x = osaka $timeFilter'
    )
    assert escape_regex("a/b(c)") == "a\\/b\\(c\\)"
    assert interpolate("$sites $site_x", {"site": ["a"]}) == "$sites $site_x"


def test_variable_options_regex_and_value_column() -> None:
    answer = [
        {"columns": ["key", "value"], "values": [["machine", "m2"], ["machine", "m1"]]},
    ]
    assert variable_options({"query": "SHOW TAG VALUES"}, lambda q: answer) == ["m1", "m2"]
    fields = [{"columns": ["fieldKey", "fieldType"], "values": [["a_mean", "float"], ["b", "x"]]}]
    var = {"query": "SHOW FIELD KEYS", "regex": "/^.*(?:_mean)$/"}
    assert variable_options(var, lambda q: fields) == ["a_mean"]
    capture = {"query": "SHOW FIELD KEYS", "regex": "/^(.*)_mean$/"}
    assert variable_options(capture, lambda q: fields) == ["a"]


def _series(labels: dict[str, str], *values: float | None) -> Series:
    return Series(tuple(sorted(labels.items())), tuple((i, v) for i, v in enumerate(values)))


def _reduce(reducer: str, *values: float | None, mode: str = "dropNN") -> float | None:
    out = evaluate_expressions(
        [
            {
                "refId": "B",
                "type": "reduce",
                "expression": "A",
                "reducer": reducer,
                "settings": {"mode": mode},
            }
        ],
        {"A": [_series({}, *values)]},
    )
    return out["B"][0].value


def test_reduce_modes() -> None:
    assert _reduce("min", 3.0, None, 2.0) == 2.0
    assert _reduce("last", 3.0, None) == 3.0
    assert _reduce("last") is None  # no points: NaN, dropped to null
    assert _reduce("sum") == 0.0
    assert _reduce("count", 1.0, None) == 1.0
    strict = _reduce("max", 1.0, None, mode="")
    assert strict is not None and math.isnan(strict)
    assert _reduce("mean", 1.0, math.nan, mode="replaceNN") == 0.5


def test_math_pairs_numbers_by_labels() -> None:
    a = [Number((("machine", "m1"),), 0.5), Number((("machine", "m2"),), 0.8)]
    b = [Number((("machine", "m1"), ("site", "s")), 0.5)]
    numbers = {"A": a, "B": b}
    res = evaluate_math("$A * $B", numbers)
    assert res == [Number((("machine", "m1"), ("site", "s")), 0.25)]
    single = evaluate_math("$X > 1", {"X": [Number((("gw", "g"),), 2.0)]})
    assert single == [Number((("gw", "g"),), 1.0)]
    stripped = evaluate_math(
        "$X - $Y", {"X": [Number((("a", "1"),), 3.0)], "Y": [Number((("b", "2"),), 1.0)]}
    )
    assert stripped == [Number((), 2.0)]


def _rule(threshold: tuple[str, float], no_data: str = "OK") -> dict[str, Any]:
    return {
        "condition": "C",
        "noDataState": no_data,
        "data": [
            {
                "refId": "A",
                "datasourceUid": "ds",
                "relativeTimeRange": {"from": 600, "to": 0},
                "model": {"query": "SELECT x FROM m WHERE $timeFilter", "intervalMs": 1000},
            },
            {
                "refId": "B",
                "datasourceUid": "__expr__",
                "model": {
                    "refId": "B",
                    "type": "reduce",
                    "expression": "A",
                    "reducer": "last",
                    "settings": {"mode": "dropNN"},
                },
            },
            {
                "refId": "C",
                "datasourceUid": "__expr__",
                "model": {
                    "refId": "C",
                    "type": "threshold",
                    "expression": "B",
                    "conditions": [{"evaluator": {"type": threshold[0], "params": [threshold[1]]}}],
                },
            },
        ],
    }


def test_rule_states() -> None:
    answer: list[dict[str, Any]] = [
        {"tags": {"gw": "a"}, "columns": ["time", "x"], "values": [[1, 5.0]]},
        {"tags": {"gw": "b"}, "columns": ["time", "x"], "values": [[1, 0.0]]},
        {"tags": {"gw": "c"}, "columns": ["time", "x"], "values": [[1, None]]},
    ]
    sent: list[str] = []

    def run(q: str) -> list[dict[str, Any]]:
        sent.append(q)
        return answer

    ev = evaluate_rule(_rule(("gt", 1.0)), run, now_ms=1_000_000)
    assert sent == ["SELECT x FROM m WHERE time >= 400000ms and time <= 1000000ms"]
    assert ev.states == {
        (("gw", "a"),): "Alerting",
        (("gw", "b"),): "Normal",
        (("gw", "c"),): "NoData",
    }
    assert ev.firing_values("gw") == {"a"}


def test_rule_without_data_or_with_error() -> None:
    assert evaluate_rule(_rule(("gt", 1.0)), lambda q: [], now_ms=0).rule_state == "Normal"
    assert (
        evaluate_rule(_rule(("gt", 1.0), "Alerting"), lambda q: [], now_ms=0).rule_state
        == "Alerting"
    )

    def broken(q: str) -> list[dict[str, Any]]:
        raise QueryError("error parsing query")

    ev = evaluate_rule(_rule(("gt", 1.0)), broken, now_ms=0)
    assert ev.rule_state == "Error" and "parsing" in (ev.error or "")
