"""Fixtures of the API tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.rig import ApiRig


@pytest.fixture
def rig(tmp_path: Path, registry_url: str) -> Iterator[ApiRig]:
    """A fresh API on a fresh registry (SQLite, then PostgreSQL: ``registry_url``) with the
    clock at :data:`tests.api.rig.NOW`."""
    r = ApiRig(tmp_path, database_url=registry_url)
    try:
        yield r
    finally:
        r.close()
