"""Takeover planner benchmark: 500 jobs against 5,000 candidate machines.

Run: ``python -m bench.bench_planner [--jobs 500] [--machines 5000] [--firms 1000]
[--seed 7] [--max-sites 40] [--repeat 1] [--load 1.0]``. Target: a plan in <= 5 s on
the 2-core reference machine.

Synthetic but realistic fleet (seeded, numpy ``default_rng``):

- three regions (centres near Sendai, northern Kanto, Nagoya), firms scattered around
  each centre (normal, σ ≈ 45 km); ~10 % of firms have a second site;
- 80 % injection-molding machines from standard series 500–8,500 kN, tie-bar distance
  ≈ 13·√F mm, daylight 0.35–1.1 × tie bar, shot capacity ≈ 0.075·F^1.1 g × screw variant
  (0.7 / 1 / 1.4), locating ring 100 / 120 / 150 mm by size; 15 % presses, 5 % machining
  centres (their fields filled; the jobs are all IMM, so they are never compatible);
- per site 3–7 resins (PP, ABS common) and certifications (ISO 9001 80 %, IATF 16949
  30 %); 2 % of machines flagged disrupted;
- spare hours over the two-week horizon: 0 for 30 % of machines, else uniform 4–80 h;
- the requester sits in region 0; the zone is a 60 km circle around it; 3 % of other
  sites are disrupted; 60 % of firms share with the requester;
- 500 jobs, each with its own mold sized for a random series machine (clamp need 55–90 %
  of it, mold 60–98 % of the tie bars, shot 25–75 % of capacity), 1–8 cavities,
  18–60 s cycles, 20 % needing IATF 16949, volumes of 8–60 machine hours per week.

``--load 3`` triples every job's volume (87 % of the hours can then be covered).

Reported: build time (compatibility, eligibility, options, results and unmet reasons),
the greedy start, the MILP neighbourhood search (default budget 3 s; number of MILPs,
adopted ones, HiGHS time), total wall time of ``plan_takeover``, coverage, unmet parts
per reason, largest MILP, partner firms and transport km.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass
from datetime import date

import numpy as np

from renkei.cloud.planner import (
    DisruptionZone,
    Job,
    MachineSpec,
    MoldSpec,
    PlanContext,
    SearchSettings,
    TakeoverPlan,
    plan_takeover,
)

REGIONS = ((38.27, 140.87), (36.30, 139.60), (35.18, 136.91))
SERIES_KN = (500, 800, 1000, 1300, 1800, 2200, 2800, 3500, 4500, 5500, 8500)
RESINS = ("PP", "ABS", "PC", "PA6", "PA66-GF30", "POM", "PBT", "PC/ABS", "PE")
RESIN_P = np.array([0.9, 0.8, 0.35, 0.3, 0.3, 0.3, 0.25, 0.25, 0.4])
HORIZON = (date(2026, 3, 16), date(2026, 3, 30))  # two weeks
REQUESTER = "firm-0000"


def _ring(kn: float) -> float:
    return 100.0 if kn <= 1300 else 120.0 if kn <= 3500 else 150.0


def _tie(kn: float) -> float:
    return 13.0 * math.sqrt(kn)


def _shot_cap(kn: float) -> float:
    return float(0.075 * kn**1.1)


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    """One generated planning problem."""

    machines: list[MachineSpec]
    molds: list[MoldSpec]
    jobs: list[Job]
    spare_hours: dict[str, float]
    context: PlanContext


def make_scenario(
    *,
    n_jobs: int,
    n_machines: int,
    n_firms: int,
    seed: int,
    max_sites: int | None,
    load: float = 1.0,
) -> Scenario:
    """Generate the fleet, jobs and context described in the module docstring."""
    rng = np.random.default_rng(seed)
    km_deg = 1.0 / 111.0
    sites: list[tuple[str, str, float, float]] = []  # site_id, firm_id, lat, lon
    for f in range(n_firms):
        region = 0 if f == 0 else int(rng.integers(0, 3))
        clat, clon = REGIONS[region]
        for s in range(2 if rng.random() < 0.1 else 1):
            lat = clat + rng.normal(0, 45) * km_deg
            lon = clon + rng.normal(0, 45) * km_deg / math.cos(math.radians(clat))
            if f == 0 and s == 0:
                lat, lon = clat, clon
            sites.append((f"site-{f:04d}-{s}", f"firm-{f:04d}", lat, lon))
    site_resins = {
        s[0]: frozenset(r for r, p in zip(RESINS, RESIN_P) if rng.random() < p) for s in sites
    }
    site_certs = {
        s[0]: frozenset(
            (["ISO9001"] if rng.random() < 0.8 else [])
            + (["IATF16949"] if rng.random() < 0.3 else [])
        )
        for s in sites
    }
    machines: list[MachineSpec] = []
    spare: dict[str, float] = {}
    site_idx = rng.integers(0, len(sites), size=n_machines)
    site_idx[: min(len(sites), n_machines)] = np.arange(min(len(sites), n_machines))
    for i, si in enumerate(site_idx.tolist()):
        sid, fid, lat, lon = sites[si]
        mid = f"m-{i:05d}"
        kind = rng.random()
        common = {
            "machine_id": mid,
            "firm_id": fid,
            "site_id": sid,
            "site_lat_deg": lat,
            "site_lon_deg": lon,
            "resins": site_resins[sid],
            "certifications": site_certs[sid],
            "disrupted": bool(rng.random() < 0.02),
        }
        if kind < 0.80:
            kn = float(rng.choice(SERIES_KN))
            tie = _tie(kn)
            machines.append(
                MachineSpec(
                    **common,
                    clamp_force_kN=kn,
                    tie_bar_h_mm=round(tie),
                    tie_bar_v_mm=round(0.95 * tie),
                    min_mold_height_mm=round(0.35 * tie),
                    max_mold_height_mm=round(1.1 * tie),
                    shot_capacity_g=round(_shot_cap(kn) * float(rng.choice([0.7, 1.0, 1.4]))),
                    locating_ring_mm=_ring(kn) if rng.random() < 0.85 else 150.0,
                )
            )
        elif kind < 0.95:
            machines.append(
                MachineSpec(
                    **common,
                    process="press",
                    tonnage_kN=float(rng.choice([800, 1500, 2500])),
                    bed_width_mm=1200.0,
                    bed_depth_mm=800.0,
                    min_mold_height_mm=250.0,
                    max_mold_height_mm=450.0,
                )
            )
        else:
            machines.append(
                MachineSpec(
                    **common,
                    process="machining",
                    axes=int(rng.choice([3, 5])),
                    envelope_x_mm=800.0,
                    envelope_y_mm=500.0,
                    envelope_z_mm=500.0,
                )
            )
        spare[mid] = 0.0 if rng.random() < 0.3 else float(rng.uniform(10, 150))
    molds: list[MoldSpec] = []
    jobs: list[Job] = []
    for j in range(n_jobs):
        kn = float(rng.choice(SERIES_KN))
        tie = _tie(kn)
        cav = int(rng.choice([1, 2, 4, 8]))
        cycle = float(rng.uniform(18, 60))
        mold = MoldSpec(
            mold_id=f"mold-{j:04d}",
            owner_firm_id=REQUESTER,
            width_mm=round(tie * rng.uniform(0.6, 0.98)),
            height_mm=round(0.95 * tie * rng.uniform(0.6, 0.98)),
            thickness_mm=round(tie * rng.uniform(0.45, 0.95)),
            weight_kg=round(float(rng.uniform(50, 3000))),
            required_clamp_force_kN=round(kn * rng.uniform(0.55, 0.9)),
            shot_weight_g=round(_shot_cap(kn) * rng.uniform(0.25, 0.75), 1),
            resin=str(rng.choice(RESINS, p=RESIN_P / RESIN_P.sum())),
            locating_ring_mm=_ring(kn),
            cavities=cav,
            cycle_time_s=round(cycle, 1),
        )
        molds.append(mold)
        weekly_h = load * float(rng.uniform(4, 40))
        jobs.append(
            Job(
                job_id=f"job-{j:04d}",
                part_id=f"part-{j:04d}",
                mold_id=mold.mold_id,
                weekly_volume_parts=int(weekly_h * 3600 / cycle * cav),
                window_start=HORIZON[0],
                window_end=HORIZON[1],
                required_certifications=frozenset({"IATF16949"})
                if rng.random() < 0.2
                else frozenset(),
            )
        )
    firms = sorted({s[1] for s in sites} - {REQUESTER})
    sharing = frozenset(f for f in firms if rng.random() < 0.6)
    others = [s[0] for s in sites[1:]]
    disrupted = frozenset(s for s in others if rng.random() < 0.03)
    lat0, lon0 = sites[0][2], sites[0][3]
    context = PlanContext(
        requester_firm_id=REQUESTER,
        origin_site_id=sites[0][0],
        origin_lat_deg=lat0,
        origin_lon_deg=lon0,
        horizon_start=HORIZON[0],
        horizon_end=HORIZON[1],
        sharing_firm_ids=sharing,
        disrupted_site_ids=disrupted,
        zones=(DisruptionZone(center_lat_deg=lat0, center_lon_deg=lon0, radius_km=60.0),),
        search=SearchSettings(max_sites=max_sites),
    )
    return Scenario(machines=machines, molds=molds, jobs=jobs, spare_hours=spare, context=context)


def _row(label: str, value: str) -> str:
    return f"| {label} | {value} |"


def report(plan: TakeoverPlan, *, wall_s: float, gen_s: float) -> str:
    """The markdown table of one run."""
    s = plan.stats
    unmet = plan.unmet_parts_by_reason()
    need_parts = sum(j.needed_parts for j in plan.jobs)
    lines = [
        "| metric | value |",
        "|---|---|",
        _row("jobs × machines", f"{s.jobs} × {s.machines}"),
        _row("compatible / eligible pairs", f"{s.compatible_pairs} / {s.eligible_pairs}"),
        _row("(job, site) options / searched by the MILP", f"{s.options} / {s.searched_options}"),
        _row("scenario generation (not timed)", f"{gen_s:.2f} s"),
        _row("build (compat, eligibility, options, results, reasons)", f"{s.build_time_s:.2f} s"),
        _row(
            "greedy start",
            f"{s.greedy_time_s:.3f} s: {s.greedy_covered_hours:.0f} h, "
            f"{s.greedy_transport_km:.0f} km",
        ),
        _row(
            "MILP neighbourhood search",
            f"{s.search_time_s:.2f} s ({s.milp_time_s:.2f} s HiGHS), {s.neighbourhoods} "
            f"MILPs, {s.accepted} adopted, {s.passes} passes, {s.stage_timeouts} "
            f"stage timeouts",
        ),
        _row("largest MILP variables / constraints", f"{s.max_variables} / {s.max_constraints}"),
        _row("**total plan_takeover**", f"**{wall_s:.2f} s** (target ≤ 5 s)"),
        _row(
            "hours covered",
            f"{plan.covered_hours:.0f} / {plan.needed_hours:.0f} h "
            f"(**{100 * plan.coverage:.1f} %**)",
        ),
        _row("jobs fully covered", f"{sum(j.unmet is None for j in plan.jobs)} / {len(plan.jobs)}"),
        _row(
            "unmet parts by reason",
            ", ".join(f"{k} {v} ({100 * v / max(need_parts, 1):.1f} %)" for k, v in unmet.items())
            or "none",
        ),
        _row(
            "partner firms / transport",
            f"{len(plan.partner_firm_ids)} firms, {plan.transport_km:.0f} km",
        ),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Generate the scenario, plan it ``--repeat`` times, print a markdown table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=500)
    ap.add_argument("--machines", type=int, default=5000)
    ap.add_argument("--firms", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--max-sites", type=int, default=40, help="0 = unlimited")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--load", type=float, default=1.0, help="multiplier on job volumes")
    # ``python -m bench planner`` leaves its selector in sys.argv: ignore bare words.
    args, extra = ap.parse_known_args(argv)
    if any(e.startswith("-") for e in extra):
        ap.error(f"unrecognized arguments: {' '.join(extra)}")
    t0 = time.perf_counter()
    sc = make_scenario(
        n_jobs=args.jobs,
        n_machines=args.machines,
        n_firms=args.firms,
        seed=args.seed,
        max_sites=args.max_sites or None,
        load=args.load,
    )
    gen_s = time.perf_counter() - t0
    for _ in range(max(1, args.repeat)):
        t1 = time.perf_counter()
        plan = plan_takeover(
            jobs=sc.jobs,
            molds=sc.molds,
            machines=sc.machines,
            spare_hours=sc.spare_hours,
            context=sc.context,
        )
        wall = time.perf_counter() - t1
        print(report(plan, wall_s=wall, gen_s=gen_s), flush=True)
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
