"""The numbers behind a failed rule: what the job required, what a machine offered.

:func:`pair_shortfalls` re-states every rule of :func:`~renkei.cloud.planner.compat.check_compat`
that fails for one (mold, machine) pair as structured :class:`Shortfall` records (one per
failing quantity: a mold too wide *and* too tall for the tie bars gives two), using the
same inclusive comparisons (:func:`~renkei.cloud.planner.compat._le` semantics, so a rule
reported here is exactly a rule ``check_compat`` reports). :func:`zone_shortfall`,
:func:`capacity_shortfall` and :func:`sharing_shortfall` describe the eligibility facts
(disrupted zone, spare hours, sharing) in the same shape.

Shape of one record (also its JSON form, :meth:`Shortfall.to_json`)::

    {"rule": "clamp_force", "quantity": "clamp_force", "comparison": "at_least",
     "required": 4950.0, "offered": 1800.0, "unit": "kN", "items": [],
     "extras": {"margin_pct": 10.0, "mold_value": 4500.0}}

``comparison`` says how ``offered`` must relate to ``required`` to pass: ``at_least``
(offered >= required), ``at_most`` (offered <= required), ``equal`` (within the rule's
tolerance), ``more_than`` (offered > required: a site's distance from the disrupted
centre vs the zone radius), ``includes`` (the machine's site must have ``items``: resin,
certifications) or ``none`` (no figure: a stopped site, machines that are not shared).
``offered`` is ``None`` when it is not disclosed to the requester (see
:meth:`Shortfall.redacted`). ``extras`` holds only figures of the job, the rules or
counts — never further machine data, so redacting ``offered`` hides every machine figure.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from renkei.cloud.planner.compat import REL_TOL
from renkei.cloud.planner.types import CompatRules, MachineSpec, MoldSpec

__all__ = [
    "Comparison",
    "Shortfall",
    "capacity_shortfall",
    "pair_shortfalls",
    "sharing_shortfall",
    "stopped_shortfall",
    "zone_shortfall",
]

Comparison = Literal["at_least", "at_most", "equal", "more_than", "includes", "none"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Shortfall:
    """One failed quantity (module docstring).

    Attributes:
        rule: the rule code (:data:`~renkei.cloud.planner.compat.RULE_CODES`) or ``zone``,
            ``capacity``, ``sharing``.
        quantity: what is compared, e.g. ``tie_bar_h`` (mold width vs horizontal tie-bar
            spacing), ``max_mold_height``, ``max_shot_weight``, ``spare_hours``.
        comparison: how ``offered`` must relate to ``required`` to pass.
        required, offered: the two figures in ``unit``; ``None`` if there is none or it
            is not disclosed.
        unit: ``kN``, ``mm``, ``g``, ``kg``, ``axes``, ``km``, ``h`` or ``""``.
        items: what is missing for ``includes`` (a resin code, certifications).
        extras: job/rule figures for the sentence (``margin_pct``, ``fraction_pct``,
            ``mold_value``, ``machines``, ``firms``).
    """

    rule: str
    quantity: str
    comparison: Comparison
    required: float | None = None
    offered: float | None = None
    unit: str = ""
    items: tuple[str, ...] = ()
    extras: Mapping[str, float] = field(default_factory=dict)

    @property
    def relative(self) -> float:
        """How far off, relative to the larger figure (0 = at the limit); 1.0 when there
        are no two figures (a missing resin or certificate, a stopped site)."""
        if self.required is None or self.offered is None:
            return 1.0
        scale = max(abs(self.required), abs(self.offered), 1e-12)
        return abs(self.required - self.offered) / scale

    def redacted(self) -> Shortfall:
        """The same record without the machine's figure (``offered = None``)."""
        return replace(self, offered=None)

    def to_json(self) -> dict[str, Any]:
        """The JSON form (module docstring)."""
        return {
            "rule": self.rule,
            "quantity": self.quantity,
            "comparison": self.comparison,
            "required": self.required,
            "offered": self.offered,
            "unit": self.unit,
            "items": list(self.items),
            "extras": dict(self.extras),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Shortfall:
        """Inverse of :meth:`to_json` (raises ``KeyError``/``TypeError`` on a bad shape)."""
        req, off = data.get("required"), data.get("offered")
        return cls(
            rule=str(data["rule"]),
            quantity=str(data["quantity"]),
            comparison=data["comparison"],
            required=None if req is None else float(req),
            offered=None if off is None else float(off),
            unit=str(data.get("unit", "")),
            items=tuple(str(i) for i in data.get("items", ())),
            extras={str(k): float(v) for k, v in dict(data.get("extras", {})).items()},
        )


def _le(a: float, b: float) -> bool:
    return a <= b * (1.0 + REL_TOL)


def _box(
    rule: str,
    names: tuple[str, str],
    size: tuple[float, float],
    limit: tuple[float, float],
    rotate: bool,
) -> list[Shortfall]:
    """Shortfalls of a ``size`` (w, h) through an opening ``limit`` (a, b): the failing
    sides of the orientation that fails least (as drawn unless ``rotate``)."""

    def sides(w: float, h: float) -> list[Shortfall]:
        out = []
        for name, need, have in ((names[0], w, limit[0]), (names[1], h, limit[1])):
            if not _le(need, have):
                out.append(
                    Shortfall(
                        rule=rule,
                        quantity=name,
                        comparison="at_least",
                        required=need,
                        offered=have,
                        unit="mm",
                    )
                )
        return out

    drawn = sides(*size)
    if not rotate or not drawn:
        return drawn
    turned = sides(size[1], size[0])
    if not turned:
        return []
    return min(drawn, turned, key=lambda fs: (len(fs), sum(f.relative for f in fs)))


def _force(rule: str, mold_kN: float, have_kN: float, margin: float) -> list[Shortfall]:
    need = mold_kN * (1.0 + margin)
    if _le(need, have_kN):
        return []
    return [
        Shortfall(
            rule=rule,
            quantity=rule,
            comparison="at_least",
            required=need,
            offered=have_kN,
            unit="kN",
            extras={"margin_pct": margin * 100.0, "mold_value": mold_kN},
        )
    ]


def _height(mold: MoldSpec, machine: MachineSpec) -> list[Shortfall]:
    lo, hi = machine.min_mold_height_mm, machine.max_mold_height_mm
    assert lo is not None and hi is not None
    t = mold.thickness_mm
    if not _le(t, hi):
        return [
            Shortfall(
                rule="mold_height",
                quantity="max_mold_height",
                comparison="at_least",
                required=t,
                offered=hi,
                unit="mm",
            )
        ]
    if not _le(lo, t):
        return [
            Shortfall(
                rule="mold_height",
                quantity="min_mold_height",
                comparison="at_most",
                required=t,
                offered=lo,
                unit="mm",
            )
        ]
    return []


def _imm(mold: MoldSpec, machine: MachineSpec, r: CompatRules) -> list[Shortfall]:
    assert machine.clamp_force_kN is not None and machine.tie_bar_h_mm is not None
    assert machine.tie_bar_v_mm is not None and machine.shot_capacity_g is not None
    assert machine.locating_ring_mm is not None
    assert mold.shot_weight_g is not None and mold.locating_ring_mm is not None
    out = _force(
        "clamp_force", mold.required_clamp_force_kN, machine.clamp_force_kN, r.clamp_margin
    )
    out += _box(
        "tie_bar",
        ("tie_bar_h", "tie_bar_v"),
        (mold.width_mm, mold.height_mm),
        (machine.tie_bar_h_mm, machine.tie_bar_v_mm),
        r.allow_mold_rotation,
    )
    shot = mold.shot_weight_g
    lo = machine.shot_capacity_g * r.shot_min_fraction
    hi = machine.shot_capacity_g * r.shot_max_fraction
    if not _le(shot, hi):
        out.append(
            Shortfall(
                rule="shot_weight",
                quantity="max_shot_weight",
                comparison="at_least",
                required=shot,
                offered=hi,
                unit="g",
                extras={"fraction_pct": r.shot_max_fraction * 100.0},
            )
        )
    elif not _le(lo, shot):
        out.append(
            Shortfall(
                rule="shot_weight",
                quantity="min_shot_weight",
                comparison="at_most",
                required=shot,
                offered=lo,
                unit="g",
                extras={"fraction_pct": r.shot_min_fraction * 100.0},
            )
        )
    ring, bore = mold.locating_ring_mm, machine.locating_ring_mm
    ring_ok = abs(ring - bore) <= r.locating_ring_tolerance_mm or (
        r.allow_locating_ring_adapter and ring < bore
    )
    if not ring_ok:
        out.append(
            Shortfall(
                rule="locating_ring",
                quantity="locating_ring",
                comparison="equal",
                required=ring,
                offered=bore,
                unit="mm",
                extras={"tolerance_mm": r.locating_ring_tolerance_mm},
            )
        )
    if mold.resin not in machine.resins:
        out.append(
            Shortfall(
                rule="resin", quantity="resin", comparison="includes", items=(str(mold.resin),)
            )
        )
    return out


def pair_shortfalls(
    *,
    mold: MoldSpec,
    machine: MachineSpec,
    required_certifications: Set[str] = frozenset(),
    rules: CompatRules | None = None,
) -> tuple[Shortfall, ...]:
    """Every failed compatibility quantity of ``mold`` on ``machine`` (empty = compatible).

    Same rules and boundaries as :func:`~renkei.cloud.planner.compat.check_compat`, in its
    rule order. A process mismatch gives one ``process`` record (``items``: the mold's
    process) and, like ``check_compat``, no size rules.
    """
    r = rules if rules is not None else CompatRules()
    out: list[Shortfall] = []
    if mold.process != machine.process:
        out.append(
            Shortfall(
                rule="process", quantity="process", comparison="includes", items=(mold.process,)
            )
        )
    missing = tuple(sorted(set(required_certifications) - machine.certifications))
    if missing:
        out.append(
            Shortfall(
                rule="certifications",
                quantity="certifications",
                comparison="includes",
                items=missing,
            )
        )
    if mold.process != machine.process:
        return tuple(out)
    if machine.process == "injection_molding":
        out += _imm(mold, machine, r)
    if machine.process in ("injection_molding", "press"):
        out += _height(mold, machine)
        limit = machine.max_mold_weight_kg
        if limit is not None and not _le(mold.weight_kg, limit):
            out.append(
                Shortfall(
                    rule="mold_weight",
                    quantity="max_mold_weight",
                    comparison="at_least",
                    required=mold.weight_kg,
                    offered=limit,
                    unit="kg",
                )
            )
    if machine.process == "press":
        assert machine.tonnage_kN is not None
        assert machine.bed_width_mm is not None and machine.bed_depth_mm is not None
        out += _force("tonnage", mold.required_clamp_force_kN, machine.tonnage_kN, r.clamp_margin)
        out += _box(
            "bed",
            ("bed_width", "bed_depth"),
            (mold.width_mm, mold.height_mm),
            (machine.bed_width_mm, machine.bed_depth_mm),
            r.allow_mold_rotation,
        )
    if machine.process == "machining":
        assert machine.axes is not None and machine.envelope_x_mm is not None
        assert machine.envelope_y_mm is not None and machine.envelope_z_mm is not None
        if mold.required_axes is not None and not _le(mold.required_axes, machine.axes):
            out.append(
                Shortfall(
                    rule="axes",
                    quantity="axes",
                    comparison="at_least",
                    required=float(mold.required_axes),
                    offered=float(machine.axes),
                    unit="axes",
                )
            )
        out += _box(
            "envelope",
            ("envelope_x", "envelope_y"),
            (mold.width_mm, mold.height_mm),
            (machine.envelope_x_mm, machine.envelope_y_mm),
            r.allow_mold_rotation,
        )
        if not _le(mold.thickness_mm, machine.envelope_z_mm):
            out.append(
                Shortfall(
                    rule="envelope",
                    quantity="envelope_z",
                    comparison="at_least",
                    required=mold.thickness_mm,
                    offered=machine.envelope_z_mm,
                    unit="mm",
                )
            )
    return tuple(out)


def zone_shortfall(*, distance_km: float, radius_km: float) -> Shortfall:
    """The site lies ``distance_km`` from the disrupted site, inside its ``radius_km`` zone
    (a site passes when it is farther than the radius)."""
    return Shortfall(
        rule="zone",
        quantity="zone_radius",
        comparison="more_than",
        required=radius_km,
        offered=distance_km,
        unit="km",
    )


def stopped_shortfall() -> Shortfall:
    """The site or machine is stopped for another reason (disrupted flag, a disrupted
    site, another firm's disruption zone) — no figures, as they may be other firms'."""
    return Shortfall(rule="zone", quantity="site_stopped", comparison="none")


def capacity_shortfall(*, needed_h: float, best_site_h: float, sites: int) -> Shortfall:
    """Compatible eligible machines exist at ``sites`` sites, but the most any one site
    has left after the plan (``best_site_h``) is less than ``needed_h`` (a mold is at
    one site)."""
    return Shortfall(
        rule="capacity",
        quantity="spare_hours",
        comparison="at_least",
        required=needed_h,
        offered=best_site_h,
        unit="h",
        extras={"sites": float(sites)},
    )


def sharing_shortfall(*, machines: int, firms: int) -> Shortfall:
    """``machines`` compatible machines at ``firms`` firms that do not share with the
    requester (counts only: which firms and machines is theirs to tell)."""
    return Shortfall(
        rule="sharing",
        quantity="not_shared_machines",
        comparison="none",
        extras={"machines": float(machines), "firms": float(firms)},
    )
