"""The gateway's credentials file (0600, atomic, refused when too open), its watch (a
rewritten file is noticed once, expiry logged once naming the user) and the enrolment
failure limiter (sliding minute per address). Clocks are passed in."""

from __future__ import annotations

import logging
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from renkei.cloud.api.routers.gateway_enrolment import FailureLimiter
from renkei.edge.credentials import (
    CredentialsError,
    CredentialsWatch,
    GatewayCredentialsFile,
    expiry_problem,
    read_credentials,
    write_credentials,
)

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def _creds(user: str, password: str, expires: datetime | None = None) -> GatewayCredentialsFile:
    return GatewayCredentialsFile(
        username=user, password=SecretStr(password), expires_at=expires, broker_url=None
    )


def test_file_is_0600_atomic_and_refused_when_others_can_read(tmp_path: Path) -> None:
    path = tmp_path / "etc" / "mqtt.json"
    write_credentials(path, _creds("gw-a", "s3cret", T0))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_credentials(path) == _creds("gw-a", "s3cret", T0)
    assert [p.name for p in path.parent.iterdir()] == ["mqtt.json"]  # no temporary left
    path.chmod(0o640)
    with pytest.raises(CredentialsError, match="mode 0640 lets others read") as info:
        read_credentials(path)
    assert "s3cret" not in str(info.value)
    path.chmod(0o600)
    path.write_text('{"username": "gw-a"}')
    with pytest.raises(CredentialsError, match=r"not a credentials file \(bad: password\)"):
        read_credentials(path)
    with pytest.raises(CredentialsError, match="enrol the gateway first"):
        read_credentials(tmp_path / "missing.json")


def test_expiry_names_the_user_and_says_expired() -> None:
    assert expiry_problem(_creds("gw-a", "p"), T0) is None
    assert expiry_problem(_creds("gw-a", "p", T0), T0 - timedelta(seconds=1)) is None
    problem = expiry_problem(_creds("gw-a", "p", T0), T0)
    assert problem is not None and problem.startswith(
        "MQTT user 'gw-a': credentials expired at 2026-12-07T09:00:00+00:00"
    )


def test_watch_notices_a_rotation_once_and_logs_expiry_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "mqtt.json"
    first = _creds("gw-a", "old", T0)
    write_credentials(path, first)
    clock = {"now": T0 - timedelta(hours=1), "mono": 0.0}
    watch = CredentialsWatch(
        path=path,
        current=first,
        now=lambda: clock["now"],  # type: ignore[arg-type,return-value]
        monotonic=lambda: clock["mono"],  # type: ignore[arg-type,return-value]
    )
    assert watch.poll() is None
    write_credentials(path, _creds("gw-a.r1", "new", T0 + timedelta(days=90)))
    assert watch.poll() is None  # throttled: at most once a second
    clock["mono"] = 1.0
    fresh = watch.poll()
    assert fresh is not None and fresh.username == "gw-a.r1"
    clock["mono"] = 2.0
    assert watch.poll() is None  # the same file again: nothing new

    caplog.set_level(logging.ERROR, logger="renkei.edge.credentials")
    clock["now"] = T0 + timedelta(days=90)
    for i in range(3, 6):
        clock["mono"] = float(i)
        assert watch.poll() is None
    expired = [r for r in caplog.records if "expired" in r.getMessage()]
    assert len(expired) == 1 and "MQTT user 'gw-a.r1'" in expired[0].getMessage()
    assert "new" not in caplog.text


def test_failure_limiter_is_a_sliding_minute_per_address() -> None:
    limiter = FailureLimiter(limit=2)
    for _ in range(2):
        assert limiter.retry_after_s("10.0.0.1", T0) == 0
        limiter.failed("10.0.0.1", T0)
    assert limiter.retry_after_s("10.0.0.1", T0 + timedelta(seconds=20)) == 40
    assert limiter.retry_after_s("10.0.0.2", T0) == 0  # another address is not affected
    assert limiter.retry_after_s("10.0.0.1", T0 + timedelta(seconds=60)) == 0
