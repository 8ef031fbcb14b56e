"""CAD OSE, indexed: the Contextual Anomaly Detector (Open Source Edition, M. Smirnov 2016,
as run by NAB: nab/detectors/context_ose/{cad_ose.py,context_operator.py}) with the same
anomaly scores as the original but without crossing the whole context memory every row.

Why this module is long: the detector's state (context memory, its two indexes and the
Python 2 ordering rules the original's outputs depend on) must stay in one class to be
updated consistently; splitting it would only spread one algorithm over several files.

The algorithm (restated; equal scores to the oracle ``tests/cad_ose_reference.py``):
a value is coded in ``value_bits`` bits over ``[min_value, max_value]`` (``level =
int((x - min) / step)``, ``step = (max - min) / (2**bits - 1)``); each bit is a *fact*. A
*context* pairs a left semi-context (a set of facts of the previous row: its bits and its
active "neurons") with a right one (a set of the current row's bit facts). Each row (1) adds
the zero-level context (previous left facts, current bits); (2) for every context whose left
part was fully present at the previous row, counts how much of its right part is present now
(fully present → the context is *active*); when the zero-level context was new, the
partial crossings of zero-level contexts become new contexts; (3) the 15 most often active
contexts become neurons, facts of the next left side; (4) contexts whose left part is fully
present predict their right facts (best hit ratio). The score is
``(1 - active/selected + added/potential) / 2`` when a bit was not predicted, else 0, and a
score ≥ ``base_threshold`` silences the output for ``rest_period`` rows.

Indexing (the speed-up; outputs unchanged):

- left semi-contexts fully present in the current left facts ``G`` are found by a prefix
  trie walk over the subsets of ``G`` (``G`` has ≤ bits + 15 facts) instead of crossing
  every semi-context's facts;
- partial crossings only matter for zero-level contexts and only on rows whose zero-level
  context is new. Zero-level left sides are whole left groups (the row's bits + neurons), so
  a semi-context sharing no neuron with ``G`` crosses ``G`` in its matching bits only: such
  semi-contexts are grouped by (their bit code, the right side's bit code), and each group
  yields one candidate (its first member by creation order); semi-contexts sharing a neuron
  are found through a neuron → semi-context index and handled one by one;
- the original's Python 2 behaviour is kept where outputs depend on it: ties among active
  contexts are broken by Python 2's 64-bit tuple hash (:func:`py2_tuple_hash`), new
  contexts are numbered in the iteration order of Python 2 int-keyed dicts
  (:class:`Py2IntDict`), and context 0 is skipped on rows with no new zero-level context
  (the original's ``False != 0``).

Values outside ``[min_value, max_value]`` are clipped to it (the original is only defined
inside it; NAB's wrapper passes the file's min and max).

Cost (CPU, NAB's longest file, 22,695 rows): 132 µs per row median, 0.94 ms p99 in pure
Python (the whole-memory oracle: ~650 µs median, ~9 ms p99); memory grows with the number
of contexts (2,654 on that file). See models/RESULTS.md section 2.
"""

from __future__ import annotations

import math
from bisect import insort
from collections.abc import Iterator
from typing import Final

from renkei.core.errors import ModelError

__all__ = ["CadOse", "CadOseError", "Py2IntDict", "py2_tuple_hash"]

_MASK64: Final = (1 << 64) - 1
_SENS0: Final = 65536
_NEURON0: Final = 2**31


class CadOseError(ModelError, ValueError):
    """Bad CAD OSE parameters (the message names the parameter and value)."""


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
    """Insert-only map of non-negative int keys that iterates in CPython 2.7's slot order
    (open addressing, perturbed probing, resize at 2/3 fill to 4 × used)."""

    __slots__ = ("_index", "_slots")

    def __init__(self) -> None:
        self._slots: list[tuple[int, int] | None] = [None] * 8
        self._index: dict[int, int] = {}

    @staticmethod
    def _place(slots: list[tuple[int, int] | None], key: int, value: int) -> None:
        mask = len(slots) - 1
        i, perturb = key & mask, key
        while slots[i & mask] is not None:
            i = (i << 2) + i + perturb + 1
            perturb >>= 5
        slots[i & mask] = (key, value)

    def setdefault(self, key: int, value: int) -> int:
        """The value of ``key``, inserting ``value`` first if absent."""
        old = self._index.get(key)
        if old is not None:
            return old
        self._place(self._slots, key, value)
        self._index[key] = value
        used = len(self._index)
        if used * 3 >= len(self._slots) * 2:
            size, minused = 8, (2 if used > 50000 else 4) * used
            while size <= minused:
                size <<= 1
            new: list[tuple[int, int] | None] = [None] * size
            for s in self._slots:
                if s is not None:
                    self._place(new, s[0], s[1])
            self._slots = new
        return value

    def items(self) -> Iterator[tuple[int, int]]:
        """``(key, value)`` in Python 2 iteration order."""
        return (s for s in self._slots if s is not None)

    def values(self) -> Iterator[int]:
        """Values, in no particular order (faster than :meth:`items`)."""
        return iter(self._index.values())

    def __len__(self) -> int:
        return len(self._index)


