"""A small partner network for the web page's scenarios.

- ``tohoku-mold`` (Sendai) is hit; it asks partners to take over five jobs
  (:func:`create_takeover`, through the API).
- ``kyoto-mold`` (Kyoto) shares every class with ``tohoku-mold``, weekly, with machine
  detail: it gets the assignments.
- ``sendai-resin`` (Sendai, inside the disrupted zone) shares daily without machine
  detail: its big machine is the only one for the lid mold (``only_inside_zone``).
- ``nagoya-plast`` (Nagoya) shares nothing: its 3,800 kN machine is the only one for the
  panel mold (``not_shared``), and it never appears in a search.

Planned with the rig's clock (2026-11-23) over 2026-11-30..2026-12-13, the jobs end up
with every unmet reason: ``no_capacity`` (more volume than Kyoto's two machines make),
``not_shared``, ``only_inside_zone`` and ``no_compatible_machine`` (a 30,000 kN mold).
"""

from __future__ import annotations

from typing import Any

from renkei.cloud.registry import Role
from tests.api.rig import ApiRig, imm, mold

__all__ = ["HIT", "KYOTO", "NAGOYA", "SENDAI", "WINDOW", "create_takeover", "seed_network"]

HIT, KYOTO, SENDAI, NAGOYA = "tohoku-mold", "kyoto-mold", "sendai-resin", "nagoya-plast"
WINDOW = ("2026-11-30", "2026-12-14")
"""The takeover window ``[start, end)`` and the search period's first and last days."""


def _grant(rig: ApiRig, owner: str, grantee: str, *, granularity: str, detail: bool) -> None:
    """``owner``'s operator opens all its classes to ``grantee`` (``POST .../grants``)."""
    r = rig.client(owner, Role.OPERATOR).post(
        f"/api/v1/firms/{owner}/grants",
        json={
            "grantee_kind": "firm",
            "grantee_id": grantee,
            "granularity": granularity,
            "machine_detail": detail,
        },
    )
    assert r.status_code == 201, r.text


def seed_network(rig: ApiRig) -> None:
    """Register the four firms (registry import) and the two sharing grants to
    ``tohoku-mold`` (through the API, as the owners' operators would)."""
    rig.seed_firm(
        HIT,
        region="tohoku",
        lat=38.26,
        lon=140.87,
        machines=[imm("tohoku-1")],
        molds=[
            mold("m-cover"),
            mold("m-bracket"),
            mold(
                "m-panel",
                required_clamp_force_kN=3000.0,
                width_mm=600.0,
                height_mm=600.0,
                thickness_mm=400.0,
            ),
            mold(
                "m-lid",
                required_clamp_force_kN=6000.0,
                width_mm=800.0,
                height_mm=800.0,
                shot_weight_g=500.0,
            ),
            mold("m-hull", required_clamp_force_kN=30000.0, width_mm=2000.0, height_mm=2000.0),
        ],
    )
    rig.seed_firm(
        KYOTO,
        region="kansai",
        lat=35.01,
        lon=135.76,
        machines=[imm("kyoto-1"), imm("kyoto-2", clamp_force_kN=1800.0)],
    )
    rig.seed_firm(
        SENDAI,
        region="tohoku",
        lat=38.30,
        lon=140.90,
        machines=[
            imm(
                "sendai-1",
                clamp_force_kN=7000.0,
                tie_bar_h_mm=900.0,
                tie_bar_v_mm=900.0,
                max_mold_height_mm=800.0,
                shot_capacity_g=1500.0,
            )
        ],
    )
    rig.seed_firm(
        NAGOYA,
        region="chubu",
        lat=35.18,
        lon=136.90,
        machines=[
            imm(
                "nagoya-1",
                clamp_force_kN=3800.0,
                tie_bar_h_mm=760.0,
                tie_bar_v_mm=760.0,
                max_mold_height_mm=700.0,
                shot_capacity_g=600.0,
            )
        ],
    )
    _grant(rig, KYOTO, HIT, granularity="week", detail=True)
    _grant(rig, SENDAI, HIT, granularity="day", detail=False)


def create_takeover(rig: ApiRig, request_id: str = "tko-sendai-1") -> dict[str, Any]:
    """``tohoku-mold``'s operator asks for a takeover (POST, planned at once); the plan."""
    r = rig.client(HIT, Role.OPERATOR).post(
        f"/api/v1/firms/{HIT}/takeovers",
        json={
            "id": request_id,
            "origin_site_id": f"{HIT}-s1",
            "window_start": WINDOW[0],
            "window_end": WINDOW[1],
            "jobs": [
                {
                    "job_id": "J1",
                    "part_id": "P-COVER",
                    "mold_id": "m-cover",
                    "weekly_volume": 32000,
                },
                {
                    "job_id": "J2",
                    "part_id": "P-BRACKET",
                    "mold_id": "m-bracket",
                    "weekly_volume": 3000,
                },
                {"job_id": "J3", "part_id": "P-PANEL", "mold_id": "m-panel", "weekly_volume": 1000},
                {"job_id": "J4", "part_id": "P-LID", "mold_id": "m-lid", "weekly_volume": 500},
                {"job_id": "J5", "part_id": "P-HULL", "mold_id": "m-hull", "weekly_volume": 100},
            ],
        },
    )
    assert r.status_code == 201, r.text
    plan: dict[str, Any] = r.json()
    return plan
