"""``renkei edge`` commands: run a gateway agent, export the config JSON Schema."""

from __future__ import annotations

import json
import logging
import os
import signal
from pathlib import Path
from typing import Annotated

import typer

from renkei.edge.config import ConfigError, json_schema, load_config

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True)

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "firmware-config" / "schema.json"


@app.command()
def run(
    config: Annotated[Path, typer.Option("--config", "-c", help="Gateway YAML config.")],
    duration: Annotated[
        float | None, typer.Option("--duration", help="Stop after this many seconds.")
    ] = None,
    log_level: Annotated[str, typer.Option("--log-level")] = "INFO",
) -> None:
    """Run a gateway agent until SIGINT/SIGTERM (or --duration, or the sources end).

    Exits 2 on a start-up problem (config, outbox, model, source) and 1 when the running
    agent gives up (its publisher keeps failing, or the outbox fails beyond recovery), so
    that systemd's ``Restart=on-failure`` restarts it.
    """
    from renkei.edge.agent import AgentError, GatewayAgent
    from renkei.edge.model.inference import ModelError
    from renkei.edge.sources.base import SourceError
    from renkei.edge.transport.outbox import OutboxError

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        cfg = load_config(config)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    password = None
    if cfg.mqtt.credentials_file is not None:
        from renkei.edge.credentials import CredentialsError, read_credentials

        try:
            creds = read_credentials(cfg.mqtt.credentials_file)
        except CredentialsError as exc:
            typer.echo(f"{config}: {exc}", err=True)
            raise typer.Exit(2) from None
        password = creds.password.get_secret_value()
        cfg = cfg.model_copy(
            update={"mqtt": cfg.mqtt.model_copy(update={"username": creds.username})}
        )
    elif cfg.mqtt.password_env:
        password = os.environ.get(cfg.mqtt.password_env)
        if password is None:
            typer.echo(
                f"{config}: mqtt.password_env: environment variable "
                f"{cfg.mqtt.password_env} is not set",
                err=True,
            )
            raise typer.Exit(2)
    api_key = None
    if cfg.rollout is not None and cfg.rollout.api_key_env:
        api_key = os.environ.get(cfg.rollout.api_key_env)
        if api_key is None:
            typer.echo(
                f"{config}: rollout.api_key_env: environment variable "
                f"{cfg.rollout.api_key_env} is not set",
                err=True,
            )
            raise typer.Exit(2)
    try:
        agent = GatewayAgent(config=cfg, password=password, api_key=api_key)
    except (OutboxError, ModelError, SourceError, OSError) as exc:
        # Start-up problems that are the operator's to fix: say what and where, no traceback.
        typer.echo(f"{config}: cannot start gateway {cfg.gateway_id}: {exc}", err=True)
        raise typer.Exit(2) from None
    signal.signal(signal.SIGTERM, lambda *_: agent.stop())
    signal.signal(signal.SIGINT, lambda *_: agent.stop())
    try:
        stats = agent.run(duration_s=duration)
    except (AgentError, OutboxError) as exc:
        # Exit non-zero so the service manager restarts the agent (Restart=on-failure).
        logging.getLogger("renkei.edge.agent").critical(
            "gateway %s stopped: %s", cfg.gateway_id, exc
        )
        typer.echo(f"gateway {cfg.gateway_id} stopped: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"stopped: {stats.blocks} blocks, {stats.messages_enqueued} messages enqueued",
        err=True,
    )


