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

Per-row work: the update and the prediction over the contexts of the fully present left
sides are numpy operations over int64 counter arrays (grown by doubling); the rest is
Python over the few facts of a row. Cost (CPU, NAB's longest file, 22,695 rows, the wrapper
scale): ~130 µs per row median, < 1 ms p99 (the whole-memory oracle: ~650 µs median, ~9 ms
p99); memory and per-row work grow with the number of contexts (2,654 on that file; pure
noise on a tight scale creates tens per row: bound it, see
:class:`renkei.edge.model.stream_detector.StreamDetectorConfig.max_contexts`). See
models/RESULTS.md section 2.
"""

from __future__ import annotations

import math
from bisect import insort
from collections.abc import Iterator
from itertools import chain
from typing import Final

import numpy as np
import numpy.typing as npt

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
        # contexts: counters and keys in int64 arrays (grown by doubling) so a row's update
        # and prediction over the contexts of the fully present left sides are array ops
        self._n_ctx = 0
        self._cap = 0
        self._c_seen: npt.NDArray[np.int64] = np.zeros(0, np.int64)
        self._c_hits: npt.NDArray[np.int64] = np.zeros(0, np.int64)
        self._c_active: npt.NDArray[np.int64] = np.zeros(0, np.int64)
        self._c_rid: npt.NDArray[np.int64] = np.zeros(0, np.int64)
        self._c_lh: npt.NDArray[np.int64] = np.zeros(0, np.int64)  # Python 2 hash of left
        self._c_rh: npt.NDArray[np.int64] = np.zeros(0, np.int64)  # ... and of right
        self._c_zero: list[bool] = []
        self._c_lid: list[int] = []
        self._l_cids: list[list[int]] = []  # lid -> its context ids
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
            self._l_cids.append([])
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
        nxt = self._n_ctx
        cid = self._l_ctx[lid].setdefault(rid, nxt)
        if cid != nxt:
            return cid, False
        if nxt == self._cap:
            self._grow()
        self._n_ctx += 1
        self._c_rid[cid] = rid
        self._c_lh[cid] = py2_tuple_hash(left)
        self._c_rh[cid] = py2_tuple_hash(right)
        self._c_zero.append(False)
        self._c_lid.append(lid)
        self._l_cids[lid].append(cid)
        return cid, True

    def _grow(self) -> None:
        cap = max(2 * self._cap, 256)
        for name in ("_c_seen", "_c_hits", "_c_active", "_c_rid", "_c_lh", "_c_rh"):
            old = getattr(self, name)
            new = np.zeros(cap, np.int64)
            new[: self._cap] = old
            setattr(self, name, new)
        self._cap = cap

    @property
    def contexts(self) -> int:
        """Contexts in memory (the detector's size; its per-row work grows with it)."""
        return self._n_ctx

    def _cids_of(self, lids: list[int]) -> npt.NDArray[np.int64]:
        l_cids = self._l_cids
        return np.fromiter(chain.from_iterable(l_cids[lid] for lid in lids), np.int64)

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
        nbits, top, max_left = self.bits, self._top, self.max_left_semi
        overlap: dict[int, list[int]] = {}
        for f in self._group[nbits:]:
            for lid in self._zl_by_neuron.get(f, ()):
                ov = overlap.get(lid)
                if ov is None:
                    overlap[lid] = [f]
                else:
                    ov.append(f)
        # per left bit code: the bits of the current group it matches (its crossing with G)
        matched: list[tuple[int, ...]] = []
        for lcode in range(top + 1):
            match = ~(lcode ^ g_code) & top
            matched.append(tuple(g_sens[k] for k in range(nbits) if match >> k & 1))
        # per right bit code: its right semi-context's crossing with the current bits
        r_id, sens_of = self._rid, self._sens_of
        r_rid = [r_id.get(sens_of[rcode], -1) for rcode in range(top + 1)]
        r_n = [rc_n[rid] if rid >= 0 else 0 for rid in r_rid]
        cands: list[tuple[int, int, tuple[tuple[int, ...], tuple[int, ...]]]] = []
        zl_semi, zl_ctx, l_size = self._zl_semi, self._zl_ctx, self._l_size
        for lid, ov in overlap.items():
            left = matched[zl_semi[lid][0]]
            n = len(left) + len(ov)
            if n > max_left:
                continue
            full = n == l_size[lid]
            left += tuple(sorted(ov))
            for rcode, cid in zl_ctx[lid].items():
                if cid == skip_cid:
                    continue
                k = r_n[rcode]
                if k > 0 and not (full and k == nbits):
                    cands.append((lid, cid, (left, rc_facts[r_rid[rcode]])))
        for (lcode, rcode), lids in self._zl_groups.items():
            if lcode ^ g_code == top:  # no bit in common
                continue
            k = r_n[rcode]
            if k == 0:
                continue
            left = matched[lcode]
            full_possible = lcode == g_code and k == nbits
            for lid in lids:
                if lid in overlap:
                    continue
                cid = zl_ctx[lid][rcode]
                if cid == skip_cid:
                    continue
                if full_possible and l_size[lid] == nbits:
                    continue  # fully crossed left and right: active, not a potential
                cands.append((lid, cid, (left, rc_facts[r_rid[rcode]])))
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
        top: list[int] = []
        n_active = selected = 0
        if self._full:
            c = self._cids_of(self._full)
            c = c[c != new_cid]
            selected = int(c.size)
            rid = self._c_rid[c]
            size = np.fromiter((len(f) for f in self._r_facts), np.int64)[rid]
            n = np.asarray(rc_n, np.int64)[rid]
            self._c_seen[c] += size
            hit = n > 0
            self._c_hits[c[hit]] += n[hit]
            ca = c[hit & (n == size)]
            n_active = int(ca.size)
            if n_active:
                act = self._c_active
                act[ca] += 1
                order = np.lexsort((ca, self._c_rh[ca], self._c_lh[ca], act[ca]))
                top = ca[order[-self.max_active :]].tolist()
        potential = self._potentials(code, rc_n, rc_facts, new_cid) if new_flag else []
        if new_flag:
            self._mark_zero(new_cid, self._group_code, code)
        uniq = len(set(potential) | ({(group, sens)} if group else set()))
        frac_active = n_active / float(selected) if selected > 0 else 0.0
        neurons = [_NEURON0 + cid for cid in top]
        self._group = tuple(sorted(sens + tuple(neurons)))
        self._group_code = code
        added = 0
        for left, right in potential:
            added += self._context(left, right)[1]
        self._full = self._full_semis(self._group)
        pred: set[int] = set()
        if self._full:
            c = self._cids_of(self._full)
            seen = self._c_seen[c]
            w = self._c_hits[c] / np.maximum(seen, 1)  # 0 where never seen (hits 0 too)
            best = w.max()
            # the original keeps the contexts of the best hit ratio, all of them when it is 0
            chosen = c if best <= 0.0 else c[w == best]
            for rid in np.unique(self._c_rid[chosen]).tolist():
                pred.update(self._r_facts[rid])
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
