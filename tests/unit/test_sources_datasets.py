"""Locating the shared datasets folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from renkei.edge.sources.datasets import DATA_DIR_ENV, find_data_dir
from tests.datasets import require_data_dir


def test_env_var_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    assert find_data_dir() == tmp_path


def test_env_var_to_missing_dir_gives_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "missing"))
    assert find_data_dir() is None


def test_walks_up_to_shared_datasets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    (tmp_path / "shared" / "datasets").mkdir(parents=True)
    deep = tmp_path / "main" / "edge" / "sources"
    deep.mkdir(parents=True)
    assert find_data_dir(start=deep) == tmp_path / "shared" / "datasets"


def test_require_fails_in_ci_and_skips_otherwise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "missing"))
    monkeypatch.setenv("CI", "1")
    with pytest.raises(pytest.fail.Exception, match="missing"):
        require_data_dir()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match=DATA_DIR_ENV):
        require_data_dir()


def test_models_default_data_dir_names_the_variable_when_absent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from renkei.models import default_data_dir

    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match=DATA_DIR_ENV):
        default_data_dir()
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    assert default_data_dir() == tmp_path
