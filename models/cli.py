"""``renkei models`` commands: list the training profiles, train one (or all), verify; sign,
publish and deploy models (:mod:`renkei.models.registry_cli`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from renkei.models import (
    DEFAULT_ARTIFACTS_DIR,
    PROFILES,
    default_data_dir,
    evaluate_profile,
    train_profile,
)
from renkei.models.progress import track

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True)


#: ``--data-dir`` of the commands that read datasets.
DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Datasets folder (default: RENKEI_DATA_DIR or shared/datasets beside the repository).",
    ),
]


@app.command("list")
def list_profiles() -> None:
    """List the training profiles and whether a trained artifact exists."""
    for name, profile in PROFILES.items():
        built = (DEFAULT_ARTIFACTS_DIR / name / "manifest.json").is_file()
        typer.echo(
            f"{name:16s} {profile.version:8s} {'trained' if built else '-':8s} {profile.summary}"
        )


def _data_dir(given: Path | None) -> Path:
    """``--data-dir`` if given, else the located datasets folder; exits 1 with a message
    naming ``RENKEI_DATA_DIR`` when there is none."""
    if given is not None:
        return given
    try:
        return default_data_dir()
    except FileNotFoundError as exc:
        typer.echo(f"{exc} (or pass --data-dir)", err=True)
        raise typer.Exit(1) from None


@app.command()
def train(
    name: Annotated[str, typer.Argument(help="Profile name (see `renkei models list`), or 'all'.")],
    data_dir: DataDirOption = None,
    out_dir: Annotated[
        Path, typer.Option("--out-dir", help="Artifacts folder; the model goes to OUT/NAME.")
    ] = DEFAULT_ARTIFACTS_DIR,
) -> None:
    """Train a profile on normal data, export ONNX + manifest.json + MODEL_CARD.md."""
    names = sorted(PROFILES) if name == "all" else [name]
    unknown = [n for n in names if n not in PROFILES]
    if unknown:
        typer.echo(
            f"unknown profile {unknown[0]!r}; known: {', '.join(sorted(PROFILES))}", err=True
        )
        raise typer.Exit(2)
    data = _data_dir(data_dir)
    for n in track(names, "training"):
        try:
            manifest = train_profile(n, data_dir=data, out_dir=out_dir)
        except (FileNotFoundError, ValueError) as exc:
            typer.echo(f"{n}: {exc}", err=True)
            raise typer.Exit(1) from None
        typer.echo(
            f"{n} {manifest.version}: threshold {manifest.threshold:.6g}, "
            f"sha256 {manifest.sha256}, {manifest.training.rows} fit rows, "
            f"{manifest.metrics.get('train_seconds', float('nan')):.1f} s -> "
            f"{out_dir / n}"
        )


@app.command()
def evaluate(
    name: Annotated[
        str | None,
        typer.Argument(help="Profile name (see `renkei models list`); all trained if omitted."),
    ] = None,
    data_dir: DataDirOption = None,
    artifacts: Annotated[
        Path, typer.Option("--artifacts", help="Artifacts folder holding NAME/.")
    ] = DEFAULT_ARTIFACTS_DIR,
) -> None:
    """Re-score the evaluation data with the trained artifact (as the gateway loads it) and
    print every metric next to the value recorded in its manifest."""
    from renkei.core.manifest import read_manifest
    from renkei.edge.model.inference import ModelError

    if name is not None and name not in PROFILES:
        typer.echo(f"unknown profile {name!r}; known: {', '.join(sorted(PROFILES))}", err=True)
        raise typer.Exit(2)
    names = [name] if name else [n for n in PROFILES if (artifacts / n / "manifest.json").is_file()]
    data = _data_dir(data_dir)
    mismatches = 0
    for n in track(names, "evaluating"):
        model_dir = artifacts / n
        try:
            recorded = read_manifest(model_dir).metrics
            metrics = evaluate_profile(n, data_dir=data, model_dir=model_dir)
        except (FileNotFoundError, ValueError, ModelError) as exc:
            typer.echo(f"{n}: {exc}", err=True)
            raise typer.Exit(1) from None
        typer.echo(f"== {n} ({model_dir})")
        for key, value in metrics.items():
            before = recorded.get(key)
            same = before is not None and abs(before - value) <= 1e-6 * max(1.0, abs(value))
            mismatches += int(before is not None and not same)
            note = (
                "" if before is None else ("  = manifest" if same else f"  ≠ manifest {before:.6g}")
            )
            typer.echo(f"  {key:60s} {value:12.6g}{note}")
    if mismatches:
        typer.echo(f"{mismatches} metric(s) differ from the manifests", err=True)
        raise typer.Exit(1)


@app.command()
def report(
    name: Annotated[str, typer.Argument(help="Profile name (see `renkei models list`).")],
    out: Annotated[
        Path | None,
        typer.Option("--out", help="HTML file to write (default: MODEL_DIR/REPORT.html)."),
    ] = None,
    data_dir: DataDirOption = None,
    model_dir: Annotated[
        Path | None,
        typer.Option("--model-dir", help="Trained model folder (default: the committed one)."),
    ] = None,
) -> None:
    """Write the model's HTML report (plots, tables, provenance; one self-contained file)."""
    from renkei.core.manifest import MANIFEST_FILE
    from renkei.edge.model.inference import ModelError
    from renkei.models.profiles import NoReportError
    from renkei.models.reporting.run import report_profile

    if name not in PROFILES:
        typer.echo(f"unknown profile {name!r}; known: {', '.join(sorted(PROFILES))}", err=True)
        raise typer.Exit(2)
    folder = model_dir if model_dir is not None else DEFAULT_ARTIFACTS_DIR / name
    if not (folder / MANIFEST_FILE).is_file():
        typer.echo(
            f"{name}: no trained model in {folder} (run `renkei models train {name}` "
            "or pass --model-dir)",
            err=True,
        )
        raise typer.Exit(1)
    # simulated profiles read no dataset: do not require a datasets folder for them
    needs_data = bool(PROFILES[name].data_paths)
    data = _data_dir(data_dir) if needs_data else (data_dir or Path("."))
    try:
        path, size = report_profile(name, data_dir=data, model_dir=folder, out=out)
    except NoReportError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    except (FileNotFoundError, ValueError, ModelError) as exc:
        typer.echo(f"{name}: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{name}: report {path} ({size / 1e6:.2f} MB)")
    if size > 1_000_000:
        typer.echo(f"{name}: warning: report over 1 MB; do not commit it as is", err=True)


@app.command()
def verify(
    model_dir: Annotated[Path, typer.Argument(help="Model directory (manifest.json + ONNX).")],
    sha256: Annotated[
        str | None, typer.Option("--sha256", help="Also require this SHA-256 (pin).")
    ] = None,
) -> None:
    """Load a model exactly as the gateway does (hash check, graph check)."""
    from renkei.edge.model.inference import AnomalyModel, ModelError

    try:
        model = AnomalyModel.load(model_dir=model_dir, expected_sha256=sha256)
    except ModelError as exc:
        typer.echo(f"REFUSED: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"OK {model!r}")


# Commissioning a model for one machine from its own telemetry (renkei.models.commission).
from renkei.models.commission.cli import commission as _commission  # noqa: E402

app.command("commission")(_commission)

# Registry and rollout: keygen, trust, publish, releases, deploy, rollback, status, pin,
# unpin, fleet (see renkei.models.registry_cli).
from renkei.models.registry_cli import register as _register_rollout  # noqa: E402

_register_rollout(app)
