"""Locate the shared, read-only datasets folder (SKAB, NAB, Kassel CPC, CWRU, C-MAPSS).

Lookup order:

1. the environment variable ``RENKEI_DATA_DIR`` (used as given, even if it does not exist,
   so a wrong setting is reported instead of silently falling back);
2. ``shared/datasets`` next to any ancestor of this file's folder (in the development layout
   ``/work/main/../shared/datasets``).

When nothing is found, :func:`missing_data_dir_message` says why (for the caller's error).
The test suite skips a test that needs the folder when it is missing (fails it in CI).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

__all__ = ["DATA_DIR_ENV", "find_data_dir", "missing_data_dir_message"]

DATA_DIR_ENV: Final = "RENKEI_DATA_DIR"
_RELATIVE: Final = Path("shared") / "datasets"


def find_data_dir(start: Path | None = None) -> Path | None:
    """Return the datasets folder, or ``None`` if it cannot be found.

    Args:
        start: folder to start walking up from (default: this module's folder).

    Returns:
        ``Path(os.environ["RENKEI_DATA_DIR"])`` if that variable is set and names an existing
        directory; otherwise the first ``<ancestor>/shared/datasets`` that is a directory.
        ``None`` if the variable names a missing directory or nothing was found.
    """
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        path = Path(env).expanduser()
        return path if path.is_dir() else None
    here = (start or Path(__file__).resolve().parent).resolve()
    for ancestor in (here, *here.parents):
        candidate = ancestor / _RELATIVE
        if candidate.is_dir():
            return candidate
    return None


def missing_data_dir_message() -> str:
    """Why :func:`find_data_dir` finds nothing, naming ``RENKEI_DATA_DIR`` (for errors).

    Returns:
        ``"datasets folder not found: RENKEI_DATA_DIR='…' is not a directory"`` when the
        variable is set, else a sentence saying it is unset and where ``shared/datasets`` was
        looked for.
    """
    env = os.environ.get(DATA_DIR_ENV)
    where = (
        f"{DATA_DIR_ENV}={env!r} is not a directory"
        if env
        else f"{DATA_DIR_ENV} is unset and no ancestor of {Path(__file__).resolve().parent} "
        f"contains {_RELATIVE}"
    )
    return f"datasets folder not found: {where}"
