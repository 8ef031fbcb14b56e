"""Operator-recorded good/reject counts in the ``oee`` measurement (quality basis ``operator``).

Where the combination happens, and why there: the dashboards (and anything else reading
InfluxDB) sum the gateways' ``oee`` rows over a range, ``Q = sum(good) / (sum(good) +
sum(reject))`` (:mod:`renkei.core.influx.contract`). An operator's entry for a machine over
``[start, end)`` (registry :class:`renkei.cloud.registry.OperatorCount`) must *replace*
the machine's own quality inputs over exactly that interval, not add to them. So, when an
entry is recorded, the cloud writes into ``oee`` itself:

1. **mask** -- every gateway row of the machine with a time in ``[start, end)`` gets
   ``good = 0``, ``reject = 0``, ``quality_basis = operator`` (code 8) and
   ``operator_masked = 1``; its own values are kept beside them in ``gw_good``,
   ``gw_reject``, ``gw_quality_basis`` (InfluxDB 1.x merges the fields of a point written
   again with the same series and time; availability and performance fields are untouched);
2. **operator points** -- in a series of its own (the machine's tags plus
   ``src=operator``), one point per minute of ``[start, end)`` holding that minute's even
   share of the operator's ``good`` and ``reject`` (so a range covering part of the
   interval gets its part), ``quality_basis = operator``, ``planned_s = 0`` and
   ``duration_s`` (the entry's length, s).

Every existing query then yields the combined quality unchanged: intervals with an
operator entry count the operator's parts, all other time the machine's counts (or the
labelled proxy); ``last("quality_basis")`` says ``operator`` for a range ending in a
counted interval. Reverting an entry (correction, deletion) restores the kept values and
deletes the operator points, so nothing of the machine's data is lost.

Limits: a gateway row that arrives *after* the entry was applied (a gateway's buffered
backlog) is not masked until the entry is applied again (:func:`apply_interval` is
idempotent: rows already masked are left alone); the periodic reconciliation
(:mod:`renkei.cloud.oee.reconcile`, ``renkei cloud oee-sync``) does that, and restores
masked rows no entry covers any more. Row timestamps are ms (the ingest's precision).

Tags: the operator points take the tags of the machine's gateway rows in the interval (or,
when there are none, of the machine's newest row; else ``fallback_tags``), so they group
with them in every ``GROUP BY site, line, machine``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from renkei.cloud.registry.oee_counts import MAX_INTERVAL_S
from renkei.cloud.store.influx import InfluxSettings, InfluxStore, quote_ident, quote_literal
from renkei.cloud.store.influxql import run_query
from renkei.core.influx import contract as c
from renkei.core.influx.lineproto import FieldValue, format_point
from renkei.core.oee import BASIS_CODES

__all__ = [
    "MASKED_FIELD",
    "OPERATOR_TAG",
    "OperatorInterval",
    "Row",
    "SyncResult",
    "apply_interval",
    "delete_operator_points",
    "masked_rows",
    "operator_points",
    "restore_rows",
    "revert_interval",
]

OPERATOR_TAG: Final = ("src", "operator")
"""Tag (name, value) of the operator points' own series."""
MASKED_FIELD: Final = "operator_masked"
"""1.0 on a gateway row whose quality an operator entry replaces, 0.0 once reverted."""
_OPERATOR_CODE: Final = float(BASIS_CODES["operator"])
STEP_MS: Final = 60_000
"""Spacing of the operator points, ms: the parts are spread evenly over the interval."""
_KEPT: Final = (("good", "gw_good"), ("reject", "gw_reject"), ("quality_basis", "gw_quality_basis"))
#: Most rows touched per entry: 24 h of 1-s intervals (the shortest the gateway allows).
_MAX_ROWS: Final = 86_400


@dataclass(frozen=True, slots=True, kw_only=True)
class OperatorInterval:
    """One operator entry as InfluxDB sees it.

    Attributes:
        firm, machine: the ``firm`` and ``machine`` tags (registry ids).
        start_ms, end_ms: the interval ``[start_ms, end_ms)``, Unix ms, end > start.
        good, reject: parts counted (>= 0).
        fallback_tags: tags for the operator point when the machine has no rows at all
            (e.g. ``{"site": ..., "line": ...}`` from the registry).
    """

    firm: str
    machine: str
    start_ms: int
    end_ms: int
    good: int = 0
    reject: int = 0
    fallback_tags: Mapping[str, str] | None = None

    def __post_init__(self) -> None:
        if self.end_ms <= self.start_ms:
            raise ValueError(f"need end_ms > start_ms, got {self.start_ms}..{self.end_ms}")
        if self.end_ms - self.start_ms > MAX_INTERVAL_S * 1000:
            raise ValueError(f"interval longer than {MAX_INTERVAL_S} s")
        if self.good < 0 or self.reject < 0:
            raise ValueError(f"counts must be >= 0, got good={self.good}, reject={self.reject}")


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncResult:
    """What one apply/revert wrote: gateway rows changed, operator points written/deleted."""

    rows: int
    operator_points: int


