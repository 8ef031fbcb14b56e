"""``renkei models commission``: a model for one machine from its own recent telemetry.

::

    renkei models commission --firm acme --site osaka --machine pump-1 \\
        --start 2026-03-09T10:34:33Z --end 2026-03-09T10:44:00Z \\
        --influx http://influxdb:8086 --database renkei --key ~/.renkei/model-signing.pem \\
        [--auto] [--yes] [--deploy --to site:osaka --canary 1]

Steps (each in its module of :mod:`renkei.models.commission`): read the rows
(:mod:`~renkei.models.commission.query`), choose the period (``--auto``) and check it
(:mod:`~renkei.models.commission.decision`), fit and threshold
(:mod:`~renkei.models.commission.fit`), write and sign
(:mod:`~renkei.models.commission.export`), then with ``--deploy`` publish the signed
directory and start a canary deployment through the registry commands
(:mod:`renkei.models.registry_cli`: ``publish`` then ``deploy``).

Exit codes: 0 built (and deployed); 1 refused (every issue listed with its kind, channels
and UTC range), not confirmed, or a failed deployment; 2 bad options or no signing key;
3 deployment still running after ``--wait-timeout``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Final

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from renkei.cloud.cli_options import (
    InfluxDatabase,
    InfluxPassword,
    InfluxToken,
    InfluxUrl,
    InfluxUsername,
)
from renkei.cloud.store import StoreError, influx_settings_from_options
from renkei.core import signing
from renkei.core.errors import ConfigError
from renkei.models.commission.decision import (
    CommissionRefused,
    Decision,
    choose_auto_period,
    decide,
    shift_finding,
)
from renkei.models.commission.export import CommissionInfo, export_commissioned
from renkei.models.commission.fit import CommissionFit, fit_commission
from renkei.models.commission.query import (
    FeatureTable,
    MachineRef,
    QueryError,
    RowKind,
    fetch_rows,
    iso_utc,
    parse_utc,
)
from renkei.models.commission.threshold import MIN_HOLDOUT_ROWS

__all__ = ["HOLDOUT_FRACTION", "MEAN_ROWS", "commission"]

HOLDOUT_FRACTION: Final = 0.25
"""Share of the period held back for the threshold (the last rows; never fitted)."""
MEAN_ROWS: Final = 5
"""Default trailing-mean length of the inputs, rows. Chosen after comparing 1, 3, 5 and 10
on SKAB valve1/1.csv with its labels (models/RESULTS.md, "Commissioning"): per-row
features at 1 s alarm on 3 % of the valve-closure rows, 5-row means on 75 %."""
_AUTO_LOOKBACK_H: Final = 168.0


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


@contextmanager
def _bar(description: str) -> Iterator[Callable[[int, int], None]]:
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        transient=True,
    ) as progress:
        task = progress.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=max(total, 1))

        yield update


def _decide(table: FeatureTable) -> Decision:
    return decide(table, min_holdout_rows=MIN_HOLDOUT_ROWS, holdout_fraction=HOLDOUT_FRACTION)


def _confirmed(lines: list[str], yes: bool) -> bool:
    if not lines:
        return True
    typer.echo("The period needs confirmation:")
    for ln in lines:
        typer.echo(f"  - {ln}")
    if yes:
        typer.echo("accepted (--yes)")
        return True
    if not sys.stdin.isatty():
        return False
    return typer.confirm("Commission on this period anyway?", default=False)


def commission(
    firm: Annotated[str, typer.Option("--firm", help="Firm id (tag `firm` in InfluxDB).")],
    site: Annotated[str, typer.Option("--site", help="Site id (tag `site`).")],
    machine: Annotated[str, typer.Option("--machine", help="Machine id (tag `machine`).")],
    start: Annotated[
        str | None, typer.Option("--start", help="Start of the normal period, ISO 8601 UTC.")
    ] = None,
    end: Annotated[
        str | None,
        typer.Option("--end", help="End of the period (exclusive), ISO 8601 UTC; default now."),
    ] = None,
    auto: Annotated[
        bool,
        typer.Option(
            "--auto",
            help="Choose the most recent clean stretch of at least --auto-rows rows inside "
            "--start..--end (default: the 7 days before --end).",
        ),
    ] = False,
    auto_rows: Annotated[
        int,
        typer.Option("--auto-rows", min=4 * MIN_HOLDOUT_ROWS, help="Rows of an --auto stretch."),
    ] = 600,
    rows: Annotated[
        str, typer.Option("--rows", help="Row kind: window (measurement features) or shot.")
    ] = "window",
    area: Annotated[str | None, typer.Option("--area", help="Also match tag `area`.")] = None,
    line: Annotated[str | None, typer.Option("--line", help="Also match tag `line`.")] = None,
    target_alarms_per_day: Annotated[
        float,
        typer.Option("--target-alarms-per-day", min=1e-6, help="False-alarm onsets/day allowed."),
    ] = 1.0,
    mean_rows: Annotated[
        int,
        typer.Option(
            "--mean-rows",
            min=1,
            help="Model inputs = trailing means over this many rows (1 = the rows as stored).",
        ),
    ] = MEAN_ROWS,
    window_s: Annotated[
        float | None,
        typer.Option("--window-s", help="Window length of the rows, s (default: their spacing)."),
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Model name (default commissioned-MACHINE).")
    ] = None,
    version: Annotated[str, typer.Option("--version", help="Model version (semver).")] = "1.0.0",
    out: Annotated[
        Path | None, typer.Option("--out", help="Model directory (default commissioned/NAME).")
    ] = None,
    key: Annotated[
        Path | None,
        typer.Option("--key", help="Private signing key (default: RENKEI_MODEL_SIGNING_KEY)."),
    ] = None,
    yes: Annotated[
        bool, typer.Option("--yes", help="Accept findings that need confirmation.")
    ] = False,
    influx: InfluxUrl = "http://127.0.0.1:8086",
    database: InfluxDatabase = "renkei",
    token: InfluxToken = None,
    username: InfluxUsername = None,
    password: InfluxPassword = None,
    deploy: Annotated[
        bool, typer.Option("--deploy", help="Publish and start a canary deployment (--to).")
    ] = False,
    to: Annotated[
        str | None, typer.Option("--to", help="Deployment target: gateway:ID, site:ID, group:NAME.")
    ] = None,
    canary: Annotated[int, typer.Option("--canary", help="Gateways in the canary wave.")] = 1,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Wait for the outcome.")] = True,
    wait_timeout: Annotated[float, typer.Option("--wait-timeout")] = 600.0,
    api: Annotated[
        str, typer.Option("--api", envvar="RENKEI_API_URL", help="Base URL of the Renkei API.")
    ] = "http://127.0.0.1:8000",
    api_key: Annotated[
        str | None, typer.Option("--api-key", envvar="RENKEI_API_KEY", show_default=False)
    ] = None,
) -> None:
    """Fit a model for ONE machine from its own rows in InfluxDB, check the data first,
    sign it, and optionally hand it to the canary rollout (--deploy)."""
    if rows not in ("window", "shot"):
        raise _fail(f"--rows: expected window or shot, got {rows!r}", 2)
    kind: RowKind = "window" if rows == "window" else "shot"
    if deploy and not to:
        raise _fail("--deploy needs --to (gateway:ID, site:ID, group:NAME or all)", 2)
    if not auto and start is None:
        raise _fail("give --start (and --end) of a normal period, or --auto", 2)
    try:
        private = signing.load_private_key(key)
        settings = influx_settings_from_options(
            url=influx, database=database, token=token, username=username, password=password
        )
        end_ms = parse_utc(end, "--end") if end else int(time.time() * 1000)
        start_ms = (
            parse_utc(start, "--start") if start else end_ms - int(_AUTO_LOOKBACK_H * 3_600_000)
        )
    except (signing.SigningKeyError, ConfigError, QueryError) as exc:
        raise _fail(str(exc), 2) from None
    ref = MachineRef(firm=firm, site=site, machine=machine, area=area, line=line)
    model_name = name or f"commissioned-{machine.lower()}"

    try:
        with _bar(f"reading {kind} rows of {ref}") as update:
            table = fetch_rows(
                settings, ref, kind=kind, start_ms=start_ms, end_ms=end_ms, progress=update
            )
    except (QueryError, StoreError) as exc:
        raise _fail(f"cannot read the rows: {exc}") from None
    typer.echo(
        f"{len(table)} {kind} rows of {ref}, {iso_utc(int(table.t_ms[0]))} .. "
        f"{iso_utc(int(table.t_ms[-1]))}, {len(table.names)} numeric fields"
    )
    how = "marked by the engineer (--start/--end)"
    confirm: list[str] = []

    def fit(decision: Decision) -> CommissionFit:
        return fit_commission(
            decision.table,
            decision.channels,
            holdout_fraction=HOLDOUT_FRACTION,
            target_per_day=target_alarms_per_day,
            min_holdout_rows=MIN_HOLDOUT_ROWS,
            mean_rows=mean_rows,
        )

    def steady(candidate: FeatureTable) -> bool:
        try:
            fitted = fit(_decide(candidate))
        except (CommissionRefused, ValueError):
            return False
        return shift_finding(fitted.holdout_shift, fitted.holdout_t_ms) is None

    try:
        if auto:
            with _bar("searching a clean stretch (--auto)") as update:
                table = choose_auto_period(
                    table, min_rows=auto_rows, accept=steady, progress=update
                )
            how = (
                f"chosen by --auto (latest stretch of ≥ {auto_rows} rows without "
                "short/contamination/gap/drift/shift findings)"
            )
            confirm.append(
                f"--auto chose {iso_utc(int(table.t_ms[0]))} .. {iso_utc(int(table.t_ms[-1]))} "
                f"({len(table)} rows): make sure the machine ran normally then"
            )
        decision = _decide(table)
    except CommissionRefused as exc:
        raise _fail(str(exc)) from None
    try:
        fitted = fit(decision)
    except ValueError as exc:
        raise _fail(f"commissioning refused: {exc}") from None
    confirm += list(decision.confirm)
    shift = shift_finding(fitted.holdout_shift, fitted.holdout_t_ms)
    if shift is not None:
        confirm.append(shift)
    if not _confirmed(confirm, yes):
        raise _fail("not confirmed: pass --yes to accept these findings, or choose another period")
    w = None
    if kind == "window":
        w = window_s if window_s is not None else round(table.spacing_s(), 3)
    model_dir = out or Path("commissioned") / model_name
    info = CommissionInfo(
        machine=ref,
        kind=kind,
        database=settings.database,
        start_ms=int(table.t_ms[0]),
        end_ms=int(table.t_ms[-1]),
        how=how,
        confirmed=tuple(confirm),
    )
    try:
        manifest = export_commissioned(
            model_dir,
            name=model_name,
            version=version,
            fitted=fitted,
            decision=decision,
            info=info,
            window_s=w,
            key=private,
        )
    except ValueError as exc:  # pydantic.ValidationError: name, version, window_s
        raise _fail(f"cannot write the model: {exc}", 2) from None
    thr = fitted.threshold
    typer.echo(
        f"{manifest.name} {manifest.version}: {len(fitted.channels)} channels "
        f"{list(fitted.channels)}, {fitted.fit_rows} fit + {fitted.holdout_rows} held-back "
        f"rows, threshold {thr.threshold:.6g} (≤ {thr.target_per_day:g} alarms/day; "
        f"held-back onsets {thr.holdout_onsets}), signed by {signing.key_id(private)} -> "
        f"{model_dir}"
    )
    if deploy:
        _hand_to_rollout(
            model_dir,
            key,
            f"{manifest.name}@{manifest.version}",
            to or "",
            canary,
            wait,
            wait_timeout,
            api,
            api_key,
        )


def _hand_to_rollout(
    model_dir: Path,
    key: Path | None,
    ref: str,
    to: str,
    canary: int,
    wait: bool,
    wait_timeout: float,
    api: str,
    api_key: str | None,
) -> None:
    """``renkei models publish`` then ``renkei models deploy --canary`` (same code)."""
    from renkei.models import registry_cli

    registry_cli.publish(model_dir, key=key, write_signature=False, api=api, api_key=api_key)
    registry_cli.deploy(
        ref,
        to=to,
        canary=canary,
        timeout=None,
        firm=None,
        wait=wait,
        wait_timeout=wait_timeout,
        api=api,
        api_key=api_key,
    )
