"""Training profiles: which gateway features from which data, fitted on normal data only.

Each profile module has ``build(data_dir: Path) -> ProfileData``. Feature extraction is
never re-implemented here: the profiles replay the data through the gateway's own sources
(:mod:`edge.sources`) and feature extractors (:mod:`edge.features`), see
:mod:`models.profiles._features`.

The registry imports profile modules lazily, so ``import models`` stays light (gateways
import :mod:`models.manifest` without scikit-learn or scipy).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from models.profiles._common import ProfileData

__all__ = ["PROFILES", "Profile"]


@dataclass(frozen=True, slots=True)
class Profile:
    """A named training recipe.

    Attributes:
        name: model name (directory name under the artifacts folder).
        version: semantic version written to the manifest.
        summary: one line for CLI listings.
        module: module holding ``build(data_dir) -> ProfileData``.
        data_paths: data files it reads, relative to the data directory (for messages).
    """

    name: str
    version: str
    summary: str
    module: str
    data_paths: tuple[str, ...]

    @property
    def build(self) -> Callable[[Path], ProfileData]:
        """The profile's ``build`` function (imports its module)."""
        builder: Callable[[Path], ProfileData] = importlib.import_module(self.module).build
        return builder


PROFILES: Final[Mapping[str, Profile]] = MappingProxyType(
    {
        p.name: p
        for p in (
            Profile(
                name="skab-pump-t2",
                version="1.0.0",
                summary="SKAB pump test bed: 10 s window stats of 8 signals (valve1 normal part)",
                module="models.profiles.skab",
                data_paths=("skab/data/valve1/*.csv", "skab/data/anomaly-free/anomaly-free.csv"),
            ),
            Profile(
                name="nab-temp-t2",
                version="1.0.0",
                summary="NAB machine temperature: 1 h window stats, NAB probationary 15 %",
                module="models.profiles.nab",
                data_paths=("nab/data/realKnownCause/machine_temperature_system_failure.csv",),
            ),
            Profile(
                name="kassel-shot-t2",
                version="1.0.0",
                summary="Kassel CPC injection molding: per-shot machine actuals, reference runs",
                module="models.profiles.kassel",
                data_paths=("molding/kassel_cpc_lower_workpiece/static_data.csv",),
            ),
            Profile(
                name="cell-t2",
                version="1.0.0",
                summary="Simulated molding cell: 1 s slow + pump vibration window features (fleet)",
                module="models.profiles.cell",
                data_paths=(),
            ),
        )
    }
)
