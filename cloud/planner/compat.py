"""Can mold M run on machine X? — one pair at a time, with reasons.

The rules follow ``DOMAIN.md`` ("Can mold M run on machine X?"); every failed rule is
reported with its numbers, e.g. ``clamp_force: needs 1320 kN incl. 10 % margin, machine
1000 kN``. :mod:`renkei.cloud.planner.compat_matrix` evaluates the same rules for all pairs at
once with numpy; the two are kept identical (same float expressions) and a property test
checks they agree.

Rules (all boundaries inclusive, i.e. equality passes; every ``<=`` is evaluated as
``a <= b × (1 + REL_TOL)`` with ``REL_TOL = 1e-9`` so that e.g. 1200 kN × 1.1 = 1320 kN
passes on a 1320 kN machine despite binary rounding):

==================  ============================================================
``process``         mold process == machine process (other rules need this)
``certifications``  job's required certifications ⊆ machine's certifications
``clamp_force``     IMM: ``clamp_force_kN >= required_clamp_force_kN × (1 + margin)``
``tie_bar``         IMM: ``width <= tie_bar_h`` and ``height <= tie_bar_v``
                    (or turned by 90° if ``allow_mold_rotation``)
``mold_height``     IMM / press: ``min_mold_height <= thickness <= max_mold_height``
``shot_weight``     IMM: ``min_frac × shot_capacity <= shot_weight <= max_frac × cap``
``locating_ring``   IMM: ``|mold ring − machine ring| <= tolerance``
                    (or mold ring < machine ring if ``allow_locating_ring_adapter``)
``resin``           IMM: mold resin ∈ the site's resins
``mold_weight``     IMM / press, only if the machine has ``max_mold_weight_kg``
``tonnage``         press: ``tonnage_kN >= required × (1 + margin)``
``bed``             press: die ``width <= bed_width`` and ``height <= bed_depth``
                    (rotation as for tie bars)
``axes``            machining, only if the mold has ``required_axes``: ``axes >= required``
``envelope``        machining: ``width <= X``, ``height <= Y``, ``thickness <= Z``
                    (X/Y rotation as for tie bars)
==================  ============================================================

Not modelled (no data in the registry yet): nozzle radius / orifice match, ejector
pattern, hot-runner controller zones, mold-temperature controller count.
"""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass
from typing import Literal, get_args

from renkei.cloud.planner.types import CompatRules, MachineSpec, MoldSpec

__all__ = ["REL_TOL", "RULE_CODES", "CompatResult", "RuleCode", "RuleFailure", "check_compat"]

#: Relative tolerance of every inclusive comparison ``a <= b`` (see module docstring).
REL_TOL = 1e-9

RuleCode = Literal[
    "process",
    "certifications",
    "clamp_force",
    "tie_bar",
    "mold_height",
    "shot_weight",
    "locating_ring",
    "resin",
    "mold_weight",
    "tonnage",
    "bed",
    "axes",
    "envelope",
]
#: Every rule code, in the order failures are reported (the order of ``RuleCode``).
RULE_CODES: tuple[RuleCode, ...] = get_args(RuleCode)


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleFailure:
    """One failed rule: its code and a human-readable message with the numbers."""

    code: RuleCode
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CompatResult:
    """The outcome of :func:`check_compat`: ``ok`` iff no rule failed."""

    failures: tuple[RuleFailure, ...] = ()

    @property
    def ok(self) -> bool:
        """True when the mold can run on the machine."""
        return not self.failures

    @property
    def codes(self) -> tuple[RuleCode, ...]:
        """The codes of the failed rules, in :data:`RULE_CODES` order."""
        return tuple(f.code for f in self.failures)


def _le(a: float, b: float) -> bool:
    """``a <= b`` with the relative tolerance :data:`REL_TOL` (same expression as numpy)."""
    return a <= b * (1.0 + REL_TOL)


def _fits(w: float, h: float, a: float, b: float, rotate: bool) -> bool:
    return (_le(w, a) and _le(h, b)) or (rotate and _le(h, a) and _le(w, b))


def _g(x: float) -> str:
    return f"{x:g}"


