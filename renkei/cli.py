"""The ``renkei`` command line (typer).

Sub-commands are defined next to the code they run and mounted here:

- ``renkei demo`` — everything in one process on embedded defaults (:mod:`renkei.demo`).
- ``renkei edge run|schema`` — the gateway agent (:mod:`renkei.edge.cli`).
- ``renkei cloud ingest|api|watch|rollout|export|import`` — cloud services
(:mod:`renkei.cloud.cli`).
- ``renkei models train|evaluate|publish|deploy|...`` — models and rollout
(:mod:`renkei.models.cli`).
- ``renkei dashboards build|check|push|verify`` — Grafana as code (:mod:`renkei.dashboards.cli`).

``renkei --version`` prints the installed package's version. :func:`main` is the console
script: a bad option value read from an environment variable (``RENKEI_API_PORT=abc``) is
one line naming the variable, the value and what was expected (exit status 2).

A gateway installs the core dependencies only (no ``cloud``/``models``/``demo`` extras), so
every group except ``edge`` is mounted only when its third-party dependencies import; a
missing one is named in that group's placeholder help instead of breaking ``renkei edge``.
"""

from __future__ import annotations

import importlib
import os
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import typer

# typer >= 0.26 carries its own copy of click; its exceptions are what the commands raise.
from typer._click.exceptions import ClickException

from renkei.edge.cli import app as edge_app

app = typer.Typer(
    name="renkei",
    help="Renkei (連携): edge-to-cloud monitoring and spare-capacity sharing for manufacturers.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(edge_app, name="edge", help="Gateway agent: sources, features, models, outbox, MQTT.")


def _version() -> str:
    try:
        return version("renkei")
    except PackageNotFoundError:  # a source tree that was never installed
        return "unknown (not installed)"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"renkei {_version()}")
        raise typer.Exit()


@app.callback()
def _root(
    show_version: bool = typer.Option(
        False,
        "--version",
        callback=_print_version,
        is_eager=True,
        help="Print the installed version and exit.",
    ),
) -> None:
    """Renkei (連携): edge-to-cloud monitoring and spare-capacity sharing for manufacturers."""


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


def _env_value_error(exc: typer.BadParameter) -> str | None:
    """One line for a bad value that came from an option's environment variable, else None."""
    param, ctx = exc.param, exc.ctx
    if param is None or ctx is None or param.name is None:
        return None
    source = ctx.get_parameter_source(param.name)
    if source is None or source.name != "ENVIRONMENT":
        return None
    envvar = getattr(param, "envvar", None)
    names = [envvar] if isinstance(envvar, str) else list(envvar or ())
    name = next((n for n in names if n in os.environ), None)
    if name is None:
        return None
    expected = exc.message.removeprefix("Input should be ")
    return (
        f"invalid configuration: {name}={os.environ[name]!r} ({param.opts[0]}): expected {expected}"
    )


def main() -> None:
    """The ``renkei`` console script (:data:`app`); exits with the command's status.

    Usage errors are printed as click prints them (exit 2); a bad value of an option read
    from its environment variable is one line (see the module docs).
    """
    try:
        code = app(standalone_mode=False)
    except typer.BadParameter as exc:
        line = _env_value_error(exc)
        if line is None:
            exc.show()
        else:
            typer.echo(line, err=True)
        sys.exit(exc.exit_code)
    except ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo("Aborted!", err=True)
        sys.exit(1)
    sys.exit(code if type(code) is int else 0)


if __name__ == "__main__":  # pragma: no cover
    main()
