"""Signals -> DataItems, and observations -> readings (pure logic, no I/O).

:func:`resolve` finds each configured :class:`MtconnectSignal`'s DataItem in the agent's
device model (``/probe``); :class:`Decoder` turns observations (:mod:`.parse`) into
:class:`~renkei.edge.sources.live.base.Reading` values and condition events, tracking the active
conditions of each CONDITION DataItem (MTConnect Part 3, "Condition": a ``Normal`` without
``nativeCode`` clears all of an item's active conditions, with one clears that code).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from renkei.core.errors import RenkeiError
from renkei.edge.sources.live.base import Quality, Reading, now_ms
from renkei.edge.sources.live.mtconnect.config import MtconnectSignal
from renkei.edge.sources.live.mtconnect.parse import DataItem, Observation

__all__ = ["ConditionEvent", "Decoder", "MappingError", "resolve"]

_LIST: Final = 12  # candidates named in one error
_LEVEL_NAMES: Final = {0: "normal", 1: "warning", 2: "fault"}
_SEVERITY: Final = {0: "info", 1: "warning", 2: "alarm"}


class MappingError(RenkeiError, ValueError):
    """Signals match no DataItem or several; the message names each and the candidates."""


def _in_component(item: DataItem, component: str | None) -> bool:
    return component is None or component in (item.component_id, item.component_name)


def _candidates(signal: MtconnectSignal, items: Sequence[DataItem]) -> list[DataItem]:
    if signal.data_item is not None:
        by_id = [i for i in items if i.id == signal.data_item]
        found = by_id or [i for i in items if i.name == signal.data_item]
    else:
        found = [
            i
            for i in items
            if i.type == signal.type and (signal.sub_type is None or i.sub_type == signal.sub_type)
        ]
    return [i for i in found if _in_component(i, signal.component)]


def _near(signal: MtconnectSignal, items: Sequence[DataItem]) -> list[DataItem]:
    """Items a user probably meant (same type, or id/name containing the text)."""
    if signal.type is not None:
        return [i for i in items if i.type == signal.type]
    key = (signal.data_item or "").lower()
    return [i for i in items if key in i.id.lower() or key in i.name.lower()] or list(items)


def resolve(signals: Sequence[MtconnectSignal], items: Sequence[DataItem]) -> dict[str, DataItem]:
    """Signal name -> its DataItem.

    Raises:
        MappingError: one line per signal matching none or several DataItems, naming the
            candidates (with ids, names, types and components).
    """
    out: dict[str, DataItem] = {}
    problems: list[str] = []
    for k, s in enumerate(signals):
        found = _candidates(s, items)
        if len(found) == 1:
            out[s.name] = found[0]
            continue
        if not found:
            near = _near(s, items)
            listed = ", ".join(i.label() for i in near[:_LIST])
            more = f" and {len(near) - _LIST} more" if len(near) > _LIST else ""
            problems.append(
                f"signals[{k}] {s.name!r}: no DataItem with {s.address}; "
                f"candidates: {listed or 'none'}{more}"
            )
        else:
            listed = ", ".join(i.label() for i in found[:_LIST])
            problems.append(
                f"signals[{k}] {s.name!r}: {s.address} matches {len(found)} DataItems: "
                f"{listed}; use the DataItem id or add 'component'"
            )
    if problems:
        raise MappingError("; ".join(problems))
    return out


@dataclass(frozen=True, slots=True)
class ConditionEvent:
    """A condition change to report: ``code`` ``condition_normal|warning|fault``."""

    t_ms: int
    code: str
    severity: str
    message: str


class Decoder:
    """Observations -> readings and condition events for one resolved mapping.

    Args:
        mapping: signal name -> DataItem (from :func:`resolve`).
        signals: the signal configs (for ``states``).
        condition_items: ids of CONDITION DataItems whose changes become events.
    """

    def __init__(
        self,
        mapping: dict[str, DataItem],
        signals: Sequence[MtconnectSignal],
        condition_items: Iterable[DataItem],
    ) -> None:
        by_name = {s.name: s for s in signals}
        self._targets: dict[str, list[tuple[MtconnectSignal, DataItem]]] = {}
        for name, item in mapping.items():
            self._targets.setdefault(item.id, []).append((by_name[name], item))
        self._cond_items = {i.id: i for i in condition_items}
        self._active: dict[str, dict[str, int]] = {}

    def reset(self) -> None:
        """Forget active conditions (before a resync from ``/current``)."""
        self._active.clear()

    @property
    def watched(self) -> set[str]:
        """DataItem ids this decoder reads."""
        return set(self._targets) | set(self._cond_items)

    def decode(
        self, observations: Iterable[Observation], *, initial: bool = False
    ) -> tuple[list[Reading], list[ConditionEvent]]:
        """Readings of mapped DataItems and condition events.

        ``initial``: the observations are a ``/current`` snapshot: only active warnings and
        faults become events (a Normal is the steady state, not news).
        """
        readings: list[Reading] = []
        events: list[ConditionEvent] = []
        for ob in observations:
            targets = self._targets.get(ob.data_item_id)
            cond = ob.category == "CONDITION"
            if cond and (targets or ob.data_item_id in self._cond_items):
                level, changed = self._condition(ob)
                item = self._cond_items.get(ob.data_item_id)
                if item is not None and changed is not None and not (initial and changed == 0):
                    events.append(self._condition_event(ob, item, changed))
                if targets:
                    for s, _ in targets:
                        readings.append(self._level_reading(s, ob, level))
                continue
            if targets:
                for s, _ in targets:
                    readings.append(_value_reading(s, ob))
        return readings, events

    def _condition(self, ob: Observation) -> tuple[int, int | None]:
        """(item's level after ``ob`` (-1 unavailable), level to report or None)."""
        active = self._active.setdefault(ob.data_item_id, {})
        if ob.level < 0:
            active.clear()
            return -1, None
        if ob.level == 0:
            had = bool(active)
            if ob.native_code:
                active.pop(ob.native_code, None)
            else:
                active.clear()
            return (max(active.values(), default=0), 0 if had else None)
        active[ob.native_code] = ob.level
        if len(active) > 64:  # a device inventing codes must not grow memory
            active.pop(next(iter(active)))
        return max(active.values()), ob.level

    def _condition_event(self, ob: Observation, item: DataItem, level: int) -> ConditionEvent:
        name = _LEVEL_NAMES[level]
        bits = [b for b in (ob.native_code, ob.qualifier) if b]
        detail = f" [{' '.join(bits)}]" if bits else ""
        text = f": {ob.value}" if ob.value and level else ""
        msg = f"{item.label()} {name.upper()}{detail}{text}"
        return ConditionEvent(_t(ob)[0], f"condition_{name}", _SEVERITY[level], msg)

    @staticmethod
    def _level_reading(s: MtconnectSignal, ob: Observation, level: int) -> Reading:
        t, device_time = _t(ob)
        if level < 0:
            return Reading(s.name, t, math.nan, Quality.BAD, device_time, "UNAVAILABLE")
        return Reading(s.name, t, float(level), Quality.GOOD, device_time)


def _t(ob: Observation) -> tuple[int, bool]:
    return (ob.t_ms, True) if ob.t_ms is not None else (now_ms(), False)


def _value_reading(s: MtconnectSignal, ob: Observation) -> Reading:
    t, device_time = _t(ob)
    text = ob.value
    if text == "UNAVAILABLE":
        return Reading(s.name, t, math.nan, Quality.BAD, device_time, "UNAVAILABLE")
    if text in s.states:
        return Reading(s.name, t, s.states[text], Quality.GOOD, device_time)
    try:
        value = float(text)
    except ValueError:
        reason = "unmapped state" if s.states else "not a number"
        return Reading(s.name, t, math.nan, Quality.BAD, device_time, reason)
    if not math.isfinite(value):
        return Reading(s.name, t, math.nan, Quality.BAD, device_time, "not a number")
    return Reading(s.name, t, value, Quality.GOOD, device_time)
