"""Every InfluxQL query the project writes qualifies the tags it filters or groups on as
``"key"::tag`` (issue 11: a field named like a tag otherwise wins in WHERE clauses)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import yaml

from renkei.cloud.capacity.availability import _up_buckets_query
from renkei.cloud.portability.reader import _firm_where
from renkei.core.wire import RESERVED_NAMES
from renkei.dashboards.build import ROOT

_TAG_KEYS = sorted((RESERVED_NAMES - {"time"}) | {"reason"})
_REF = re.compile(r'"(' + "|".join(_TAG_KEYS) + r')"(::\w+)?')
_CLAUSE = re.compile(r"\b(SELECT|WHERE|GROUP BY|ORDER BY|FROM|WITH KEY =)\b", re.IGNORECASE)


def unqualified_tag_refs(query: str) -> list[str]:
    """Tag references after WHERE or GROUP BY that lack ``::tag``."""
    bad = []
    for m in _REF.finditer(query):
        clauses = _CLAUSE.findall(query[: m.start()])
        clause = clauses[-1].upper() if clauses else ""
        if clause in ("WHERE", "GROUP BY") and m.group(2) != "::tag":
            bad.append(f"{m.group(0)} in {clause}")
    return bad


def _strings(node: Any, key: str = "") -> Iterator[str]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _strings(v, k)
    elif isinstance(node, list):
        for v in node:
            yield from _strings(v, key)
    elif isinstance(node, str) and key == "query":
        yield node


def _generated_queries() -> list[str]:
    out: list[str] = []
    for path in sorted((ROOT / "generated").glob("*.json")):
        out += _strings(json.loads(path.read_text(encoding="utf-8")))
    for path in sorted((ROOT / "provisioning").rglob("*.yaml")):
        out += _strings(yaml.safe_load(path.read_text(encoding="utf-8")))
    return [q for q in out if re.search(r"\b(SELECT|SHOW)\b", q)]


def test_checker_flags_the_pre_fix_form() -> None:
    old = (
        'SELECT mean("score") FROM "anomaly" WHERE $timeFilter AND "site" =~ /^$site$/ '
        'GROUP BY time(1m), "machine" fill(null)'
    )
    assert unqualified_tag_refs(old) == ['"site" in WHERE', '"machine" in GROUP BY']
    assert unqualified_tag_refs('SELECT "reason" FROM "x" WHERE "reason"::tag = \'a\'') == []


def test_every_dashboard_and_alert_query_qualifies_its_tags() -> None:
    queries = _generated_queries()
    assert len(queries) > 40  # five dashboards (panels + variables) and the alert rules
    assert sum("SHOW TAG VALUES" in q for q in queries) >= 5
    problems = {q: bad for q in queries if (bad := unqualified_tag_refs(q))}
    assert problems == {}


def test_capacity_and_export_queries_qualify_their_tags() -> None:
    q = _up_buckets_query(
        measurement="features",
        window="time >= 0",
        tag_filter=" AND \"firm\"::tag = 'acme'",
        fields=["a", "b"],
        key_tags=("firm", "site", "machine"),
        bucket_s=60,
        timezone="UTC",
    )
    assert unqualified_tag_refs(q) == []
    assert q.count('"machine"::tag') == 2
    assert _firm_where("acme") == "\"firm\"::tag = 'acme'"
