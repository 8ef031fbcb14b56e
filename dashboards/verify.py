"""Run the dashboards' panel queries and the alert rules against an InfluxDB.

Used by the integration tests (against the pipeline-filled test InfluxDB) and by
``renkei dashboards verify`` (against a live installation). Queries are taken from the
dashboard *JSON* (what Grafana would run), prepared with :mod:`renkei.dashboards.emulate`, and
their answers are checked against the expected columns declared in :mod:`renkei.dashboards.boards`.

``verify`` tells three outcomes apart per query (:class:`Outcome`): ``ok`` (rows with the
expected columns), ``no data`` (a valid query with an empty answer: a fresh install
before any gateway sent data; not a failure) and ``broken`` (InfluxDB refused the query,
or its rows lack expected columns: a failure). A server that cannot answer at all
(unreachable, credentials refused, database missing) is :class:`VerifyUnavailable`,
raised before any panel runs.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from renkei.core.errors import StoreUnavailable
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
    "Check",
    "Outcome",
    "PanelRun",
    "VerifyUnavailable",
    "check_answer",
    "check_server",
    "run_alerts",
    "run_board",
    "run_panels",
]

#: What one query of ``verify`` found (module docstring).
Outcome = Literal["ok", "no data", "broken"]

#: The only problem of a valid query over an empty database.
NO_ROWS: Final = "no rows"


class VerifyUnavailable(StoreUnavailable):
    """InfluxDB cannot answer at all: unreachable, credentials refused, or no such
    database. The message names the URL and what to check."""


@dataclass(frozen=True, slots=True)
class Check:
    """One line of ``verify``: ``what`` was checked (panel or alert rule) and its outcome;
    ``detail`` says why it is broken (empty otherwise)."""

    what: str
    outcome: Outcome
    detail: str = ""

    @property
    def line(self) -> str:
        """``"<what>: ok (data)"``, ``"<what>: ok, no data yet"`` or ``"<what>: BROKEN
        QUERY: <detail>"``."""
        text = {"ok": "ok (data)", "no data": "ok, no data yet", "broken": "BROKEN QUERY"}
        tail = f": {self.detail}" if self.detail else ""
        return f"{self.what}: {text[self.outcome]}{tail}"


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
    query_failed: bool = False

    @property
    def ok(self) -> bool:
        """Rows returned and every expected column present."""
        return not self.problems

    @property
    def outcome(self) -> Outcome:
        """``ok``; ``no data`` when the only problem is an empty answer of a query InfluxDB
        accepted; ``broken`` otherwise (refused query, missing columns)."""
        if self.ok:
            return "ok"
        if not self.query_failed and self.problems == [NO_ROWS]:
            return "no data"
        return "broken"


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
        return [NO_ROWS]
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
                pr.query_failed = True
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


def _unavailable(exc: StoreUnavailable, url: str, database: str) -> VerifyUnavailable:
    detail = exc.detail or str(exc)
    if exc.status in (401, 403):
        hint = "credentials refused (--influx-user/--influx-password or --influx-token)"
    elif detail.startswith("database not found"):
        hint = (
            f"no database {database!r} (the ingest creates it on its first start; "
            "or check --influx-database)"
        )
    elif exc.status is None:
        hint = "unreachable: is InfluxDB running, and is --influx-url right?"
    else:
        hint = f"not answering (HTTP {exc.status})"
    return VerifyUnavailable(f"InfluxDB at {url}: {hint} [{detail}]", status=exc.status)


def check_server(
    url: str,
    database: str,
    *,
    token: str | None = None,
    username: str | None = None,
    password: str | None = None,
) -> Runner:
    """A runner for ``url``/``database``, after one query proved that the server answers,
    accepts the credentials and has the database. The runner raises
    :class:`VerifyUnavailable` too when the server stops answering later.

    Raises:
        ConfigError: a bad URL or half a user/password pair.
        VerifyUnavailable: the server cannot answer (the message names ``url`` and what to
            check: is it running, the credentials, the database name).
    """
    inner = influx_runner(url, database, token=token, username=username, password=password)

    def run(query: str) -> list[dict[str, Any]]:
        try:
            return inner(query)
        except StoreUnavailable as exc:
            raise _unavailable(exc, url, database) from exc

    try:
        # A SELECT (unlike SHOW MEASUREMENTS) names a missing database.
        run('SELECT * FROM "renkei_verify_probe" LIMIT 1')
    except QueryError as exc:
        raise VerifyUnavailable(f"InfluxDB at {url} refused a basic query: {exc.detail}") from exc
    return run


def run_panels(run: Runner, *, now_ms: int) -> Iterator[Check]:
    """Run every panel of every dashboard (``All`` selected); one :class:`Check` each.

    Raises:
        StoreUnavailable: the server stopped answering meanwhile.
    """
    for board, model in _models():
        for pr in run_board(board, model, run, now_ms=now_ms):
            what = f"{pr.dashboard} #{pr.panel_id} {pr.ref_id} {pr.title}"
            outcome = pr.outcome
            detail = "; ".join(pr.problems) if outcome == "broken" else ""
            yield Check(what, outcome, detail)


def run_alerts(run: Runner, *, now_ms: int) -> Iterator[Check]:
    """Evaluate every alert rule now; one :class:`Check` each (``broken`` when a query of
    the rule fails, ``no data`` when the rule sees no series).

    Raises:
        StoreUnavailable: the server stopped answering meanwhile.
    """
    for rule in RULES:
        what = f"alert {rule.uid}"
        ev = evaluate_rule(rule.to_file(), run, now_ms=now_ms)
        if ev.rule_state == "Error":
            yield Check(what, "broken", ev.error or "")
        elif ev.rule_state is not None and not ev.states:
            yield Check(what, "no data", "")
        else:
            firing = sorted(",".join(f"{k}={v}" for k, v in labels) for labels in ev.firing())
            yield Check(
                what, "ok", f"{len(ev.states)} instances, firing: {', '.join(firing) or 'none'}"
            )
