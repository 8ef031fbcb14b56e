"""Reference CAD OSE (test oracle): a plain re-statement of the Contextual Anomaly Detector,
Open Source Edition (M. Smirnov 2016; NAB nab/detectors/context_ose/{cad_ose.py,
context_operator.py}, run by NAB under Python 2), written for clarity, not speed: every row
crosses the whole context memory as the original does. The fast gateway implementation
(:mod:`renkei.edge.model.cad_ose`) must give identical scores.

Python 2 details the original's outputs depend on, reproduced here:

- tie-breaks among active contexts use Python 2's 64-bit hash of the semi-context tuples
  (:func:`py2_tuple_hash`);
- new contexts get their ids in the iteration order of Python 2 dicts keyed by small ints
  (:class:`Py2IntDict`), and ids become facts (so hashes) of later rows;
- ``newContextID != contextID`` with ``newContextID = False`` skips context 0;
- ``(fact - 65536) / 2`` is integer division.
"""

from __future__ import annotations

from collections.abc import Iterator

_MASK64 = (1 << 64) - 1
_Pair = tuple[tuple[int, ...], tuple[int, ...]]


def _signed(x: int) -> int:
    x &= _MASK64
    return x - (1 << 64) if x >> 63 else x


def py2_tuple_hash(items: tuple[int, ...]) -> int:
    """CPython 2.7 (64-bit) ``hash`` of a tuple of small non-negative ints."""
    x, mult, n = 0x345678, 1000003, len(items)
    for k, y in enumerate(items):
        x = _signed((x ^ y) * mult)
        mult = _signed(mult + 82520 + 2 * (n - 1 - k))
    x = _signed(x + 97531)
    return -2 if x == -1 else x


class Py2IntDict:
    """Insert-only dict of non-negative int keys iterating in CPython 2.7's slot order."""

    def __init__(self) -> None:
        self._slots: list[tuple[int, int] | None] = [None] * 8
        self._used = 0
        self._index: dict[int, int] = {}

    def _place(self, slots: list[tuple[int, int] | None], key: int, value: int) -> None:
        mask = len(slots) - 1
        i = key & mask
        perturb = key
        while slots[i & mask] is not None:
            i = (i << 2) + i + perturb + 1
            perturb >>= 5
        slots[i & mask] = (key, value)

    def setdefault(self, key: int, value: int) -> int:
        old = self._index.get(key)
        if old is not None:
            return old
        self._place(self._slots, key, value)
        self._index[key] = value
        self._used += 1
        if self._used * 3 >= len(self._slots) * 2:
            size, minused = 8, (2 if self._used > 50000 else 4) * self._used
            while size <= minused:
                size <<= 1
            new: list[tuple[int, int] | None] = [None] * size
            for s in self._slots:
                if s is not None:
                    self._place(new, s[0], s[1])
            self._slots = new
        return value

    def items(self) -> Iterator[tuple[int, int]]:
        return (s for s in self._slots if s is not None)

    def __len__(self) -> int:
        return self._used


class _Semi:
    __slots__ = ("contexts", "crossed", "n_crossed", "size")

    def __init__(self, size: int) -> None:
        self.crossed: list[int] = []
        self.size = size
        self.n_crossed = 0
        self.contexts = Py2IntDict()  # right semi id -> context id (left semis only)


class _Context:
    __slots__ = ("active", "hits", "lhash", "rhash", "right", "seen", "zero")

    def __init__(self, right: tuple[int, ...], zero: bool, lhash: int, rhash: int) -> None:
        self.seen = 0  # sum of right semi-context sizes when selected
        self.hits = 0  # sum of crossed right facts when selected
        self.active = 0
        self.right = right
        self.zero = zero
        self.lhash, self.rhash = lhash, rhash


