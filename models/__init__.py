"""Anomaly models for Renkei: training on normal data only, ONNX export and manifests.

- :mod:`models.t2`: PCA Hotelling T² + SPE score (scikit-learn → ONNX);
- :mod:`models.train`: ``fit_t2`` (fit + threshold from normal hold-out) and ``export``;
- :mod:`models.manifest`: the manifest schema the gateway verifies (:mod:`edge.inference`);
- :mod:`models.profiles`: the training recipes (``PROFILES``) run by :func:`train_profile`.

Only the manifest and the profile registry are imported eagerly; training dependencies
(scikit-learn, skl2onnx, onnx) load when a model is trained.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Final

from models.manifest import ModelManifest
from models.profiles import PROFILES, Profile

__all__ = ["DEFAULT_ARTIFACTS_DIR", "PROFILES", "Profile", "default_data_dir", "train_profile"]

#: Where the trained models of the repository live (``models/artifacts/<name>/``).
DEFAULT_ARTIFACTS_DIR: Final = Path(__file__).resolve().parent / "artifacts"
_FALLBACK_DATA_DIR: Final = Path("/work/shared/datasets")


def default_data_dir() -> Path:
    """The datasets folder: ``edge.sources.datasets.find_data_dir()`` (env
    ``RENKEI_DATA_DIR`` or ``shared/datasets`` beside an ancestor of the repository), else
    ``/work/shared/datasets``.
    """
    from edge.sources.datasets import find_data_dir

    return find_data_dir() or _FALLBACK_DATA_DIR


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
    from models.profiles._common import evaluate
    from models.train import export, fit_t2

    profile = PROFILES[name]
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
