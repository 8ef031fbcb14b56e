"""Builders for the InfluxQL targets the dashboards repeat: a per-interval series grouped by
tags (graphs, timelines, heat maps) and a latest-value table grouped by tags.

Each builder writes the query text the dashboards used to spell out by hand, character for
character, so the generated JSON does not change; the query shapes are:

- :func:`series`: ``SELECT <select> FROM "<measurement>" WHERE $timeFilter[ AND <where>]
  GROUP BY time(<interval>), "<tag>"::tag, ... fill(<fill>)`` (or without the time bucket
  and ``fill`` when ``interval`` is ``None``), legend alias ``$tag_<last tag>``.
- :func:`table`: ``SELECT <select> FROM "<measurement>" WHERE $timeFilter[ AND <where>]
  GROUP BY "<tag>"::tag, ...[<tail>]`` as a Grafana table.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from renkei.dashboards.queries import GATEWAY_FILTER, MACHINE_FILTER, Target

__all__ = [
    "BY_MACHINE",
    "MACHINE_TAGS",
    "G",
    "M",
    "group_by",
    "series",
    "table",
]

M: Final = MACHINE_FILTER
G: Final = GATEWAY_FILTER
MACHINE_TAGS: Final = ("site", "line", "machine")
BY_MACHINE: Final = '"site"::tag, "line"::tag, "machine"::tag'


def group_by(tags: Sequence[str]) -> str:
    """``"a"::tag, "b"::tag`` for ``("a", "b")`` (InfluxQL GROUP BY tag list)."""
    return ", ".join(f'"{tag}"::tag' for tag in tags)


def _where(where: str) -> str:
    return f"WHERE $timeFilter AND {where}" if where else "WHERE $timeFilter"


def series(
    select: str,
    measurement: str,
    columns: tuple[str, ...],
    *,
    where: str = M,
    by: tuple[str, ...] = ("machine",),
    interval: str | None = "$__interval",
    fill: str = "none",
    alias: str | None = None,
) -> Target:
    """A time-series target ``A``: one series per combination of the ``by`` tags.

    Args:
        select: the SELECT list (``max("x") AS "x"``, ``mean(/_dev$/)``, ...).
        measurement: the measurement name (:mod:`renkei.core.influx.contract`).
        columns: expected result columns, ``time`` first.
        where: condition after ``$timeFilter AND`` (default: the machine variables);
            empty for none.
        by: GROUP BY tags, also the tags every answer series must carry.
        interval: GROUP BY time() argument; ``None`` for no time bucket (and no fill).
        fill: the ``fill()`` argument (``none``, ``null``, ``0``).
        alias: legend alias; default ``$tag_<last of by>``, followed by `` $col`` when the
            query returns several value columns (more than one column after ``time``, or
            a regex selection whose columns end in ``*``).
    """
    query = f'SELECT {select} FROM "{measurement}" {_where(where)} GROUP BY '
    if interval is None:
        query += group_by(by)
    else:
        query += f"time({interval}), {group_by(by)} fill({fill})"
    if alias is None:
        alias = f"$tag_{by[-1]}"
        if len(columns) > 2 or any(col.endswith("*") for col in columns):
            alias += " $col"
    return Target("A", query, columns, alias=alias, tags=by)


def table(
    select: str,
    measurement: str,
    columns: tuple[str, ...],
    *,
    where: str = M,
    by: tuple[str, ...] = MACHINE_TAGS,
    tail: str = "",
) -> Target:
    """A table target ``A``: the rows of ``select`` grouped by the ``by`` tags.

    Args:
        select: the SELECT list.
        measurement: the measurement name.
        columns: expected result columns, ``time`` first.
        where: condition after ``$timeFilter AND``; empty for none.
        by: GROUP BY tags (and tags the answer must carry).
        tail: appended after the GROUP BY clause (``" ORDER BY time DESC LIMIT 20"``).
    """
    query = f'SELECT {select} FROM "{measurement}" {_where(where)} GROUP BY {group_by(by)}{tail}'
    return Target("A", query, columns, result_format="table", tags=by)
