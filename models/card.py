"""Write a short human-readable ``MODEL_CARD.md`` next to an exported model."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Final

from renkei.core.manifest import ModelManifest

__all__ = ["CARD_FILE", "render_model_card", "write_model_card"]

CARD_FILE: Final = "MODEL_CARD.md"

#: Human-readable description and source module of each manifest ``algorithm``.
ALGORITHM_TEXT: Final[dict[str, str]] = {
    "pca_t2_spe": "PCA Hotelling T² + SPE/Q, `models/t2.py`",
    "mahalanobis": "mean squared Mahalanobis distance to normal data, `models/mahalanobis.py`",
    "one_sided_z": "one-sided z-score of a trailing mean, `models/profiles/nab_stream.py`",
    "hgb_quantile_rul": (
        "histogram gradient boosting, mean + 10/90 % quantile regressors, `models/rul.py`"
    ),
}


def render_model_card(manifest: ModelManifest, *, notes: Sequence[str] = ()) -> str:
    """Markdown summary of ``manifest`` plus free-text ``notes`` paragraphs."""
    params = ", ".join(f"{k}={v}" for k, v in manifest.algorithm_params.items())
    algo = (
        f" ({ALGORITHM_TEXT[manifest.algorithm]})" if manifest.algorithm in ALGORITHM_TEXT else ""
    )
    task = (
        f"remaining useful life (RUL capped at {manifest.rul_cap:g}); alarm when "
        f"`score = rul_cap - rul > threshold`, i.e. predicted RUL < "
        f"{(manifest.rul_cap or 0.0) - manifest.threshold:g}"
        if manifest.task == "rul"
        else "anomaly detection"
    )
    features = (
        f"tumbling {manifest.window_s:g} s windows (gateway machine `window_s` must match)"
        if manifest.feature_kind == "window"
        else "one row per shot / machine cycle"
    )
    lines = [
        f"# Model card: {manifest.name} {manifest.version}",
        "",
        f"- Created: {manifest.created.strftime('%Y-%m-%dT%H:%M:%SZ')}",
        f"- Task: {task}",
        f"- Algorithm: `{manifest.algorithm}`{algo}; {params}",
        f"- ONNX file: `{manifest.onnx_file}`, sha256 `{manifest.sha256}`",
        f"- Threshold: {manifest.threshold:.6g} ({manifest.threshold_rule}); "
        "alarm when `score > threshold`"
        + (f" ({manifest.alarm_rule})" if manifest.alarm_rule else ""),
        f"- Features: {features}",
        f"- Training data: {manifest.training.data_source}",
        f"- Fitted on: {manifest.training.fitted_on} "
        f"({manifest.training.rows} fit rows, {manifest.training.holdout_rows} hold-out rows)",
        "- Runtime: onnxruntime, CPU, 1 intra-op + 1 inter-op thread (`edge/model/inference.py`)",
        "",
        f"## Inputs (`{manifest.input_name}`: float32, shape (N, {len(manifest.inputs)}), "
        "column order)",
        "",
        "| # | feature | unit | description |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {i} | `{spec.name}` | {spec.unit} | {spec.description} |"
        for i, spec in enumerate(manifest.inputs)
    ]
    lines += ["", "## Outputs", ""]
    lines += [f"- `{out.name}` (N,): {out.description} [{out.unit}]" for out in manifest.outputs]
    lines += ["", "## Metrics (evaluation only; never used for fitting or the threshold)", ""]
    if manifest.metrics:
        lines += ["| metric | value |", "|---|---|"]
        lines += [f"| `{k}` | {v:.4g} |" for k, v in sorted(manifest.metrics.items())]
    else:
        lines.append("none")
    if notes:
        lines += ["", "## Notes", ""]
        for note in notes:
            lines += [note, ""]
    return "\n".join(lines).rstrip() + "\n"


def write_model_card(manifest: ModelManifest, out_dir: Path, *, notes: Sequence[str] = ()) -> Path:
    """Write ``MODEL_CARD.md`` into ``out_dir``; return its path."""
    path = out_dir / CARD_FILE
    path.write_text(render_model_card(manifest, notes=notes), encoding="utf-8")
    return path
