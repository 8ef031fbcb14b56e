"""Run the dashboards' panel queries and the alert rules against an InfluxDB.

Used by the integration tests (against the pipeline-filled test InfluxDB) and by
``renkei dashboards verify`` (against a live installation). Queries are taken from the
dashboard *JSON* (what Grafana would run), prepared with :mod:`renkei.dashboards.emulate`, and
their answers are checked against the expected columns declared in :mod:`renkei.dashboards.boards`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from renkei.dashboards.alerts import RULES
from renkei.dashboards.boards import build_boards
from renkei.dashboards.emulate import (
    Number,
    QueryError,
    Runner,
    TimeRange,
    calculate_interval_ms,
    dashboard_variables,
    evaluate_expressions,
    evaluate_rule,
    expand_macros,
    influx_runner,
    interpolate,
    relative_range,
    series_from_answer,
)
from renkei.dashboards.panels import Board

__all__ = [
    "DATASOURCE_MIN_INTERVAL",
    "DEFAULT_MAX_DATA_POINTS",
    "PanelRun",
    "check_answer",
    "run_alerts",
    "run_board",
    "run_panels",
]

#: maxDataPoints of a panel without its own (Grafana uses the panel's width in pixels).
DEFAULT_MAX_DATA_POINTS: Final = 1000
#: The datasource's ``timeInterval`` (minimum interval of every panel).
DATASOURCE_MIN_INTERVAL: Final = "1s"


@dataclass
class PanelRun:
    """One target of one panel, as run."""

    dashboard: str
    panel_id: int
    title: str
    ref_id: str
    query: str
    answer: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    expressions: dict[str, list[Number]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Rows returned and every expected column present."""
        return not self.problems


def _matches(pattern: str, column: str) -> bool:
    if pattern.endswith("*"):
        return column.startswith(pattern[:-1])
    return column == pattern


def check_answer(
    answer: Sequence[Mapping[str, Any]], columns: Sequence[str], tags: Sequence[str]
) -> list[str]:
    """Problems of an InfluxQL answer: no rows, missing/unexpected columns, missing tags.

    ``columns`` are exact names or ``prefix*`` patterns (one or more columns); in a table
    answer without GROUP BY, tag columns may appear among the columns as well.
    """
    problems: list[str] = []
    if not answer or not any(s.get("values") for s in answer):
        return ["no rows"]
    for s in answer:
        got = list(s["columns"])
        series_tags = dict(s.get("tags") or {})
        for pattern in columns:
            if not any(_matches(pattern, col) for col in got):
                problems.append(f"missing column {pattern!r} in {got}")
        for col in got:
            if not any(_matches(p, col) for p in columns) and col not in tags:
                problems.append(f"unexpected column {col!r}")
        for tag in tags:
            if tag not in series_tags and tag not in got:
                problems.append(f"missing tag {tag!r} in {series_tags}")
        if not s.get("values"):
            problems.append(f"series {series_tags} without rows")
    return sorted(set(problems))


def run_board(
    board: Board,
    model: Mapping[str, Any],
    run: Runner,
    *,
    now_ms: int,
    time_range: TimeRange | None = None,
    variables: Mapping[str, Sequence[str]] | None = None,
) -> list[PanelRun]:
    """Run every InfluxQL target of a dashboard as Grafana would.

    Args:
        board: the dashboard's :class:`Board` (for the expected columns).
        model: the dashboard JSON (the committed file).
        run: executes InfluxQL.
        now_ms: "now" for the dashboard's relative time range.
        time_range: overrides the dashboard's default range.
        variables: overrides template variables (default: every option, as ``All``).
    """
    time = model["time"]
    tr = time_range or relative_range(time["from"], time["to"], now_ms=now_ms)
    resolved = dashboard_variables(model, run)
    if variables:
        resolved.update({k: list(v) for k, v in variables.items()})
    specs = {p.panel_id: p for p in board.panels}
    runs: list[PanelRun] = []
    for panel in model["panels"]:
        targets = panel.get("targets") or []
        spec = specs.get(int(panel["id"]))
        if spec is None:
            continue
        interval_ms = calculate_interval_ms(
            tr,
            max_data_points=int(panel.get("maxDataPoints") or DEFAULT_MAX_DATA_POINTS),
            min_interval=panel.get("interval") or DATASOURCE_MIN_INTERVAL,
        )
        expected = {t.ref_id: t for t in spec.targets}
        exprs = [t for t in targets if t.get("datasource", {}).get("type") == "__expr__"]
        frames = {}
        panel_runs: list[PanelRun] = []
        for target in targets:
            if target.get("datasource", {}).get("type") != "influxdb":
                continue
            ref = str(target["refId"])
            query = expand_macros(interpolate(str(target["query"]), resolved), tr, interval_ms)
            pr = PanelRun(board.uid, int(panel["id"]), str(panel["title"]), ref, query)
            if ref not in expected:
                pr.problems.append("target has no expected columns in renkei.dashboards.boards")
            try:
                pr.answer = run(query)
            except QueryError as exc:
                pr.problems.append(str(exc))
            else:
                if ref in expected:
                    pr.problems += check_answer(
                        pr.answer, expected[ref].columns, expected[ref].tags
                    )
                if exprs:
                    frames[ref] = series_from_answer(pr.answer) if not pr.problems else []
            panel_runs.append(pr)
        if exprs and panel_runs:
            panel_runs[-1].expressions = evaluate_expressions(exprs, frames)
        runs.extend(panel_runs)
    return runs


def _models() -> Iterator[tuple[Board, dict[str, Any]]]:
    import json

    from renkei.dashboards.build import render

    files = render()
    for board in build_boards():
        yield board, json.loads(files[f"generated/{board.uid}.json"])


def run_panels(url: str, database: str, *, now_ms: int) -> Iterator[tuple[str, bool]]:
    """Run every panel of every dashboard; yields a report line and whether it passed."""
    run = influx_runner(url, database)
    for board, model in _models():
        for pr in run_board(board, model, run, now_ms=now_ms):
            status = "ok" if pr.ok else "FAIL " + "; ".join(pr.problems)
            yield f"{pr.dashboard} #{pr.panel_id} {pr.ref_id} {pr.title}: {status}", pr.ok


def run_alerts(url: str, database: str, *, now_ms: int) -> Iterator[str]:
    """Evaluate every alert rule now; yields one line per rule."""
    run = influx_runner(url, database)
    for rule in RULES:
        ev = evaluate_rule(rule.to_file(), run, now_ms=now_ms)
        if ev.rule_state is not None:
            yield f"{rule.uid}: {ev.rule_state} {ev.error or ''}".rstrip()
            continue
        firing = sorted(",".join(f"{k}={v}" for k, v in labels) for labels in ev.firing())
        yield f"{rule.uid}: {len(ev.states)} instances, firing: {firing or 'none'}"
