"""Training profiles: which gateway features from which data, and how they are fitted.

Two kinds of profile:

- ``kind="t2"``: the module has ``build(data_dir: Path) -> ProfileData``; the model is the
  PCA T²+Q of :mod:`renkei.models.train`, fitted on normal data only;
- ``kind="recipe"``: the module has ``train(data_dir: Path, out_dir: Path) ->
  ModelManifest`` (fit, threshold, export, evaluate; writes ``out_dir``) and
  ``evaluate(data_dir: Path, model_dir: Path) -> dict[str, float]`` (re-computes the
  evaluation numbers with the exported artifact, loaded as the gateway loads it);
  optionally ``report(data_dir, model_dir) -> renkei.models.reporting.ReportData``
  (:attr:`Profile.report`, ``renkei models report NAME``) and ``gateway_rows(data_dir, n) ->
  list[dict[str, float]]`` (real rows as the gateway pipeline pushes them to the model,
  used by ``bench/bench_inference.py``).

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

from renkei.core.errors import RenkeiError

if TYPE_CHECKING:
    from renkei.core.manifest import ModelManifest
    from renkei.models.profiles._common import ProfileData
    from renkei.models.reporting import ReportData

__all__ = ["PROFILES", "NoReportError", "Profile"]


class NoReportError(RenkeiError, LookupError):
    """A profile whose module defines no ``report(data_dir, model_dir)`` function."""


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

    @property
    def report(self) -> Callable[[Path, Path], ReportData]:
        """The module's ``report(data_dir, model_dir) -> ReportData`` (imports its module;
        see :mod:`renkei.models.reporting`).

        Raises:
            NoReportError: the module defines none (the message names profile and module).
        """
        fn: Callable[[Path, Path], ReportData] | None = getattr(
            importlib.import_module(self.module), "report", None
        )
        if fn is None:
            raise NoReportError(
                f"profile {self.name!r} has no report: its module {self.module} defines no "
                "report(data_dir, model_dir) -> renkei.models.reporting.ReportData"
            )
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
                version="2.0.0",
                summary="Kassel CPC molding: per-shot actuals, cross-conformal threshold, drift",
                module="renkei.models.profiles.kassel",
                data_paths=("molding/kassel_cpc_lower_workpiece/static_data.csv",),
                kind="recipe",
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
                version="2.0.0",
                summary="SKAB valve1+valve2: per-run baseline z (2 % sd floor), Mahalanobis",
                module="renkei.models.profiles.skab_z",
                data_paths=(
                    "skab/data/valve1/*.csv",
                    "skab/data/valve2/*.csv",
                    "skab/data/anomaly-free/anomaly-free.csv",
                ),
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
                version="3.0.0",
                summary="NAB whole corpus: streaming CAD OSE (indexed), one config",
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
                version="3.0.0",
                summary="C-MAPSS FD001 RUL: regime-normalised history, boosted trees + band",
                module="renkei.models.profiles.cmapss",
                data_paths=("cmapss/train_FD001.txt", "cmapss/test_FD001.txt"),
                kind="recipe",
            ),
            Profile(
                name="cmapss-fd002-rul",
                version="2.0.0",
                summary="C-MAPSS FD002 (6 regimes) RUL: same recipe as cmapss-fd001-rul 3.0.0",
                module="renkei.models.profiles.cmapss_fd002",
                data_paths=("cmapss/train_FD002.txt", "cmapss/test_FD002.txt"),
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