class ReferenceCadOse:
    """CAD OSE over values scaled by a fixed ``[min_value, max_value]``."""

    def __init__(
        self,
        min_value: float,
        max_value: float,
        *,
        base_threshold: float = 0.75,
        rest_period: float = 30,
        max_left_semi: int = 7,
        max_active: int = 15,
        value_bits: int = 3,
    ) -> None:
        self.min_value = float(min_value)
        self.rest_period = rest_period
        self.base_threshold = base_threshold
        self.max_active = max_active
        self.max_left_semi = max_left_semi
        self.value_bits = value_bits
        self.max_bin = 2.0**value_bits - 1.0
        full = float(max_value) - self.min_value
        self.step = (full if full != 0.0 else self.max_bin) / self.max_bin
        self.left_group: tuple[int, ...] = ()
        self.predicted: set[int] = set()
        self.history = [1.0]
        self.semi_ids: list[dict[tuple[int, ...], int]] = [{}, {}]
        self.semis: list[list[_Semi]] = [[], []]
        self.facts: list[dict[int, list[_Semi]]] = [{}, {}]
        self.crossed: list[list[_Semi]] = [[], []]
        self.contexts: list[_Context] = []
        self.new_context_id: int | bool = False

    # -- context memory -------------------------------------------------------------------
    def _semi(self, side: int, facts: tuple[int, ...]) -> int:
        sid = self.semi_ids[side].setdefault(facts, len(self.semis[side]))
        if sid == len(self.semis[side]):
            s = _Semi(len(facts))
            self.semis[side].append(s)
            for f in facts:
                self.facts[side].setdefault(f, []).append(s)
        return sid

    def _add(self, pairs: list[tuple[tuple[int, ...], tuple[int, ...]]], zero: bool) -> int:
        added = 0
        for left, right in pairs:
            lid, rid = self._semi(0, left), self._semi(1, right)
            nxt = len(self.contexts)
            cid = self.semis[0][lid].contexts.setdefault(rid, nxt)
            if cid == nxt:
                added += 1
                self.contexts.append(
                    _Context(right, zero, py2_tuple_hash(left), py2_tuple_hash(right))
                )
                if zero:
                    self.new_context_id = cid
                    return 1
            elif zero:
                self.contexts[cid].zero = True
                return 0
        return added

    def _cross(self, side: int, facts: tuple[int, ...]) -> list[_Semi]:
        for s in self.crossed[side]:
            s.crossed = []
            s.n_crossed = 0
        for f in facts:
            for s in self.facts[side].get(f, []):
                s.crossed.append(f)
        out = []
        for s in self.semis[side]:
            s.n_crossed = len(s.crossed)
            if s.n_crossed:
                out.append(s)
        self.crossed[side] = out
        return out

    def _update(self, new_flag: bool) -> tuple[list[tuple[int, int, int, int]], int, list[_Pair]]:
        active: list[tuple[int, int, int, int]] = []
        selected = 0
        potential: list[tuple[tuple[int, ...], tuple[int, ...]]] = []
        rsemis = self.semis[1]
        for ls in self.crossed[0]:
            full_left = ls.size == ls.n_crossed
            for rid, cid in ls.contexts.items():
                if self.new_context_id is not False and cid == self.new_context_id:
                    continue
                if self.new_context_id is False and cid == 0:
                    continue  # the original's `False != 0` is False
                c, rs = self.contexts[cid], rsemis[rid]
                if full_left:
                    selected += 1
                    c.seen += rs.size
                    if rs.n_crossed > 0:
                        c.hits += rs.n_crossed
                        if rs.size == rs.n_crossed:
                            c.active += 1
                            active.append((cid, c.active, c.lhash, c.rhash))
                        elif c.zero and new_flag and ls.n_crossed <= self.max_left_semi:
                            potential.append((tuple(ls.crossed), tuple(rs.crossed)))
                elif (
                    c.zero and new_flag and rs.n_crossed > 0 and ls.n_crossed <= self.max_left_semi
                ):
                    potential.append((tuple(ls.crossed), tuple(rs.crossed)))
        self.new_context_id = False
        return active, selected, potential

    def _predict(self, potential: list[_Pair]) -> tuple[int, set[int]]:
        added = self._add(potential, False) if potential else 0
        best, chosen = 0.0, []
        for s in self._cross(0, self.left_group):
            if s.size == s.n_crossed:
                for _, cid in s.contexts.items():
                    c = self.contexts[cid]
                    w = c.hits / float(c.seen) if c.seen > 0 else 0.0
                    if w > best:
                        best, chosen = w, [c]
                    elif w == best:
                        chosen.append(c)
        pred: set[int] = set()
        for c in chosen:
            pred.update(c.right)
        return added, pred

    def _step(self, sens: tuple[int, ...]) -> tuple[set[int], float, float]:
        uniq: set[tuple[tuple[int, ...], tuple[int, ...]]] = set()
        if self.left_group and sens:
            zero = (self.left_group, sens)
            uniq.add(zero)
            new_flag = self._add([zero], True) == 1
        else:
            new_flag = False
        self._cross(1, sens)
        active, selected, potential = self._update(new_flag)
        uniq.update(potential)
        frac_active = len(active) / float(selected) if selected > 0 else 0.0
        top = sorted(active, key=lambda a: (a[1], a[2], a[3]))[-self.max_active :]
        neurons = {2**31 + a[0] for a in top}
        self.left_group = tuple(sorted(set(sens) | neurons))
        added, pred = self._predict(potential)
        added += 1 if new_flag else 0
        frac_new = added / float(len(uniq)) if new_flag and uniq else 0.0
        return pred, frac_active, frac_new

    def score(self, value: float) -> float:
        """One row's anomaly score (as ``getAnomalyScore``)."""
        level = int((value - self.min_value) / self.step)
        code = bin(level).lstrip("0b").rjust(self.value_bits, "0")
        sens = {65536 + k * 2 + (1 if ch == "1" else 0) for k, ch in enumerate(reversed(code))}
        error = sum(2 ** ((f - 65536) // 2) for f in sens if f not in self.predicted)
        self.predicted, a1, a2 = self._step(tuple(sorted(sens)))
        current = (1.0 - a1 + a2) / 2.0 if error > 0 else 0.0
        out = current if max(self.history[-int(self.rest_period) :]) < self.base_threshold else 0.0
        self.history.append(current)
        return out
