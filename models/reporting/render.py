"""Render a :class:`~renkei.models.reporting.data.ReportData` to one self-contained HTML page.

The page has no external reference at all (no script, no stylesheet link, no font): its CSS
is inline and its plots are PNG ``data:`` URIs (:mod:`renkei.models.reporting.plots`), so it
opens offline from a model's folder and can be mailed as one file. Every text that comes from
a recipe or a manifest is escaped with :func:`html.escape`.

Sections: title and summary; provenance from the model's ``manifest.json`` (name, version,
sha256, algorithm, threshold and its rule, data source, fitted_on, created); headline
metrics; score traces; ROC / precision-recall; RUL plots; tables; notes.

The page holds no generation time, so re-rendering the same data gives the same bytes
(matplotlib's PNG metadata is cleared too) and a committed report only changes when its
numbers do.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final

from renkei.models.card import REPORT_FILE
from renkei.models.reporting.data import ReportData, Table
from renkei.models.reporting.plots import (
    classification_png,
    rul_coverage,
    rul_png,
    score_trace_png,
)

if TYPE_CHECKING:
    from renkei.core.manifest import ModelManifest

__all__ = ["REPORT_FILE", "format_cell", "render_report", "write_report"]

_CSS: Final = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:60rem;
margin:1.5rem auto;padding:0 1rem;color:#222;line-height:1.45}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem;
border-bottom:1px solid #ddd}h3{font-size:1rem}
table{border-collapse:collapse;margin:.5rem 0 1rem;font-size:.9rem}
th,td{border:1px solid #ccc;padding:.2rem .5rem;text-align:left;vertical-align:top}
td.num{text-align:right;font-variant-numeric:tabular-nums}th{background:#f3f3f3}
code{font-size:.85rem;word-break:break-all}img{max-width:100%;height:auto}
figure{margin:1rem 0}figcaption{font-size:.85rem;color:#555}
.note{background:#fafafa;border-left:3px solid #bbb;padding:.3rem .8rem;margin:.6rem 0}
"""


def format_cell(value: str | int | float) -> str:
    """A table cell as escaped text: floats with 4 significant digits, NaN as ``–``."""
    if isinstance(value, bool):
        return html.escape(str(value))
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        return html.escape(f"{value:.4g}")
    return html.escape(str(value))


def _table_html(
    columns: Sequence[str], rows: Iterable[Sequence[str | int | float]], title: str | None = None
) -> str:
    out = [f"<h3>{html.escape(title)}</h3>"] if title else []
    out.append("<table><thead><tr>")
    out += [f"<th>{html.escape(c)}</th>" for c in columns]
    out.append("</tr></thead><tbody>")
    for row in rows:
        out.append("<tr>")
        for cell in row:
            cls = ' class="num"' if isinstance(cell, int | float) else ""
            out.append(f"<td{cls}>{format_cell(cell)}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _img(png: bytes, alt: str, caption: str = "") -> str:
    data = base64.b64encode(png).decode("ascii")
    cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">{cap}</figure>'
    )


def _provenance(manifest: ModelManifest) -> str:
    rows: list[tuple[str, str | int | float]] = [
        ("name", manifest.name),
        ("version", manifest.version),
        ("task", manifest.task),
        ("algorithm", manifest.algorithm),
        ("ONNX file", manifest.onnx_file),
        ("sha256", manifest.sha256),
        ("threshold", manifest.threshold),
        ("threshold rule", manifest.threshold_rule),
        ("data source", manifest.training.data_source),
        ("fitted on", manifest.training.fitted_on),
        (
            "fit rows / hold-out rows",
            f"{manifest.training.rows} / {manifest.training.holdout_rows}",
        ),
        ("created (UTC)", manifest.created.strftime("%Y-%m-%dT%H:%M:%SZ")),
    ]
    if manifest.alarm_rule:
        rows.insert(8, ("alarm rule", manifest.alarm_rule))
    return _table_html(("field", "value"), rows)


def render_report(data: ReportData, manifest: ModelManifest | None = None) -> str:
    """The HTML page of ``data`` (and the model's provenance when ``manifest`` is given).

    Raises:
        ValueError: ``manifest`` names another model than ``data``.
    """
    if manifest is not None and manifest.name != data.model:
        raise ValueError(
            f"report data are for model {data.model!r} but the manifest is {manifest.name!r}"
        )
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        f"<title>{e(data.model)}: {e(data.title)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{e(data.title)}</h1>",
        f"<p><code>{e(data.model)}</code></p>",
        f"<p>{e(data.summary)}</p>",
    ]
    if manifest is not None:
        parts += ["<h2>Provenance</h2>", _provenance(manifest)]
    if data.metrics:
        parts += ["<h2>Headline metrics</h2>"]
        parts.append(_table_html(("metric", "value"), sorted(data.metrics.items())))
    if data.traces:
        parts.append("<h2>Score against threshold</h2>")
        for trace in data.traces:
            caption = (
                f"{trace.name}: threshold {trace.threshold:.4g}, "
                f"{len(trace.windows)} labelled window(s), {len(trace.detections)} detection(s)"
            )
            parts.append(_img(score_trace_png(trace), f"score trace {trace.name}", caption))
    if data.classifications:
        parts.append("<h2>ROC and precision-recall</h2>")
        for c in data.classifications:
            png, fig = classification_png(c)
            parts.append(_img(png, f"ROC and precision-recall {c.name}"))
            parts.append(
                _table_html(
                    ("pooled", "positives", "negatives", "ROC AUC", "average precision",
                     "FPR at threshold", "recall at threshold", "precision at threshold",
                     "F1 at threshold"),
                    [(c.name, int(fig["positives"]), int(fig["negatives"]), fig["roc_auc"],
                      fig["average_precision"], fig["fpr"], fig["recall"], fig["precision"],
                      fig["f1"])],
                )
            )  # fmt: skip
    if data.ruls:
        parts.append("<h2>Remaining useful life</h2>")
        for r in data.ruls:
            caption = (
                f"{r.name}: {len(r.x)} points, band coverage {rul_coverage(r):.1%} "
                f"(nominal {r.nominal:.0%})"
            )
            parts.append(_img(rul_png(r), f"RUL {r.name}", caption))
    if data.tables:
        parts.append("<h2>Tables</h2>")
        parts += [_table(t) for t in data.tables]
    if data.notes:
        parts.append("<h2>Notes</h2>")
        parts += [f'<p class="note">{e(n)}</p>' for n in data.notes]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _table(t: Table) -> str:
    return _table_html(t.columns, t.rows, t.title)


def write_report(
    data: ReportData, out: Path, manifest: ModelManifest | None = None
) -> tuple[Path, int]:
    """Write the page of ``data`` to ``out`` (parents created); return its path and size.

    Raises:
        ValueError: ``manifest`` names another model than ``data``.
        OSError: the file cannot be written.
    """
    page = render_report(data, manifest).encode("utf-8")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(page)
    return out, len(page)
