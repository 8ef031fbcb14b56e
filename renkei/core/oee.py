"""OEE as operators define it: availability × performance × quality, each with its basis.

Definitions (Nakajima, *Introduction to TPM*, 1988; ISO 22400-2:2014 "Key performance
indicators for manufacturing operations management", KPIs *availability*,
*effectiveness* and *quality ratio*, whose product is the OEE index):

- **availability** ``A = APT / PBT``: actual production time (the machine in its
  *running* state) over planned busy time (time in any known state: running, idle,
  setup, down);
- **performance** (ISO 22400 "effectiveness") ``P = (ideal cycle time × produced
  cycles) / APT``: the time the produced cycles would have taken at the ideal cycle time
  (PRT × PQ in ISO terms) over the time actually run; not clipped, so an ideal cycle time
  slower than the machine shows as ``P > 1``;
- **quality** ``Q = GQ / PQ``: good quantity over produced quantity (good + reject parts);
- **OEE** ``= A × P × Q`` (``= ideal cycle time × good shots / PBT`` when each shot makes
  one part).

Every component carries its **basis** -- where its inputs came from -- so a dashboard can
say which numbers are measured and which are a fallback:

- availability: ``run_state`` (a configured run-state signal of the source), ``status``
  (the machine's own status: EUROMAP 77 MachineMode, MTConnect Execution),
  ``proxy_data_arrival`` (time during which the source delivered data; the old proxy);
- performance: ``mold_registry`` (ideal cycle time of the mounted mold, registry),
  ``machine_nominal`` (the machine's own expected cycle time, EUROMAP 77
  ``ExpectedCycleTime``), ``unknown`` (no ideal cycle time: no performance, no OEE);
- quality: ``counts`` (good/reject counts reported by the machine), ``operator``
  (good/reject counts an operator recorded for an interval in the registry; they replace
  the machine's quality over that interval, :mod:`renkei.cloud.oee.operator`),
  ``proxy_anomaly_rate`` (1 - share of scored windows/shots flagged anomalous),
  ``unknown``.

On the wire and in InfluxDB the bases are numbers (:data:`BASIS_CODES`, measurement
``oee`` in :mod:`renkei.core.influx.contract`); :data:`BASIS_NAMES` maps them back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

__all__ = [
    "AVAILABILITY_BASES",
    "BASIS_CODES",
    "BASIS_NAMES",
    "PERFORMANCE_BASES",
    "QUALITY_BASES",
    "AvailabilityBasis",
    "Oee",
    "OeeTotals",
    "PerformanceBasis",
    "QualityBasis",
    "compute_oee",
]

AvailabilityBasis = Literal["run_state", "status", "proxy_data_arrival", "unknown"]
PerformanceBasis = Literal["mold_registry", "machine_nominal", "unknown"]
QualityBasis = Literal["counts", "operator", "proxy_anomaly_rate", "unknown"]

AVAILABILITY_BASES: Final[tuple[AvailabilityBasis, ...]] = (
    "run_state",
    "status",
    "proxy_data_arrival",
    "unknown",
)
PERFORMANCE_BASES: Final[tuple[PerformanceBasis, ...]] = (
    "mold_registry",
    "machine_nominal",
    "unknown",
)
QUALITY_BASES: Final[tuple[QualityBasis, ...]] = (
    "counts",
    "operator",
    "proxy_anomaly_rate",
    "unknown",
)

BASIS_CODES: Final[dict[str, int]] = {
    "unknown": 0,
    "run_state": 1,
    "status": 2,
    "proxy_data_arrival": 3,
    "mold_registry": 4,
    "machine_nominal": 5,
    "counts": 6,
    "proxy_anomaly_rate": 7,
    "operator": 8,
}
"""Basis name -> the number stored in the ``*_basis`` fields of ``oee`` points."""
BASIS_NAMES: Final[dict[int, str]] = {v: k for k, v in BASIS_CODES.items()}
"""Stored number -> basis name (the dashboards' value mapping)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class OeeTotals:
    """What OEE is computed from, summed over the period of interest.

    Attributes:
        planned_s: planned busy time (PBT), s: time in a known run state (or, with the
            ``proxy_data_arrival`` basis, the whole period), >= 0.
        run_s: actual production time (APT), s: time in the running state, <= planned_s.
        shots: produced machine cycles (shots) in the period, >= 0.
        ideal_cycle_time_s: ideal cycle time per shot, s (> 0), or None if unknown.
        good: good parts, or None if not reported.
        reject: rejected parts, or None if not reported.
        availability_basis, performance_basis, quality_basis: where the inputs came from.
    """

    planned_s: float
    run_s: float
    shots: float
    ideal_cycle_time_s: float | None = None
    good: float | None = None
    reject: float | None = None
    availability_basis: AvailabilityBasis = "run_state"
    performance_basis: PerformanceBasis = "mold_registry"
    quality_basis: QualityBasis = "counts"

    def __post_init__(self) -> None:
        if not (self.planned_s >= 0 and 0 <= self.run_s <= self.planned_s + 1e-9):
            raise ValueError(
                f"need 0 <= run_s <= planned_s, got run_s={self.run_s}, planned_s={self.planned_s}"
            )
        if self.shots < 0:
            raise ValueError(f"shots must be >= 0, got {self.shots}")
        if self.ideal_cycle_time_s is not None and not self.ideal_cycle_time_s > 0:
            raise ValueError(f"ideal_cycle_time_s must be > 0, got {self.ideal_cycle_time_s}")
        for name, v in (("good", self.good), ("reject", self.reject)):
            if v is not None and v < 0:
                raise ValueError(f"{name} must be >= 0, got {v}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Oee:
    """OEE and its components (ratios in [0, 1], performance may exceed 1), None = unknown."""

    availability: float | None
    performance: float | None
    quality: float | None
    oee: float | None
    availability_basis: AvailabilityBasis
    performance_basis: PerformanceBasis
    quality_basis: QualityBasis


def compute_oee(t: OeeTotals) -> Oee:
    """OEE = availability × performance × quality of ``t`` (module docstring for the terms).

    A component is None when its denominator is zero or its input is missing: no planned
    time → no availability; no run time or no ideal cycle time → no performance (and
    without an ideal cycle time its basis becomes ``unknown``); no parts counted → no
    quality (basis ``unknown`` when neither count was reported). OEE is None unless all
    three exist.
    """
    availability = t.run_s / t.planned_s if t.planned_s > 0 else None
    a_basis: AvailabilityBasis = t.availability_basis if t.planned_s > 0 else "unknown"
    p_basis: PerformanceBasis = t.performance_basis
    performance: float | None = None
    if t.ideal_cycle_time_s is None:
        p_basis = "unknown"
    elif t.run_s > 0:
        performance = t.ideal_cycle_time_s * t.shots / t.run_s
    q_basis: QualityBasis = t.quality_basis
    quality: float | None = None
    if t.good is None and t.reject is None:
        q_basis = "unknown"
    else:
        produced = (t.good or 0.0) + (t.reject or 0.0)
        quality = (t.good or 0.0) / produced if produced > 0 else None
    oee = None
    if availability is not None and performance is not None and quality is not None:
        oee = availability * performance * quality
    return Oee(
        availability=availability,
        performance=performance,
        quality=quality,
        oee=oee,
        availability_basis=a_basis,
        performance_basis=p_basis,
        quality_basis=q_basis,
    )
