"""Write a short human-readable ``MODEL_CARD.md`` next to an exported model."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Final

from renkei.core.manifest import ModelManifest

__all__ = [
    "CARD_FILE",
    "REPORT_FILE",
    "link_report",
    "render_model_card",
    "report_line",
    "write_model_card",
]

CARD_FILE: Final = "MODEL_CARD.md"
#: The model's HTML report beside the card (``renkei models report NAME``,
#: :mod:`renkei.models.reporting`).
REPORT_FILE: Final = "REPORT.html"


def report_line(name: str) -> str:
    """The card's bullet linking to the model's report (one line of Markdown)."""
    return (
        f"- Report: [{REPORT_FILE}]({REPORT_FILE}) (plots: score against threshold, ROC/PR, "
        f"RUL bands; tables); if it is not there, `renkei models report {name}` writes it"
    )


#: Human-readable description and source module of each manifest ``algorithm``.
ALGORITHM_TEXT: Final[dict[str, str]] = {
    "pca_t2_spe": "PCA Hotelling T² + SPE/Q, `models/t2.py`",
    "mahalanobis": "mean squared Mahalanobis distance to normal data, `models/mahalanobis.py`",
    "one_sided_z": "one-sided z-score of a trailing mean, `models/profiles/nab_stream.py`",
    "hgb_quantile_rul": (
        "histogram gradient boosting, mean + 10/90 % quantile regressors, `models/rul.py`"
    ),
}


def _has_report(name: str) -> bool:
    """Whether the profile ``name`` defines ``report`` (imports its module)."""
    from renkei.models.profiles import PROFILES, NoReportError

    if name not in PROFILES:
        return False
    try:
        _ = PROFILES[name].report
    except NoReportError:
        return False
    return True


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
        *([report_line(manifest.name)] if _has_report(manifest.name) else []),
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


def link_report(model_dir: Path, name: str) -> bool:
    """Add :func:`report_line` to the ``MODEL_CARD.md`` in ``model_dir`` if it lacks it
    (cards written before reports existed), at the end of the card's first bullet list
    (the header facts). Return whether it changed.

    A missing card is left missing (``False``).
    """
    path = model_dir / CARD_FILE
    if not path.is_file():
        return False
    text = path.read_text(encoding="utf-8")
    line = report_line(name)
    if line in text:
        return False
    lines = text.split("\n")
    first = next((i for i, ln in enumerate(lines) if ln.startswith("- ")), len(lines))
    end = first
    while end < len(lines) and lines[end].startswith("- "):
        end += 1
    lines.insert(end, line)
    path.write_text("\n".join(lines), encoding="utf-8")
    return True
