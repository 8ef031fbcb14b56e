"""The ``renkei`` command line (typer).

Sub-commands are defined next to the code they run and mounted here:

- ``renkei demo`` — everything in one process on embedded defaults (:mod:`renkei.demo`).
- ``renkei edge run|schema`` — the gateway agent (:mod:`edge.cli`).
- ``renkei cloud ingest`` — the MQTT → InfluxDB ingest (:mod:`cloud.cli`).
- ``renkei models train|list`` — anomaly models (:mod:`models.cli`).
- ``renkei dashboards build|check|push|verify`` — Grafana as code (:mod:`dashboards.cli`).
"""

from __future__ import annotations

import typer

from cloud.cli import app as cloud_app
from dashboards.cli import app as dashboards_app
from edge.cli import app as edge_app
from models.cli import app as models_app
from renkei.demo.cli import demo

app = typer.Typer(
    name="renkei",
    help="Renkei (連携): edge-to-cloud monitoring and spare-capacity sharing for manufacturers.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.command("demo")(demo)
app.add_typer(edge_app, name="edge", help="Gateway agent: sources, features, models, outbox, MQTT.")
app.add_typer(
    cloud_app,
    name="cloud",
    help="Cloud services: ingest, API + web page, disruption watch, model rollout, export/import.",
)
app.add_typer(models_app, name="models", help="Train and inspect anomaly models (ONNX).")
app.add_typer(dashboards_app, name="dashboards", help="Grafana dashboards and alert rules as code.")


if __name__ == "__main__":  # pragma: no cover
    app()