class CadOse:
    """One signal's CAD OSE over a fixed value range. Not thread-safe.

    Args:
        min_value, max_value: the value range coded in ``value_bits`` bits (finite;
            ``max_value == min_value`` is allowed, as in the original).
        base_threshold: score that starts a rest period, in (0, 1].
        rest_period: rows (the original's float; ``int()`` of it is used) silenced after it.
        max_left_semi: longest partial left crossing that makes a new context.
        max_active: neurons per row.
        value_bits: bits of the value code.

    Raises:
        CadOseError: a non-finite range or a parameter out of its domain.
    """

    def __init__(
        self,
        min_value: float,
        max_value: float,
        *,
        base_threshold: float = 0.75,
        rest_period: float = 30.0,
        max_left_semi: int = 7,
        max_active: int = 15,
        value_bits: int = 3,
    ) -> None:
        if not (math.isfinite(min_value) and math.isfinite(max_value)) or max_value < min_value:
            raise CadOseError(f"cad_ose range: [{min_value!r}, {max_value!r}] is not a range")
        if not 0.0 < base_threshold <= 1.0:
            raise CadOseError(f"cad_ose.base_threshold: {base_threshold!r}, expected (0, 1]")
        if not rest_period >= 0.0:
            raise CadOseError(f"cad_ose.rest_period: {rest_period!r}, expected ≥ 0")
        for name, value, low, high in (
            ("max_left_semi", max_left_semi, 1, 64),
            ("max_active", max_active, 1, 256),
            ("value_bits", value_bits, 1, 16),
        ):
            if not low <= value <= high:
                raise CadOseError(f"cad_ose.{name}: {value!r}, expected {low}..{high}")
        self.min_value = float(min_value)
        self.max_value = float(max_value)
        self.base_threshold = base_threshold
        self._rest = int(rest_period)
        self.max_left_semi = max_left_semi
        self.max_active = max_active
        self.bits = value_bits
        self._top = 2**value_bits - 1
        full = self.max_value - self.min_value
        self._width = (full if full != 0.0 else float(self._top)) / float(self._top)
        self._sens_of: list[tuple[int, ...]] = [
            tuple(_SENS0 + 2 * k + ((c >> k) & 1) for k in range(value_bits))
            for c in range(self._top + 1)
        ]
        # right semi-contexts
        self._rid: dict[tuple[int, ...], int] = {}
        self._r_facts: list[tuple[int, ...]] = []
        self._r_cache: dict[tuple[int, ...], tuple[list[tuple[int, ...]], list[int]]] = {}
        # left semi-contexts
        self._lid: dict[tuple[int, ...], int] = {}
        self._l_facts: list[tuple[int, ...]] = []
        self._l_size: list[int] = []
        self._l_ctx: list[Py2IntDict] = []
        self._trie: list[dict[int, int]] = [{}]  # node -> {fact: child node}; 0 = root
        self._trie_lid: list[int] = [-1]  # node -> left semi-context id ending there
        # contexts
        self._c_seen: list[int] = []
        self._c_hits: list[int] = []
        self._c_active: list[int] = []
        self._c_right: list[tuple[int, ...]] = []
        self._c_zero: list[bool] = []
        self._c_hash: list[tuple[int, int]] = []
        self._c_lid: list[int] = []
        self._c_rid: list[int] = []
        # zero-level index: lid -> (bit code, neurons); (code, right code) -> sorted lids;
        # neuron -> lids; lid -> {right code: cid}
        self._zl_semi: dict[int, tuple[int, tuple[int, ...]]] = {}
        self._zl_groups: dict[tuple[int, int], list[int]] = {}
        self._zl_by_neuron: dict[int, list[int]] = {}
        self._zl_ctx: dict[int, dict[int, int]] = {}
        # stream state
        self._group: tuple[int, ...] = ()
        self._group_code = 0
        self._full: list[int] = []  # left semis fully in self._group, as of its crossing
        self._predicted: set[int] = set()
        self._history: list[float] = [1.0]
        self.rows = 0

    @property
    def step(self) -> float:
        """Value width of one level of the code."""
        return self._width

    # -- value coding --------------------------------------------------------------------
    def code(self, value: float) -> int:
        """The value's level code in ``0 .. 2**bits - 1`` (clipped)."""
        level = int((value - self.min_value) / self._width)
        return int(min(max(level, 0), self._top))

    # -- memory --------------------------------------------------------------------------
    def _right(self, facts: tuple[int, ...]) -> int:
        rid = self._rid.get(facts)
        if rid is None:
            rid = self._rid[facts] = len(self._r_facts)
            self._r_facts.append(facts)
        return rid

    def _left(self, facts: tuple[int, ...]) -> int:
        lid = self._lid.get(facts)
        if lid is None:
            lid = self._lid[facts] = len(self._l_size)
            self._l_size.append(len(facts))
            self._l_facts.append(facts)
            self._l_ctx.append(Py2IntDict())
            node = 0
            for f in facts:
                nxt = self._trie[node].get(f)
                if nxt is None:
                    nxt = self._trie[node][f] = len(self._trie)
                    self._trie.append({})
                    self._trie_lid.append(-1)
                node = nxt
            self._trie_lid[node] = lid
        return lid

    def _context(self, left: tuple[int, ...], right: tuple[int, ...]) -> tuple[int, bool]:
        """The context id of ``(left, right)`` and whether it was created now."""
        lid, rid = self._left(left), self._right(right)
        nxt = len(self._c_seen)
        cid = self._l_ctx[lid].setdefault(rid, nxt)
        if cid != nxt:
            return cid, False
        self._c_seen.append(0)
        self._c_hits.append(0)
        self._c_active.append(0)
        self._c_right.append(right)
        self._c_zero.append(False)
        self._c_hash.append((py2_tuple_hash(left), py2_tuple_hash(right)))
        self._c_lid.append(lid)
        self._c_rid.append(rid)
        return cid, True

    def _mark_zero(self, cid: int, left_code: int, right_code: int) -> None:
        if self._c_zero[cid]:
            return
        self._c_zero[cid] = True
        lid = self._c_lid[cid]
        per = self._zl_ctx.get(lid)
        if per is None:
            per = self._zl_ctx[lid] = {}
            neurons = tuple(f for f in self._l_facts[lid] if f >= _NEURON0)
            self._zl_semi[lid] = (left_code, neurons)
            for f in neurons:
                self._zl_by_neuron.setdefault(f, []).append(lid)  # lids arrive unsorted
        per[right_code] = cid
        insort(self._zl_groups.setdefault((left_code, right_code), []), lid)

    # -- crossings -----------------------------------------------------------------------
    def _right_cross(self, sens: tuple[int, ...]) -> tuple[list[tuple[int, ...]], list[int]]:
        cached = self._r_cache.get(sens)
        if cached is None:
            cached = self._r_cache[sens] = ([], [])
        crossed, counts = cached
        present = set(sens)
        for facts in self._r_facts[len(crossed) :]:
            hit = tuple(f for f in facts if f in present)
            crossed.append(hit)
            counts.append(len(hit))
        return crossed, counts

    def _full_semis(self, group: tuple[int, ...]) -> list[int]:
        """Ids of the left semi-contexts whose facts are all in ``group`` (sorted)."""
        out: list[int] = []
        n = len(group)
        trie, lids = self._trie, self._trie_lid
        stack: list[tuple[int, int]] = [(0, 0)]
        while stack:
            node, start = stack.pop()
            children = trie[node]
            if not children:
                continue
            for i in range(start, n):
                child = children.get(group[i])
                if child is not None:
                    if lids[child] >= 0:
                        out.append(lids[child])
                    stack.append((child, i + 1))
        out.sort()
        return out

    def _potentials(
        self,
        sens_code: int,
        rc_n: list[int],
        rc_facts: list[tuple[int, ...]],
        skip_cid: int,
    ) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
        """Partial crossings of zero-level contexts (the original's potential new contexts)
        in the original's order, without duplicates."""
        g_code = self._group_code
        g_sens = self._sens_of[g_code]
        nbits = self.bits
        overlap: dict[int, list[int]] = {}
        for f in self._group[nbits:]:
            for lid in self._zl_by_neuron.get(f, ()):
                overlap.setdefault(lid, []).append(f)
        cands: list[tuple[int, int, tuple[tuple[int, ...], tuple[int, ...]]]] = []
        r_id = self._rid
        sens_of = self._sens_of
        top = self._top
        for lid, ov in overlap.items():
            lcode = self._zl_semi[lid][0]
            match = ~(lcode ^ g_code) & top
            left = tuple(g_sens[k] for k in range(nbits) if match >> k & 1)
            n = len(left) + len(ov)
            if n > self.max_left_semi:
                continue
            full = n == self._l_size[lid]
            left += tuple(sorted(ov))
            for rcode, cid in self._zl_ctx[lid].items():
                if cid == skip_cid:
                    continue
                rid = r_id[sens_of[rcode]]
                if rc_n[rid] > 0 and not (full and rc_n[rid] == nbits):
                    cands.append((lid, cid, (left, rc_facts[rid])))
        for (lcode, rcode), lids in self._zl_groups.items():
            match = ~(lcode ^ g_code) & top
            if match == 0:
                continue
            rid = r_id[sens_of[rcode]]
            if rc_n[rid] == 0:
                continue
            left = tuple(g_sens[k] for k in range(nbits) if match >> k & 1)
            full_possible = match == top and rc_n[rid] == nbits
            for lid in lids:
                if lid in overlap:
                    continue
                cid = self._zl_ctx[lid][rcode]
                if cid == skip_cid:
                    continue
                if full_possible and self._l_size[lid] == nbits:
                    continue  # fully crossed left and right: active, not a potential
                cands.append((lid, cid, (left, rc_facts[rid])))
                break
        if not cands:
            return []
        multi: dict[int, int] = {}
        for lid, _, _ in cands:
            multi[lid] = multi.get(lid, 0) + 1
        rank: dict[int, int] = {}
        for lid, k in multi.items():
            if k > 1:
                for i, (_, cid) in enumerate(self._l_ctx[lid].items()):
                    rank[cid] = i
        cands.sort(key=lambda c: (c[0], rank.get(c[1], 0)))
        seen: set[tuple[tuple[int, ...], tuple[int, ...]]] = set()
        out = []
        for _, _, pair in cands:
            if pair not in seen:
                seen.add(pair)
                out.append(pair)
        return out

    # -- one row -------------------------------------------------------------------------
    def _step(self, code: int) -> tuple[set[int], float, float]:
        sens = self._sens_of[code]
        group = self._group
        new_flag = False
        new_cid = 0
        if group:
            new_cid, new_flag = self._context(group, sens)
            if not new_flag:
                self._mark_zero(new_cid, self._group_code, code)
                new_cid = 0  # the original skips context 0 on such rows
        rc_facts, rc_n = self._right_cross(sens)
        # update of the contexts whose left side was fully present at the previous row
        active: list[tuple[int, int, int, int]] = []
        selected = 0
        seen, hits, act, r_of = self._c_seen, self._c_hits, self._c_active, self._c_rid
        sizes = [len(f) for f in self._r_facts]
        for lid in self._full:
            for cid in self._l_ctx[lid].values():
                if cid == new_cid:
                    continue
                rid = r_of[cid]
                selected += 1
                seen[cid] += sizes[rid]
                n = rc_n[rid]
                if n > 0:
                    hits[cid] += n
                    if n == sizes[rid]:
                        act[cid] += 1
                        lh, rh = self._c_hash[cid]
                        active.append((act[cid], lh, rh, cid))
        potential = self._potentials(code, rc_n, rc_facts, new_cid) if new_flag else []
        if new_flag:
            self._mark_zero(new_cid, self._group_code, code)
        uniq = len(set(potential) | ({(group, sens)} if group else set()))
        frac_active = len(active) / float(selected) if selected > 0 else 0.0
        active.sort()
        neurons = [_NEURON0 + a[3] for a in active[-self.max_active :]]
        self._group = tuple(sorted(sens + tuple(neurons)))
        self._group_code = code
        added = 0
        for left, right in potential:
            added += self._context(left, right)[1]
        self._full = self._full_semis(self._group)
        best, chosen = 0.0, []
        for lid in self._full:
            for cid in self._l_ctx[lid].values():
                s = seen[cid]
                w = hits[cid] / float(s) if s > 0 else 0.0
                if w > best:
                    best, chosen = w, [cid]
                elif w == best:
                    chosen.append(cid)
        pred: set[int] = set()
        for cid in chosen:
            pred.update(self._c_right[cid])
        added += 1 if new_flag else 0
        frac_new = added / float(uniq) if new_flag and uniq else 0.0
        return pred, frac_active, frac_new

    def push(self, value: float) -> float:
        """One row's anomaly score in [0, 1] (as the original's ``getAnomalyScore``).

        Raises:
            CadOseError: a non-finite value.
        """
        if not math.isfinite(value):
            raise CadOseError(f"cad_ose value: {value!r} is not finite")
        self.rows += 1
        code = self.code(value)
        sens = self._sens_of[code]
        error = any(f not in self._predicted for f in sens)
        self._predicted, a1, a2 = self._step(code)
        current = (1.0 - a1 + a2) / 2.0 if error else 0.0
        recent = self._history[-self._rest :] if self._rest > 0 else self._history
        out = current if max(recent) < self.base_threshold else 0.0
        self._history.append(current)
        if len(self._history) > 2 * self._rest + 2 and self._rest > 0:
            del self._history[: -self._rest]
        return out
