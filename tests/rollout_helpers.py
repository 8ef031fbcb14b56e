"""Helpers for the model registry / rollout tests: model directories, ONNX graphs, signing."""

from __future__ import annotations

import base64
import hashlib
import shutil
from pathlib import Path
from typing import Any

import orjson

from renkei.core.manifest import MANIFEST_FILE, ModelManifest
from renkei.core.signing import ModelSignature, sign_model
from renkei.core.wire import DesiredModel

REPO = Path(__file__).resolve().parents[1]
SKAB_MODEL = REPO / "models" / "artifacts" / "skab-pump-t2"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def copy_model(
    src: Path,
    dst: Path,
    *,
    version: str | None = None,
    onnx: bytes | None = None,
    threshold: float | None = None,
) -> Path:
    """Copy model directory ``src`` to ``dst`` with another version, graph or threshold
    (the manifest's ``sha256`` follows the graph). Returns ``dst``."""
    manifest = orjson.loads((src / MANIFEST_FILE).read_bytes())
    graph = onnx if onnx is not None else (src / manifest["onnx_file"]).read_bytes()
    if version is not None:
        manifest["version"] = version
    if threshold is not None:
        manifest["threshold"] = threshold
    manifest["sha256"] = sha(graph)
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    (dst / manifest["onnx_file"]).write_bytes(graph)
    (dst / MANIFEST_FILE).write_bytes(ModelManifest.model_validate(manifest).to_json())
    return dst


def n_inputs(model_dir: Path) -> int:
    return len(orjson.loads((model_dir / MANIFEST_FILE).read_bytes())["inputs"])


def nan_onnx(n_features: int) -> bytes:
    """A valid anomaly graph whose ``score`` is NaN for every row: (s - s) / (s - s)."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", n_features])
    score = helper.make_tensor_value_info("score", TensorProto.FLOAT, ["N"])
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [1])
    nodes = [
        helper.make_node("ReduceSum", ["x", "axes"], ["s"], keepdims=0),
        helper.make_node("Sub", ["s", "s"], ["z"]),
        helper.make_node("Div", ["z", "z"], ["score"]),
    ]
    graph = helper.make_graph(nodes, "nan_score", [x], [score], initializer=[axes])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


def sqrt_neg_onnx(n_features: int, column: int = 0) -> bytes:
    """``score = sqrt(-x[:, column])``: finite while that feature is <= 0, NaN above."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", n_features])
    score = helper.make_tensor_value_info("score", TensorProto.FLOAT, ["N"])
    idx = helper.make_tensor("idx", TensorProto.INT64, [], [column])
    nodes = [
        helper.make_node("Gather", ["x", "idx"], ["c"], axis=1),
        helper.make_node("Neg", ["c"], ["n"]),
        helper.make_node("Sqrt", ["n"], ["score"]),
    ]
    graph = helper.make_graph(nodes, "sqrt_neg", [x], [score], initializer=[idx])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


def release_facts(model_dir: Path) -> tuple[str, str, str, str]:
    """``(name, version, sha256, manifest_sha256)`` of a model directory."""
    manifest_bytes = (model_dir / MANIFEST_FILE).read_bytes()
    m = ModelManifest.model_validate_json(manifest_bytes)
    return m.name, m.version, sha((model_dir / m.onnx_file).read_bytes()), sha(manifest_bytes)


def sign_dir(model_dir: Path, key: Any) -> ModelSignature:
    name, version, digest, manifest_digest = release_facts(model_dir)
    return sign_model(
        key, name=name, version=version, sha256=digest, manifest_sha256=manifest_digest
    )


def publish_body(model_dir: Path, key: Any | None) -> dict[str, Any]:
    """The ``POST /api/v1/models`` body for ``model_dir`` (unsigned if ``key`` is None)."""
    manifest = (model_dir / MANIFEST_FILE).read_bytes()
    onnx = (model_dir / ModelManifest.model_validate_json(manifest).onnx_file).read_bytes()
    body: dict[str, Any] = {
        "manifest_b64": base64.b64encode(manifest).decode(),
        "onnx_b64": base64.b64encode(onnx).decode(),
    }
    if key is not None:
        body["signature"] = sign_dir(model_dir, key).model_dump()
    return body


def desired_entry(model_dir: Path, key: Any | None, deployment: int) -> DesiredModel:
    """A desired-state entry for ``model_dir`` (unsigned if ``key`` is None)."""
    _, version, digest, manifest_digest = release_facts(model_dir)
    sig = sign_dir(model_dir, key) if key is not None else None
    return DesiredModel(
        version=version,
        sha256=digest,
        manifest_sha256=manifest_digest,
        key_id=sig.key_id if sig else "",
        signature=sig.signature if sig else "",
        deployment=deployment,
    )


def abs_onnx(n_features: int, column: int = 0) -> bytes:
    """``score = |x[:, column]|`` (always finite)."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", n_features])
    score = helper.make_tensor_value_info("score", TensorProto.FLOAT, ["N"])
    idx = helper.make_tensor("idx", TensorProto.INT64, [], [column])
    nodes = [
        helper.make_node("Gather", ["x", "idx"], ["c"], axis=1),
        helper.make_node("Abs", ["c"], ["score"]),
    ]
    graph = helper.make_graph(nodes, "abs", [x], [score], initializer=[idx])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


def synthetic_model(
    dst: Path,
    *,
    version: str,
    onnx: bytes,
    name: str = "synth-t2",
    inputs: tuple[str, ...] = ("v_mean",),
    window_s: float = 1.0,
    threshold: float = 10.0,
) -> Path:
    """A model directory for a machine with one slow signal ``v`` (features ``v_mean``...)."""
    from datetime import UTC, datetime

    from renkei.core.manifest import InputSpec, OutputSpec, TrainingInfo, write_manifest

    manifest = ModelManifest(
        name=name,
        version=version,
        created=datetime(2026, 11, 1, tzinfo=UTC),
        algorithm="test",
        sha256=sha(onnx),
        inputs=tuple(InputSpec(name=n, unit="1") for n in inputs),
        outputs=(OutputSpec(name="score", unit="1"),),
        feature_kind="window",
        window_s=window_s,
        threshold=threshold,
        threshold_rule="fixed for tests",
        training=TrainingInfo(
            data_source="synthetic", rows=1, holdout_rows=1, fitted_on="normal only: synthetic"
        ),
    )
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    (dst / manifest.onnx_file).write_bytes(onnx)
    write_manifest(manifest, dst)
    return dst
