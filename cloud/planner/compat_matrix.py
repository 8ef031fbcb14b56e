"""Can mold M run on machine X? — for all (job, machine) pairs at once, with numpy.

The same rules, with the same float expressions, as :func:`renkei.cloud.planner.compat.check_compat`
(a property test checks they agree pair by pair). Machines and jobs are turned into
column arrays once (:func:`machine_arrays`, :func:`demand_arrays`); set-valued fields
(resins, certifications) become boolean matrices over a shared vocabulary.

Pairs are evaluated per process block (IMM jobs × IMM machines, ...), so a 500 × 5,000
problem costs a few dozen vectorised comparisons over 2.5 M booleans (~0.1 s).
"""

from __future__ import annotations

from collections.abc import Sequence, Set
from dataclasses import dataclass, fields, replace
from typing import Any, Self, cast

import numpy as np
from numpy.typing import NDArray

from renkei.cloud.planner.compat import REL_TOL, RULE_CODES, RuleCode
from renkei.cloud.planner.types import PROCESSES, CompatRules, MachineSpec, MoldSpec

__all__ = [
    "DemandArrays",
    "MachineArrays",
    "Vocabulary",
    "compatible_matrix",
    "demand_arrays",
    "machine_arrays",
    "rule_failure_masks",
]

F64 = NDArray[np.float64]
Bool = NDArray[np.bool_]
_PROC_CODE = {p: i for i, p in enumerate(PROCESSES)}
_IMM, _PRESS, _MACH = (_PROC_CODE[p] for p in ("injection_molding", "press", "machining"))


def _f(x: float | None, missing: float = np.nan) -> float:
    return missing if x is None else float(x)


class _Takeable:
    """Row subsetting for dataclasses whose fields are all numpy arrays of equal length."""

    __slots__ = ()

    def take(self, idx: NDArray[np.intp]) -> Self:
        """A copy with rows ``idx`` of every field."""
        obj: Any = self
        return cast(Self, replace(obj, **{f.name: getattr(obj, f.name)[idx] for f in fields(obj)}))


