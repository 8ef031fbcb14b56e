"""The browser harness itself: a missing Chromium fails in CI and skips elsewhere."""

from __future__ import annotations

import os
import shutil

import pytest

from tests.web import harness


@pytest.fixture
def no_chromium(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    monkeypatch.setattr(shutil, "which", lambda name: None)


@pytest.mark.usefixtures("no_chromium")
@pytest.mark.parametrize("ci", ["true", "1"])
def test_missing_chromium_fails_in_ci(monkeypatch: pytest.MonkeyPatch, ci: str) -> None:
    monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.fail.Exception, match=r"CI=true and .*chromium, chromium-driver"):
        harness.find_chromium()


@pytest.mark.usefixtures("no_chromium")
@pytest.mark.parametrize("ci", [None, "", "false"])
def test_missing_chromium_skips_outside_ci(monkeypatch: pytest.MonkeyPatch, ci: str | None) -> None:
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.skip.Exception, match="apt-get install chromium chromium-driver"):
        harness.find_chromium()
