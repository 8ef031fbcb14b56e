"""Write the commissioned model (ONNX, manifest, model card) and sign it.

The artifact is an ordinary ``mahalanobis`` model directory
(:func:`renkei.models.artifact.write_artifact`) whose inputs are row features (names of the
machine's stored fields), so the gateway loads it with
:meth:`renkei.edge.model.inference.AnomalyModel.load` and computes its inputs with
:func:`renkei.edge.model.inputs.plan_inputs` unchanged. ``feature_kind``/``window_s`` are
those of the machine's rows (window rows: the rows' median spacing, which is the gateway's
``window_s`` for tumbling windows, unless given). The model card states the commissioning
range, the checks' findings, the channels and the threshold rule. ``signature.json`` is
written beside it with the engineer's key (:mod:`renkei.core.signing`), so the directory is
what ``renkei models publish`` uploads and gateways verify.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from renkei.core import signing
from renkei.core.manifest import MANIFEST_FILE, InputSpec, ModelManifest, OutputSpec
from renkei.models.artifact import write_artifact
from renkei.models.commission.decision import Decision
from renkei.models.commission.fit import CommissionFit
from renkei.models.commission.query import MachineRef, RowKind, iso_utc
from renkei.models.mahalanobis import ONNX_OPSET

__all__ = ["CommissionInfo", "export_commissioned"]


@dataclass(frozen=True, slots=True)
class CommissionInfo:
    """Where the period came from, for the manifest and card.

    Attributes:
        machine: the machine.
        kind: row kind.
        database: InfluxDB database read.
        start_ms, end_ms: the commissioning range (rows in ``[start, end]``), UTC epoch ms.
        how: how the range was chosen (``"marked by the engineer"``, ``"--auto: ..."``).
        confirmed: lines the engineer confirmed (``--yes`` or prompt).
    """

    machine: MachineRef
    kind: RowKind
    database: str
    start_ms: int
    end_ms: int
    how: str
    confirmed: tuple[str, ...]


def _describe_input(name: str, mean_rows: int, kind: RowKind) -> str:
    if mean_rows > 1:
        return f"trailing mean over {mean_rows} rows of the stored {kind} field"
    return f"stored {kind} field"


def export_commissioned(
    out_dir: Path,
    *,
    name: str,
    version: str,
    fitted: CommissionFit,
    decision: Decision,
    info: CommissionInfo,
    window_s: float | None,
    key: Ed25519PrivateKey,
) -> ModelManifest:
    """Write ``model.onnx``, ``manifest.json``, ``MODEL_CARD.md`` and ``signature.json``.

    Args:
        out_dir: target directory (created; files replaced).
        name, version: model name and semver.
        fitted: from :func:`~renkei.models.commission.fit.fit_commission`.
        decision: the checks' decision on the period.
        info: the period's provenance.
        window_s: window length of window rows, s (``None`` for shot rows).
        key: the engineer's signing key.

    Raises:
        pydantic.ValidationError: invalid name/version or window_s for the row kind.
        OSError: files cannot be written.
    """
    thr = fitted.threshold
    rng = f"{iso_utc(info.start_ms)} .. {iso_utc(info.end_ms)}"
    fit_rng = f"{iso_utc(fitted.fit_t_ms[0])} .. {iso_utc(fitted.fit_t_ms[1])}"
    hold_rng = f"{iso_utc(fitted.holdout_t_ms[0])} .. {iso_utc(fitted.holdout_t_ms[1])}"
    left_out = [f"`{c}` (flat or drifting)" for c in decision.dropped]
    left_out += [f"`{c}` (sparse)" for c in decision.sparse]
    left_out += [f"`{c}` (repeats `{d}`)" for c, d in fitted.duplicates.items()]
    findings: Sequence[str] = info.confirmed or ("none",)
    notes = [
        f"Commissioned for machine {info.machine} ({info.kind} rows, InfluxDB database "
        f"`{info.database}`) on the range {rng}, {info.how}. Fit rows {fit_rng}; held-back "
        f"rows (threshold only, never fitted) {hold_rng}.",
        "Checks (renkei.edge.model.baseline_check, the gateway's rule) - findings the "
        "engineer accepted: " + "; ".join(findings) + ".",
        "Channels: "
        + ", ".join(f"`{c}`" for c in fitted.channels)
        + ". Left out: "
        + (", ".join(left_out) or "none")
        + f". Rows with a missing value: "
        f"{fitted.incomplete_rows} (not used).",
        f"Threshold rule (renkei.models.commission.threshold): {thr.rule()}. Held-back "
        f"onsets/day at the threshold: {thr.holdout_onsets_per_day:.3g} over "
        f"{thr.holdout_days * 24:.3g} h.",
        "Limits: the period is trusted as normal once it passes the checks; a steady fault "
        "that lasts the whole period cannot be told from normal operation.",
    ]
    manifest = write_artifact(
        out_dir,
        onnx_bytes=fitted.onnx_bytes,
        name=name,
        version=version,
        algorithm="mahalanobis",
        algorithm_params={
            "ledoit_wolf_shrinkage": round(fitted.fit.shrinkage, 6),
            "score": "mean squared Mahalanobis distance (x-m)^T S^-1 (x-m) / F",
            "target_alarms_per_day": thr.target_per_day,
            "row_spacing_s": round(thr.spacing_s, 6),
            "mean_rows": fitted.mean_rows,
        },
        inputs=[
            InputSpec(name=c, unit="1", description=_describe_input(c, fitted.mean_rows, info.kind))
            for c in fitted.channels
        ],
        outputs=[
            OutputSpec(
                name="score",
                unit="1 (mean squared Mahalanobis distance; ≈1 on normal data)",
                description="anomaly score, alarm when score > threshold",
            )
        ],
        feature_kind=info.kind,
        window_s=window_s,
        threshold=thr.threshold,
        threshold_rule=thr.rule(),
        data_source=(
            f"machine {info.machine}: {info.kind} rows in InfluxDB database "
            f"`{info.database}`, {rng} ({info.how})"
        ),
        rows=fitted.fit_rows,
        holdout_rows=fitted.holdout_rows,
        fitted_on=f"normal only: the machine's own rows {fit_rng} (commissioning period)",
        metrics={
            "holdout_normal.onsets": float(thr.holdout_onsets),
            "holdout_normal.onsets_per_day": thr.holdout_onsets_per_day,
            "holdout_normal.far": float((fitted.holdout_scores > thr.threshold).mean()),
            "tail_fit.expected_onsets_per_day": thr.expected_per_day,
        },
        opset=ONNX_OPSET,
        notes=notes,
    )
    manifest_bytes = (out_dir / MANIFEST_FILE).read_bytes()
    sig = signing.sign_model(
        key,
        name=manifest.name,
        version=manifest.version,
        sha256=manifest.sha256,
        manifest_sha256=signing.sha256_hex(manifest_bytes),
    )
    signing.write_signature(sig, out_dir)
    return manifest