def check_compat(
    *,
    mold: MoldSpec,
    machine: MachineSpec,
    required_certifications: Set[str] = frozenset(),
    rules: CompatRules | None = None,
) -> CompatResult:
    """Check every rule for running ``mold`` on ``machine`` (see module docstring).

    Location, disruption and sharing are not compatibility: they are handled by the
    planner's eligibility step.

    Args:
        mold: the mold (die, fixture) to run.
        machine: the candidate machine.
        required_certifications: certifications the job's customer requires.
        rules: tunables; default :class:`CompatRules()` (10 % clamp margin, 20–80 % shot,
            no rotation, no locating-ring adapter).

    Returns:
        A :class:`CompatResult` listing every failed rule (empty = compatible). On a
        process mismatch only ``process`` (and ``certifications``) are reported, because
        the other rules compare quantities that do not exist on the other process.
    """
    r = rules if rules is not None else CompatRules()
    fails: list[RuleFailure] = []

    def fail(code: RuleCode, message: str) -> None:
        fails.append(RuleFailure(code=code, message=f"{code}: {message}"))

    if mold.process != machine.process:
        fail("process", f"mold is for {mold.process}, machine is {machine.process}")
    missing = set(required_certifications) - machine.certifications
    if missing:
        fail("certifications", f"missing {', '.join(sorted(missing))}")
    if mold.process != machine.process:
        return CompatResult(failures=tuple(fails))

    margin_pct = _g(r.clamp_margin * 100)
    needed_kN = mold.required_clamp_force_kN * (1.0 + r.clamp_margin)
    rot = r.allow_mold_rotation
    orient = "either orientation" if rot else "as drawn"
    if machine.process == "injection_molding":
        assert machine.clamp_force_kN is not None and machine.tie_bar_h_mm is not None
        assert machine.tie_bar_v_mm is not None and machine.shot_capacity_g is not None
        assert machine.locating_ring_mm is not None
        assert mold.shot_weight_g is not None and mold.locating_ring_mm is not None
        if not _le(needed_kN, machine.clamp_force_kN):
            fail(
                "clamp_force",
                f"needs {_g(needed_kN)} kN incl. {margin_pct} % margin, "
                f"machine {_g(machine.clamp_force_kN)} kN",
            )
        if not _fits(
            mold.width_mm, mold.height_mm, machine.tie_bar_h_mm, machine.tie_bar_v_mm, rot
        ):
            fail(
                "tie_bar",
                f"mold {_g(mold.width_mm)} x {_g(mold.height_mm)} mm does not pass tie bars "
                f"{_g(machine.tie_bar_h_mm)} x {_g(machine.tie_bar_v_mm)} mm ({orient})",
            )
        lo = machine.shot_capacity_g * r.shot_min_fraction
        hi = machine.shot_capacity_g * r.shot_max_fraction
        if not (_le(lo, mold.shot_weight_g) and _le(mold.shot_weight_g, hi)):
            fail(
                "shot_weight",
                f"shot {_g(mold.shot_weight_g)} g outside {_g(lo)}–{_g(hi)} g "
                f"({_g(r.shot_min_fraction * 100)}–{_g(r.shot_max_fraction * 100)} % of "
                f"{_g(machine.shot_capacity_g)} g)",
            )
        ring_ok = abs(mold.locating_ring_mm - machine.locating_ring_mm) <= (
            r.locating_ring_tolerance_mm
        ) or (r.allow_locating_ring_adapter and mold.locating_ring_mm < machine.locating_ring_mm)
        if not ring_ok:
            adapter = (
                " (adapter allowed for smaller rings)" if r.allow_locating_ring_adapter else ""
            )
            fail(
                "locating_ring",
                f"mold ring {_g(mold.locating_ring_mm)} mm, machine "
                f"{_g(machine.locating_ring_mm)} mm{adapter}",
            )
        if mold.resin not in machine.resins:
            has = ", ".join(sorted(machine.resins)) or "none"
            fail("resin", f"{mold.resin} not processed at site {machine.site_id} (has {has})")
    if machine.process in ("injection_molding", "press"):
        lo_h, hi_h = machine.min_mold_height_mm, machine.max_mold_height_mm
        assert lo_h is not None and hi_h is not None
        if not (_le(lo_h, mold.thickness_mm) and _le(mold.thickness_mm, hi_h)):
            what = "mold thickness" if machine.process == "injection_molding" else "die height"
            fail(
                "mold_height",
                f"{what} {_g(mold.thickness_mm)} mm outside {_g(lo_h)}–{_g(hi_h)} mm",
            )
        if machine.max_mold_weight_kg is not None and not _le(
            mold.weight_kg, machine.max_mold_weight_kg
        ):
            fail(
                "mold_weight",
                f"mold {_g(mold.weight_kg)} kg, machine limit {_g(machine.max_mold_weight_kg)} kg",
            )
    if machine.process == "press":
        assert machine.tonnage_kN is not None
        assert machine.bed_width_mm is not None and machine.bed_depth_mm is not None
        if not _le(needed_kN, machine.tonnage_kN):
            fail(
                "tonnage",
                f"needs {_g(needed_kN)} kN incl. {margin_pct} % margin, "
                f"press {_g(machine.tonnage_kN)} kN",
            )
        if not _fits(
            mold.width_mm, mold.height_mm, machine.bed_width_mm, machine.bed_depth_mm, rot
        ):
            fail(
                "bed",
                f"die {_g(mold.width_mm)} x {_g(mold.height_mm)} mm exceeds bed "
                f"{_g(machine.bed_width_mm)} x {_g(machine.bed_depth_mm)} mm ({orient})",
            )
    if machine.process == "machining":
        assert machine.axes is not None and machine.envelope_x_mm is not None
        assert machine.envelope_y_mm is not None and machine.envelope_z_mm is not None
        if mold.required_axes is not None and not _le(mold.required_axes, machine.axes):
            fail("axes", f"needs {mold.required_axes} axes, machine {machine.axes}")
        if not (
            _fits(mold.width_mm, mold.height_mm, machine.envelope_x_mm, machine.envelope_y_mm, rot)
            and _le(mold.thickness_mm, machine.envelope_z_mm)
        ):
            fail(
                "envelope",
                f"work {_g(mold.width_mm)} x {_g(mold.height_mm)} x {_g(mold.thickness_mm)} mm "
                f"exceeds {_g(machine.envelope_x_mm)} x {_g(machine.envelope_y_mm)} x "
                f"{_g(machine.envelope_z_mm)} mm ({orient})",
            )
    order = {c: i for i, c in enumerate(RULE_CODES)}
    return CompatResult(failures=tuple(sorted(fails, key=lambda f: order[f.code])))
