"""The firm archive without servers: container, verification, line-protocol records,
value formatting, time slicing, batched writes and row encoding.

InfluxDB answers are simulated at the HTTP boundary (``httpx.MockTransport``) or by a
reader whose statements are replaced; the round trips against a real InfluxDB are in
``tests/integration/test_portability.py``.
"""

from __future__ import annotations

import gzip
import io
import itertools
import json
import random
import tarfile
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from renkei.cloud.portability.archive import (
    FORMAT_VERSION,
    ArchiveBuilder,
    ArchiveReader,
    Manifest,
    TableMember,
    TimeseriesInfo,
    TimeseriesMember,
)
from renkei.cloud.portability.errors import ArchiveError, PortabilityError
from renkei.cloud.portability.tables import PLATFORM_TABLES, SPECS, decoder, encoder, table_of
from renkei.cloud.portability.timeseries import (
    _FORMATTERS,
    InfluxReader,
    _format_columns,
    _format_rows,
    export_measurement,
    write_member,
)
from renkei.cloud.registry import Base, DisruptionSource, DisruptionStatus
from renkei.cloud.store.influx import InfluxSettings, InfluxStore
from renkei.core.influx.lineparse import parse_lines
from renkei.core.influx.lineproto import escape_key

# --------------------------------------------------------------------------- helpers


def build(
    path: Path, *, rows: list[dict[str, Any]], lines: list[bytes], points: int | None = None
) -> Manifest:
    """An archive with one table member and one time-series member."""
    with ArchiveBuilder(path) as builder:
        w = builder.member("tables/firm.jsonl.gz")
        for row in rows:
            w.write(json.dumps(row).encode() + b"\n")
        sha, size = w.close()
        table = TableMember(
            name="tables/firm.jsonl.gz",
            group="registry",
            table="firm",
            columns=["id", "name"],
            rows=len(rows),
            sha256=sha,
            bytes=size,
        )
        w = builder.member("timeseries/000-m.lp.gz")
        for line in lines:
            w.write(line + b"\n")
        sha, size = w.close()
        series = TimeseriesMember(
            name="timeseries/000-m.lp.gz",
            measurement="m",
            points=len(lines) if points is None else points,
            fields={"s": ["string"]},
            values={"s": len(lines)},
            first_ns=1,
            last_ns=2,
            sha256=sha,
            bytes=size,
        )
        manifest = Manifest(
            format="renkei-firm-archive",
            format_version=FORMAT_VERSION,
            firm_id="acme",
            created_at=datetime(2026, 1, 1, tzinfo=UTC),
            software_version="test",
            schema_revision=None,
            timeseries=TimeseriesInfo(included=True, points=len(lines)),
            members=[table, series],
        )
        builder.finish(manifest)
    return manifest


TRICKY = [
    b'm,firm=acme s="plain" 1',
    b'm,firm=acme s="two\nlines" 2',
    b'm,firm=acme s="ends with newline\n" 3',
    b'm,firm=acme s="\nstarts, = with newline" 4',
    b'm,firm=acme s="quote \\" then\nnewline \\\\" 5',
    b'm,firm=acme,tag=a"b s="x\ny",f=1.5 6',
    b'm,firm=acme model.we"ird="v\n1",i=3i -7',
    b'm,firm=acme s="looks like\nm,firm=acme s=\\"x\\" 8\nstill the string" 9',
    b"m,firm=acme f=1.5,b=true 10",
]


# --------------------------------------------------------------------------- container


def test_every_table_is_exported_or_declared_platform_wide() -> None:
    exported = [s.name for s in SPECS]
    assert len(exported) == len(set(exported))
    assert set(exported).isdisjoint(PLATFORM_TABLES)
    assert set(exported) | set(PLATFORM_TABLES) == set(Base.metadata.tables)
    for s in SPECS:  # each rule names real columns
        t = table_of(s)
        assert (s.owner_column is None) != (s.parent is None), s.name
        if s.owner_column:
            assert s.owner_column in t.c
        if s.parent:
            assert s.parent[0] in t.c and s.parent[1] in exported[: exported.index(s.name)]
        for column, target in s.soft_refs:
            assert column in t.c and target in exported[: exported.index(s.name)]


