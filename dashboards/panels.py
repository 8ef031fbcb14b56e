"""Small building blocks on top of grafana-foundation-sdk: bilingual titles, variables,
panels with InfluxQL targets, and :class:`Board`, which keeps the expected columns of every
query next to the dashboard it builds (for the tests)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from grafana_foundation_sdk.builders import (
    bargauge,
    dashboard,
    expr,
    statetimeline,
    statushistory,
    table,
    text,
    timeseries,
)
from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as dm

from renkei.dashboards.queries import DATASOURCE_REF, EXPR_REF, Target

__all__ = [
    "Board",
    "PanelSpec",
    "bi",
    "expression_math",
    "expression_reduce",
    "thresholds",
    "value_map",
]

#: Dashboard tags (all dashboards).
TAGS: Final = ["renkei"]


def bi(ja: str, en: str) -> str:
    """A bilingual title: ``"日本語 / English"`` (one dashboard serves both audiences)."""
    return f"{ja} / {en}"


def thresholds(*steps: tuple[float | None, str]) -> dashboard.ThresholdsConfig:
    """Absolute thresholds from ``(value, color)`` steps; the first value is ``None`` (base)."""
    return (
        dashboard.ThresholdsConfig()
        .mode(dm.ThresholdsMode.ABSOLUTE)
        .steps([dm.Threshold(value=v, color=c) for v, c in steps])
    )


def value_map(mapping: Mapping[str, tuple[str, str]]) -> list[dm.ValueMapping]:
    """Value mappings ``value -> (display text, color)``."""
    return [
        dm.ValueMap(
            options={
                key: dm.ValueMappingResult(text=label, color=color, index=i)
                for i, (key, (label, color)) in enumerate(mapping.items())
            }
        )
    ]


def expression_reduce(
    ref_id: str, source: str, reducer: str, *, hide: bool = False
) -> expr.TypeReduce:
    """A server-side Reduce expression (mode ``dropNN``: nulls and NaN are skipped)."""
    builder = (
        expr.TypeReduce()
        .ref_id(ref_id)
        .datasource(EXPR_REF)
        .expression(source)
        .reducer(reducer)  # type: ignore[arg-type]
        .settings(expr.ExprTypeReduceSettings().mode("dropNN"))
    )
    if hide:
        builder = builder.hide(True)
    return builder


def expression_math(ref_id: str, expression: str) -> expr.TypeMath:
    """A server-side Math expression, e.g. ``$A * $P * $Q``."""
    return expr.TypeMath().ref_id(ref_id).datasource(EXPR_REF).expression(expression)


@dataclass
class PanelSpec:
    """What the tests know about one panel: its InfluxQL targets (and expressions)."""

    panel_id: int
    title: str
    targets: list[Target]
    expressions: list[dict[str, Any]] = field(default_factory=list)


class Board:
    """A dashboard under construction plus the :class:`PanelSpec` of each panel.

    Args:
        uid: stable dashboard uid (URLs, provisioning, push).
        title: bilingual title.
        description: shown in the dashboard list.
        time_from, time_to: default time range (Grafana relative syntax).
        variables: template variables, in dependency order.
    """

    def __init__(
        self,
        *,
        uid: str,
        title: str,
        description: str,
        variables: Sequence[dashboard.QueryVariable],
        time_from: str = "now-6h",
        time_to: str = "now",
        refresh: str = "30s",
    ) -> None:
        self.uid = uid
        self.title = title
        self.builder = (
            dashboard.Dashboard(title)
            .uid(uid)
            .description(description)
            .tags(TAGS)
            .timezone("browser")
            .editable()
            .time(time_from, time_to)
            .refresh(refresh)
        )
        for var in variables:
            self.builder = self.builder.with_variable(var)
        self.panels: list[PanelSpec] = []
        self._next_id = 1

    def row(self, title: str) -> None:
        """Start a (non-collapsed) row."""
        self.builder = self.builder.with_row(dashboard.Row(title).id(self._take_id()))

    def add(
        self,
        panel: Any,
        *,
        title: str,
        targets: Sequence[Target] = (),
        expressions: Sequence[cogbuilder.Builder[cogvariants.Dataquery]] = (),
        width: int = 12,
        height: int = 8,
        description: str = "",
        interval: str | None = None,
    ) -> None:
        """Add ``panel`` (an SDK panel builder) with its targets at the next grid slot."""
        panel_id = self._take_id()
        panel = panel.id(panel_id).title(title).span(width).height(height)
        if description:
            panel = panel.description(description)
        if interval is not None:
            panel = panel.interval(interval)
        if targets or expressions:
            panel = panel.datasource(DATASOURCE_REF if not expressions else _MIXED)
            panel = panel.targets([*targets, *expressions])
        self.builder = self.builder.with_panel(panel)
        self.panels.append(
            PanelSpec(
                panel_id=panel_id,
                title=title,
                targets=list(targets),
                expressions=[_to_dict(e.build()) for e in expressions],
            )
        )

    def _take_id(self) -> int:
        panel_id = self._next_id
        self._next_id += 1
        return panel_id

    def to_json(self) -> dict[str, Any]:
        """The dashboard model (what Grafana stores) as plain JSON types."""
        return _to_dict(self.builder.build())


_MIXED: Final = dm.DataSourceRef(type_val="datasource", uid="-- Mixed --")


def _to_dict(obj: object) -> dict[str, Any]:
    import json

    result: dict[str, Any] = json.loads(json.dumps(obj, cls=JSONEncoder))
    return result


# --------------------------------------------------------------------------- variables


def tag_variable(
    name: str, label: str, key: str, *, where: str = "", measurement: str | None = None
) -> dashboard.QueryVariable:
    """A multi-value query variable over the values of tag ``key`` (``All`` included)."""
    source = f' FROM "{measurement}"' if measurement else ""
    query = f'SHOW TAG VALUES{source} WITH KEY = "{key}"'
    if where:
        query += f" WHERE {where}"
    return (
        dashboard.QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE_REF)
        .query(query)
        .multi(True)
        .include_all(True)
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dm.VariableSort.ALPHABETICAL_ASC)
        .current(dm.VariableOption(selected=True, text=["All"], value=["$__all"]))
    )


def machine_variables(measurement: str | None = None) -> list[dashboard.QueryVariable]:
    """``site`` → ``line`` → ``machine`` (each filtered by the ones before); the tag values
    of ``measurement`` only when given, else of every measurement."""
    return [
        tag_variable("site", bi("拠点", "Site"), "site", measurement=measurement),
        tag_variable(
            "line",
            bi("ライン", "Line"),
            "line",
            where='"site"::tag =~ /^$site$/',
            measurement=measurement,
        ),
        tag_variable(
            "machine",
            bi("設備", "Machine"),
            "machine",
            where='"site"::tag =~ /^$site$/ AND "line"::tag =~ /^$line$/',
            measurement=measurement,
        ),
    ]


# --------------------------------------------------------------------------- overrides

#: Grafana's dashed line style (thresholds, quantile bands).
DASHED: Final = {"fill": "dash", "dash": [10, 10]}


def dashed_band() -> list[dm.DynamicConfigValue]:
    """Field overrides drawing a series dashed and unfilled (quantile bands)."""
    return [
        dm.DynamicConfigValue(id_val="custom.lineStyle", value=DASHED),
        dm.DynamicConfigValue(id_val="custom.fillOpacity", value=0),
    ]


# --------------------------------------------------------------------------- panels


def timeseries_panel(unit: str = "short") -> timeseries.Panel:
    """A time series panel with a table legend."""
    return (
        timeseries.Panel()
        .unit(unit)
        .legend(
            cb.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
        )
        .line_width(1)
        .fill_opacity(10)
    )


def bargauge_panel(unit: str, *, min_value: float, max_value: float | None) -> bargauge.Panel:
    """A horizontal bar gauge, one bar per series."""
    panel = (
        bargauge.Panel()
        .unit(unit)
        .min(min_value)
        .display_mode(common.BarGaugeDisplayMode.GRADIENT)
        .orientation(common.VizOrientation.HORIZONTAL)
        .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )
    if max_value is not None:
        panel = panel.max(max_value)
    return panel


def table_panel() -> table.Panel:
    """A table panel."""
    return table.Panel()


def timeline_panel() -> statetimeline.Panel:
    """A state timeline panel (one row per series)."""
    return statetimeline.Panel().show_value(common.VisibilityMode.NEVER)


def history_panel() -> statushistory.Panel:
    """A status history panel (a machine × time heat map)."""
    return statushistory.Panel().show_value(common.VisibilityMode.NEVER)


def text_panel(content: str) -> text.Panel:
    """A markdown text panel."""
    return text.Panel().content(content)


def alertlist_panel() -> dashboard.Panel:
    """Grafana's built-in alert list (firing and pending Grafana-managed alerts of the
    Renkei folder); it reads Grafana's alert state, not InfluxDB."""
    return (
        dashboard.Panel()
        .type("alertlist")
        .options(
            {
                "viewMode": "list",
                "groupMode": "default",
                "maxItems": 50,
                "sortOrder": 1,
                "dashboardAlerts": False,
                "alertName": "",
                "alertInstanceLabelFilter": "",
                "folder": {"uid": "renkei", "title": "Renkei"},
                "stateFilter": {
                    "firing": True,
                    "pending": True,
                    "noData": False,
                    "normal": False,
                    "error": True,
                },
            }
        )
    )
