"""``renkei dashboards ...`` commands (typer), also ``python -m dashboards``.

- ``build``: regenerate ``dashboards/generated`` and ``dashboards/provisioning``.
- ``check``: exit 1 if the committed files differ from the generator (drift).
- ``push``: provision a running Grafana over its HTTP API (idempotent).
- ``verify``: run every panel query and alert rule against an InfluxDB (a smoke test of
  a live installation; same emulation as the integration tests).
"""

from __future__ import annotations

import itertools
import time
from typing import Annotated

import typer

__all__ = ["app"]

app = typer.Typer(no_args_is_help=False, pretty_exceptions_show_locals=False)


@app.callback(invoke_without_command=True)
def _default(ctx: typer.Context) -> None:
    """Dashboards and alert rules as code (default command: build)."""
    if ctx.invoked_subcommand is None:
        build()


@app.command("build")
def build() -> None:
    """Regenerate the dashboard JSON and the Grafana provisioning files."""
    from renkei.dashboards.build import ROOT, render, write

    changed = write()
    for path in changed:
        typer.echo(f"wrote {path.relative_to(ROOT.parent)}")
    typer.echo(f"{len(render())} files, {len(changed)} changed")


@app.command("check")
def check() -> None:
    """Fail (exit 1) when the committed generated files differ from the generator."""
    from renkei.dashboards.build import check as drift

    stale = drift()
    for rel in stale:
        typer.echo(f"out of date: dashboards/{rel}", err=True)
    if stale:
        typer.echo("run: python -m dashboards build", err=True)
        raise typer.Exit(1)
    typer.echo("dashboards are up to date")


@app.command("push")
def push(
    grafana: Annotated[
        str, typer.Option("--grafana", envvar="GRAFANA_URL", help="Grafana base URL")
    ],
    influx_url: Annotated[
        str,
        typer.Option(
            "--influx-url", envvar="RENKEI_INFLUX_URL", help="InfluxDB URL as Grafana sees it"
        ),
    ],
    token: Annotated[
        str | None,
        typer.Option("--token", envvar="GRAFANA_TOKEN", help="service-account token"),
    ] = None,
    user: Annotated[str | None, typer.Option("--user", envvar="GRAFANA_USER")] = None,
    password: Annotated[str | None, typer.Option("--password", envvar="GRAFANA_PASSWORD")] = None,
    influx_database: Annotated[
        str, typer.Option("--influx-database", envvar="RENKEI_INFLUX_DATABASE")
    ] = "renkei",
    influx_user: Annotated[
        str | None, typer.Option("--influx-user", envvar="RENKEI_INFLUX_USERNAME")
    ] = None,
    influx_password: Annotated[
        str | None, typer.Option("--influx-password", envvar="RENKEI_INFLUX_PASSWORD")
    ] = None,
    influx_token: Annotated[
        str | None,
        typer.Option("--influx-token", envvar="RENKEI_INFLUX_TOKEN", help="InfluxDB 2.x/3.x"),
    ] = None,
    editable_rules: Annotated[
        bool, typer.Option(help="keep the alert rules editable in Grafana's UI")
    ] = False,
) -> None:
    """Create or update the folder, datasource, dashboards and alert rules in Grafana."""
    from renkei.dashboards.push import PushError
    from renkei.dashboards.push import push as do_push

    try:
        report = do_push(
            grafana,
            token=token,
            user=user,
            password=password,
            influx_url=influx_url,
            influx_database=influx_database,
            influx_user=influx_user,
            influx_password=influx_password,
            influx_token=influx_token,
            editable_rules=editable_rules,
        )
    except PushError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    for (kind, uid), action in report.actions.items():
        typer.echo(f"{kind:<12} {uid:<36} {action}")


@app.command("verify")
def verify(
    influx_url: Annotated[
        str, typer.Option("--influx-url", envvar="RENKEI_INFLUX_URL")
    ] = "http://127.0.0.1:8086",
    influx_database: Annotated[
        str, typer.Option("--influx-database", envvar="RENKEI_INFLUX_DATABASE")
    ] = "renkei",
    influx_user: Annotated[
        str | None, typer.Option("--influx-user", envvar="RENKEI_INFLUX_USERNAME")
    ] = None,
    influx_password: Annotated[
        str | None, typer.Option("--influx-password", envvar="RENKEI_INFLUX_PASSWORD")
    ] = None,
    influx_token: Annotated[
        str | None,
        typer.Option("--influx-token", envvar="RENKEI_INFLUX_TOKEN", help="InfluxDB 2.x/3.x"),
    ] = None,
) -> None:
    """Run every panel query (All selected) and evaluate every alert rule now.

    Each line says "ok (data)", "ok, no data yet" (a valid query, nothing stored yet: not
    a failure) or "BROKEN QUERY". Exit 0: no broken query; 1: at least one; 2: InfluxDB
    cannot be asked at all (unreachable, credentials, no such database, bad options).
    """
    from renkei.core.errors import ConfigError, StoreUnavailable
    from renkei.dashboards.verify import check_server, run_alerts, run_panels

    now_ms = time.time_ns() // 1_000_000
    counts = {"ok": 0, "no data": 0, "broken": 0}
    try:
        run = check_server(
            influx_url,
            influx_database,
            token=influx_token,
            username=influx_user,
            password=influx_password,
        )
        for check in itertools.chain(
            run_panels(run, now_ms=now_ms), run_alerts(run, now_ms=now_ms)
        ):
            counts[check.outcome] += 1
            typer.echo(check.line)
    except (ConfigError, StoreUnavailable) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(
        f"{counts['ok']} ok with data, {counts['no data']} ok with no data yet, "
        f"{counts['broken']} broken"
    )
    if counts["broken"]:
        raise typer.Exit(1)
