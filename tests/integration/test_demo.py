"""``renkei demo``: the main job runs unattended and stops cleanly, with and without data."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.services import REPO
from renkei.cloud.store.sqlite import SqliteStore
from tests.datasets import require_data_dir

pytestmark = pytest.mark.slow


def _run_demo(tmp_path: Path, env_extra: dict[str, str], seconds: int) -> str:
    env = dict(os.environ, COLUMNS="200", **env_extra)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "renkei.cli",
            "demo",
            "--duration",
            str(seconds),
            "--state-dir",
            str(tmp_path / "state"),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=seconds + 90,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "Demo stopped cleanly." in out
    assert "Traceback" not in out, out[-3000:]
    return out


def test_demo_with_real_datasets(tmp_path: Path) -> None:
    data_dir = require_data_dir()
    out = _run_demo(tmp_path, {"RENKEI_DATA_DIR": str(data_dir)}, 15)
    for machine in ("pump-1", "machine-7", "imm-265995", "imm-sim-1"):
        assert machine in out
    assert "dead letters     0" in out
    # Real data reached the embedded store through the embedded broker and the ingest.
    store = SqliteStore(path=tmp_path / "state" / "timeseries.sqlite3")
    try:
        assert store.count("telemetry", "current_A", where={"machine": "pump-1"}) > 0
        assert store.count("telemetry", "machine_temperature") > 0
        assert store.count("shot", "weight_g") >= 0
        assert store.count("features", "vib_rms_g", where={"machine": "imm-sim-1"}) > 0
        assert store.count("anomaly", "score") > 0
        assert store.count("gateway_state", "online") >= 4
    finally:
        store.close()


def test_demo_without_datasets_runs_the_simulator(tmp_path: Path) -> None:
    empty = tmp_path / "no-data"
    empty.mkdir()
    out = _run_demo(tmp_path, {"RENKEI_DATA_DIR": str(empty / "missing")}, 8)
    assert "Datasets not found" in out
    assert "imm-sim-1" in out
    assert "pump-1" not in out
