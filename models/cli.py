"""``renkei models`` commands: list the training profiles, train one (or all), verify; sign,
publish and deploy models (:mod:`models.registry_cli`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from models import DEFAULT_ARTIFACTS_DIR, PROFILES, default_data_dir, train_profile

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True)


@app.command("list")
def list_profiles() -> None:
    """List the training profiles and whether a trained artifact exists."""
    for name, profile in PROFILES.items():
        built = (DEFAULT_ARTIFACTS_DIR / name / "manifest.json").is_file()
        typer.echo(
            f"{name:16s} {profile.version:8s} {'trained' if built else '-':8s} {profile.summary}"
        )


@app.command()
def train(
    name: Annotated[str, typer.Argument(help="Profile name (see `renkei models list`), or 'all'.")],
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="Datasets folder (default: RENKEI_DATA_DIR or "
            "shared/datasets next to the repository).",
        ),
    ] = None,
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
    data = data_dir or default_data_dir()
    for n in names:
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
def verify(
    model_dir: Annotated[Path, typer.Argument(help="Model directory (manifest.json + ONNX).")],
    sha256: Annotated[
        str | None, typer.Option("--sha256", help="Also require this SHA-256 (pin).")
    ] = None,
) -> None:
    """Load a model exactly as the gateway does (hash check, graph check)."""
    from edge.inference import AnomalyModel, ModelError

    try:
        model = AnomalyModel.load(model_dir=model_dir, expected_sha256=sha256)
    except ModelError as exc:
        typer.echo(f"REFUSED: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"OK {model!r}")


# Registry and rollout: keygen, trust, publish, releases, deploy, rollback, status, pin,
# unpin, fleet (see models.registry_cli).
from models.registry_cli import register as _register_rollout  # noqa: E402

_register_rollout(app)
