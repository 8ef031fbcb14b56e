"""Gateway-side anomaly model: verified loading and scoring of an exported ONNX model.

A model directory (written by ``renkei.models.train.export``) holds ``manifest.json`` and the ONNX
file it names. :meth:`AnomalyModel.load`:

1. reads and validates the manifest (:class:`renkei.core.manifest.ModelManifest`);
2. reads the ONNX bytes ONCE, computes their SHA-256 and refuses the model
   (:class:`ModelIntegrityError`) if it differs from the manifest's ``sha256`` or from the
   ``expected_sha256`` pinned in the gateway configuration;
3. builds the onnxruntime session from those same bytes (no second read, so the file cannot
   be swapped between check and use), on the CPU with one intra-op and one inter-op thread;
4. checks that the graph's input and ``score`` output match the manifest.

The manifest hash only detects corruption or an inconsistent copy; protection against a
deliberately replaced model (manifest rewritten too) comes from ``expected_sha256``, which
lives in the gateway configuration, not beside the model. ``require_pin=True`` makes a
missing pin an error.

Only numpy, onnxruntime and pydantic are needed (no scikit-learn on gateways).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Final

import numpy as np
import onnxruntime as ort
import onnxruntime.capi.onnxruntime_pybind11_state as _ort_state
from numpy.typing import ArrayLike, NDArray
from pydantic import ValidationError

from renkei.core.errors import ModelError
from renkei.core.manifest import MANIFEST_FILE, ModelManifest

__all__ = [
    "AnomalyModel",
    "ModelError",
    "ModelInputError",
    "ModelIntegrityError",
    "ModelRunError",
]

_SHA256_RE: Final = re.compile(r"^[0-9a-f]{64}$")

_ORT_ERRORS: Final[tuple[type[Exception], ...]] = (
    _ort_state.Fail,
    _ort_state.InvalidArgument,
    _ort_state.InvalidGraph,
    _ort_state.InvalidProtobuf,
    _ort_state.NoSuchFile,
    _ort_state.NoModel,
    _ort_state.NotImplemented,
    _ort_state.RuntimeException,
    _ort_state.EngineError,
    _ort_state.EPFail,
    RuntimeError,
    ValueError,
)
"""What onnxruntime raises when it cannot build or run a session: the status classes of its
C++ core (``onnxruntime.capi.onnxruntime_pybind11_state``, each a direct subclass of
``Exception``; those present since onnxruntime 1.18: a protobuf that does not parse is
``InvalidProtobuf``, an empty one or a wrong input dtype/shape ``InvalidArgument``...),
plus the builtins of its Python layer (``ValueError``: an input missing from the feed) and
of pybind11's translation of other C++ exceptions (``RuntimeError``).
:class:`AnomalyModel` maps them to :class:`ModelError` / :class:`ModelRunError`."""


class ModelIntegrityError(ModelError):
    """The ONNX bytes do not match the manifest's or the configured SHA-256; model refused."""


class ModelInputError(ModelError, ValueError):
    """Feature rows do not fit the model (width, missing feature name, non-finite values)."""


class ModelRunError(ModelError):
    """onnxruntime failed while running a loaded model (its error chained as ``__cause__``)."""