def test_manifest_first_members_verified_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "a.tar"
    rows = [{"id": "acme", "name": "Acme 連携", "x": float("nan")}]
    manifest = build(path, rows=rows, lines=TRICKY)
    with tarfile.open(path) as tar:
        names = tar.getnames()
    assert names == ["manifest.json", "tables/firm.jsonl.gz", "timeseries/000-m.lp.gz"]
    with ArchiveReader(path) as reader:
        assert reader.manifest == manifest
        reader.verify()
        (got,) = reader.rows(manifest.tables()[0])
        assert got["name"] == "Acme 連携" and got["x"] != got["x"]  # NaN survives
        assert list(reader.records(manifest.series()[0])) == TRICKY
    # Members are plain gzip; the tar is not compressed.
    with tarfile.open(path) as tar:
        fh = tar.extractfile("timeseries/000-m.lp.gz")
        assert fh is not None
        assert gzip.decompress(fh.read()) == b"\n".join(TRICKY) + b"\n"


def test_existing_output_refused_and_temporary_files_removed(tmp_path: Path) -> None:
    path = tmp_path / "a.tar"
    path.write_bytes(b"old")
    with pytest.raises(ArchiveError, match="already exists"):
        ArchiveBuilder(path)
    with pytest.raises(ArchiveError, match="does not exist"):
        ArchiveBuilder(tmp_path / "nope" / "a.tar")
    with ArchiveBuilder(path, overwrite=True) as builder:
        builder.member("tables/x.jsonl.gz").write(b"{}\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tar"]
    assert path.read_bytes() == b"old"  # nothing finished: the old file is untouched


def _flip(path: Path, member: str, out: Path) -> None:
    data = bytearray(path.read_bytes())
    with tarfile.open(path) as tar:
        info = tar.getmember(member)
    data[info.offset_data + info.size // 2] ^= 0x40
    out.write_bytes(bytes(data))


@pytest.mark.parametrize("member", ["tables/firm.jsonl.gz", "timeseries/000-m.lp.gz"])
def test_a_flipped_bit_names_the_member(tmp_path: Path, member: str) -> None:
    path = tmp_path / "a.tar"
    build(path, rows=[{"id": "acme", "name": "A"}], lines=TRICKY)
    bad = tmp_path / "bad.tar"
    _flip(path, member, bad)
    with ArchiveReader(bad) as reader, pytest.raises(ArchiveError) as err:
        reader.verify()
    assert err.value.member == member
    assert f"member {member}: SHA-256 mismatch" in str(err.value)


def _repack(path: Path, out: Path, edit: Any) -> None:
    """Rewrite an archive's entries through ``edit(entries) -> entries``."""
    with tarfile.open(path) as tar:
        entries = []
        for info in tar.getmembers():
            fh = tar.extractfile(info)
            assert fh is not None
            entries.append((info.name, fh.read()))
    with tarfile.open(out, "w") as tar:
        for name, data in edit(entries):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def _manifest_edit(change: Any) -> Any:
    def edit(entries: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
        manifest = json.loads(entries[0][1])
        change(manifest)
        return [("manifest.json", json.dumps(manifest).encode()), *entries[1:]]

    return edit


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda e: [*e[1:], e[0]], "first entry must be manifest.json"),
        (lambda e: e[:2], "timeseries/000-m.lp.gz is missing"),
        (lambda e: [*e, ("extra.txt", b"x")], "extra.txt is not listed"),
        (lambda e: [*e, e[1]], "duplicate entry tables/firm.jsonl.gz"),
        (_manifest_edit(lambda m: m.update(format_version=2)), "format version 2 is not supported"),
        (_manifest_edit(lambda m: m.update(format="zip")), "not a renkei-firm-archive"),
        (_manifest_edit(lambda m: m["members"][0].update(bytes=1)), "size"),
        (_manifest_edit(lambda m: m["members"].pop()), "is not listed"),
        (_manifest_edit(lambda m: m.pop("firm_id")), "manifest.json is invalid"),
    ],
)
def test_broken_archives_are_refused(tmp_path: Path, edit: Any, message: str) -> None:
    path = tmp_path / "a.tar"
    build(path, rows=[{"id": "acme", "name": "A"}], lines=TRICKY)
    bad = tmp_path / "bad.tar"
    _repack(path, bad, edit)
    with pytest.raises(ArchiveError, match=message), ArchiveReader(bad) as reader:
        reader.verify()


