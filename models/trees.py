"""Export scikit-learn ``HistGradientBoostingRegressor`` models to ONE ONNX
``ai.onnx.ml.TreeEnsembleRegressor`` node with one target per model, or per group of
models averaged (an ensemble of ``K`` members is the union of their trees with every leaf
value and baseline scaled by ``1/K``, i.e. the mean of the members' predictions).

Why not skl2onnx: skl2onnx 1.20 fails on scikit-learn 1.9 HGB models (it writes a Python
``bool`` into an integer attribute list: "Field onnx.AttributeProto.ints: Expected an int,
got a boolean"). The ensemble format is simple enough to write directly, and one node with
several targets (median, lower and upper quantile) evaluates all of them in one pass.

Semantics reproduced (``sklearn/ensemble/_hist_gradient_boosting/predictor.py``): a
numerical split sends a row left when ``x <= num_threshold`` and a NaN row to the side of
``missing_go_to_left``; the prediction is ``baseline + sum of leaf values`` (identity link
for the squared-error and quantile losses). Thresholds are stored as float32 rounded
towards -inf, so that for any float32 input ``x <= t32`` exactly when ``x <= t64``: the
graph, fed float32 rows, agrees with scikit-learn fed the same float32 values (up to float32
summation of the leaf values). Categorical splits are not supported.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray
from onnx import NodeProto, helper

__all__ = ["ML_OPSET", "tree_ensemble_node"]

#: ``ai.onnx.ml`` opset of the node (TreeEnsembleRegressor v3).
ML_OPSET: Final = 3
_SUPPORTED_LOSSES: Final = ("squared_error", "quantile", "absolute_error")


def _floor_f32(values: NDArray[np.float64]) -> NDArray[np.float32]:
    """Largest float32 ≤ each value."""
    v32 = values.astype(np.float32)
    too_big = v32.astype(np.float64) > values
    v32[too_big] = np.nextafter(v32[too_big], np.float32(-np.inf))
    return v32


def tree_ensemble_node(
    models: Sequence[Any], *, input_name: str, output_name: str, name: str = "rk_trees"
) -> NodeProto:
    """A ``TreeEnsembleRegressor`` node computing every entry of ``models`` as one target.

    Args:
        models: fitted ``HistGradientBoostingRegressor`` objects (same input width), target
            ``j`` = ``models[j]``; an entry may also be a tuple/list of such models, whose
            predictions are averaged into target ``j``.
        input_name: float32 (N, F) input tensor.
        output_name: float32 (N, len(models)) output tensor.

    Raises:
        ValueError: an unsupported loss, categorical splits or an empty group.
    """
    attrs: dict[str, Any] = {
        k: []
        for k in (
            "nodes_treeids",
            "nodes_nodeids",
            "nodes_featureids",
            "nodes_values",
            "nodes_modes",
            "nodes_truenodeids",
            "nodes_falsenodeids",
            "nodes_missing_value_tracks_true",
            "nodes_hitrates",
            "target_treeids",
            "target_nodeids",
            "target_ids",
            "target_weights",
        )
    }
    base_values: list[float] = []
    tree_id = 0
    for target, entry in enumerate(models):
        members = list(entry) if isinstance(entry, (list, tuple)) else [entry]
        if not members:
            raise ValueError(f"target {target} has no model")
        scale = 1.0 / len(members)
        base = 0.0
        for model in members:
            loss = getattr(model, "loss", None)
            if loss not in _SUPPORTED_LOSSES:
                raise ValueError(f"unsupported loss {loss!r}; supported: {_SUPPORTED_LOSSES}")
            base += scale * float(np.ravel(model._baseline_prediction)[0])
            tree_id = _add_trees(attrs, model, target, tree_id, scale)
        base_values.append(base)
    return helper.make_node(
        "TreeEnsembleRegressor",
        [input_name],
        [output_name],
        domain="ai.onnx.ml",
        name=name,
        n_targets=len(models),
        aggregate_function="SUM",
        post_transform="NONE",
        base_values=base_values,
        **attrs,
    )


def _add_trees(attrs: dict[str, Any], model: Any, target: int, tree_id: int, scale: float) -> int:
    """Append ``model``'s trees (leaf values times ``scale``) to ``attrs``; next tree id."""
    for predictors in model._predictors:
        (predictor,) = predictors  # one tree per iteration for regression
        nodes = predictor.nodes
        if np.any(nodes["is_categorical"]):
            raise ValueError("categorical splits are not supported")
        leaf = nodes["is_leaf"].astype(bool)
        thresholds = _floor_f32(nodes["num_threshold"].astype(np.float64))
        for i in range(nodes.shape[0]):
            attrs["nodes_treeids"].append(tree_id)
            attrs["nodes_nodeids"].append(i)
            attrs["nodes_hitrates"].append(1.0)
            if leaf[i]:
                attrs["nodes_featureids"].append(0)
                attrs["nodes_values"].append(0.0)
                attrs["nodes_modes"].append("LEAF")
                attrs["nodes_truenodeids"].append(0)
                attrs["nodes_falsenodeids"].append(0)
                attrs["nodes_missing_value_tracks_true"].append(0)
                attrs["target_treeids"].append(tree_id)
                attrs["target_nodeids"].append(i)
                attrs["target_ids"].append(target)
                attrs["target_weights"].append(scale * float(nodes["value"][i]))
            else:
                attrs["nodes_featureids"].append(int(nodes["feature_idx"][i]))
                attrs["nodes_values"].append(float(thresholds[i]))
                attrs["nodes_modes"].append("BRANCH_LEQ")
                attrs["nodes_truenodeids"].append(int(nodes["left"][i]))
                attrs["nodes_falsenodeids"].append(int(nodes["right"][i]))
                attrs["nodes_missing_value_tracks_true"].append(int(nodes["missing_go_to_left"][i]))
        tree_id += 1
    return tree_id
