"""``renkei demo`` command."""

from __future__ import annotations

import logging
import signal
import threading
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.live import Live

__all__ = ["demo"]


def demo(
    duration: Annotated[
        float | None,
        typer.Option("--duration", help="Stop after this many seconds (unattended runs)."),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            envvar="RENKEI_DATA_DIR",
            help="Datasets directory (default: ../shared/datasets beside the repository).",
        ),
    ] = None,
    state_dir: Annotated[
        Path | None,
        typer.Option("--state-dir", help="Keep outboxes and the store here (default: temp)."),
    ] = None,
) -> None:
    """Run the whole pipeline on embedded defaults: no servers to install.

    Gateways replay real SKAB, NAB and Kassel molding data and simulate one molding cell;
    an in-process MQTT broker and an embedded SQLite store stand in for Mosquitto and
    InfluxDB; the ingest and the agents are the production code.
    """
    from renkei.demo.runner import DemoRun
    from renkei.demo.view import LiveView
    from renkei.edge.sources.datasets import find_data_dir

    console = Console()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    resolved = data_dir if data_dir is not None else find_data_dir()
    if resolved is None or not resolved.is_dir():
        console.print(
            "[yellow]Datasets not found[/] (looked for RENKEI_DATA_DIR and ../shared/datasets "
            "beside the repository): running the simulated molding cell only."
        )
        resolved = None
    else:
        console.print(f"Datasets: {resolved}")
    if state_dir is not None:
        state_dir.mkdir(parents=True, exist_ok=True)
    run = DemoRun(data_dir=resolved, state_dir=state_dir)
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    run.start()
    view = LiveView(run)
    deadline = None if duration is None else time.monotonic() + duration
    try:
        # The view is re-rendered at each refresh for the terminal's current width.
        with Live(view, console=console, refresh_per_second=2, transient=False):
            while not stop.is_set():
                if deadline is not None and time.monotonic() >= deadline:
                    break
                stop.wait(0.5)
    except KeyboardInterrupt:
        console.print("Stopping (Ctrl-C)…")
    finally:
        console.print("Stopping gateways, draining outboxes, stopping ingest…")
        final = view.render(width=console.width)
        run.stop()
        signal.signal(signal.SIGTERM, previous)
    console.print(final)
    console.print("[green]Demo stopped cleanly.[/]")