def test_not_a_tar_and_truncated_archives(tmp_path: Path) -> None:
    path = tmp_path / "a.tar"
    build(path, rows=[{"id": "acme", "name": "A"}], lines=TRICKY * 2000)
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"hello")
    with pytest.raises(ArchiveError, match="not a readable archive"):
        ArchiveReader(junk)
    cut = tmp_path / "cut.tar"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ArchiveError), ArchiveReader(cut) as reader:
        reader.verify()


def test_counts_and_malformed_records_are_caught_on_read(tmp_path: Path) -> None:
    path = tmp_path / "a.tar"
    manifest = build(path, rows=[{"id": "acme", "name": "A"}], lines=TRICKY, points=3)
    with ArchiveReader(path) as reader, pytest.raises(ArchiveError, match="9 points, manifest"):
        list(reader.records(manifest.series()[0]))
    path2 = tmp_path / "b.tar"
    manifest = build(path2, rows=[], lines=[b'm,firm=acme s="never closed 1'])
    with ArchiveReader(path2) as reader, pytest.raises(ArchiveError, match="truncated"):
        list(reader.records(manifest.series()[0]))


# --------------------------------------------------------------------------- export


class FakeReader(InfluxReader):
    """A reader whose statements answer from a list of (series tags, rows) in memory."""

    def __init__(
        self, types: dict[str, list[str]], series: list[tuple[dict[str, str], list[list[Any]]]]
    ):
        self.types = types
        self.series = series
        self.ranges: list[tuple[int, int]] = []

    def field_types(self, measurement: str) -> dict[str, list[str]]:
        return self.types

    def time_bounds(self, measurement: str, firm_id: str, select: str) -> tuple[int, int] | None:
        times = [r[0] for _, rows in self.series for r in rows]
        return (min(times), max(times)) if times else None

    def stream(self, q: str, *, chunk_points: int) -> Iterator[dict[str, Any]]:
        lo = int(q.split("time >= ")[1].split()[0])
        hi = int(q.split("time <= ")[1].split()[0])
        self.ranges.append((lo, hi))
        columns = ["time", *(f"{k}" for k, ts in self.types.items() for _ in ts)]
        for tags, rows in self.series:
            inside = [r for r in rows if lo <= r[0] <= hi]
            for i in range(0, len(inside), chunk_points):
                yield {
                    "name": "m",
                    "tags": tags,
                    "columns": columns,
                    "values": inside[i : i + chunk_points],
                }


def test_values_formatted_with_exact_types_and_escaped_names() -> None:
    types = {"f": ["float"], "i": ["integer"], "u": ["unsigned"], "s": ["string"], "b": ["boolean"]}
    rows: list[list[Any]] = [
        [1, 5, -(2**63), 2**64 - 1, 'a "q" \\ b\nc', True],  # float 5.0 arrives as the JSON 5
        [2, -0.0, 0, 0, "", False],
        [3, 1e16, None, None, None, None],
        [4, 100000000000000000000, None, None, None, None],  # Go spells 1e20 in full
        [5, None, None, None, "only", None],
    ]
    reader = FakeReader(types, [({"firm": "acme", "site": "s 1", "k": "a,b=c", "empty": ""}, rows)])
    out: list[bytes] = []
    stats = export_measurement(reader, "acme", "m x,y", out.append, chunk_points=2)
    text = b"".join(out).decode()
    head = "m\\ x\\,y,firm=acme,k=a\\,b\\=c,site=s\\ 1"
    assert (
        text.splitlines(keepends=True)[0]
        == f'{head} f=5.0,i=-9223372036854775808i,u=18446744073709551615u,s="a \\"q\\" \\\\ b\n'
    )
    assert f'{head} f=-0.0,i=0i,u=0u,s="",b=false 2\n' in text
    assert f"{head} f=1e+16 3\n" in text
    assert f"{head} f=1e+20 4\n" in text
    assert f'{head} s="only" 5\n' in text
    assert stats.points == 5 and stats.chunks == 3
    assert stats.values == {"f": 4, "i": 2, "u": 2, "s": 3, "b": 2}
    assert (stats.first_ns, stats.last_ns) == (1, 5)


def test_names_line_protocol_cannot_carry_stop_the_export() -> None:
    reader = FakeReader({"f": ["float"]}, [({"firm": "acme", "t": "a\\b"}, [[1, 1.0]])])
    with pytest.raises(PortabilityError, match="t.*backslash|contains"):
        export_measurement(reader, "acme", "m", lambda _: None)


