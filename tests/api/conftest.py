"""Fixtures of the API tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.rig import ApiRig
from tests.notify_servers import RecordingServer, SmtpSink


@pytest.fixture
def rig(tmp_path: Path, registry_url: str) -> Iterator[ApiRig]:
    """A fresh API on a fresh registry (SQLite, then PostgreSQL: ``registry_url``) with the
    clock at :data:`tests.api.rig.NOW`."""
    r = ApiRig(tmp_path, database_url=registry_url)
    try:
        yield r
    finally:
        r.close()


@pytest.fixture
def line() -> Iterator[RecordingServer]:
    """A recording HTTP server standing in for the LINE Messaging API (and Slack)."""
    s = RecordingServer()
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    """A real SMTP server on loopback (aiosmtpd) that keeps every message."""
    s = SmtpSink()
    try:
        yield s
    finally:
        s.close()
