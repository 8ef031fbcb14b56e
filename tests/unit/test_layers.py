"""The code's shape, as ARCHITECTURE.md promises it: layers, module size, one import name.

- ``lint-imports`` checks the import contracts in ``pyproject.toml`` (``[tool.importlinter]``):
  CLI and demo > models, dashboards, bench > cloud.api > cloud > edge > core, the
  gateway's and the cloud's inner layers, and that production code never imports the
  tests, the benchmarks or the test harness.
- A production module over :data:`MAX_LINES` lines says at the top of its docstring why
  it is long (``Why this module is long:``), or it is split.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PRODUCTION = ("renkei", "edge", "cloud", "models", "dashboards")
MAX_LINES = 500
REASON = "Why this module is long:"


def test_import_contracts_are_kept() -> None:
    lint_imports = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run(
        [str(lint_imports), "--no-cache"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]


def _production_modules() -> list[Path]:
    files: list[Path] = []
    for top in PRODUCTION:
        for path in sorted((REPO / top).rglob("*.py")):
            if path.is_symlink() or "migrations" in path.parts:
                continue
            if top == "renkei" and path.relative_to(REPO / "renkei").parts[0] in PRODUCTION:
                continue  # the symlinked folders, reached through their real path
            files.append(path)
    return files


def test_long_modules_say_why() -> None:
    unexplained = []
    for path in _production_modules():
        lines = path.read_text(encoding="utf-8").count("\n")
        if lines <= MAX_LINES:
            continue
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        if REASON not in doc:
            unexplained.append(f"{path.relative_to(REPO)} ({lines} lines)")
    assert not unexplained, (
        f"modules over {MAX_LINES} lines without '{REASON}' in their docstring "
        "(split them, or give the reason): " + ", ".join(unexplained)
    )


@pytest.mark.parametrize("forbidden", ["pytest", "hypothesis"])
def test_production_code_does_not_import_test_tools(forbidden: str) -> None:
    offenders = []
    for path in _production_modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            else:
                continue
            if any(n == forbidden or n.startswith(forbidden + ".") for n in names):
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert not offenders, f"production modules import {forbidden}: {offenders}"
