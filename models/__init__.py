"""Anomaly models for Renkei: training on normal data only, ONNX export and manifests.

- :mod:`renkei.models.t2`: PCA Hotelling T² + SPE score (scikit-learn → ONNX);
- :mod:`renkei.models.train`: ``fit_t2`` (fit + threshold from normal hold-out) and ``export``;
- :mod:`renkei.core.manifest`: the manifest schema the gateway verifies
(:mod:`renkei.edge.model.inference`);
- :mod:`renkei.models.profiles`: the training recipes (``PROFILES``) run by :func:`train_profile`
  and re-scored by :func:`evaluate_profile`; ``kind="recipe"`` profiles bring their own
  model family: :mod:`renkei.models.mahalanobis` (SKAB, CWRU), a one-sided z graph (NAB, scored
  by :mod:`renkei.models.nab_scoring`), :mod:`renkei.models.rul` + :mod:`renkei.models.trees`
  (C-MAPSS, mold maintenance); :mod:`renkei.models.artifact` writes their artifacts. Results:
  ``models/RESULTS.md``.

Only the manifest and the profile registry are imported eagerly; training dependencies
(scikit-learn, skl2onnx, onnx) load when a model is trained.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Final

from renkei.core.manifest import ModelManifest
from renkei.models.profiles import PROFILES, Profile

__all__ = [
    "DEFAULT_ARTIFACTS_DIR",
    "PROFILES",
    "Profile",
    "default_data_dir",
    "evaluate_profile",
    "train_profile",
]

#: Where the trained models of the repository live (``models/artifacts/<name>/``).
DEFAULT_ARTIFACTS_DIR: Final = Path(__file__).resolve().parent / "artifacts"


def default_data_dir() -> Path:
    """The datasets folder: ``renkei.edge.sources.datasets.find_data_dir()`` (env
    ``RENKEI_DATA_DIR`` or ``shared/datasets`` beside an ancestor of the repository).

    Raises:
        FileNotFoundError: no datasets folder found; the message names ``RENKEI_DATA_DIR``.
    """
    from renkei.edge.sources.datasets import find_data_dir, missing_data_dir_message

    found = find_data_dir()
    if found is None:
        raise FileNotFoundError(missing_data_dir_message())
    return found


def train_profile(name: str, *, data_dir: Path, out_dir: Path) -> ModelManifest:
    """Train profile ``name`` and write it to ``out_dir / name`` (ONNX, manifest, card).

    Args:
        name: a key of :data:`PROFILES`.
        data_dir: the datasets folder (see :func:`default_data_dir`).
        out_dir: artifacts folder; the model goes to ``out_dir / name``.

    Returns:
        The written manifest (its ``metrics`` hold the evaluation numbers and
        ``train_seconds``).

    Raises:
        KeyError: unknown profile (the message lists the known ones).
        FileNotFoundError: a data file of the profile is missing (the path is named).
        ValueError: the data violate the profile's assumptions (e.g. a label in the part
            declared normal).
    """
    if name not in PROFILES:
        raise KeyError(f"unknown model profile {name!r}; known: {sorted(PROFILES)}")
    profile = PROFILES[name]
    if profile.kind == "recipe":
        return profile.train(Path(data_dir), Path(out_dir) / name)
    from renkei.models.profiles._common import evaluate
    from renkei.models.train import export, fit_t2

    started = time.perf_counter()
    data = profile.build(Path(data_dir))
    model = fit_t2(
        data.x_fit,
        data.names,
        units=data.units,
        descriptions=data.descriptions,
        holdout=data.x_holdout,
    )
    metrics = evaluate(model, data.eval_sets)
    metrics["train_seconds"] = round(time.perf_counter() - started, 2)
    return export(
        model,
        Path(out_dir) / name,
        name=profile.name,
        version=profile.version,
        data_source=data.data_source,
        fitted_on=data.fitted_on,
        feature_kind=data.feature_kind,
        window_s=data.window_s,
        metrics=metrics,
        notes=data.notes,
    )


def evaluate_profile(name: str, *, data_dir: Path, model_dir: Path) -> dict[str, float]:
    """Re-compute the evaluation numbers of the trained model in ``model_dir``.

    The model is loaded as the gateway loads it (:class:`renkei.edge.model.inference.AnomalyModel`,
    hash-checked; recipe profiles may read further outputs of the same verified bytes)
    and scored on the profile's evaluation data; nothing is fitted.

    Raises:
        KeyError: unknown profile.
        FileNotFoundError: data or model files missing.
        renkei.edge.model.inference.ModelError: the artifact does not load.
    """
    if name not in PROFILES:
        raise KeyError(f"unknown model profile {name!r}; known: {sorted(PROFILES)}")
    profile = PROFILES[name]
    if profile.kind == "recipe":
        return profile.evaluate(Path(data_dir), Path(model_dir))
    from renkei.edge.model.inference import AnomalyModel
    from renkei.models.profiles._common import evaluate

    model = AnomalyModel.load(model_dir=Path(model_dir))
    data = profile.build(Path(data_dir))
    return evaluate(model, data.eval_sets)
