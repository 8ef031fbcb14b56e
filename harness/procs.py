"""Gateway agent and ingest worker as real child processes (``python -m renkei.cli edge run``,
``python -m renkei.cloud.ingest``), started from the repository with its ``PYTHONPATH``, and
stopped with SIGTERM or killed with SIGKILL as a crash would."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from harness.services import REPO

__all__ = ["REPO", "Proc", "ingest_argv", "start_agent", "start_ingest"]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


class Proc:
    """A child process (agent or ingest) that can be stopped or killed."""

    def __init__(self, argv: list[str], log: Path) -> None:
        self.log = log
        with open(log, "ab") as fh:
            self.proc = subprocess.Popen(
                argv,
                stdout=fh,
                stderr=subprocess.STDOUT,
                env=_env(),
                cwd=REPO,
                start_new_session=True,
            )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def terminate(self, timeout_s: float = 30) -> int:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise AssertionError(f"process did not stop on SIGTERM; log:\n{self.tail()}") from None

    def kill9(self) -> None:
        if self.alive():
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)

    def tail(self, n: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])


def start_agent(config: Path, log: Path, *, duration_s: float | None = None) -> Proc:
    argv = [
        sys.executable,
        "-m",
        "renkei.cli",
        "edge",
        "run",
        "--config",
        str(config),
        "--log-level",
        "WARNING",
    ]
    if duration_s is not None:
        argv += ["--duration", str(duration_s)]
    return Proc(argv, log)


def ingest_argv(
    *,
    broker_url: str,
    influx_url: str,
    database: str,
    client_id: str,
    share_group: str | None = "renkei-ingest",
    extra: Sequence[str] = (),
) -> list[str]:
    """Command line of a real ingest process (``python -m renkei.cloud.ingest``)."""
    argv = [
        sys.executable,
        "-m",
        "renkei.cloud.ingest",
        "--broker",
        broker_url,
        "--influx",
        influx_url,
        "--database",
        database,
        "--client-id",
        client_id,
    ]
    argv += ["--share-group", share_group or ""]
    return argv + list(extra)


def start_ingest(
    *,
    broker_port: int,
    influx_url: str,
    database: str,
    log: Path,
    client_id: str = "ingest-1",
    share_group: str | None = "renkei-ingest",
) -> Proc:
    return Proc(
        ingest_argv(
            broker_url=f"mqtt://127.0.0.1:{broker_port}",
            influx_url=influx_url,
            database=database,
            client_id=client_id,
            share_group=share_group,
        ),
        log,
    )
