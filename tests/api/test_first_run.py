"""First run: ``renkei cloud init`` on an empty registry, then a real ``renkei cloud api``.

The commands run as a user runs them (``python -m renkei.cli``, subprocesses); the key
they print must authenticate against the API process started on the same temp SQLite
registry. Re-running must not create a second admin.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from renkei.cloud.cli import app as cloud_app
from renkei.cloud.registry import ApiCredential, Firm, Role, Site, make_engine, session_scope
from tests.proxy_services import ApiServer

KEY = re.compile(r"\brk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}\b")
INIT = [
    "--firm-id",
    "acme",
    "--firm-name",
    "Acme 工業",
    "--region",
    "kansai",
    "--site-name",
    "本社工場",
    "--latitude",
    "34.68",
    "--longitude",
    "135.60",
]


def renkei(db: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``renkei ARGS`` with the registry at ``db`` and no stray RENKEI_*/locale variables."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("RENKEI_", "LC_", "LANG"))}
    return subprocess.run(
        [sys.executable, "-m", "renkei.cli", *args],
        env=base | {"RENKEI_API_DATABASE_URL": f"sqlite:///{db}", "COLUMNS": "200"} | env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def in_process(db: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, str, str]:
    """``renkei cloud init ARGS`` in this process: (exit code, stdout, stderr)."""
    monkeypatch.setenv("RENKEI_API_DATABASE_URL", f"sqlite:///{db}")
    result = CliRunner().invoke(cloud_app, ["init", *args])
    return result.exit_code, result.stdout, result.stderr


def counts(db: Path) -> tuple[int, int, int]:
    """(firms, sites, credentials) in the registry at ``db``."""
    engine = make_engine(f"sqlite:///{db}")
    try:
        with session_scope(engine) as s:
            return tuple(  # type: ignore[return-value]
                s.scalar(select(func.count()).select_from(t)) for t in (Firm, Site, ApiCredential)
            )
    finally:
        engine.dispose()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path / "api"


@pytest.fixture
def db(workdir: Path) -> Path:
    workdir.mkdir()
    return workdir / "registry.sqlite3"  # where ApiServer's registry is


@pytest.fixture
def api(workdir: Path, db: Path) -> Iterator[ApiServer]:
    """``renkei cloud api`` on the registry at ``db`` (start it after ``init``)."""
    server = ApiServer(workdir=workdir, env={})
    yield server
    server.stop()


def test_init_creates_one_firm_site_and_admin_key_that_signs_in(db: Path, api: ApiServer) -> None:
    done = renkei(db, "cloud", "init", *INIT, "--lang", "en")
    assert done.returncode == 0, done.stderr
    keys = KEY.findall(done.stdout)
    assert len(keys) == 1, done.stdout
    key = keys[0]
    assert counts(db) == (1, 1, 1)
    engine = make_engine(f"sqlite:///{db}")
    with session_scope(engine) as s:
        cred = s.scalars(select(ApiCredential)).one()
        assert cred.role is Role.ADMIN and cred.firm_id == "acme"
        assert key.split("_")[2] not in cred.secret_sha256  # only the hash is stored
        site = s.scalars(select(Site)).one()
        assert (site.id, site.name, site.region) == ("acme-s1", "本社工場", "kansai")
    engine.dispose()
    # How to sign in: the page, the header, the docs.
    assert "/app/" in done.stdout and "Authorization: Bearer" in done.stdout
    assert "/docs" in done.stdout

    api.start()
    sites = f"{api.url}/api/v1/firms/acme/sites"
    r = httpx.get(sites, headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert r.status_code == 200, r.text
    assert [s["id"] for s in r.json()] == ["acme-s1"]
    assert httpx.get(sites, timeout=10).status_code == 401
    bad = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    assert (
        httpx.get(sites, headers={"Authorization": f"Bearer {bad}"}, timeout=10).status_code == 401
    )


def test_rerun_refuses_and_creates_no_second_admin(db: Path) -> None:
    assert renkei(db, "cloud", "init", *INIT).returncode == 0
    again = renkei(db, "cloud", "init", *INIT, "--lang", "en")
    assert again.returncode == 1
    assert again.stderr.count("\n") == 1, again.stderr
    assert "already holds 1 firm" in again.stderr and "--extra-admin-key" in again.stderr
    assert not KEY.search(again.stdout + again.stderr)
    assert counts(db) == (1, 1, 1)
    # First-start scripts: nothing to do, success.
    quiet = renkei(db, "cloud", "init", "--if-empty", *INIT)
    assert quiet.returncode == 0, quiet.stderr
    assert counts(db) == (1, 1, 1)
    # An extra admin key only when asked for by name.
    extra = renkei(db, "cloud", "init", "--extra-admin-key", "--firm-id", "acme")
    assert extra.returncode == 0, extra.stderr
    assert len(KEY.findall(extra.stdout)) == 1
    assert counts(db) == (1, 1, 2)
    unknown = renkei(db, "cloud", "init", "--extra-admin-key", "--firm-id", "nope")
    assert unknown.returncode == 2 and "--firm-id" in unknown.stderr
    assert counts(db) == (1, 1, 2)


def test_init_speaks_japanese(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANG", "ja_JP.UTF-8")
    for name in ("LC_ALL", "LC_MESSAGES", "RENKEI_LANG"):
        monkeypatch.delenv(name, raising=False)
    code, out, err = in_process(db, monkeypatch, *INIT)
    assert code == 0, err
    assert "管理者 API キー" in out and "サインイン" in out
    code, out, err = in_process(db, monkeypatch, *INIT, "--lang", "ja")
    assert code == 1 and "既に 1 社" in err


def test_admin_token_from_env_makes_a_known_key_that_is_never_printed(
    db: Path, api: ApiServer
) -> None:
    token = "Zq7" + "x9Lm" * 10
    done = renkei(db, "cloud", "init", "--if-empty", *INIT, RENKEI_INIT_ADMIN_TOKEN=token)
    assert done.returncode == 0, done.stderr
    assert token not in done.stdout + done.stderr
    assert counts(db) == (1, 1, 1)
    second = renkei(db, "cloud", "init", "--if-empty", *INIT, RENKEI_INIT_ADMIN_TOKEN=token)
    assert second.returncode == 0 and counts(db) == (1, 1, 1)  # idempotent first start
    api.start()
    r = httpx.get(
        f"{api.url}/api/v1/firms/acme",
        headers={"Authorization": f"Bearer rk_init_{token}"},
        timeout=10,
    )
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    ("change", "option"),
    [
        ({"--firm-id": "a b"}, "--firm-id"),
        ({"--latitude": "95"}, "--latitude"),
        ({"--longitude": "-181"}, "--longitude"),
        ({"--firm-name": ""}, "--firm-name"),
        ({"--lang": "fr"}, "--lang"),
    ],
)
def test_bad_option_is_one_line_naming_it(
    db: Path, monkeypatch: pytest.MonkeyPatch, change: dict[str, str], option: str
) -> None:
    args = dict(zip(INIT[::2], INIT[1::2], strict=True)) | change
    code, _out, err = in_process(db, monkeypatch, *[x for kv in args.items() for x in kv])
    assert code == 2
    assert err.count("\n") == 1 and option in err, err
    assert not db.exists()  # checked before the registry is touched


def test_short_admin_token_is_refused_without_echoing_it(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = in_process(db, monkeypatch, *INIT, "--admin-token", "short-secret")
    assert code == 2 and "--admin-token" in err
    assert "short-secret" not in out + err and err.count("\n") == 1


def test_unreachable_registry_is_one_line_without_the_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RENKEI_API_DATABASE_URL", "postgresql+psycopg://u:Pw9secretX@127.0.0.1:1/r")
    result = CliRunner().invoke(cloud_app, ["init", *INIT])
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "registry database" in result.stderr
    assert "Pw9secretX" not in result.stdout + result.stderr
