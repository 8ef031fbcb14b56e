"""The ``renkei`` command line (typer).

Sub-commands are defined next to the code they run and mounted here:

- ``renkei demo`` — everything in one process on embedded defaults (:mod:`renkei.demo`).
- ``renkei edge run|schema`` — the gateway agent (:mod:`renkei.edge.cli`).
- ``renkei cloud ingest|api|watch|rollout|export|import`` — cloud services
(:mod:`renkei.cloud.cli`).
- ``renkei models train|evaluate|publish|deploy|...`` — models and rollout
(:mod:`renkei.models.cli`).
- ``renkei dashboards build|check|push|verify`` — Grafana as code (:mod:`renkei.dashboards.cli`).

A gateway installs the core dependencies only (no ``cloud``/``models``/``demo`` extras), so
every group except ``edge`` is mounted only when its third-party dependencies import; a
missing one is named in that group's placeholder help instead of breaking ``renkei edge``.
"""

from __future__ import annotations

import importlib
from typing import Any

import typer

from renkei.edge.cli import app as edge_app

app = typer.Typer(
    name="renkei",
    help="Renkei (連携): edge-to-cloud monitoring and spare-capacity sharing for manufacturers.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(edge_app, name="edge", help="Gateway agent: sources, features, models, outbox, MQTT.")

_FIRST_PARTY = ("renkei", "edge", "cloud", "models", "dashboards")


def _optional(module: str, attr: str) -> Any:
    """``module.attr``, or ``None`` when a *third-party* dependency of it is not installed."""
    try:
        return getattr(importlib.import_module(module), attr)
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] in _FIRST_PARTY:
            raise  # our own code is broken: never hide that
        missing = exc.name

    def unavailable() -> None:
        typer.echo(
            f"this command needs the Python package {missing!r}; install Renkei with the "
            "extra that provides it (e.g. `pip install renkei[cloud,models,demo,dashboards]`)",
            err=True,
        )
        raise typer.Exit(2)

    return unavailable


def _mount() -> None:
    demo = _optional("renkei.demo.cli", "demo")
    if demo is not None:
        app.command("demo")(demo)
    groups = (
        (
            "renkei.cloud.cli",
            "cloud",
            "Cloud services: ingest, API + web page, watch, rollout, export.",
        ),
        ("renkei.models.cli", "models", "Train, evaluate, sign and deploy models (ONNX)."),
        ("renkei.dashboards.cli", "dashboards", "Grafana dashboards and alert rules as code."),
    )
    for module, name, text in groups:
        sub = _optional(module, "app")
        if isinstance(sub, typer.Typer):
            app.add_typer(sub, name=name, help=text)
        elif sub is not None:
            app.command(name, help=f"{text} (not installed)")(sub)


_mount()


if __name__ == "__main__":  # pragma: no cover
    app()
