"""The shared datasets folder for a test: present, or the test is skipped (failed in CI).

The lookup itself (``RENKEI_DATA_DIR``, else ``shared/datasets`` beside an ancestor of the
repository) is production code: :func:`renkei.edge.sources.datasets.find_data_dir`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from renkei.edge.sources.datasets import find_data_dir, missing_data_dir_message

__all__ = ["require_data_dir"]


def require_data_dir() -> Path:
    """Return the datasets folder for a test, or fail/skip the test if it is missing.

    Calls ``pytest.fail`` when the environment variable ``CI`` is set (data must be present
    in CI) and ``pytest.skip`` otherwise; the message names ``RENKEI_DATA_DIR``.
    """
    path = find_data_dir()
    if path is not None:
        return path
    message = missing_data_dir_message()
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)
