"""Capability classes: the groups spare capacity is rolled up into before it is shared.

A class is a process plus a size band, written as a string id::

    injection_molding:1000-2000kN     clamp force 1000 kN <= F < 2000 kN
    injection_molding:16000kN+        clamp force >= 16000 kN
    press:500-1000kN                  press force (tonnage) 500 kN <= F < 1000 kN
    machining:5axis                   machining centre with 5 or more axes
    <other process>                   any other process name: one class, no band

Bands:

- ``injection_molding`` (clamp force) and ``press`` (tonnage), in kN, doubling:
  0–500, 500–1000, 1000–2000, 2000–4000, 4000–8000, 8000–16000, 16000+ (lower bound
  inclusive). 1 tonf = 9.80665 kN (:data:`KN_PER_TONF`), so the common Japanese sizes
  50 t / 100 t / 180 t / 350 t / 850 t fall into 0–500 / 500–1000 / 1000–2000 /
  2000–4000 / 8000–16000 kN.
- ``machining`` by simultaneous axes: ``3axis`` (3 or fewer), ``4axis``, ``5axis`` (5+).

Why doubling bands: a mold needs a machine with the required clamp force plus a 10–20 %
margin and fitting tie bars and daylight, which mostly means "a machine of about the same
size"; a factor-2 band keeps such machines together while keeping the number of classes
small, so each shared class usually aggregates several machines. That aggregation is also
a privacy feature: partners see the spare hours of a class, not one machine's utilisation
(DOMAIN.md: a parent company seeing a subcontractor's utilisation can use it to squeeze
prices). Exact matching of a mold to a machine is done by the registry, not here.

Process names follow ``renkei.cloud.registry.models.Process`` (``injection_molding``, ``press``,
``machining``); other names matching ``[a-z][a-z0-9_]{0,63}`` are accepted unbanded.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Final

__all__ = [
    "FORCE_BANDS_KN",
    "KN_PER_TONF",
    "CapabilityClass",
    "capability_class",
    "parse_capability_class",
]

#: Lower edges of the force bands (kN); the last band is open-ended.
FORCE_BANDS_KN: Final = (0.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0, 16000.0)
#: Kilonewtons per metric ton-force (machine sizes in Japan are quoted in tonf).
KN_PER_TONF: Final = 9.80665

_FORCE_PROCESSES: Final = frozenset({"injection_molding", "press"})
_PROCESS_RE: Final = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_BAND_RE: Final = re.compile(r"^(\d+)-(\d+)kN$|^(\d+)kN\+$")


@dataclass(frozen=True, slots=True)
class CapabilityClass:
    """One capability class (see the module docstring).

    Attributes:
        process: process name, e.g. ``injection_molding``.
        band: band label after the colon (``1000-2000kN``, ``16000kN+``, ``5axis``) or
            ``""`` for an unbanded process.
        min_kN, max_kN: force band in kN (``max_kN`` is ``inf`` for the top band);
            ``None`` for classes without a force band.
    """

    process: str
    band: str = ""
    min_kN: float | None = None
    max_kN: float | None = None

    @property
    def id(self) -> str:
        """The class id string, e.g. ``injection_molding:1000-2000kN``."""
        return f"{self.process}:{self.band}" if self.band else self.process

    def __str__(self) -> str:
        return self.id


def _force_band(force_kN: float) -> tuple[str, float, float]:
    lower = FORCE_BANDS_KN[0]
    for edge in FORCE_BANDS_KN:
        if force_kN >= edge:
            lower = edge
    i = FORCE_BANDS_KN.index(lower)
    if i + 1 < len(FORCE_BANDS_KN):
        upper = FORCE_BANDS_KN[i + 1]
        return f"{lower:.0f}-{upper:.0f}kN", lower, upper
    return f"{lower:.0f}kN+", lower, math.inf


def capability_class(
    process: str,
    *,
    clamp_force_kN: float | None = None,
    tonnage_kN: float | None = None,
    axes: int | None = None,
) -> CapabilityClass:
    """The capability class of a machine.

    Args:
        process: ``injection_molding``, ``press``, ``machining`` or another process name.
        clamp_force_kN: clamp force (kN); required for ``injection_molding``.
        tonnage_kN: press force (kN); required for ``press``.
        axes: number of axes; required for ``machining``.

    Raises:
        ValueError: invalid process name, or the size attribute the process needs is
            missing, not finite or not positive.
    """
    if not _PROCESS_RE.match(process):
        raise ValueError(f"process must match {_PROCESS_RE.pattern}, got {process!r}")
    if process in _FORCE_PROCESSES:
        force = clamp_force_kN if process == "injection_molding" else tonnage_kN
        name = "clamp_force_kN" if process == "injection_molding" else "tonnage_kN"
        if force is None or not math.isfinite(force) or force <= 0:
            raise ValueError(f"a {process} machine needs a positive finite {name}, got {force}")
        band, lo, hi = _force_band(float(force))
        return CapabilityClass(process, band, lo, hi)
    if process == "machining":
        if axes is None or axes < 1:
            raise ValueError(f"a machining machine needs axes >= 1, got {axes}")
        return CapabilityClass(process, f"{min(max(axes, 3), 5)}axis")
    return CapabilityClass(process)


def parse_capability_class(class_id: str) -> CapabilityClass:
    """Parse a class id produced by :func:`capability_class`.

    Raises:
        ValueError: not a valid class id.
    """
    process, _, band = class_id.partition(":")
    if not _PROCESS_RE.match(process):
        raise ValueError(f"invalid capability class {class_id!r}")
    if not band:
        if process in _FORCE_PROCESSES or process == "machining":
            raise ValueError(f"capability class {class_id!r} needs a band")
        return CapabilityClass(process)
    if process == "machining":
        if band not in ("3axis", "4axis", "5axis"):
            raise ValueError(f"invalid machining band in {class_id!r}")
        return CapabilityClass(process, band)
    match = _BAND_RE.match(band)
    if process not in _FORCE_PROCESSES or match is None:
        raise ValueError(f"invalid capability class {class_id!r}")
    lo = float(match.group(1) or match.group(3))
    expected = _force_band(lo)
    if expected[0] != band:
        raise ValueError(f"{class_id!r} is not one of the force bands {FORCE_BANDS_KN}")
    return CapabilityClass(process, band, expected[1], expected[2])
