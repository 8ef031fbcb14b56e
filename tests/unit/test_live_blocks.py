"""plan_reads: fewest requests, gaps, max_len, overlaps; property test against brute force."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from renkei.edge.sources.live.blocks import Item, ReadBlock, plan_reads


def _items(*spans: tuple[int, int], area: str = "hr") -> list[Item[str, int]]:
    return [Item(area, a, w, i) for i, (a, w) in enumerate(spans)]


def _shape(blocks: Sequence[ReadBlock[str, int]]) -> list[tuple[str, int, int, list[int]]]:
    return [(b.area, b.start, b.count, [i.ref for i in b.items]) for b in blocks]


def test_adjacent_registers_merge_into_one_read() -> None:
    blocks = plan_reads(_items((0, 1), (1, 2), (3, 1)), max_len=125, max_gap=0)
    assert _shape(blocks) == [("hr", 0, 4, [0, 1, 2])]
    assert [blocks[0].offset(i) for i in blocks[0].items] == [0, 1, 3]


def test_gap_bridged_only_up_to_max_gap() -> None:
    items = _items((0, 1), (5, 1), (20, 2))  # holes of 4 and 14
    assert len(plan_reads(items, max_len=125, max_gap=3)) == 3
    assert _shape(plan_reads(items, max_len=125, max_gap=4)) == [
        ("hr", 0, 6, [0, 1]),
        ("hr", 20, 2, [2]),
    ]
    assert len(plan_reads(items, max_len=125, max_gap=14)) == 1


def test_max_len_splits_and_item_never_straddles() -> None:
    items = [Item("hr", a, 2, a) for a in range(0, 300, 2)]  # 150 float32 = 300 registers
    blocks = plan_reads(items, max_len=125, max_gap=0)
    assert [b.count for b in blocks] == [124, 124, 52]
    assert sum(len(b.items) for b in blocks) == 150


def test_overlapping_items_share_units() -> None:
    # a uint32 at 10 and its low word read as uint16 at 11
    blocks = plan_reads(_items((10, 2), (11, 1), (10, 4)), max_len=125, max_gap=0)
    assert _shape(blocks) == [("hr", 10, 4, [0, 2, 1])]


def test_areas_are_planned_separately_in_first_seen_order() -> None:
    items = [Item("coil", 0, 1, 0), Item("hr", 1, 1, 1), Item("coil", 1, 1, 2)]
    assert _shape(plan_reads(items, max_len=125, max_gap=0)) == [
        ("coil", 0, 2, [0, 2]),
        ("hr", 1, 1, [1]),
    ]


def test_empty_input_no_reads() -> None:
    assert plan_reads([], max_len=125, max_gap=0) == []


@pytest.mark.parametrize(
    ("items", "max_len", "max_gap", "match"),
    [
        (_items((0, 126)), 125, 0, "126 wide > 125"),
        (_items((-1, 1)), 125, 0, "bad item"),
        (_items((0, 0)), 125, 0, "bad item"),
        (_items((0, 1)), 0, 0, "max_len >= 1"),
        (_items((0, 1)), 10, -1, "max_gap >= 0"),
    ],
)
def test_bad_arguments_raise(
    items: list[Item[str, int]], max_len: int, max_gap: int, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        plan_reads(items, max_len=max_len, max_gap=max_gap)


# ------------------------------------------------------------------ properties


def _feasible(group: Sequence[Item[str, int]], max_len: int, max_gap: int) -> bool:
    """One request [min start, max end) can serve ``group``: short enough, no hole wider
    than ``max_gap`` units that no item of the group covers."""
    start = min(i.address for i in group)
    end = max(i.address + i.width for i in group)
    if end - start > max_len:
        return False
    covered: set[int] = set()
    for i in group:
        covered.update(range(i.address, i.address + i.width))
    hole = 0
    for u in range(start, end):
        hole = 0 if u in covered else hole + 1
        if hole > max_gap:
            return False
    return True


def _partitions(xs: list[Item[str, int]]) -> Iterator[list[list[Item[str, int]]]]:
    if not xs:
        yield []
        return
    first, rest = xs[0], xs[1:]
    for part in _partitions(rest):
        yield [[first], *part]
        for k in range(len(part)):
            yield [*part[:k], [first, *part[k]], *part[k + 1 :]]


def _brute_force(items: list[Item[str, int]], max_len: int, max_gap: int) -> int:
    return min(len(p) for p in _partitions(items) if all(_feasible(g, max_len, max_gap) for g in p))


_item = st.tuples(st.sampled_from(["hr", "ir"]), st.integers(0, 30), st.integers(1, 4))


@settings(max_examples=300, deadline=None)
@given(
    spans=st.lists(_item, min_size=1, max_size=6),
    max_len=st.integers(4, 12),
    max_gap=st.integers(0, 5),
)
def test_plan_is_valid_and_as_few_reads_as_brute_force(
    spans: list[tuple[str, int, int]], max_len: int, max_gap: int
) -> None:
    items = [Item(area, a, w, k) for k, (area, a, w) in enumerate(spans)]
    blocks = plan_reads(items, max_len=max_len, max_gap=max_gap)
    served = sorted(i.ref for b in blocks for i in b.items)
    assert served == list(range(len(items)))  # every item in exactly one block
    for b in blocks:
        assert 1 <= b.count <= max_len
        for i in b.items:
            assert i.area == b.area
            assert b.start <= i.address and i.address + i.width <= b.start + b.count
        assert b.start == min(i.address for i in b.items)
        assert b.start + b.count == max(i.address + i.width for i in b.items)
        assert _feasible(b.items, max_len, max_gap)  # no bridged hole wider than max_gap
    optimum = sum(
        _brute_force([i for i in items if i.area == area], max_len, max_gap)
        for area in {i.area for i in items}
    )
    assert len(blocks) == optimum
