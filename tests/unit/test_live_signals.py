"""The shared live-source config: SignalMap, Secret, ShotsConfig, LinkConfig, Backoff, key
paths of live-source errors in the gateway config, and check_signal_names."""

from __future__ import annotations

import random
import threading
from pathlib import Path
from typing import Any, Literal

import pytest
import yaml
from pydantic import Field, ValidationError

from renkei.edge.config import ConfigError, load_config
from renkei.edge.config.load import _check_field_names, _key_path
from renkei.edge.sources.live import (
    Backoff,
    LinkConfig,
    LiveSourceConfig,
    Secret,
    SecretError,
    ShotsConfig,
    SignalMap,
)
from renkei.edge.sources.live.signals import QUALITY_FIELDS, SHOT_ROW_FIELDS, check_signal_names

LIVE_TYPES = ("opcua", "modbus", "slmp", "mtconnect", "sparkplug")

# ------------------------------------------------------------------ SignalMap


@pytest.mark.parametrize(
    "name", ["time", "firm", "_x", *SHOT_ROW_FIELDS, *QUALITY_FIELDS, "9a", "a-b", "a" * 65]
)
def test_reserved_or_malformed_signal_names_refused(name: str) -> None:
    with pytest.raises(ValidationError):
        SignalMap(name=name)


def test_signal_map_defaults_and_finite_scale() -> None:
    s = SignalMap(name="barrel_temp_zone1_C")
    assert (s.unit, s.scale, s.offset) == ("", 1.0, 0.0)
    for bad in ("nan", "inf", "-inf"):
        with pytest.raises(ValidationError, match="finite"):
            SignalMap(name="a", scale=float(bad))
        with pytest.raises(ValidationError, match="finite"):
            SignalMap(name="a", offset=float(bad))
    with pytest.raises(ValidationError):
        SignalMap(name="a", address=3)  # extra keys refused
    with pytest.raises(ValidationError):
        SignalMap(name="a", unit="u" * 33)


# ------------------------------------------------------------------ Secret


def test_secret_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RENKEI_TEST_PW", "hunter2")
    assert Secret(env="RENKEI_TEST_PW").read() == "hunter2"
    monkeypatch.setenv("RENKEI_TEST_PW", "")
    with pytest.raises(SecretError, match="RENKEI_TEST_PW is not set"):
        Secret(env="RENKEI_TEST_PW").read()
    monkeypatch.delenv("RENKEI_TEST_PW")
    with pytest.raises(SecretError, match="RENKEI_TEST_PW"):
        Secret(env="RENKEI_TEST_PW").read()


def test_secret_from_file_and_errors_never_show_the_value(tmp_path: Path) -> None:
    f = tmp_path / "pw"
    f.write_text("s3cret-value\n", encoding="utf-8")
    assert Secret(file=f).read() == "s3cret-value"
    missing = tmp_path / "nope"
    with pytest.raises(SecretError, match="cannot read secret file .*nope"):
        Secret(file=missing).read()
    empty = tmp_path / "empty"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(SecretError, match="is empty"):
        Secret(file=empty).read()
    binary = tmp_path / "bin"
    binary.write_bytes(b"pw\xff\xfesecret-bytes")
    with pytest.raises(SecretError, match="not UTF-8") as err:
        Secret(file=binary).read()
    assert "secret-bytes" not in str(err.value) and "xff" not in str(err.value)
    with pytest.raises(SecretError, match="cannot read secret file"):
        Secret(file=tmp_path).read()  # a directory


def test_secret_needs_exactly_one_source() -> None:
    with pytest.raises(ValidationError, match="exactly one"):
        Secret()
    with pytest.raises(ValidationError, match="exactly one"):
        Secret(env="A", file=Path("/x"))
    with pytest.raises(ValidationError):
        Secret(env="not a name")


# ------------------------------------------------------------------ Shots, Link


def test_shots_need_exactly_one_trigger() -> None:
    assert ShotsConfig(counter="n").trigger == "n"
    assert ShotsConfig(cycle_signal="c").trigger == "c"
    for kw in ({}, {"counter": "n", "cycle_signal": "c"}):
        with pytest.raises(ValidationError, match="exactly one"):
            ShotsConfig(**kw)


def test_link_config_bounds() -> None:
    with pytest.raises(ValidationError, match="must be <= reconnect_max_s"):
        LinkConfig(reconnect_min_s=10, reconnect_max_s=5)
    with pytest.raises(ValidationError):
        LinkConfig(reconnect_min_s=0)
    with pytest.raises(ValidationError):
        LinkConfig(timeout_s=0)


# ------------------------------------------------------------------ Backoff


