"""InfluxQL targets for grafana-foundation-sdk panels, and the datasource they point at.

The SDK has no InfluxDB query type, so :class:`InfluxQuery` implements the SDK's
``Dataquery`` interface and serialises to the query model Grafana's InfluxDB datasource
stores for a raw InfluxQL query (``rawQuery: true``, ``query``, ``resultFormat``).

Every query is plain InfluxQL (InfluxDB 1.x, 2.x through the v1 compatibility API, 3.x)
with Grafana's variables and macros only:

- ``$timeFilter`` -> ``time >= {from}ms and time <= {to}ms``
- ``$__interval`` -> the panel interval (``10s``, ``1m``, ...)
- ``$site``, ``$line``, ``$machine``, ``$gateway``, ``$feature`` -> regular expressions
  (multi-value variables; ``(a|b)`` with regex escaping), always used as
  ``"tag" =~ /^$var$/``.

:class:`Target` adds what the tests need and Grafana does not store: the columns the query
must return (checked against a real InfluxDB filled by the pipeline).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models.dashboard import DataSourceRef

__all__ = [
    "DATASOURCE_NAME",
    "DATASOURCE_REF",
    "DATASOURCE_TYPE",
    "DATASOURCE_UID",
    "EXPR_REF",
    "GATEWAY_FILTER",
    "MACHINE_FILTER",
    "InfluxQuery",
    "Target",
]

DATASOURCE_UID: Final = "renkei-influxdb"
DATASOURCE_NAME: Final = "Renkei InfluxDB"
DATASOURCE_TYPE: Final = "influxdb"
DATASOURCE_REF: Final = DataSourceRef(type_val=DATASOURCE_TYPE, uid=DATASOURCE_UID)
EXPR_REF: Final = DataSourceRef(type_val="__expr__", uid="__expr__")

#: WHERE condition selecting the dashboard's machines (template variables).
MACHINE_FILTER: Final = (
    '"site"::tag =~ /^$site$/ AND "line"::tag =~ /^$line$/ AND "machine"::tag =~ /^$machine$/'
)
#: WHERE condition selecting the dashboard's gateways.
GATEWAY_FILTER: Final = '"site"::tag =~ /^$site$/ AND "gw"::tag =~ /^$gateway$/'

ResultFormat = Literal["time_series", "table"]


class InfluxQuery(cogvariants.Dataquery):
    """A raw InfluxQL query of Grafana's InfluxDB datasource (InfluxQL mode)."""

    def __init__(
        self,
        *,
        ref_id: str,
        query: str,
        result_format: ResultFormat = "time_series",
        alias: str | None = None,
        hide: bool = False,
    ) -> None:
        self.ref_id = ref_id
        self.query = query
        self.result_format = result_format
        self.alias = alias
        self.hide = hide

    def to_json(self) -> dict[str, object]:
        """The query model as stored in a dashboard or alert rule."""
        payload: dict[str, object] = {
            "datasource": {"type": DATASOURCE_TYPE, "uid": DATASOURCE_UID},
            "query": self.query,
            "rawQuery": True,
            "refId": self.ref_id,
            "resultFormat": self.result_format,
        }
        if self.alias is not None:
            payload["alias"] = self.alias
        if self.hide:
            payload["hide"] = True
        return payload


@dataclass(frozen=True)
class Target(cogbuilder.Builder[cogvariants.Dataquery]):
    """An InfluxQL target and the columns it must return.

    Attributes:
        ref_id: Grafana's query letter (``A``, ``B``, ...).
        query: InfluxQL with Grafana variables/macros.
        columns: the result columns expected from InfluxDB (``time`` first), checked by the
            integration tests on every series of the answer.
        result_format: ``time_series`` (graphs) or ``table``.
        alias: Grafana legend alias (``$tag_machine`` etc.).
        hide: hidden in the panel (still executed, e.g. as input of an expression).
    """

    ref_id: str
    query: str
    columns: tuple[str, ...]
    result_format: ResultFormat = "time_series"
    alias: str | None = None
    hide: bool = False
    tags: tuple[str, ...] = field(default=())
    """GROUP BY tags the answer's series must carry (empty: none required)."""

    def build(self) -> InfluxQuery:
        """The SDK dataquery for a panel or an alert rule."""
        return InfluxQuery(
            ref_id=self.ref_id,
            query=self.query,
            result_format=self.result_format,
            alias=self.alias,
            hide=self.hide,
        )
