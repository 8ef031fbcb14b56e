"""Grafana's server-side expressions (``pkg/expr``, v10-v12), re-implemented for tests and
checks (:mod:`renkei.dashboards.emulate` runs the queries and the alert rules around them).

Server-side expressions (``pkg/expr``):
    *Reduce* (``mathexp/reduce.go``) ``sum``/``mean``/``min``/``max``/``count``/``last``
    of each series into a number with the series' labels; mode ``dropNN`` first drops
    null/NaN/Inf points, ``replaceNN`` replaces them, strict mode returns NaN if any.
    *Math* on numbers: a binary operation pairs numbers whose labels are equal or one a
    subset of the other (``mathexp/union``); one number on each side always pairs.
    *Threshold* (``threshold.go``): ``gt``, ``lt``, ``gte``, ``lte``, ``eq``, ``ne``,
    ``within_range``, ``outside_range`` (+ ``_included``) → 1 or 0; null stays null.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["Labels", "Number", "Series", "evaluate_expressions", "evaluate_math"]

Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Series:
    """A time series frame: labels and ``(time_ms, value)`` points."""

    labels: Labels
    points: tuple[tuple[int, float | None], ...]


@dataclass(frozen=True)
class Number:
    """A number (result of Reduce/Math/Threshold) with labels; ``None`` = null."""

    labels: Labels
    value: float | None


# --------------------------------------------------------------------------- expressions


def _reduce(series: Series, reducer: str, settings: Mapping[str, Any]) -> Number:
    mode = settings.get("mode", "")
    values: list[float | None] = [v for _, v in series.points]
    if mode == "dropNN":
        values = [v for v in values if v is not None and math.isfinite(v)]
    elif mode == "replaceNN":
        repl = float(settings.get("replaceWithValue", 0.0))
        values = [repl if v is None or not math.isfinite(v) else v for v in values]
    nan = math.nan
    result: float | None
    if reducer == "count":
        result = float(len(values))
    elif reducer == "last":
        result = values[-1] if values else nan
    elif any(v is None or math.isnan(v) for v in values):
        result = nan
    else:
        nums = [v for v in values if v is not None]
        if reducer == "sum":
            result = float(sum(nums))
        elif reducer == "mean":
            result = float(sum(nums)) / len(nums) if nums else nan
        elif reducer == "min":
            result = min(nums) if nums else nan
        elif reducer == "max":
            result = max(nums) if nums else nan
        else:
            raise ValueError(f"reducer {reducer!r} is not supported")
    if mode == "dropNN" and result is not None and math.isnan(result):
        result = None
    if mode == "replaceNN" and result is not None and math.isnan(result):
        result = float(settings.get("replaceWithValue", 0.0))
    return Number(series.labels, result)


_OPS: Final[dict[str, Callable[[float, float], float]]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a / b if b != 0 else (math.nan if a == 0 else math.copysign(math.inf, a)),
    ">": lambda a, b: float(a > b),
    "<": lambda a, b: float(a < b),
    ">=": lambda a, b: float(a >= b),
    "<=": lambda a, b: float(a <= b),
    "==": lambda a, b: float(a == b),
    "!=": lambda a, b: float(a != b),
    "&&": lambda a, b: float(bool(a) and bool(b)),
    "||": lambda a, b: float(bool(a) or bool(b)),
}
_PRECEDENCE: Final = {
    "||": 1,
    "&&": 2,
    "==": 3,
    "!=": 3,
    ">": 4,
    "<": 4,
    ">=": 4,
    "<=": 4,
    "+": 5,
    "-": 5,
    "*": 6,
    "/": 6,
}
_TOKEN_RE: Final = re.compile(
    r"\s*(?:(\$\{?\w+\}?)|(\d+(?:\.\d*)?(?:[eE][+-]?\d+)?)|(&&|\|\||[<>=!]=|[-+*/<>()]))"
)

Value = list[Number] | float


def _contains(big: Labels, small: Labels) -> bool:
    return set(small) <= set(big)


def _binary(op: str, a: Value, b: Value) -> Value:
    fn = _OPS[op]

    def apply(x: float | None, y: float | None) -> float | None:
        return None if x is None or y is None else fn(x, y)

    if isinstance(a, float) and isinstance(b, float):
        result = apply(a, b)
        return math.nan if result is None else result
    if isinstance(a, float):
        assert not isinstance(b, float)
        return [Number(n.labels, apply(a, n.value)) for n in b]
    if isinstance(b, float):
        return [Number(n.labels, apply(n.value, b)) for n in a]
    out: list[Number] = []
    for x in a:
        for y in b:
            if x.labels == y.labels or not x.labels or not y.labels:
                labels = x.labels or y.labels
            elif len(x.labels) == len(y.labels):
                continue
            elif _contains(x.labels, y.labels):
                labels = x.labels
            elif _contains(y.labels, x.labels):
                labels = y.labels
            else:
                continue
            out.append(Number(labels, apply(x.value, y.value)))
    if not out and len(a) == 1 and len(b) == 1:
        out.append(Number((), apply(a[0].value, b[0].value)))
    return out


def evaluate_math(expression: str, env: Mapping[str, list[Number]]) -> list[Number]:
    """Evaluate a Math expression over numbers (``$A * $B``, comparisons, constants)."""
    tokens: list[str] = []
    pos = 0
    text = expression.strip()
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if not m or m.end() == pos:
            raise ValueError(f"cannot parse math expression {expression!r} at {pos}")
        tokens.append(next(g for g in m.groups() if g is not None))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    index = 0

    def primary() -> Value:
        nonlocal index
        tok = tokens[index]
        index += 1
        if tok == "(":
            value = expr(0)
            index += 1  # ")"
            return value
        if tok == "-":
            return _binary("*", -1.0, primary())
        if tok.startswith("$"):
            return list(env[tok.strip("${}")])
        return float(tok)

    def expr(min_prec: int) -> Value:
        nonlocal index
        left = primary()
        while index < len(tokens) and tokens[index] in _PRECEDENCE:
            op = tokens[index]
            prec = _PRECEDENCE[op]
            if prec < min_prec:
                break
            index += 1
            right = expr(prec + 1)
            left = _binary(op, left, right)
        return left

    result = expr(0)
    if isinstance(result, float):
        return [Number((), result)]
    return result


def _threshold(numbers: list[Number], evaluator: Mapping[str, Any]) -> list[Number]:
    kind = evaluator["type"]
    params = [float(p) for p in evaluator.get("params", [])]
    preds: dict[str, Callable[[float], bool]] = {
        "gt": lambda f: f > params[0],
        "lt": lambda f: f < params[0],
        "gte": lambda f: f >= params[0],
        "lte": lambda f: f <= params[0],
        "eq": lambda f: f == params[0],
        "ne": lambda f: f != params[0],
        "within_range": lambda f: params[0] < f < params[1],
        "outside_range": lambda f: f < params[0] or f > params[1],
        "within_range_included": lambda f: params[0] <= f <= params[1],
        "outside_range_included": lambda f: f <= params[0] or f >= params[1],
    }
    pred = preds[kind]
    return [Number(n.labels, None if n.value is None else float(pred(n.value))) for n in numbers]


def evaluate_expressions(
    expressions: Sequence[Mapping[str, Any]],
    queries: Mapping[str, list[Series]],
) -> dict[str, list[Number]]:
    """Run server-side expressions (in order) over query results.

    Args:
        expressions: expression models (``type`` reduce, math or threshold).
        queries: refId -> the query's series.

    Returns:
        refId -> numbers of every expression.
    """
    numbers: dict[str, list[Number]] = {}
    for e in expressions:
        ref = str(e["refId"])
        kind = e["type"]
        if kind == "reduce":
            src = str(e["expression"])
            numbers[ref] = [
                _reduce(s, str(e["reducer"]), e.get("settings") or {}) for s in queries[src]
            ]
        elif kind == "math":
            numbers[ref] = evaluate_math(str(e["expression"]), numbers)
        elif kind == "threshold":
            conds = e["conditions"]
            numbers[ref] = _threshold(numbers[str(e["expression"])], conds[0]["evaluator"])
        else:
            raise ValueError(f"expression type {kind!r} is not emulated")
    return numbers