Row = tuple[dict[str, str], int, dict[str, Any]]
"""One ``oee`` row: (its tags without empty ones, time in Unix ms, its fields by name)."""


def _where(iv: OperatorInterval, *, src: str) -> str:
    return (
        f'"firm" = {quote_literal(iv.firm)} AND "machine" = {quote_literal(iv.machine)} '
        f'AND "src" = {quote_literal(src)} '
        f"AND time >= {iv.start_ms}ms AND time < {iv.end_ms}ms"
    )


def _rows(settings: InfluxSettings, iv: OperatorInterval) -> list[Row]:
    return _select(settings, _where(iv, src=""))


def _select(settings: InfluxSettings, where: str) -> list[Row]:
    fields = ["planned_s", MASKED_FIELD] + [f for pair in _KEPT for f in pair]
    select = ", ".join(quote_ident(f) for f in fields)
    q = f"SELECT {select} FROM {quote_ident(c.OEE)} WHERE {where} GROUP BY * LIMIT {_MAX_ROWS}"
    out: list[Row] = []
    for result in run_query(settings, q):
        for s in result.get("series") or []:
            tags = {k: str(v) for k, v in (s.get("tags") or {}).items() if v != ""}
            columns = s["columns"]
            for values in s.get("values") or []:
                row = dict(zip(columns, values, strict=True))
                out.append((tags, int(row.pop("time")), row))
    return out


def _span(firm: str, machine: str | None, start_ms: int, end_ms: int) -> str:
    if end_ms - start_ms > MAX_INTERVAL_S * 1000:
        raise ValueError(f"span longer than {MAX_INTERVAL_S} s: {start_ms}..{end_ms}")
    where = f'"firm" = {quote_literal(firm)} '
    if machine is not None:
        where += f'AND "machine" = {quote_literal(machine)} '
    return where + f"AND time >= {start_ms}ms AND time < {end_ms}ms"


def masked_rows(
    settings: InfluxSettings, *, firm: str, machine: str | None, start_ms: int, end_ms: int
) -> list[Row]:
    """The masked gateway rows (``operator_masked = 1``) of ``firm`` (and ``machine``, or
    all its machines) in ``[start_ms, end_ms)``, Unix ms, at most one day long; at most
    86 400 rows per series.

    Raises:
        ValueError: a span longer than one day.
        StoreUnavailable, StoreRejected: as :func:`apply_interval`.
    """
    where = _span(firm, machine, start_ms, end_ms)
    return _select(settings, f"{where} AND \"src\" = '' AND {quote_ident(MASKED_FIELD)} = 1")


def operator_points(
    settings: InfluxSettings, *, firm: str, machine: str | None, start_ms: int, end_ms: int
) -> list[tuple[dict[str, str], int]]:
    """(tags, time ms) of the operator points of ``firm`` (and ``machine``) in
    ``[start_ms, end_ms)`` (at most one day; at most 86 400 per series).

    Raises:
        ValueError, StoreUnavailable, StoreRejected: as :func:`masked_rows`.
    """
    where = _span(firm, machine, start_ms, end_ms)
    q = (
        f'SELECT "good" FROM {quote_ident(c.OEE)} WHERE {where} AND "src" = '
        f"{quote_literal(OPERATOR_TAG[1])} GROUP BY * LIMIT {_MAX_ROWS}"
    )
    out: list[tuple[dict[str, str], int]] = []
    for result in run_query(settings, q):
        for s in result.get("series") or []:
            tags = {k: str(v) for k, v in (s.get("tags") or {}).items() if v != ""}
            out.extend((tags, int(values[0])) for values in s.get("values") or [])
    return out


def delete_operator_points(
    settings: InfluxSettings, *, firm: str, machine: str, start_ms: int, end_ms: int
) -> None:
    """Delete the operator points of one machine in ``[start_ms, end_ms)`` (any length).

    Raises:
        StoreUnavailable, StoreRejected: as :func:`apply_interval`.
    """
    statement = (
        f'DELETE FROM {quote_ident(c.OEE)} WHERE "firm" = {quote_literal(firm)} AND '
        f'"machine" = {quote_literal(machine)} AND "src" = {quote_literal(OPERATOR_TAG[1])} '
        f"AND time >= {start_ms}ms AND time < {end_ms}ms"
    )
    run_query(settings, statement)