def test_backoff_doubles_to_the_cap_within_jitter_and_resets() -> None:
    b = Backoff(min_s=1, max_s=10, jitter=0.2, rng=random.Random(1))
    delays = [b.next_delay() for _ in range(8)]
    bases = [1, 2, 4, 8, 10, 10, 10, 10]
    for d, base in zip(delays, bases, strict=True):
        assert base * 0.8 <= d <= min(10, base * 1.2)
    assert b.attempts == 8
    b.reset()
    assert 0.8 <= b.next_delay() <= 1.2
    assert b.attempts == 1


def test_backoff_never_exceeds_max_and_never_zero() -> None:
    b = Backoff(min_s=0.5, max_s=3, jitter=0.99, rng=random.Random(7))
    ds = [b.next_delay() for _ in range(1000)]
    assert max(ds) <= 3 and min(ds) > 0


def test_backoff_bad_bounds_and_wait_returns_on_stop() -> None:
    for lo, hi in ((0.0, 1.0), (2.0, 1.0)):
        with pytest.raises(ValueError, match="min_s"):
            Backoff(min_s=lo, max_s=hi)
    with pytest.raises(ValueError, match="jitter"):
        Backoff(min_s=1, max_s=2, jitter=1)
    stop = threading.Event()
    stop.set()
    assert Backoff(min_s=100, max_s=100).wait(stop) is True
    assert Backoff(min_s=0.001, max_s=0.001).wait(threading.Event()) is False


# ------------------------------------------------------------------ gateway config


def _gateway(source: dict[str, Any]) -> dict[str, Any]:
    return {
        "gateway_id": "gw-live",
        "firm": "acme",
        "site": "plant-1",
        "machines": [{"id": "m1", "area": "a", "line": "l", "source": source}],
    }


def _problems(tmp_path: Path, data: dict[str, Any]) -> dict[str, str]:
    path = tmp_path / "gw.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    return dict(err.value.problems)


@pytest.mark.parametrize("kind", LIVE_TYPES)
def test_live_config_errors_name_the_key_path_without_the_type_tag(
    tmp_path: Path, kind: str
) -> None:
    source = {
        "type": kind,
        "signals": [{"name": "a"}, {"name": "b"}, {"name": "readings"}],
        "link": {"reconnect_min_s": -1},
        "max_clock_skew_s": 0,
    }
    problems = _problems(tmp_path, _gateway(source))
    assert "machines[0].source.signals[2].name" in problems
    assert "reserved" in problems["machines[0].source.signals[2].name"]
    assert "machines[0].source.link.reconnect_min_s" in problems
    assert "machines[0].source.max_clock_skew_s" in problems
    assert not any(f"source.{kind}" in p for p in problems)


def test_key_path_skips_only_the_source_tag() -> None:
    loc = ("machines", 0, "source", "modbus", "signals", 2, "name")
    assert _key_path(loc) == "machines[0].source.signals[2].name"
    assert _key_path(("machines", 0, "modbus")) == "machines[0].modbus"


def test_check_signal_names_duplicates_and_shots() -> None:
    shots = ShotsConfig(counter="cnt", values=["a", "x"], stats=["y"])
    assert check_signal_names(["a", "b", "a", "a"], shots) == [
        ("signals[2].name", "signal 'a' is also signals[0]"),
        ("signals[3].name", "signal 'a' is also signals[0]"),
        ("shots.counter", "'cnt' is not one of this source's signals"),
        ("shots.values[1]", "'x' is not one of this source's signals"),
        ("shots.stats[0]", "'y' is not one of this source's signals"),
    ]
    assert check_signal_names(["c"], ShotsConfig(cycle_signal="z")) == [
        ("shots.cycle_signal", "'z' is not one of this source's signals")
    ]
    assert check_signal_names(["a", "b"], None) == []
    clash = ShotsConfig(counter="n", values=["p_max"], stats=["p"])
    assert check_signal_names(["n", "p", "p_max"], clash) == [
        (
            "shots.values[0]",
            "'p_max' is also the shot field shots.stats[0] makes; one would overwrite the other",
        )
    ]


class _TestLive(LiveSourceConfig):
    type: Literal["test"] = "test"
    signals: list[SignalMap] = Field(default_factory=list)


def test_gateway_check_reports_live_name_problems_with_the_machine_path() -> None:
    cfg = _TestLive(
        signals=[SignalMap(name="a"), SignalMap(name="a")], shots=ShotsConfig(counter="n")
    )
    assert _check_field_names("machines[3].source", cfg) == [
        ("machines[3].source.signals[1].name", "signal 'a' is also signals[0]"),
        ("machines[3].source.shots.counter", "'n' is not one of this source's signals"),
    ]
    assert LiveSourceConfig().speed == 1.0
    assert [s.name for s in cfg.signal_maps()] == ["a", "a"]