def test_time_slices_adapt_and_cover_the_range_exactly() -> None:
    hour = 3_600 * 10**9
    dense = [[t, 1.0] for t in range(0, 3 * hour, hour // 2000)]  # 6000 points in 3 h
    sparse = [[10**6 * hour + k * 24 * hour, 2.0] for k in range(50)]  # then 50 days, 1/day
    reader = FakeReader({"f": ["float"]}, [({"firm": "acme"}, dense + sparse)])
    stats = export_measurement(reader, "acme", "m", lambda _: None, slice_points=500)
    assert stats.points == len(dense) + len(sparse)
    ranges = reader.ranges
    assert ranges[0][0] == 0 and ranges[-1][1] == sparse[-1][0]
    assert all(b[0] == a[1] + 1 for a, b in itertools.pairwise(ranges))  # no gap
    # Slices shrink to ~500 points in the dense part and grow across the empty years.
    assert max(sum(1 for r in dense if lo <= r[0] <= hi) for lo, hi in ranges) <= 8 * 500
    assert len(ranges) < 100


# --------------------------------------------------------------------------- import writes


def _store(handler: Any) -> InfluxStore:
    return InfluxStore(
        settings=InfluxSettings(url="http://influx.test", database="d"),
        transport=httpx.MockTransport(handler),
    )


def test_records_are_posted_in_batches_and_checked() -> None:
    bodies: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.params["precision"] == "ns"
        bodies.append(request.content)
        return httpx.Response(204)

    records = [f"m,firm=acme,site=s f={i}.5 {i}".encode() for i in range(25)]
    records.append(b'm,firm=acme s="multi\nline" 99')
    n = write_member(
        _store(handler), iter(records), measurement="m", firm_id="acme", batch_points=10
    )
    assert n == 26 and len(bodies) == 3
    # Two batches are in flight at once (concurrency=2): they may arrive in either order.
    assert sorted(bodies) == sorted(
        b"\n".join(records[i : i + 10]) + b"\n" for i in range(0, len(records), 10)
    )


@pytest.mark.parametrize(
    "record",
    [
        b"m,firm=beta f=1 1",
        b"m,firm=acme2 f=1 1",
        b"m,site=s f=1 1",
        b"other,firm=acme f=1 1",
        b"m2,firm=acme f=1 1",
        b"m,site=x\\,firm=acme f=1 1",  # an escaped comma is part of the tag value
        b"m,firm=beta,note=x\\,firm=acme f=1 1",
    ],
)
def test_records_of_another_firm_or_measurement_are_refused(record: bytes) -> None:
    store = _store(lambda r: httpx.Response(204))
    with pytest.raises(PortabilityError, match="another measurement|not tagged firm=acme"):
        write_member(store, iter([record]), measurement="m", firm_id="acme")


def test_unavailable_is_retried_and_rejected_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("renkei.cloud.portability.timeseries.time.sleep", lambda s: None)
    answers = [httpx.Response(503), httpx.Response(503), httpx.Response(204)]
    store = _store(lambda r: answers.pop(0))
    assert write_member(store, iter([b"m,firm=acme f=1 1"]), measurement="m", firm_id="acme") == 1
    assert answers == []
    bad = _store(lambda r: httpx.Response(400, json={"error": "field type conflict: f"}))
    with pytest.raises(PortabilityError, match="refused points of measurement 'm'.*conflict"):
        write_member(bad, iter([b"m,firm=acme f=1 1"]), measurement="m", firm_id="acme")


def test_chunked_answers_are_streamed_and_negative_zero_kept() -> None:
    def chunk(values: list[list[Any]], partial: bool) -> dict[str, Any]:
        series = {"name": "m", "tags": {"firm": "acme"}, "columns": ["time", "f"], "values": values}
        return {"results": [{"statement_id": 0, "series": [series], "partial": partial}]}

    chunks = [chunk([[1, 0], [2, 5]], True), chunk([[3, 0.5]], False)]
    body = b"\n".join(json.dumps(c).replace("[1, 0]", "[1, -0]").encode() for c in chunks) + b"\n"

    def handler(request: httpx.Request) -> httpx.Response:
        form = dict(x.split("=", 1) for x in request.content.decode().split("&"))
        assert form["chunked"] == "true" and form["chunk_size"] == "2" and form["epoch"] == "ns"
        return httpx.Response(200, content=body)

    reader = InfluxReader(InfluxSettings(url="http://influx.test", database="d"))
    reader._client = httpx.Client(
        base_url="http://influx.test", transport=httpx.MockTransport(handler)
    )
    got = [s["values"] for s in reader.stream("SELECT", chunk_points=2)]
    assert got == [[[1, -0.0], [2, 5]], [[3, 0.5]]]
    assert str(got[0][0][1]) == "-0.0"


# --------------------------------------------------------------------------- rows


def test_rows_encode_every_column_and_decode_back() -> None:
    t = Base.metadata.tables["disruption"]
    row = {
        "id": 7,
        "firm_id": "acme",
        "site_id": "s1",
        "status": "confirmed",
        "source": "last_will",
        "start": datetime(2026, 11, 20, 23, 14, 5, 123456),
        "end": None,
        "radius_km": 0.1,
        "note": "n",
        "detail": {"a": [1, 2.5, None]},
        "created_at": datetime(2026, 11, 20, 23, 14, 5, tzinfo=UTC),
        "decided_at": None,
        "decided_by": None,
    }
    encoded = encoder(t)(
        {**row, "status": DisruptionStatus.CONFIRMED, "source": DisruptionSource.LAST_WILL}
    )
    assert encoded["start"] == "2026-11-20T23:14:05.123456"
    assert encoded["created_at"] == "2026-11-20T23:14:05+00:00"
    assert json.loads(json.dumps(encoded)) == encoded
    decoded = decoder(t, list(encoded))(encoded)
    assert decoded == {
        **row,
        "status": DisruptionStatus.CONFIRMED,
        "source": DisruptionSource.LAST_WILL,
    }
    with pytest.raises(ValueError, match="column status"):
        decoder(t, list(encoded))({**encoded, "status": "exploded"})
    with pytest.raises(ValueError, match="column note missing"):
        decoder(t, list(encoded))({k: v for k, v in encoded.items() if k != "note"})
    booking = decoder(Base.metadata.tables["capacity_booking"], ["start"])({"start": "2026-11-23"})
    assert booking == {"start": date(2026, 11, 23)}


def _typed(body: bytes) -> list[tuple[Any, ...]]:
    return [
        (
            p.measurement,
            p.tags,
            {k: (type(v).__name__, repr(v)) for k, v in p.fields.items()},
            p.time_ns,
        )
        for p in parse_lines(body)
    ]


def test_column_formatting_equals_row_formatting() -> None:
    """The fast path (no string fields) writes the same points as the row-by-row path."""
    rng = random.Random(7)
    edge = [0.0, -0.0, 5e-324, 1.7976931348623157e308, 1e16, 1e20, 0.1, -2.5, 5, 2**63]
    types = ["float", "integer", "unsigned", "boolean", "float"]
    values: list[list[Any]] = []
    for i in range(3000):
        row: list[Any] = [1_700_000_000_000_000_000 + i * 7 - 10**18 * (i == 0)]
        row.append(rng.choice(edge) if i % 3 else rng.uniform(-1e6, 1e6))
        row.append(rng.choice([-(2**63), 2**63 - 1, 0, rng.randrange(-(10**12), 10**12)]))
        row.append(rng.choice([0, 2**64 - 1, rng.randrange(10**15)]))
        row.append(rng.random() < 0.5)
        row.append(rng.random())
        for j in range(1, len(row)):
            if rng.random() < 0.3:
                row[j] = None
        if all(v is None for v in row[1:]):
            row[1] = 1.5
        values.append(row)
    keys = ["f", "i", "u", "b", "with space,comma=eq"]
    prefixes = [escape_key(k) + "=" for k in keys]
    head = "m\\ x,firm=acme,site=s\\ 1"
    slow = _format_rows(head, values, prefixes, [_FORMATTERS[t] for t in types])
    cols = list(zip(*values, strict=True))
    fast = _format_columns(
        head.encode(),
        cols,
        [b"," + p.encode() for p in prefixes],
        [{"integer": b"i", "unsigned": b"u"}.get(t, b"") for t in types],
    )
    assert fast is not None
    assert _typed(fast) == _typed(slow)
    assert len(_typed(fast)) == 3000
    # A row without any value is no point: the fast path hands it to the slow one.
    assert _format_columns(b"m", [(1, 2), (1.0, None)], [b",f="], [b""]) is None
    assert (
        _format_rows("m", [[1, 1.0], [2, None]], ["f="], [_FORMATTERS["float"]]) == b"m f=1.0 1\n"
    )
