"""The gateway-path benchmark (bench/bench_inference.py) plans and runs every committed
artifact: a new model whose inputs the bench cannot compute shows up here, not at bench time."""

from __future__ import annotations

import re

import pytest

from bench.bench_inference import gateway_path
from renkei.models import DEFAULT_ARTIFACTS_DIR


def test_gateway_path_covers_every_artifact(capsys: pytest.CaptureFixture[str]) -> None:
    gateway_path(rows=20, data_dir=None, wanted=set())
    out = capsys.readouterr().out
    names = sorted(p.parent.name for p in DEFAULT_ARTIFACTS_DIR.glob("*/manifest.json"))
    assert len(names) >= 9
    for name in names:
        line = re.search(rf"^\| {re.escape(name)} \|.*$", out, re.M)
        assert line is not None, f"{name} missing from\n{out}"
        assert "skipped" not in line[0], line[0]
        assert re.search(r"\| (real|synthetic)", line[0]), line[0]
    assert "over 2 ms p99" in out
