"""renkei.core.progress.bars: silent (the no-op reporter) unless forced or on a terminal;
when drawn, one bar per task with its total on stderr, stdout untouched."""

from __future__ import annotations

import pytest

from renkei.core.progress import NO_PROGRESS, bars


def test_bars_are_silent_without_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    with bars() as progress:
        assert progress is NO_PROGRESS
        progress.task("points", "time-series points", 10)
        progress.advance("points", 10)
        progress.advance("unknown")  # never declared: ignored, not an error
    assert capsys.readouterr() == ("", "")


def test_bars_draw_each_task_with_its_total_when_forced(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RENKEI_PROGRESS", "1")
    with bars() as progress:
        assert progress is not NO_PROGRESS
        progress.task("tables", "registry tables", 3)
        progress.task("points", "time-series points", None)
        for _ in range(3):
            progress.advance("tables")
        progress.advance("points", 1234)
        progress.advance("unknown")
    out, err = capsys.readouterr()
    assert out == ""
    assert "registry tables" in err and "3/3" in err
    assert "time-series points" in err and "1234" in err
