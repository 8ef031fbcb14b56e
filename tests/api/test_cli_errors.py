"""Bad settings end in one line naming the variable, the value and what was expected.

Run as a user runs the commands (``python -m renkei.cli``, a subprocess): exit status 2,
one line on stderr, no traceback. Also ``renkei --version``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from renkei.cloud.api.settings import load_api_settings
from renkei.core.errors import ConfigError


def renkei(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("RENKEI_")}
    return subprocess.run(
        [sys.executable, "-m", "renkei.cli", *args],
        env=base
        | {"RENKEI_API_DATABASE_URL": f"sqlite:///{tmp_path / 'r.sqlite3'}", "COLUMNS": "200"}
        | env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )


def test_version_comes_from_the_package_metadata(tmp_path: Path) -> None:
    done = renkei(tmp_path, "--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"renkei {version('renkei')}\n"


@pytest.mark.parametrize(
    ("command", "variable", "value", "expected"),
    [
        (("cloud", "api"), "RENKEI_API_HORIZON_DAYS", "abc", "valid integer"),
        (("cloud", "api"), "RENKEI_API_DEFAULT_WEEKLY_HOURS", "16,16", "JSON array of 7"),
        (("cloud", "api"), "RENKEI_API_PORT", "http", "valid integer"),
        (("cloud", "init", "--if-empty"), "RENKEI_API_SUPPORTER_MIN_FIRMS", "1", ">= 2"),
        (
            ("cloud", "capacity-publish"),
            "RENKEI_API_SUSPECT_OFFLINE_FRACTION",
            "1.5",
            "less than 1",
        ),
        (("cloud", "oee-sync"), "RENKEI_API_SUSPECT_OFFLINE_FRACTION", "1.5", "less than 1"),
    ],
)
def test_bad_variable_is_one_line_and_exit_2(
    tmp_path: Path, command: tuple[str, ...], variable: str, value: str, expected: str
) -> None:
    done = renkei(tmp_path, *command, **{variable: value})
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    line = lines[0]
    expected = expected.replace(">= ", "greater than or equal to ")
    assert variable in line and repr(value) in line and expected in line, line
    assert not (tmp_path / "r.sqlite3").exists()  # nothing was started or written


def test_every_bad_variable_gets_its_line_and_secrets_are_not_quoted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RENKEI_API_HORIZON_DAYS", "5")
    monkeypatch.setenv("RENKEI_API_ZONE_RADIUS_KM", "-1")
    with pytest.raises(ConfigError) as caught:
        load_api_settings()
    assert str(caught.value).splitlines() == [
        "RENKEI_API_HORIZON_DAYS='5': expected greater than or equal to 7",
        "RENKEI_API_ZONE_RADIUS_KM='-1': expected greater than or equal to 0",
    ]
    monkeypatch.delenv("RENKEI_API_HORIZON_DAYS")
    monkeypatch.delenv("RENKEI_API_ZONE_RADIUS_KM")
    with pytest.raises(ConfigError, match=r"^influx_password=<hidden>: expected"):
        load_api_settings(influx_password=["not", "a", "string"])
