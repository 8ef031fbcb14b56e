"""Training profiles: which gateway features from which data, and how they are fitted.

Two kinds of profile:

- ``kind="t2"``: the module has ``build(data_dir: Path) -> ProfileData``; the model is the
  PCA T²+Q of :mod:`renkei.models.train`, fitted on normal data only;
- ``kind="recipe"``: the module has ``train(data_dir: Path, out_dir: Path) ->
  ModelManifest`` (fit, threshold, export, evaluate; writes ``out_dir``) and
  ``evaluate(data_dir: Path, model_dir: Path) -> dict[str, float]`` (re-computes the
  evaluation numbers with the exported artifact, loaded as the gateway loads it).

For ``t2`` profiles: Feature extraction is
never re-implemented here: the profiles replay the data through the gateway's own sources
(:mod:`renkei.edge.sources`) and feature extractors (:mod:`renkei.edge.features`), see
:mod:`renkei.models.profiles._features`.

The registry imports profile modules lazily, so ``import models`` stays light (gateways
import :mod:`renkei.core.manifest` without scikit-learn or scipy).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Final, Literal

if TYPE_CHECKING:
    from renkei.core.manifest import ModelManifest
    from renkei.models.profiles._common import ProfileData

__all__ = ["PROFILES", "Profile"]


@dataclass(frozen=True, slots=True)
class Profile:
    """A named training recipe.

    Attributes:
        name: model name (directory name under the artifacts folder).
        version: semantic version written to the manifest.
        summary: one line for CLI listings.
        module: module holding ``build(data_dir) -> ProfileData`` (``t2``) or ``train`` and
            ``evaluate`` (``recipe``).
        data_paths: data files it reads, relative to the data directory (for messages).
        kind: ``"t2"`` or ``"recipe"`` (see the module docstring).
    """

    name: str
    version: str
    summary: str
    module: str
    data_paths: tuple[str, ...]
    kind: Literal["t2", "recipe"] = "t2"

    @property
    def build(self) -> Callable[[Path], ProfileData]:
        """The profile's ``build`` function (imports its module)."""
        builder: Callable[[Path], ProfileData] = importlib.import_module(self.module).build
        return builder

    @property
    def train(self) -> Callable[[Path, Path], ModelManifest]:
        """A ``recipe`` profile's ``train(data_dir, out_dir)`` (imports its module)."""
        fn: Callable[[Path, Path], ModelManifest] = importlib.import_module(self.module).train
        return fn

    @property
    def evaluate(self) -> Callable[[Path, Path], dict[str, float]]:
        """A ``recipe`` profile's ``evaluate(data_dir, model_dir)`` (imports its module)."""
        fn: Callable[[Path, Path], dict[str, float]] = importlib.import_module(self.module).evaluate
        return fn


PROFILES: Final[Mapping[str, Profile]] = MappingProxyType(
    {
        p.name: p
        for p in (
            Profile(
                name="skab-pump-t2",
                version="1.0.0",
                summary="SKAB pump test bed: 10 s window stats of 8 signals (valve1 normal part)",
                module="renkei.models.profiles.skab",
                data_paths=("skab/data/valve1/*.csv", "skab/data/anomaly-free/anomaly-free.csv"),
            ),
            Profile(
                name="nab-temp-t2",
                version="1.0.0",
                summary="NAB machine temperature: 1 h window stats, NAB probationary 15 %",
                module="renkei.models.profiles.nab",
                data_paths=("nab/data/realKnownCause/machine_temperature_system_failure.csv",),
            ),
            Profile(
                name="kassel-shot-t2",
                version="1.0.1",
                summary="Kassel CPC injection molding: per-shot machine actuals, reference runs",
                module="renkei.models.profiles.kassel",
                data_paths=("molding/kassel_cpc_lower_workpiece/static_data.csv",),
            ),
            Profile(
                name="cell-t2",
                version="1.0.0",
                summary="Simulated molding cell: 1 s slow + pump vibration window features (fleet)",
                module="renkei.models.profiles.cell",
                data_paths=(),
            ),
            Profile(
                name="skab-pump-mahal",
                version="1.0.0",
                summary="SKAB valve1: per-run baseline z, 10-row means, Mahalanobis (1 Hz rows)",
                module="renkei.models.profiles.skab_z",
                data_paths=("skab/data/valve1/*.csv",),
                kind="recipe",
            ),
            Profile(
                name="nab-temp-stream",
                version="1.0.0",
                summary="NAB machine temperature: one-sided z of the 24 h trailing mean",
                module="renkei.models.profiles.nab_stream",
                data_paths=("nab/data/realKnownCause/machine_temperature_system_failure.csv",),
                kind="recipe",
            ),
            Profile(
                name="nab-stream-generic",
                version="1.0.0",
                summary="NAB whole corpus: streaming transition-novelty detector, one config",
                module="renkei.models.profiles.nab_generic",
                data_paths=("nab/data/*/*.csv", "nab/labels/combined_windows.json"),
                kind="recipe",
            ),
            Profile(
                name="cwru-bearing-mahal",
                version="1.0.0",
                summary="CWRU drive-end bearing: envelope/spectral window features, 12 kHz",
                module="renkei.models.profiles.cwru",
                data_paths=("bearing/cwru/*.mat",),
                kind="recipe",
            ),
            Profile(
                name="cmapss-fd001-rul",
                version="1.1.0",
                summary="C-MAPSS FD001 turbofan RUL: history features, boosted trees + quantiles",
                module="renkei.models.profiles.cmapss",
                data_paths=("cmapss/train_FD001.txt", "cmapss/test_FD001.txt"),
                kind="recipe",
            ),
            Profile(
                name="mold-maint-rul",
                version="1.0.0",
                summary="Simulated cell: shots to mold maintenance from counter + drift",
                module="renkei.models.profiles.mold",
                data_paths=(),
                kind="recipe",
            ),
        )
    }
)