@app.command()
def enrol(
    config: Annotated[Path, typer.Option("--config", "-c", help="Gateway YAML config.")],
    api: Annotated[str, typer.Option("--api", envvar="RENKEI_API_URL", help="Cloud API base URL.")],
    ca_file: Annotated[
        Path | None, typer.Option("--ca-file", help="CA bundle of an https API.")
    ] = None,
) -> None:
    """Exchange a one-time enrolment (or rotation) token for this gateway's MQTT
    credentials and write them to the config's mqtt.credentials_file (mode 0600).

    The token is read from RENKEI_ENROL_TOKEN or standard input, never from the command
    line. Exit 0 done, 1 refused or the API failed, 2 a bad config or no token."""
    from renkei.edge.credentials import CredentialsError, write_credentials
    from renkei.edge.credentials import enrol as enrol_token

    try:
        cfg = load_config(config)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    target = cfg.mqtt.credentials_file
    if target is None:
        typer.echo(f"{config}: mqtt.credentials_file: not set; say where to write", err=True)
        raise typer.Exit(2)
    token = os.environ.get("RENKEI_ENROL_TOKEN") or typer.get_text_stream("stdin").readline()
    token = token.strip()
    if not token:
        typer.echo("enrol: no token (RENKEI_ENROL_TOKEN or standard input)", err=True)
        raise typer.Exit(2)
    try:
        creds = enrol_token(api, token, verify=str(ca_file) if ca_file else True)
        write_credentials(target, creds)
    except CredentialsError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    expiry = "never" if creds.expires_at is None else creds.expires_at.isoformat()
    typer.echo(
        f"enrol: gateway {cfg.gateway_id}: MQTT user {creds.username} written to {target} "
        f"(mode 0600; expires {expiry}); restart the agent to use it",
        err=True,
    )


@app.command()
def check(
    config: Annotated[Path, typer.Option("--config", "-c", help="Gateway YAML config.")],
) -> None:
    """Validate a gateway config (exit 2 with every problem and its key path)."""
    try:
        cfg = load_config(config)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    typer.echo(
        f"{config}: gateway {cfg.gateway_id}, {len(cfg.machines)} machine(s): "
        + ", ".join(f"{m.id} ({m.source.type})" for m in cfg.machines)
    )


@app.command()
def probe(
    config: Annotated[Path, typer.Option("--config", "-c", help="Gateway YAML config.")],
    machine: Annotated[
        list[str] | None, typer.Option("--machine", "-m", help="Only this machine (repeat).")
    ] = None,
    seconds: Annotated[float, typer.Option("--seconds", min=0.5, max=3600)] = 10.0,
) -> None:
    """Connect the config's live machines (OPC UA, Modbus, SLMP, MTConnect, Sparkplug B)
    for a few seconds and print every signal's last value, unit and readings, and the
    source's events. Nothing is published. Exits 1 if a machine never connected or a
    signal never read a value."""
    from rich.console import Console
    from rich.table import Table

    from renkei.edge.probe import probe as run_probe
    from renkei.edge.sources.base import SourceError

    logging.basicConfig(level="WARNING", format="%(levelname)s %(name)s: %(message)s")
    try:
        cfg = load_config(config)
        results = run_probe(cfg, seconds=seconds, machines=machine or ())
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    except (SourceError, ValueError) as exc:
        typer.echo(f"{config}: {exc}", err=True)
        raise typer.Exit(2) from None
    console = Console()
    ok = True
    for res in results:
        table = Table(title=f"{res.machine} — {res.device}")
        for col in ("signal", "last value", "unit", "readings"):
            table.add_column(col, justify="right" if col != "signal" else "left")
        for sp in res.signals.values():
            ok &= sp.readings > 0
            table.add_row(sp.name, f"{sp.last:.6g}", sp.unit, str(sp.readings))
        console.print(table)
        if res.shots:
            console.print(f"shots: {res.shots}")
        for ev in res.events:
            console.print(f"  {ev}")
        ok &= bool(res.status.get("connects", 0))
    if not results:
        typer.echo(f"{config}: no machine with a live source", err=True)
        raise typer.Exit(2)
    if not ok:
        raise typer.Exit(1)


@app.command()
def schema(
    out: Annotated[Path, typer.Option("--out", help="Where to write the JSON Schema.")] = (
        SCHEMA_PATH
    ),
    check: Annotated[
        bool, typer.Option("--check", help="Fail if the file differs instead of writing it.")
    ] = False,
) -> None:
    """Export the gateway config JSON Schema (default: firmware-config/schema.json)."""
    text = json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
    if check:
        if not out.is_file() or out.read_text() != text:
            typer.echo(f"{out} is out of date; run `renkei edge schema`", err=True)
            raise typer.Exit(1)
        return
    out.write_text(text)
    typer.echo(f"wrote {out}")
