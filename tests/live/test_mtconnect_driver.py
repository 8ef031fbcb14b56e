"""The ``mtconnect`` driver against a real HTTP MTConnect agent in a subprocess
(:mod:`harness.live.mtconnect_agent`, serving the reference ``VMC-3Axis.xml`` device model).

Values flow in stream and poll mode with units from ``/probe``; ``UNAVAILABLE`` is a bad
reading; a wrapped buffer gives exactly one ``sequence_gap`` with the lost count; an agent
killed and restarted (new instanceId) gives ``agent_restarted`` and a resync; a dropped
stream resumes from the last sequence without loss; conditions become events; a silent
stream is cut by the heartbeat watchdog; XML bombs, XXE and oversize parts are refused
without hanging, and the driver reads on afterwards.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.live.driver_run import DriverRun
from harness.live.mtconnect_agent import AgentProcess
from harness.wait import pause, wait_for
from renkei.edge.sources.live.base import LiveSink, Quality
from renkei.edge.sources.live.mtconnect.config import MtconnectSourceConfig
from renkei.edge.sources.live.mtconnect.driver import MtconnectDriver, make_driver
from renkei.edge.sources.live.source import LiveSourceError
from tests.datasets import require_data_dir

SIGNALS: list[dict[str, Any]] = [
    {"name": "x_pos", "data_item": "x2"},
    {"name": "spindle_rpm", "data_item": "Sspeed"},
    {"name": "y_pos", "type": "position", "sub_type": "actual", "component": "Y"},
    {"name": "spindle_load", "data_item": "Cload"},
    {"name": "z_load", "data_item": "Zload"},
    {
        "name": "execution",
        "data_item": "execution",
        "states": {"ACTIVE": 1, "READY": 0.5, "STOPPED": 0},
    },
    {"name": "system_level", "data_item": "system"},
]


@pytest.fixture
def probe_file() -> Path:
    return require_data_dir() / "mtconnect" / "simulator" / "VMC-3Axis.xml"


@pytest.fixture
def make_agent(tmp_path: Path, probe_file: Path) -> Iterator[Callable[..., AgentProcess]]:
    agents: list[AgentProcess] = []

    def make(**kw: Any) -> AgentProcess:
        a = AgentProcess(probe_file, tmp_path, **kw)
        a.start()
        agents.append(a)
        return a

    yield make
    for a in agents:
        a.kill()


def config(url: str, **kw: Any) -> MtconnectSourceConfig:
    base: dict[str, Any] = {
        "type": "mtconnect",
        "url": url,
        "interval_ms": 50,
        "heartbeat_ms": 500,
        "link": {"reconnect_min_s": 0.1, "reconnect_max_s": 0.3, "timeout_s": 1.0},
        "signals": SIGNALS,
    }
    base.update(kw)
    return MtconnectSourceConfig.model_validate(base)


class Run(DriverRun):
    """The ``mtconnect`` driver of ``cfg`` on its own thread (:class:`DriverRun`)."""

    def __init__(self, cfg: MtconnectSourceConfig) -> None:
        driver = make_driver(cfg)
        assert isinstance(driver, MtconnectDriver)
        self.mtc = driver
        super().__init__(driver)


@pytest.fixture
def runs() -> Iterator[list[Run]]:
    started: list[Run] = []
    yield started
    for r in started:
        r.close()


@pytest.mark.parametrize("mode", ["stream", "poll"])
def test_values_units_and_unavailable_flow(
    mode: str, make_agent: Callable[..., AgentProcess], runs: list[Run]
) -> None:
    agent = make_agent(period_ms=20)
    run = Run(config(agent.url, mode=mode, heartbeat_ms=10_000))
    runs.append(run)
    run.until(lambda: len(run.values("x_pos")) >= 30, "x_pos samples")
    run.until(lambda: len(run.values("execution")) >= 2, "execution events")
    assert run.events_of("source_up")
    xs = run.values("x_pos")
    assert all(r.quality is Quality.GOOD and r.device_time for r in xs[1:])
    assert len({r.value for r in xs}) > 10, "positions change"
    assert [r.t_ms for r in xs] == sorted(r.t_ms for r in xs)
    assert abs(xs[-1].t_ms - time.time() * 1000) < 5000, "observation timestamps are used"
    assert all(r.quality is Quality.GOOD for r in run.values("y_pos")[1:])
    assert {r.value for r in run.values("execution")[1:]} <= {0.0, 0.5, 1.0}
    zl = run.values("z_load")
    assert zl and all(r.quality is Quality.BAD and r.reason == "UNAVAILABLE" for r in zl)
    assert run.units == {
        "x_pos": "MILLIMETER",
        "y_pos": "MILLIMETER",
        "spindle_rpm": "REVOLUTION/MINUTE",
        "spindle_load": "PERCENT",
        "z_load": "PERCENT",
    }
    assert not run.events_of("source_down")
    assert not run.events_of("sequence_gap")
    # a long heartbeat: only the guard can wake a blocked stream read; stop within ~1 s
    runs.remove(run)
    assert run.close() < 1.5


def test_conditions_become_events(make_agent: Callable[..., AgentProcess], runs: list[Run]) -> None:
    agent = make_agent(period_ms=10)
    run = Run(config(agent.url))
    runs.append(run)
    run.until(lambda: bool(run.events_of("condition_normal")), "fault then normal", timeout_s=15)
    fault = run.events_of("condition_fault")[0]
    assert fault.severity == "alarm"
    assert "'system'" in fault.message and "E42" in fault.message
    assert "Servo alarm" in fault.message
    normal = run.events_of("condition_normal")[0]
    assert normal.t_ms >= fault.t_ms and normal.severity == "info"
    levels = [r.value for r in run.values("system_level") if r.quality is Quality.GOOD]
    assert 2.0 in levels and levels[-1] == 0.0
    # a warning set by hand on an unmapped condition (conditions: all)
    agent.control("condition", id="htemp", level="Warning", code="HTEMP", text="Oil hot")
    run.until(lambda: bool(run.events_of("condition_warning")), "warning event")
    warn = run.events_of("condition_warning")[0]
    assert "'htemp'" in warn.message and "Oil hot" in warn.message and warn.severity == "warning"


def test_signals_matching_no_or_several_data_items_stop_with_candidates(
    make_agent: Callable[..., AgentProcess],
) -> None:
    agent = make_agent(paused=True)
    cfg = config(
        agent.url,
        signals=[
            {"name": "bad_id", "data_item": "Xposition"},
            {"name": "ambiguous", "type": "POSITION"},
            {"name": "ok", "data_item": "x2"},
        ],
    )
    driver = make_driver(cfg)
    with pytest.raises(LiveSourceError) as info:
        driver.run(LiveSink(), threading.Event())
    msg = str(info.value)
    assert "'bad_id': no DataItem with data_item 'Xposition'" in msg
    assert "'ambiguous': type POSITION matches 6 DataItems" in msg
    assert "'x2' (name 'Xact', POSITION/ACTUAL, in Linear 'X')" in msg
    assert "'ok'" not in msg


def test_unknown_device_is_named(make_agent: Callable[..., AgentProcess]) -> None:
    agent = make_agent(paused=True)
    driver = make_driver(config(agent.url, device="Mazak"))
    with pytest.raises(LiveSourceError, match="no device 'Mazak'"):
        driver.run(LiveSink(), threading.Event())


@pytest.mark.parametrize("mode", ["stream", "poll"])
def test_buffer_wrap_gives_one_gap_event_with_the_lost_count(
    mode: str, make_agent: Callable[..., AgentProcess], runs: list[Run]
) -> None:
    agent = make_agent(buffer_size=16, paused=True)
    run = Run(config(agent.url, mode=mode, device="000"))  # device by uuid
    runs.append(run)
    run.until(lambda: bool(run.values("x_pos")), "initial values from /current")
    wait_for(
        lambda: agent.control("state")["last_from"] == agent.control("state")["next"],
        10,
        "driver caught up",
        interval_s=0.02,
    )
    agent.control("burst", n=40)  # 40 new observations into a 16-entry buffer: 24 lost
    run.until(lambda: any(r.value == 39.5 for r in run.values("x_pos")), "burst tail")
    pause(0.3, "no second gap event may follow")
    run.collect()
    gaps = run.events_of("sequence_gap")
    assert len(gaps) == 1, gaps
    assert gaps[0].message.startswith("24 observation(s) lost")
    assert run.mtc.lost == 24
    burst = [r.value for r in run.values("x_pos")[1:]]
    assert burst == [i + 0.5 for i in range(24, 40)], "the 16 still buffered, in order"
    assert not run.events_of("source_down")


@pytest.mark.parametrize("mode", ["stream", "poll"])
def test_agent_restart_resyncs_with_an_event(
    mode: str, make_agent: Callable[..., AgentProcess], runs: list[Run]
) -> None:
    agent = make_agent(period_ms=20)
    run = Run(config(agent.url, mode=mode))
    runs.append(run)
    run.until(lambda: len(run.values("x_pos")) >= 5, "values before the restart")
    agent.kill()
    run.until(lambda: bool(run.events_of("source_down")), "link down")
    n_before = len(run.values("x_pos"))
    agent.start()
    run.until(lambda: bool(run.events_of("agent_restarted")), "agent_restarted event")
    run.until(lambda: len(run.values("x_pos")) >= n_before + 10, "values after the restart")
    assert len(run.events_of("agent_restarted")) == 1
    assert len(run.events_of("source_up")) == 2
    assert not run.events_of("sequence_gap"), "a restart is not a buffer wrap"
    assert run.mtc.lost == 0


@pytest.mark.parametrize(("buffer_size", "lost"), [(1024, 0), (16, 14)])
def test_dropped_stream_resumes_from_the_last_sequence(
    buffer_size: int, lost: int, make_agent: Callable[..., AgentProcess], runs: list[Run]
) -> None:
    """The connection drops, the agent keeps running and buffering: the gateway resumes
    where it was; if the buffer wrapped meanwhile, exactly the overwritten ones are lost."""
    agent = make_agent(paused=True, buffer_size=buffer_size)
    run = Run(config(agent.url, mode="stream"))
    runs.append(run)
    run.until(lambda: bool(run.values("x_pos")), "initial values")
    wait_for(lambda: agent.control("state")["streams"] == 1, 10, "stream open")
    agent.control("drop")
    agent.control("burst", n=30)  # made while the gateway is reconnecting
    run.until(lambda: any(r.value == 29.5 for r in run.values("x_pos")), "burst after drop")
    assert [r.value for r in run.values("x_pos")[1:]] == [i + 0.5 for i in range(lost, 30)]
    assert len(run.events_of("source_down")) <= 1
    assert not run.events_of("agent_restarted")
    assert len(run.events_of("sequence_gap")) == (1 if lost else 0)
    assert run.mtc.lost == lost


def test_silent_stream_is_cut_by_the_heartbeat_watchdog(
    make_agent: Callable[..., AgentProcess], runs: list[Run]
) -> None:
    agent = make_agent(period_ms=20)
    run = Run(config(agent.url, heartbeat_ms=300, link={"timeout_s": 0.5, "reconnect_min_s": 0.1}))
    runs.append(run)
    run.until(lambda: len(run.values("x_pos")) >= 3, "values")
    t0 = time.monotonic()
    agent.control("stall")
    run.until(lambda: bool(run.events_of("source_down")), "watchdog", timeout_s=5)
    assert time.monotonic() - t0 < 3
    assert "no part or heartbeat for 0.8 s" in run.events_of("source_down")[0].message
    n = len(run.values("x_pos"))
    run.until(lambda: len(run.values("x_pos")) > n + 5, "values after reconnect")


@pytest.mark.parametrize("mode", ["stream", "poll"])
@pytest.mark.parametrize("kind", ["bomb", "xxe"])
def test_xml_attacks_are_refused_without_hanging(
    kind: str, mode: str, make_agent: Callable[..., AgentProcess], runs: list[Run]
) -> None:
    agent = make_agent(period_ms=20)
    run = Run(config(agent.url, mode=mode))
    runs.append(run)
    run.until(lambda: len(run.values("x_pos")) >= 3, "values")
    agent.control("hostile", kind=kind)
    run.until(lambda: bool(run.events_of("source_down")), "attack refused", timeout_s=5)
    assert "declares a DTD" in run.events_of("source_down")[0].message
    assert not any("root:" in e.message for e in run.events), "no file content leaked"
    n = len(run.values("x_pos"))
    run.until(lambda: len(run.values("x_pos")) > n + 5, "values after the attack")


@pytest.mark.parametrize(
    ("mode", "limit", "size"), [("stream", None, 5_000_000), ("poll", 65_536, 200_000)]
)
def test_oversize_part_is_refused(
    mode: str,
    limit: int | None,
    size: int,
    make_agent: Callable[..., AgentProcess],
    runs: list[Run],
) -> None:
    agent = make_agent(period_ms=20)
    kw: dict[str, Any] = {"mode": mode}
    if limit is not None:
        kw["max_document_bytes"] = limit
    run = Run(config(agent.url, **kw))
    runs.append(run)
    run.until(lambda: len(run.values("x_pos")) >= 3, "values")
    agent.control("oversize", bytes=size)
    run.until(lambda: bool(run.events_of("source_down")), "oversize refused", timeout_s=5)
    msg = run.events_of("source_down")[0].message
    assert "exceeds max_document_bytes" in msg and str(size) in msg
    n = len(run.values("x_pos"))
    run.until(lambda: len(run.values("x_pos")) > n + 5, "values after the oversize part")


@pytest.mark.parametrize("mode", ["stream", "poll"])
@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("garbage", "not well-formed XML"),
        ("drip", "no complete answer in 1.2 s"),
        ("error", "agent error INTERNAL_ERROR: adapter database locked"),
    ],
)
def test_garbage_and_slow_drip_answers_reset_the_link(
    kind: str, reason: str, mode: str, make_agent: Callable[..., AgentProcess], runs: list[Run]
) -> None:
    agent = make_agent(period_ms=20)
    cfg = config(
        agent.url, mode=mode, heartbeat_ms=300, link={"timeout_s": 0.3, "reconnect_min_s": 0.1}
    )
    run = Run(cfg)
    runs.append(run)
    run.until(lambda: len(run.values("x_pos")) >= 3, "values")
    agent.control("hostile", kind=kind)
    run.until(lambda: bool(run.events_of("source_down")), f"{kind} refused", timeout_s=5)
    msg = run.events_of("source_down")[0].message
    if kind == "drip" and mode == "stream":
        reason = "no part or heartbeat for 0.6 s"
    assert reason in msg
    if kind == "error":
        assert [e.message for e in run.events_of("agent_error")] == [f"MTConnect {reason}"]
    n = len(run.values("x_pos"))
    run.until(lambda: len(run.values("x_pos")) > n + 5, "values afterwards")


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (its own CA) and its key, PEM files."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mtconnect test agent")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "agent.pem", tmp / "agent.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_https_agent_with_ca_file(
    tmp_path: Path, make_agent: Callable[..., AgentProcess], runs: list[Run]
) -> None:
    cert, key = _self_signed(tmp_path)
    agent = make_agent(period_ms=20, tls=(cert, key))
    assert agent.url.startswith("https://")
    trusted = Run(config(agent.url, ca_file=str(cert)))
    untrusted = Run(config(agent.url))  # system CAs do not know the agent's certificate
    runs += [trusted, untrusted]
    trusted.until(lambda: len(trusted.values("x_pos")) >= 5, "values over TLS")
    untrusted.until(lambda: bool(untrusted.events_of("source_down")), "refused certificate")
    assert "CERTIFICATE_VERIFY_FAILED" in untrusted.events_of("source_down")[0].message
    assert not untrusted.values("x_pos")


def test_unreadable_ca_file_is_a_config_error(tmp_path: Path) -> None:
    cfg = config("https://127.0.0.1:1", ca_file=str(tmp_path / "missing.pem"))
    with pytest.raises(LiveSourceError, match="cannot load ca_file"):
        make_driver(cfg)
