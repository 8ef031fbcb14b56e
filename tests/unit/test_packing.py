"""RowBuffer: column-wise packing of rows into v1 wire messages."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from renkei.core.wire import (
    MAX_FIELDS,
    MAX_PAYLOAD_BYTES,
    MAX_ROWS,
    MachineKind,
    MachinePayload,
    decode_machine_payload,
)
from renkei.edge.transport.packing import RowBuffer

T0 = 1_700_000_000_000


def _buffer(
    kind: MachineKind = MachineKind.TELEMETRY, tags: dict[str, str] | None = None
) -> RowBuffer:
    return RowBuffer(kind=kind, gateway_id="gw-pack", tags=tags or {})


def _decode_all(buf: RowBuffer, max_rows: int, first_seq: int = 0) -> list[MachinePayload]:
    return [
        decode_machine_payload(build(first_seq + i)) for i, build in enumerate(buf.drain(max_rows))
    ]


def _column(msgs: list[MachinePayload], name: str) -> list[float | None]:
    return [v for m in msgs for v in m.fields[name]]


def test_many_rows_split_into_messages_of_at_most_max_rows() -> None:
    buf = _buffer()
    for i in range(2_345):
        buf.add(T0 + 100 * i, {"a": float(i), "b": -float(i)})
    assert len(buf) == 2_345
    msgs = _decode_all(buf, 1_000)
    assert [len(m.ts_ms) for m in msgs] == [1_000, 1_000, 345]
    assert [t for m in msgs for t in m.ts_ms] == [T0 + 100 * i for i in range(2_345)]
    assert _column(msgs, "a") == [float(i) for i in range(2_345)]
    assert _column(msgs, "b") == [-float(i) for i in range(2_345)]
    assert len(buf) == 0
    assert buf.drain(1_000) == []


@pytest.mark.parametrize(
    ("n", "max_rows", "expected"),
    [(1, 1, [1]), (5, 1, [1] * 5), (10, 5, [5, 5]), (10, 10_000, [10])],
)
def test_message_sizes(n: int, max_rows: int, expected: list[int]) -> None:
    buf = _buffer()
    for i in range(n):
        buf.add(T0 + i, {"x": 1.0})
    assert [len(m.ts_ms) for m in _decode_all(buf, max_rows)] == expected


def test_empty_buffer_drains_nothing() -> None:
    assert _buffer().drain(10) == []


def test_missing_fields_are_null_and_columns_aligned() -> None:
    buf = _buffer()
    buf.add(T0, {"a": 1.0})
    buf.add(T0 + 1, {"b": 2.0})
    buf.add(T0 + 2, {"a": 3.0, "c": 4.0})
    buf.add(T0 + 3, {})
    (msg,) = _decode_all(buf, 100)
    assert msg.ts_ms == [T0, T0 + 1, T0 + 2, T0 + 3]
    assert msg.fields == {
        "a": [1.0, None, 3.0, None],
        "b": [None, 2.0, None, None],
        "c": [None, None, 4.0, None],
    }


def test_columns_aligned_across_message_split() -> None:
    buf = _buffer()
    buf.add(T0, {"a": 1.0})
    buf.add(T0 + 1, {"a": 2.0})
    buf.add(T0 + 2, {"b": 3.0})
    first, second = _decode_all(buf, 2)
    # a column that exists in the buffer is carried (all null) in every part
    assert first.fields == {"a": [1.0, 2.0], "b": [None, None]}
    assert second.fields == {"a": [None], "b": [3.0]}


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_values_become_null(bad: float) -> None:
    buf = _buffer()
    buf.add(T0, {"a": bad, "b": 1.0})
    buf.add(T0 + 1, {"a": 2.0, "b": bad})
    (msg,) = _decode_all(buf, 10)
    assert msg.fields == {"a": [None, 2.0], "b": [1.0, None]}


def test_integer_values_are_sent_as_floats() -> None:
    buf = _buffer()
    buf.add(T0, {"count": 3})
    (build,) = buf.drain(10)
    assert b'"count":[3.0]' in build(0)


def test_equal_and_decreasing_timestamps_nudged_by_one_ms() -> None:
    buf = _buffer()
    buf.add(T0, {"a": 1.0})
    buf.add(T0, {"a": 2.0})
    buf.add(T0 - 500, {"a": 3.0})
    buf.add(T0 + 10, {"a": 4.0})
    buf.add(T0 + 10, {"a": 5.0})
    (msg,) = _decode_all(buf, 10)
    assert msg.ts_ms == [T0, T0 + 1, T0 + 2, T0 + 10, T0 + 11]
    assert msg.fields["a"] == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_timestamps_stay_increasing_across_drains() -> None:
    buf = _buffer()
    buf.add(T0, {"a": 1.0})
    (first,) = _decode_all(buf, 10)
    buf.add(T0, {"a": 2.0})
    (second,) = _decode_all(buf, 10)
    assert second.ts_ms[0] > first.ts_ms[-1]


def test_payload_header_seq_kind_tags() -> None:
    buf = _buffer(MachineKind.ANOMALY, tags={"model": "cell-t2"})
    for i in range(5):
        buf.add(T0 + i, {"score": 1.0})
    builders = buf.drain(2)
    for seq in (0, 41, 2**63 - 1):
        msg = decode_machine_payload(builders[0](seq))
        assert msg.seq == seq
        assert msg.gw == "gw-pack"
        assert msg.kind is MachineKind.ANOMALY
        assert msg.tags == {"model": "cell-t2"}
        assert msg.v == 1
    # the builder is pure in its rows: the same seq gives the same rows again
    a, b = decode_machine_payload(builders[1](5)), decode_machine_payload(builders[1](5))
    assert (a.ts_ms, a.fields) == (b.ts_ms, b.fields)


def test_rows_after_drain_go_to_new_messages_only() -> None:
    buf = _buffer()
    buf.add(T0, {"a": 1.0})
    (build,) = buf.drain(10)
    buf.add(T0 + 1, {"b": 2.0})
    old = decode_machine_payload(build(0))
    (new,) = _decode_all(buf, 10)
    assert old.fields == {"a": [1.0]}
    assert new.fields == {"b": [2.0]}
    assert new.ts_ms == [T0 + 1]


rows = st.lists(
    st.tuples(
        st.integers(min_value=-5_000, max_value=5_000),
        st.dictionaries(
            st.sampled_from(["a", "b", "c", "d_1"]),
            st.floats(allow_nan=True, allow_infinity=True),
            max_size=4,
        ),
    ),
    max_size=60,
)


@given(rows, st.integers(min_value=1, max_value=25))
def test_packing_properties(data: list[tuple[int, dict[str, float]]], max_rows: int) -> None:
    buf = _buffer()
    for dt, values in data:
        buf.add(T0 + dt, values)
    msgs = _decode_all(buf, max_rows, first_seq=100)
    assert [m.seq for m in msgs] == list(range(100, 100 + len(msgs)))
    assert all(1 <= len(m.ts_ms) <= max_rows for m in msgs)
    ts = [t for m in msgs for t in m.ts_ms]
    assert len(ts) == len(data)
    assert all(b > a for a, b in itertools.pairwise(ts))
    names = {n for _, values in data for n in values}
    for m in msgs:
        assert set(m.fields) == names
    for name in names:
        got = _column(msgs, name)
        want = [
            v if (v := values.get(name)) is not None and math.isfinite(v) else None
            for _, values in data
        ]
        assert got == want


@pytest.mark.parametrize(
    ("n_rows", "n_fields"),
    [(10, MAX_FIELDS + 11), (MAX_ROWS, 32)],
    ids=["267-fields", "10000x32-rows"],
)
def test_packed_messages_respect_wire_limits(n_rows: int, n_fields: int) -> None:
    """Both shapes are allowed by the gateway config (extra_slow_channels <= 256,
    max_rows_per_message <= 10000)."""
    buf = _buffer()
    for i in range(n_rows):
        buf.add(T0 + 100 * i, {f"ch_{j:03d}": 200.0 + j + i / 7.0 for j in range(n_fields)})
    for build in buf.drain(n_rows):
        raw = build(0)
        assert len(raw) <= MAX_PAYLOAD_BYTES
        decode_machine_payload(raw)
