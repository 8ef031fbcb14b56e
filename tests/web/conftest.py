"""Fixtures of the web page tests: a live API on a temp registry and one headless Chromium.

``live`` is a :class:`tests.api.rig.ApiRig` (registry seeding, keys, fixed clock) whose app
is served for real by uvicorn on a free loopback port (``live.url``). ``browser`` is one
Chromium for the whole session; ``page`` hands it to a test with a blank tab (each test's
server has its own port, so its own origin and an empty ``sessionStorage``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.api.rig import ApiRig
from tests.web.harness import Browser, LiveServer


@dataclass
class Live:
    """A seeded API served on loopback."""

    rig: ApiRig
    server: LiveServer

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    """The API (fixed clock, temp SQLite registry) served by uvicorn on a free port."""
    rig = ApiRig(tmp_path)
    server = LiveServer(rig.app)
    server.start()
    try:
        yield Live(rig, server)
    finally:
        server.stop()
        rig.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the session (fails in CI, skips elsewhere, if absent)."""
    b = Browser()
    try:
        yield b
    finally:
        b.quit()


@pytest.fixture
def page(browser: Browser) -> Iterator[Browser]:
    """The session's browser on a blank tab with an empty console log."""
    browser.reset()
    yield browser
    browser.reset()
