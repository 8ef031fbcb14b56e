"""Fixtures of the API tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.rig import ApiRig


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[ApiRig]:
    """A fresh API on a temp registry with the clock at :data:`tests.api.rig.NOW`."""
    r = ApiRig(tmp_path)
    try:
        yield r
    finally:
        r.close()
