"""Write a short human-readable ``MODEL_CARD.md`` next to an exported model."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Final

from models.manifest import ModelManifest

__all__ = ["CARD_FILE", "render_model_card", "write_model_card"]

CARD_FILE: Final = "MODEL_CARD.md"


def render_model_card(manifest: ModelManifest, *, notes: Sequence[str] = ()) -> str:
    """Markdown summary of ``manifest`` plus free-text ``notes`` paragraphs."""
    params = ", ".join(f"{k}={v}" for k, v in manifest.algorithm_params.items())
    features = (
        f"tumbling {manifest.window_s:g} s windows (gateway machine `window_s` must match)"
        if manifest.feature_kind == "window"
        else "per-shot features"
    )
    lines = [
        f"# Model card: {manifest.name} {manifest.version}",
        "",
        f"- Created: {manifest.created.strftime('%Y-%m-%dT%H:%M:%SZ')}",
        f"- Algorithm: `{manifest.algorithm}` (PCA Hotelling T² + SPE/Q, `models/t2.py`); {params}",
        f"- ONNX file: `{manifest.onnx_file}`, sha256 `{manifest.sha256}`",
        f"- Threshold: {manifest.threshold:.6g} ({manifest.threshold_rule}); "
        "alarm when `score > threshold`",
        f"- Features: {features}",
        f"- Training data: {manifest.training.data_source}",
        f"- Fitted on: {manifest.training.fitted_on} "
        f"({manifest.training.rows} fit rows, {manifest.training.holdout_rows} hold-out rows)",
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
