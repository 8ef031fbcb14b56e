"""Partner capacity search benchmark: ``GET /api/v1/capacity/search`` through the real app.

Run: ``python -m bench.bench_capacity_search [--firms 10000] [--machines 100000]
[--owners 200,1000,2000] [--queries 240] [--seed 11] [--limit 50]``. Target: p95 ≤ 100 ms
on the 2-core reference machine with 10,000 firms / 100,000 machines, the registry in
SQLite (file, WAL).

Synthetic registry (seeded, numpy ``default_rng``; written with Core bulk inserts, not
timed):

- firms in 8 regions (Kanto and Chubu/Kansai heavier), 1 site each (10 % have 2), one line
  per site; machines spread over firms (≈ 10 per firm, geometric), 80 % injection molding
  (standard series 500–8,500 kN, tie bars ≈ 13·√F mm, daylight 0.35–1.1 × tie bar, shot
  capacity ≈ 0.075·F^1.1 g), 15 % presses, 5 % machining centres;
- 5 shift-calendar patterns (40 % of sites use the API default), with holidays;
- ≈ 3 bookings per machine over the 12-week horizon (1–14 days, 4–16 h/day);
- grants: every firm shares with ≈ 10 random firms and one partner group of ≈ 10 members
  (≈ 200,000 grants + 100,000 group memberships in total); each *requester* (one per
  ``--owners`` value) is additionally shared with by exactly that many owners: half by
  firm grant, half through a group grant, 30 % class-limited, 60 % week granularity, 30 %
  with machine detail, 5 % expired;
- 40 % of firms admit regional supporters.

Queries: ``--queries`` per requester, cycling through filter mixes (none; process; clamp
band; clamp band + resin; tie bars + mold height; certification + region; shot capacity;
windows of 7–84 days; ``min_spare_h``), first one discarded as warm-up. Reported: index
build time (first search after start), rebuild after a booking upload (incremental) and
after a registry change (full), p50/p95/p99 per requester.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from fastapi.testclient import TestClient
from sqlalchemy import Engine, insert

from renkei.cloud.api import ApiSettings, create_app
from renkei.cloud.registry import (
    CapacityBooking,
    Firm,
    Line,
    Machine,
    PartnerGroup,
    PartnerGroupMember,
    Role,
    SharingGrant,
    Site,
    issue_key,
    session_scope,
)

NOW = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
TODAY = date(2026, 11, 23)
REGIONS = ("hokkaido", "tohoku", "kanto", "chubu", "kansai", "chugoku", "shikoku", "kyushu")
REGION_P = np.array([0.05, 0.08, 0.3, 0.2, 0.2, 0.07, 0.03, 0.07])
SERIES_KN = (500, 800, 1000, 1300, 1800, 2200, 2800, 3500, 4500, 5500, 8500)
RESINS = ("PP", "ABS", "PC", "PA6", "PA66-GF30", "POM", "PBT", "PC/ABS", "PE")
RESIN_P = (0.9, 0.8, 0.35, 0.3, 0.3, 0.3, 0.25, 0.25, 0.4)
CALENDARS: tuple[dict[str, Any] | None, ...] = (
    None,
    {"weekly_hours": [16, 16, 16, 16, 16, 0, 0], "holidays": ["2026-12-30", "2026-12-31"]},
    {"weekly_hours": [24, 24, 24, 24, 24, 8, 0], "holidays": ["2027-01-01", "2027-01-02"]},
    {"weekly_hours": [8, 8, 8, 8, 8, 0, 0], "holidays": ["2026-12-29", "2026-12-30"]},
    {"weekly_hours": [16, 16, 16, 16, 16, 8, 0], "exceptions": {"2026-12-05": 0}},
)
CAL_P = (0.4, 0.25, 0.15, 0.1, 0.1)
BATCH = 20_000


def _batches(rows: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for i in range(0, len(rows), BATCH):
        yield rows[i : i + BATCH]


def populate(
    engine: Engine, *, firms: int, machines: int, owners: list[int], seed: int
) -> list[str]:
    """Write the synthetic registry (see the module docstring); returns the requesters."""
    rng = np.random.default_rng(seed)
    fid = [f"f{i:05d}" for i in range(firms)]
    region = rng.choice(len(REGIONS), size=firms, p=REGION_P)
    firm_rows = [
        {"id": f, "name": f"Firm {f}", "region": REGIONS[r], "created_at": NOW}
        for f, r in zip(fid, region.tolist())
    ]
    sites: list[dict[str, Any]] = []
    lines: list[dict[str, Any]] = []
    for i, f in enumerate(fid):
        for s_no in range(2 if rng.random() < 0.1 else 1):
            sid = f"{f}-s{s_no}"
            resins = [r for r, p in zip(RESINS, RESIN_P) if rng.random() < p]
            certs = (["ISO9001"] if rng.random() < 0.8 else []) + (
                ["IATF16949"] if rng.random() < 0.3 else []
            )
            cal = CALENDARS[int(rng.choice(len(CALENDARS), p=CAL_P))]
            reg = REGIONS[int(region[i])] if s_no == 0 else REGIONS[int(rng.integers(len(REGIONS)))]
            sites.append(
                {
                    "id": sid,
                    "firm_id": f,
                    "name": f"{f} plant {s_no}",
                    "address": "",
                    "latitude_deg": 35.0 + rng.normal(0, 2),
                    "longitude_deg": 137.0 + rng.normal(0, 3),
                    "prefecture": "",
                    "region": reg,
                    "resins": resins,
                    "certifications": certs,
                    "calendar": cal,
                }
            )
            lines.append({"id": f"{sid}-l1", "site_id": sid, "name": "L1", "area": ""})
    site_lines = [(s["firm_id"], f"{s['id']}-l1") for s in sites]
    # Machines: every site gets one, the rest spread geometrically over sites.
    extra = max(0, machines - len(sites))
    weights = rng.geometric(0.15, size=len(sites)).astype(float)
    owner_site = np.concatenate(
        [np.arange(len(sites)), rng.choice(len(sites), size=extra, p=weights / weights.sum())]
    )[:machines]
    owner_site.sort()
    machine_rows: list[dict[str, Any]] = []
    for k, si in enumerate(owner_site.tolist()):
        f, line = site_lines[si]
        base: dict[str, Any] = {
            "id": f"m{k:06d}",
            "firm_id": f,
            "line_id": line,
            "name": f"M{k}",
        }
        empty = dict.fromkeys(
            (
                "clamp_force_kN",
                "tie_bar_h_mm",
                "tie_bar_v_mm",
                "min_mold_height_mm",
                "max_mold_height_mm",
                "shot_capacity_g",
                "locating_ring_mm",
                "tonnage_kN",
                "bed_width_mm",
                "bed_depth_mm",
                "axes",
                "envelope_x_mm",
                "envelope_y_mm",
                "envelope_z_mm",
            )
        )
        kind = rng.random()
        if kind < 0.8:
            kn = float(rng.choice(SERIES_KN))
            tie = 13.0 * math.sqrt(kn)
            base |= empty | {
                "process": "injection_molding",
                "clamp_force_kN": kn,
                "tie_bar_h_mm": round(tie),
                "tie_bar_v_mm": round(0.95 * tie),
                "min_mold_height_mm": round(0.35 * tie),
                "max_mold_height_mm": round(1.1 * tie),
                "shot_capacity_g": round(0.075 * kn**1.1 * float(rng.choice([0.7, 1.0, 1.4]))),
                "locating_ring_mm": 100.0 if kn <= 1300 else 120.0 if kn <= 3500 else 150.0,
            }
        elif kind < 0.95:
            base |= empty | {
                "process": "press",
                "tonnage_kN": float(rng.choice([800, 1500, 2500])),
                "bed_width_mm": 1200.0,
                "bed_depth_mm": 800.0,
            }
        else:
            base |= empty | {
                "process": "machining",
                "axes": int(rng.choice([3, 5])),
                "envelope_x_mm": 800.0,
                "envelope_y_mm": 500.0,
                "envelope_z_mm": 500.0,
            }
        machine_rows.append(base)
    bookings: list[dict[str, Any]] = []
    n_book = rng.poisson(3, size=len(machine_rows))
    for m, n in zip(machine_rows, n_book.tolist()):
        for _ in range(n):
            start = TODAY + timedelta(days=int(rng.integers(-7, 84)))
            bookings.append(
                {
                    "firm_id": m["firm_id"],
                    "machine_id": m["id"],
                    "start": start,
                    "end": start + timedelta(days=int(rng.integers(0, 14))),
                    "hours_per_day": float(rng.integers(4, 17)),
                    "reference": "PO",
                    "created_at": NOW,
                }
            )
    groups: list[dict[str, Any]] = []
    members: list[dict[str, Any]] = []
    grants: list[dict[str, Any]] = []

    def grant(owner: str, kind: str, grantee: str, **kw: Any) -> None:
        grants.append(
            {
                "owner_firm_id": owner,
                "grantee_kind": kind,
                "grantee_id": grantee,
                "capability_classes": kw.get("classes", []),
                "granularity": kw.get("granularity", "week"),
                "machine_detail": kw.get("detail", False),
                "created_at": NOW,
                "expires_at": kw.get("expires_at"),
            }
        )

    # Background sharing among all firms.
    for i, f in enumerate(fid):
        gid = f"{f}-circle"
        groups.append({"id": gid, "owner_firm_id": f, "name": "circle", "created_at": NOW})
        for j in set(rng.integers(0, firms, size=10).tolist()) - {i}:
            members.append({"group_id": gid, "firm_id": fid[j]})
        grant(f, "group", gid)
        for j in set(rng.integers(0, firms, size=10).tolist()) - {i}:
            grant(f, "firm", fid[j], granularity="day" if rng.random() < 0.4 else "week")
        if rng.random() < 0.4:
            grant(f, "supporters", REGIONS[int(region[i])] if rng.random() < 0.7 else "*")
    requesters = [fid[i] for i in range(len(owners))]
    for r_i, (req, n_owners) in enumerate(zip(requesters, owners)):
        pool = [f for f in fid if f not in requesters]
        chosen = rng.choice(len(pool), size=min(n_owners, len(pool)), replace=False)
        for c in chosen.tolist():
            owner = pool[c]
            kw: dict[str, Any] = {
                "granularity": "week" if rng.random() < 0.6 else "day",
                "detail": bool(rng.random() < 0.3),
            }
            if rng.random() < 0.3:
                kw["classes"] = (
                    ["injection_molding"]
                    if rng.random() < 0.5
                    else ["injection_molding:1000-2000kN", "injection_molding:2000-4000kN"]
                )
            if rng.random() < 0.05:
                kw["expires_at"] = NOW - timedelta(days=1)
            if rng.random() < 0.5:
                grant(owner, "firm", req, **kw)
            else:
                gid = f"{owner}-req{r_i}"
                groups.append({"id": gid, "owner_firm_id": owner, "name": gid, "created_at": NOW})
                members.append({"group_id": gid, "firm_id": req})
                grant(owner, "group", gid, **kw)
    with session_scope(engine) as s:
        for orm, rows in (
            (Firm, firm_rows),
            (Site, sites),
            (Line, lines),
            (Machine, machine_rows),
            (CapacityBooking, bookings),
            (PartnerGroup, groups),
            (PartnerGroupMember, members),
            (SharingGrant, grants),
        ):
            for chunk in _batches(rows):
                s.execute(insert(orm), chunk)
    return requesters


def queries(n: int, rng: np.random.Generator) -> list[dict[str, Any]]:
    """``n`` query-parameter dicts cycling through the filter mixes of the docstring."""
    out: list[dict[str, Any]] = []
    for i in range(n):
        kn = float(rng.choice(SERIES_KN))
        tie = 13.0 * math.sqrt(kn)
        start = TODAY + timedelta(days=int(rng.integers(0, 14)))
        q: dict[str, Any] = {}
        mix = i % 9
        if mix == 1:
            q["process"] = str(rng.choice(["injection_molding", "press", "machining"]))
        elif mix == 2:
            q |= {"min_clamp_force_kN": kn * 0.8, "max_clamp_force_kN": kn * 1.6}
        elif mix == 3:
            q |= {"min_clamp_force_kN": kn, "resin": str(rng.choice(RESINS[:5]))}
        elif mix == 4:
            q |= {
                "min_tie_bar_h_mm": round(tie * 0.8),
                "min_tie_bar_v_mm": round(tie * 0.7),
                "min_mold_height_mm": round(tie * 0.6),
                "max_mold_height_mm": round(tie * 0.5),
            }
        elif mix == 5:
            q |= {"certification": "IATF16949", "region": str(rng.choice(REGIONS[2:5]))}
        elif mix == 6:
            q |= {"process": "injection_molding", "min_shot_capacity_g": round(0.05 * kn**1.1)}
        elif mix == 7:
            days = int(rng.choice([7, 14, 56]))
            q |= {"start": start.isoformat(), "end": (start + timedelta(days)).isoformat()}
        elif mix == 8:
            q |= {"process": "injection_molding", "min_spare_h": float(rng.integers(20, 200))}
        if mix in (2, 3, 6) and rng.random() < 0.5:
            q["start"] = start.isoformat()
        out.append(q)
    return out


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))
    return ordered[k]


def main(argv: list[str] | None = None) -> int:
    """Build the registry, start the app, time the searches, print a markdown table."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--firms", type=int, default=10_000)
    ap.add_argument("--machines", type=int, default=100_000)
    ap.add_argument("--owners", default="200,1000,2000", help="owners per requester")
    ap.add_argument("--queries", type=int, default=240, help="per requester (>= 200 total)")
    ap.add_argument("--limit", type=int, default=50, help="results per search (limit=)")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument(
        "--gc-freeze",
        action="store_true",
        help="gc.freeze() after the first build (what an app could do at start-up)",
    )
    args, extra = ap.parse_known_args(argv)
    if any(e.startswith("-") for e in extra):
        ap.error(f"unrecognized arguments: {' '.join(extra)}")
    owners = [int(x) for x in args.owners.split(",") if x]
    if not 1 <= args.firms <= 50_000 or not 1 <= args.machines <= 500_000:
        ap.error("--firms must be 1..50000 and --machines 1..500000 (bounded run time)")
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="renkei-bench-search-") as tmp:
        settings = ApiSettings(database_url=f"sqlite:///{Path(tmp) / 'registry.sqlite3'}")
        app = create_app(settings, clock=lambda: NOW)
        engine: Engine = app.state.renkei.engine
        t0 = time.perf_counter()
        requesters = populate(
            engine, firms=args.firms, machines=args.machines, owners=owners, seed=args.seed
        )
        gen_s = time.perf_counter() - t0
        keys = {}
        with session_scope(engine) as s:
            for r in requesters:
                keys[r] = issue_key(s, firm_id=r, role=Role.PARTNER)
            op_key = issue_key(s, firm_id=requesters[0], role=Role.OPERATOR)
        rng = np.random.default_rng(args.seed + 1)
        rows = []
        with TestClient(app) as client:
            url = "/api/v1/capacity/search"
            hdr0 = {"Authorization": f"Bearer {keys[requesters[0]]}"}
            t1 = time.perf_counter()
            r = client.get(url, params={"limit": args.limit}, headers=hdr0)
            build_s = time.perf_counter() - t1
            assert r.status_code == 200, r.text
            index_stats = app.state.renkei.capacity.index.stats()
            if args.gc_freeze:
                gc.collect()
                gc.freeze()
            for req, n_owners in zip(requesters, owners):
                hdr = {"Authorization": f"Bearer {keys[req]}"}
                times: list[float] = []
                results: list[int] = []
                for i, q in enumerate(queries(args.queries + 1, rng)):
                    t = time.perf_counter()
                    r = client.get(url, params=q | {"limit": args.limit}, headers=hdr)
                    dt = time.perf_counter() - t
                    assert r.status_code == 200, r.text
                    if i:
                        times.append(dt * 1000)
                        results.append(len(r.json()["results"]))
                rows.append((n_owners, times, results))
            # Rebuild costs: a booking upload and a machine update (per-firm patches), then a
            # forced full rebuild (what the periodic refresh does in the background).
            service = app.state.renkei.capacity.index
            hdr_op = {"Authorization": f"Bearer {op_key}"}
            own = client.get(f"/api/v1/firms/{requesters[0]}/machines", headers=hdr_op).json()
            body = [
                {"machine_id": m["id"], "start": TODAY.isoformat(), "hours_per_day": 4}
                for m in own[:5]
            ]
            assert client.post(
                f"/api/v1/firms/{requesters[0]}/bookings", json=body, headers=hdr_op
            ).is_success
            t = time.perf_counter()
            client.get(url, params={"limit": args.limit}, headers=hdr0)
            booking_ms = (time.perf_counter() - t) * 1000
            booking_patch_ms = service.last_patch_s * 1000
            patch = {"name": "renamed"}
            assert client.patch(
                f"/api/v1/firms/{requesters[0]}/machines/{own[0]['id']}", json=patch, headers=hdr_op
            ).is_success
            t = time.perf_counter()
            client.get(url, params={"limit": args.limit}, headers=hdr0)
            machine_ms = (time.perf_counter() - t) * 1000
            machine_patch_ms = service.last_patch_s * 1000
            t = time.perf_counter()
            service._index = service._full(TODAY)
            full_s = time.perf_counter() - t
        print("| metric | value |")
        print("|---|---|")
        print(f"| firms / machines | {args.firms:,} / {args.machines:,} |")
        print(f"| registry generation (not timed) | {gen_s:.1f} s |")
        print(f"| index after first build | {json.dumps(index_stats)} |")
        print(f"| host load average at start (1 min) | {load:.2f} |")
        print(f"| gc.freeze() after the first build | {'yes' if args.gc_freeze else 'no'} |")
        print(f"| first search incl. full index build | {build_s:.2f} s |")
        print(f"| full rebuild (periodic, in the background) | {full_s:.2f} s |")
        print(
            f"| search after a booking upload: patch / whole request | {booking_patch_ms:.0f} ms"
            f" / {booking_ms:.0f} ms |"
        )
        print(
            f"| search after a machine update: patch / whole request | {machine_patch_ms:.0f} ms"
            f" / {machine_ms:.0f} ms |"
        )
        print()
        print(
            "| owners sharing with requester | queries | results (median) | p50 ms | p95 ms |"
            " p99 ms | max ms |"
        )
        print("|---|---|---|---|---|---|---|")
        all_times: list[float] = []
        for n_owners, times, results in rows:
            all_times += times
            print(
                f"| {n_owners:,} | {len(times)} | {statistics.median(results):.0f} | "
                f"{_pct(times, 50):.1f} | {_pct(times, 95):.1f} | {_pct(times, 99):.1f} | "
                f"{max(times):.1f} |"
            )
        print(
            f"| **all** | {len(all_times)} | | {_pct(all_times, 50):.1f} | "
            f"**{_pct(all_times, 95):.1f}** (target ≤ 100) | {_pct(all_times, 99):.1f} | "
            f"{max(all_times):.1f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