class AnomalyModel:
    """A verified ONNX anomaly model ready to score feature rows.

    Create with :meth:`load`; the constructor is not public API.

    Attributes:
        manifest: the validated manifest.
        name, version: from the manifest.
        input_names: feature names in column order (tuple of F names).
        threshold: alarm when ``score > threshold``.
        sha256: verified SHA-256 of the ONNX bytes.
    """

    __slots__ = ("_input_name", "_session", "input_names", "manifest", "sha256", "threshold")

    def __init__(
        self, *, manifest: ModelManifest, session: ort.InferenceSession, sha256: str
    ) -> None:
        self.manifest = manifest
        self.sha256 = sha256
        self.threshold = float(manifest.threshold)
        self.input_names: tuple[str, ...] = manifest.input_names
        self._session = session
        self._input_name = manifest.input_name

    @property
    def name(self) -> str:
        """Model name from the manifest."""
        return self.manifest.name

    @property
    def version(self) -> str:
        """Model version (semver) from the manifest."""
        return self.manifest.version

    @classmethod
    def load(
        cls,
        *,
        model_dir: Path,
        expected_sha256: str | None = None,
        require_pin: bool = False,
    ) -> AnomalyModel:
        """Load and verify the model in ``model_dir``.

        Args:
            model_dir: directory with ``manifest.json`` and the ONNX file it names.
            expected_sha256: SHA-256 (hex) pinned in the gateway configuration; the model is
                refused unless its bytes hash to it.
            require_pin: refuse to load when ``expected_sha256`` is None.

        Raises:
            ModelIntegrityError: hash differs from the manifest or from ``expected_sha256``,
                or no pin was given with ``require_pin``.
            ModelError: missing directory/manifest/ONNX file, invalid manifest, malformed
                ``expected_sha256``, a graph whose input/outputs differ from the manifest, or
                ONNX bytes onnxruntime cannot load (its error chained as ``__cause__``).
        """
        model_dir = Path(model_dir)
        if expected_sha256 is not None:
            pin = expected_sha256.strip().lower()
            if not _SHA256_RE.match(pin):
                raise ModelError(f"expected_sha256 {expected_sha256!r} is not 64 hex digits")
        elif require_pin:
            raise ModelIntegrityError(
                f"no expected_sha256 configured for {model_dir}, and require_pin is set"
            )
        else:
            pin = None

        manifest_path = model_dir / MANIFEST_FILE
        try:
            manifest = ModelManifest.model_validate_json(manifest_path.read_bytes())
        except FileNotFoundError as exc:
            raise ModelError(f"no model manifest at {manifest_path}") from exc
        except ValidationError as exc:
            raise ModelError(f"invalid model manifest {manifest_path}: {exc}") from exc

        onnx_path = model_dir / manifest.onnx_file
        try:
            onnx_bytes = onnx_path.read_bytes()
        except FileNotFoundError as exc:
            raise ModelError(
                f"model file {onnx_path} named in {manifest_path} does not exist"
            ) from exc
        digest = hashlib.sha256(onnx_bytes).hexdigest()
        if digest != manifest.sha256:
            raise ModelIntegrityError(
                f"refusing model {manifest.name} {manifest.version}: sha256 of {onnx_path} is "
                f"{digest}, manifest says {manifest.sha256}"
            )
        if pin is not None and digest != pin:
            raise ModelIntegrityError(
                f"refusing model {manifest.name} {manifest.version}: sha256 of {onnx_path} is "
                f"{digest}, gateway configuration pins {pin}"
            )

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        try:
            session = ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])
        except _ORT_ERRORS as exc:
            raise ModelError(f"onnxruntime cannot load {onnx_path}: {exc}") from exc
        _check_graph(session, manifest, onnx_path)
        return cls(manifest=manifest, session=session, sha256=digest)

    def score(self, rows: ArrayLike) -> NDArray[np.float64]:
        """Anomaly scores of feature rows.

        Args:
            rows: (N, F) or a single row (F,), columns in :attr:`input_names` order, in the
                units of the manifest.

        Returns:
            (N,) float64 scores; a single row gives shape (1,).

        Raises:
            ModelInputError: non-numeric rows, wrong width or rank, or NaN/inf values (the
                offending feature is named).
            ModelRunError: onnxruntime failed (its error chained).
        """
        x = self._check_rows(rows)
        (out,) = self._run(["score"], x)
        return np.asarray(out, dtype=np.float64)

    def _run(self, names: list[str], x: NDArray[np.float32]) -> list[object]:
        """``session.run`` of outputs ``names`` on rows ``x``, onnxruntime's errors mapped.

        Raises:
            ModelRunError: onnxruntime failed (its error chained as ``__cause__``).
        """
        try:
            values: list[object] = self._session.run(names, {self._input_name: x})
        except _ORT_ERRORS as exc:
            raise ModelRunError(f"model {self.name}: onnxruntime failed: {exc}") from exc
        return values

    def _check_rows(self, rows: ArrayLike) -> NDArray[np.float32]:
        try:
            x = np.asarray(rows, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise ModelInputError(f"model {self.name}: rows are not numeric: {exc}") from exc
        if x.ndim == 1:
            x = x.reshape(1, -1)
        if x.ndim != 2 or x.shape[1] != len(self.input_names):
            raise ModelInputError(
                f"model {self.name} expects rows of {len(self.input_names)} features "
                f"{list(self.input_names)}, got array of shape {np.shape(rows)}"
            )
        if not np.isfinite(x).all():
            bad = [self.input_names[i] for i in np.flatnonzero(~np.isfinite(x).all(axis=0))]
            raise ModelInputError(f"model {self.name}: non-finite values in features {bad}")
        return x

    def run_outputs(self, rows: ArrayLike) -> dict[str, NDArray[np.float64]]:
        """Every output the manifest lists, for feature rows (e.g. ``rul``, ``rul_lo``,
        ``rul_hi`` and ``score`` of a ``task == "rul"`` model, in the units of the manifest's
        ``outputs``).

        Args:
            rows: (N, F) or a single row (F,), as for :meth:`score`.

        Returns:
            output name -> (N,) float64 values.

        Raises:
            ModelInputError: as :meth:`score`.
            ModelError: the graph lacks an output the manifest lists.
            ModelRunError: onnxruntime failed (its error chained).
        """
        x = self._check_rows(rows)
        names = [o.name for o in self.manifest.outputs]
        graph = {o.name for o in self._session.get_outputs()}
        missing = [n for n in names if n not in graph]
        if missing:
            raise ModelError(f"model {self.name}: graph has no outputs {missing}")
        values = self._run(names, x)
        return {n: np.asarray(v, dtype=np.float64).reshape(-1) for n, v in zip(names, values)}

    def row_from_features(self, features: Mapping[str, float]) -> NDArray[np.float32]:
        """Build one (1, F) input row from a feature-name → value mapping.

        Extra features are ignored; order follows :attr:`input_names`.

        Raises:
            ModelInputError: a feature the model needs is missing (all missing names listed).
        """
        missing = [name for name in self.input_names if name not in features]
        if missing:
            raise ModelInputError(f"model {self.name} needs features {missing}, which are missing")
        return np.array([[features[name] for name in self.input_names]], dtype=np.float32)

    def score_features(self, features: Mapping[str, float]) -> float:
        """Score one feature mapping (see :meth:`row_from_features`); returns the score.

        Raises:
            ModelInputError: missing or non-finite features.
        """
        return float(self.score(self.row_from_features(features))[0])

    def check_feature_names(self, names: list[str] | tuple[str, ...]) -> None:
        """Check that a feature producer emits every input the model needs.

        Raises:
            ModelInputError: naming the features the model needs that ``names`` lacks.
        """
        available = set(names)
        missing = [name for name in self.input_names if name not in available]
        if missing:
            raise ModelInputError(
                f"model {self.name} needs features {missing}, "
                "which the feature extraction does not emit"
            )

    def __repr__(self) -> str:
        return (
            f"AnomalyModel(name={self.name!r}, version={self.version!r}, "
            f"inputs={len(self.input_names)}, threshold={self.threshold:.6g}, "
            f"sha256={self.sha256[:12]}…)"
        )


def _check_graph(session: ort.InferenceSession, manifest: ModelManifest, onnx_path: Path) -> None:
    graph_inputs = session.get_inputs()
    if len(graph_inputs) != 1 or graph_inputs[0].name != manifest.input_name:
        raise ModelError(
            f"{onnx_path}: graph inputs {[i.name for i in graph_inputs]} do not match manifest "
            f"input_name {manifest.input_name!r}"
        )
    shape = graph_inputs[0].shape
    if len(shape) != 2 or (isinstance(shape[1], int) and shape[1] != len(manifest.inputs)):
        raise ModelError(
            f"{onnx_path}: graph input shape {shape} does not match "
            f"{len(manifest.inputs)} manifest inputs"
        )
    if graph_inputs[0].type != "tensor(float)":
        raise ModelError(
            f"{onnx_path}: graph input type {graph_inputs[0].type}, expected tensor(float)"
        )
    output_names = {o.name for o in session.get_outputs()}
    if "score" not in output_names:
        raise ModelError(
            f"{onnx_path}: graph has no 'score' output (outputs {sorted(output_names)})"
        )