@dataclass(frozen=True, slots=True, kw_only=True)
class Vocabulary:
    """Column indices of resin codes and certification names (exact strings)."""

    resins: dict[str, int]
    certifications: dict[str, int]

    @classmethod
    def build(
        cls,
        machines: Sequence[MachineSpec],
        molds: Sequence[MoldSpec],
        certifications: Sequence[Set[str]],
    ) -> Vocabulary:
        """The union of every resin and certification named by the inputs."""
        resins = sorted(
            {r for m in machines for r in m.resins}
            | {m.resin for m in molds if m.resin is not None}
        )
        certs = sorted(
            {c for m in machines for c in m.certifications} | {c for s in certifications for c in s}
        )
        return cls(
            resins={r: i for i, r in enumerate(resins)},
            certifications={c: i for i, c in enumerate(certs)},
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class MachineArrays(_Takeable):
    """Machine fields as columns (NaN where a field does not apply)."""

    process: NDArray[np.int8]
    clamp_kN: F64
    tie_h_mm: F64
    tie_v_mm: F64
    min_h_mm: F64
    max_h_mm: F64
    shot_cap_g: F64
    ring_mm: F64
    max_weight_kg: F64
    tonnage_kN: F64
    bed_w_mm: F64
    bed_d_mm: F64
    axes: F64
    env_x_mm: F64
    env_y_mm: F64
    env_z_mm: F64
    resins: Bool  # (M, n_resins)
    certs: Bool  # (M, n_certs)


@dataclass(frozen=True, slots=True, kw_only=True)
class DemandArrays(_Takeable):
    """One row per demand (a job's mold + the job's required certifications)."""

    process: NDArray[np.int8]
    width_mm: F64
    height_mm: F64
    thickness_mm: F64
    weight_kg: F64
    req_kN: F64
    shot_g: F64
    ring_mm: F64
    resin: NDArray[np.intp]  # vocabulary index, -1 = none
    req_axes: F64  # 0 = not checked
    certs: Bool  # (J, n_certs) required


def machine_arrays(machines: Sequence[MachineSpec], vocab: Vocabulary) -> MachineArrays:
    """Column arrays of ``machines`` (one Python pass, then numpy)."""
    n = len(machines)
    resins = np.zeros((n, len(vocab.resins)), dtype=np.bool_)
    certs = np.zeros((n, len(vocab.certifications)), dtype=np.bool_)
    for i, m in enumerate(machines):
        for r in m.resins:
            resins[i, vocab.resins[r]] = True
        for c in m.certifications:
            certs[i, vocab.certifications[c]] = True

    def col(name: str, missing: float = np.nan) -> F64:
        return np.array([_f(getattr(m, name), missing) for m in machines], dtype=np.float64)

    return MachineArrays(
        process=np.array([_PROC_CODE[m.process] for m in machines], dtype=np.int8),
        clamp_kN=col("clamp_force_kN"),
        tie_h_mm=col("tie_bar_h_mm"),
        tie_v_mm=col("tie_bar_v_mm"),
        min_h_mm=col("min_mold_height_mm"),
        max_h_mm=col("max_mold_height_mm"),
        shot_cap_g=col("shot_capacity_g"),
        ring_mm=col("locating_ring_mm"),
        max_weight_kg=col("max_mold_weight_kg", np.inf),
        tonnage_kN=col("tonnage_kN"),
        bed_w_mm=col("bed_width_mm"),
        bed_d_mm=col("bed_depth_mm"),
        axes=col("axes"),
        env_x_mm=col("envelope_x_mm"),
        env_y_mm=col("envelope_y_mm"),
        env_z_mm=col("envelope_z_mm"),
        resins=resins,
        certs=certs,
    )


def demand_arrays(
    molds: Sequence[MoldSpec], certifications: Sequence[Set[str]], vocab: Vocabulary
) -> DemandArrays:
    """Column arrays of demands: row ``i`` is ``molds[i]`` with ``certifications[i]``."""
    n = len(molds)
    certs = np.zeros((n, len(vocab.certifications)), dtype=np.bool_)
    for i, cs in enumerate(certifications):
        for c in cs:
            certs[i, vocab.certifications[c]] = True

    def col(name: str, missing: float = np.nan) -> F64:
        return np.array([_f(getattr(m, name), missing) for m in molds], dtype=np.float64)

    return DemandArrays(
        process=np.array([_PROC_CODE[m.process] for m in molds], dtype=np.int8),
        width_mm=col("width_mm"),
        height_mm=col("height_mm"),
        thickness_mm=col("thickness_mm"),
        weight_kg=col("weight_kg"),
        req_kN=col("required_clamp_force_kN"),
        shot_g=col("shot_weight_g"),
        ring_mm=col("locating_ring_mm"),
        resin=np.array(
            [-1 if m.resin is None else vocab.resins[m.resin] for m in molds], dtype=np.intp
        ),
        req_axes=col("required_axes", 0.0),
        certs=certs,
    )


def _le(a: F64, b: F64) -> Bool:
    """``a <= b × (1 + REL_TOL)``, elementwise with broadcasting (as the scalar rules)."""
    out: Bool = a <= b * (1.0 + REL_TOL)
    return out


def _fits(w: F64, h: F64, a: F64, b: F64, rotate: bool) -> Bool:
    """Pairwise ``(w <= a & h <= b) | (rotate & h <= a & w <= b)``; rows × columns."""
    wc, hc, ar, br = w[:, None], h[:, None], a[None, :], b[None, :]
    ok: Bool = _le(wc, ar) & _le(hc, br)
    if rotate:
        ok |= _le(hc, ar) & _le(wc, br)
    return ok


def _block_failures(
    proc: int, d: DemandArrays, m: MachineArrays, rules: CompatRules
) -> list[tuple[RuleCode, Bool]]:
    """Failure masks of the process-specific rules for same-process demands × machines."""
    out: list[tuple[RuleCode, Bool]] = []
    needed = (d.req_kN * (1.0 + rules.clamp_margin))[:, None]
    rot = rules.allow_mold_rotation
    if proc == _IMM:
        out.append(("clamp_force", ~_le(needed, m.clamp_kN[None, :])))
        out.append(("tie_bar", ~_fits(d.width_mm, d.height_mm, m.tie_h_mm, m.tie_v_mm, rot)))
        lo = (m.shot_cap_g * rules.shot_min_fraction)[None, :]
        hi = (m.shot_cap_g * rules.shot_max_fraction)[None, :]
        shot = d.shot_g[:, None]
        out.append(("shot_weight", ~(_le(lo, shot) & _le(shot, hi))))
        mr, cr = d.ring_mm[:, None], m.ring_mm[None, :]
        ring_ok = np.abs(mr - cr) <= rules.locating_ring_tolerance_mm
        if rules.allow_locating_ring_adapter:
            ring_ok |= mr < cr
        out.append(("locating_ring", ~ring_ok))
        if m.resins.shape[1] == 0:
            resin_ok = np.zeros((len(d.resin), len(m.process)), dtype=np.bool_)
        else:
            resin_ok = m.resins[:, np.maximum(d.resin, 0)].T & (d.resin >= 0)[:, None]
        out.append(("resin", ~resin_ok))
    if proc in (_IMM, _PRESS):
        t = d.thickness_mm[:, None]
        out.append(("mold_height", ~(_le(m.min_h_mm[None, :], t) & _le(t, m.max_h_mm[None, :]))))
        out.append(("mold_weight", ~_le(d.weight_kg[:, None], m.max_weight_kg[None, :])))
    if proc == _PRESS:
        out.append(("tonnage", ~_le(needed, m.tonnage_kN[None, :])))
        out.append(("bed", ~_fits(d.width_mm, d.height_mm, m.bed_w_mm, m.bed_d_mm, rot)))
    if proc == _MACH:
        out.append(("axes", ~_le(d.req_axes[:, None], m.axes[None, :])))
        env_ok = _fits(d.width_mm, d.height_mm, m.env_x_mm, m.env_y_mm, rot) & _le(
            d.thickness_mm[:, None], m.env_z_mm[None, :]
        )
        out.append(("envelope", ~env_ok))
    return out


def _cert_failures(d: DemandArrays, m: MachineArrays) -> Bool:
    """True where a required certification is missing on the machine."""
    if d.certs.shape[1] == 0:
        return np.zeros((len(d.process), len(m.process)), dtype=np.bool_)
    missing = d.certs.astype(np.float32) @ (~m.certs).astype(np.float32).T
    out: Bool = missing > 0.5
    return out


def compatible_matrix(d: DemandArrays, m: MachineArrays, rules: CompatRules) -> Bool:
    """``ok[i, k]``: demand ``i`` passes every rule on machine ``k`` (shape J × M)."""
    ok = ~_cert_failures(d, m)
    same = np.zeros_like(ok)
    for proc in range(len(PROCESSES)):
        rows = np.flatnonzero(d.process == proc)
        cols = np.flatnonzero(m.process == proc)
        if len(rows) == 0 or len(cols) == 0:
            continue
        block = np.ones((len(rows), len(cols)), dtype=np.bool_)
        for _, fail in _block_failures(proc, d.take(rows), m.take(cols), rules):
            block &= ~fail
        same[np.ix_(rows, cols)] = block
    ok &= same
    return ok


def rule_failure_masks(
    d: DemandArrays, m: MachineArrays, rules: CompatRules
) -> dict[RuleCode, Bool]:
    """Per rule, ``fail[i, k]`` for every demand × machine, as :func:`check_compat` reports.

    On a process mismatch only ``process`` and ``certifications`` can fail (like the
    scalar function). Meant for small row counts (explanations, tests): it materialises
    one J × M mask per rule.
    """
    shape = (len(d.process), len(m.process))
    out: dict[RuleCode, Bool] = {c: np.zeros(shape, dtype=np.bool_) for c in RULE_CODES}
    out["process"] = d.process[:, None] != m.process[None, :]
    out["certifications"] = _cert_failures(d, m)
    for proc in range(len(PROCESSES)):
        rows = np.flatnonzero(d.process == proc)
        cols = np.flatnonzero(m.process == proc)
        if len(rows) == 0 or len(cols) == 0:
            continue
        for code, fail in _block_failures(proc, d.take(rows), m.take(cols), rules):
            out[code][np.ix_(rows, cols)] = fail
    return out