def _newest_tags(settings: InfluxSettings, iv: OperatorInterval) -> dict[str, str] | None:
    q = (
        f'SELECT last("planned_s") FROM {quote_ident(c.OEE)} WHERE "firm" = '
        f'{quote_literal(iv.firm)} AND "machine" = {quote_literal(iv.machine)} AND "src" = '
        "'' GROUP BY *"
    )
    for result in run_query(settings, q):
        for s in result.get("series") or []:
            return {k: str(v) for k, v in (s.get("tags") or {}).items() if v != ""}
    return None


def _write(settings: InfluxSettings, lines: list[bytes]) -> None:
    if not lines:
        return
    store = InfluxStore(settings=settings)
    try:
        for i in range(0, len(lines), 5000):
            store.write_lines(b"".join(lines[i : i + 5000]), precision="ms")
    finally:
        store.close()


def _operator_points(iv: OperatorInterval, tags: Mapping[str, str]) -> list[bytes]:
    """The operator's parts spread over ``[start, end)`` in steps of :data:`STEP_MS`, each
    point holding the share of its step's length (so any sub-range gets its share)."""
    total = iv.end_ms - iv.start_ms
    out: list[bytes] = []
    for t_ms in range(iv.start_ms, iv.end_ms, STEP_MS):
        share = (min(t_ms + STEP_MS, iv.end_ms) - t_ms) / total
        fields: dict[str, FieldValue] = {
            "good": iv.good * share,
            "reject": iv.reject * share,
            "quality_basis": _OPERATOR_CODE,
            "planned_s": 0.0,
            "duration_s": total / 1000.0,
        }
        out.append(format_point(c.OEE, tags, fields, t_ms))
    return out


def apply_interval(
    settings: InfluxSettings,
    iv: OperatorInterval,
    *,
    points: Literal["always", "when_masking"] = "always",
) -> SyncResult:
    """Mask the machine's gateway rows in ``[start, end)`` and write the operator points.

    Idempotent (rows already masked keep their kept values). See the module docstring.
    ``points="when_masking"``: write the operator points only when a row was newly masked
    (the periodic reconciliation's entries it knows unchanged; saves rewriting them).

    Raises:
        StoreUnavailable: InfluxDB unreachable or failing.
        StoreRejected: InfluxDB refused a statement or a write (e.g. a field type conflict).
    """
    rows = _rows(settings, iv)
    lines: list[bytes] = []
    for tags, t_ms, row in rows:
        if row.get(MASKED_FIELD) == 1:
            continue
        fields: dict[str, FieldValue] = {
            "good": 0.0,
            "reject": 0.0,
            "quality_basis": _OPERATOR_CODE,
            MASKED_FIELD: 1.0,
        }
        for own, kept in _KEPT:
            value = row.get(own)
            if value is not None:
                fields[kept] = float(value)
        lines.append(format_point(c.OEE, tags, fields, t_ms))
    if points == "when_masking" and not lines:
        return SyncResult(rows=0, operator_points=0)
    found = dict(rows[0][0]) if rows else _newest_tags(settings, iv)
    tags = found or {**(iv.fallback_tags or {}), "firm": iv.firm, "machine": iv.machine}
    tags[OPERATOR_TAG[0]] = OPERATOR_TAG[1]
    written = _operator_points(iv, tags)
    lines.extend(written)
    _write(settings, lines)
    return SyncResult(rows=len(lines) - len(written), operator_points=len(written))


def restore_rows(settings: InfluxSettings, rows: list[Row]) -> int:
    """Give masked gateway ``rows`` (as :func:`masked_rows` returns them)
    their kept values back; rows not masked are skipped. Returns the rows written.

    Raises:
        StoreUnavailable, StoreRejected: as :func:`apply_interval`.
    """
    lines: list[bytes] = []
    for tags, t_ms, row in rows:
        if row.get(MASKED_FIELD) != 1:
            continue
        gw_basis = row.get("gw_quality_basis")
        fields: dict[str, FieldValue] = {
            "good": float(row.get("gw_good") or 0.0),
            "reject": float(row.get("gw_reject") or 0.0),
            "quality_basis": float(BASIS_CODES["unknown"] if gw_basis is None else gw_basis),
            MASKED_FIELD: 0.0,
        }
        lines.append(format_point(c.OEE, tags, fields, t_ms))
    _write(settings, lines)
    return len(lines)


def revert_interval(settings: InfluxSettings, iv: OperatorInterval) -> SyncResult:
    """Undo :func:`apply_interval` for ``[start, end)``: restore the kept values of masked
    rows and delete the operator points in the interval (``good``/``reject`` of ``iv``
    are not used).

    Raises:
        StoreUnavailable, StoreRejected: as :func:`apply_interval`.
    """
    restored = restore_rows(settings, _rows(settings, iv))
    statement = f"DELETE FROM {quote_ident(c.OEE)} WHERE {_where(iv, src=OPERATOR_TAG[1])}"
    run_query(settings, statement)
    return SyncResult(rows=restored, operator_points=1)
