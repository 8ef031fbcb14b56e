"""Site bridge states in the watcher, registry side (SQLite and PostgreSQL at the newest
Alembic revision, no broker): a ``0`` raises like the gateways' Last Wills, a ``1`` clears
it per the rule of :mod:`renkei.cloud.disruption.bridge`, bad or foreign topics are
ignored."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from renkei.cloud.disruption import (
    BridgeOutcome,
    DisruptionWatcher,
    SuspectRules,
    WatchSettings,
    decode_bridge_state,
)
from renkei.cloud.disruption.suspect import as_utc
from renkei.cloud.registry import (
    Disruption,
    DisruptionSource,
    DisruptionStatus,
    Firm,
    Site,
    SiteBridgeStatus,
    make_engine,
)
from renkei.cloud.registry.migrate import upgrade
from renkei.core.mqtt import BrokerSettings
from renkei.core.wire import GatewayState, WireError, encode, gateway_topic

T0 = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
RULES = SuspectRules(window_s=300, offline_fraction=0.5, min_gateways=2)
BRIDGE = "renkei/bridge/v1/acme/osaka/state"


@pytest.fixture
def engine(registry_url: str) -> Iterator[Engine]:
    """The registry at the newest Alembic revision, on SQLite and on PostgreSQL."""
    upgrade(registry_url)
    e = make_engine(registry_url)
    with Session(e) as s:
        for firm, site in (("acme", "osaka"), ("beta", "kobe")):
            s.add(Firm(id=firm, name=firm, region="kansai"))
            s.add(
                Site(
                    id=site, firm_id=firm, name=site, latitude_deg=34.7, longitude_deg=135.5,
                    region="kansai",
                )
            )  # fmt: skip
        s.commit()
    yield e
    e.dispose()


@pytest.fixture
def watcher(engine: Engine) -> DisruptionWatcher:
    settings = WatchSettings(broker=BrokerSettings.from_url("mqtt://127.0.0.1:9", client_id="t"))
    return DisruptionWatcher(settings=settings, engine=engine, rules=RULES)


def _gateway(
    w: DisruptionWatcher, firm: str, site: str, gw: str, online: bool, at: datetime
) -> None:
    topic = gateway_topic(firm=firm, site=site, gateway=gw, kind="state")
    state = GatewayState(v=1, gw=gw, online=online, sent_ms=int(at.timestamp() * 1000))
    assert w.handle(topic, encode(state), retained=False, received_at=at) is not None


def _bridge(w: DisruptionWatcher, payload: bytes, at: datetime, topic: str = BRIDGE) -> object:
    return w.handle(topic, payload, retained=False, received_at=at)


def _disruptions(engine: Engine, site: str = "osaka") -> list[Disruption]:
    with Session(engine) as s:
        return list(s.scalars(select(Disruption).where(Disruption.site_id == site)))


def _three_online(w: DisruptionWatcher) -> None:
    for i in (1, 2, 3):
        _gateway(w, "acme", "osaka", f"gw-{i}", True, T0)


def test_decode() -> None:
    assert decode_bridge_state(BRIDGE, b"0").online is False
    assert decode_bridge_state(BRIDGE, b"1\n").online is True
    for topic, payload in [
        (BRIDGE, b"2"),
        (BRIDGE, b""),
        (BRIDGE, b'{"online": false}'),
        ("renkei/bridge/v1/acme/state", b"0"),
        ("renkei/bridge/v1/acme/osaka/x/state", b"0"),
        ("renkei/bridge/v1/acme/osaka/status", b"0"),
    ]:
        with pytest.raises(WireError):
            decode_bridge_state(topic, payload)


def test_bridge_down_raises_and_back_dismisses(watcher: DisruptionWatcher, engine: Engine) -> None:
    _three_online(watcher)
    down = T0 + timedelta(hours=1)
    assert _bridge(watcher, b"0", down) is BridgeOutcome.WENT_OFFLINE
    [d] = _disruptions(engine)
    assert d.status is DisruptionStatus.SUSPECTED and d.source is DisruptionSource.LAST_WILL
    assert d.detail["rule"] == "site_bridge"
    assert d.detail["bridge"] == {"topic": BRIDGE, "offline_at": "2026-11-23T01:00:00Z"}
    assert sorted(g["gateway_id"] for g in d.detail["offline"]) == ["gw-1", "gw-2", "gw-3"]
    assert as_utc(d.start) == down
    # a retained or redelivered copy changes nothing, and no second suspicion
    assert _bridge(watcher, b"0", down + timedelta(seconds=5)) is BridgeOutcome.STALE
    assert len(_disruptions(engine)) == 1
    up = down + timedelta(minutes=10)
    assert _bridge(watcher, b"1", up) is BridgeOutcome.WENT_ONLINE
    [d] = _disruptions(engine)
    assert d.status is DisruptionStatus.DISMISSED and d.decided_by is None
    assert d.decided_at is not None and as_utc(d.decided_at) == up
    assert d.detail["cleared"] == {"by": "site_bridge", "at": "2026-11-23T01:10:00Z"}
    st = watcher.stats()
    assert (st.suspicions, st.cleared, st.bridge_states, st.stale) == (1, 1, 2, 1)
    # a gateway Last Will queued on the site broker arrives after the 1: judged afresh
    _gateway(watcher, "acme", "osaka", "gw-1", False, up + timedelta(seconds=1))
    _gateway(watcher, "acme", "osaka", "gw-2", False, up + timedelta(seconds=2))
    assert [x.detail["rule"] for x in _disruptions(engine)] == ["site_bridge", "last_will"]
    # the next outage raises again
    assert _bridge(watcher, b"0", up + timedelta(hours=1)) is BridgeOutcome.WENT_OFFLINE


def test_a_confirmed_disruption_is_never_dismissed(
    watcher: DisruptionWatcher, engine: Engine
) -> None:
    _three_online(watcher)
    _bridge(watcher, b"0", T0 + timedelta(hours=1))
    with Session(engine) as s:
        d = s.scalars(select(Disruption)).one()
        d.status = DisruptionStatus.CONFIRMED
        d.decided_at, d.decided_by = T0 + timedelta(hours=1, minutes=5), "key-1"
        s.commit()
    _bridge(watcher, b"1", T0 + timedelta(hours=2))
    [d] = _disruptions(engine)
    assert d.status is DisruptionStatus.CONFIRMED and d.decided_by == "key-1"
    assert "cleared" not in d.detail


def test_a_gateway_raised_suspicion_is_left_to_the_firm(
    watcher: DisruptionWatcher, engine: Engine
) -> None:
    _three_online(watcher)
    _gateway(watcher, "acme", "osaka", "gw-1", False, T0 + timedelta(minutes=1))
    _gateway(watcher, "acme", "osaka", "gw-2", False, T0 + timedelta(minutes=2))
    [d] = _disruptions(engine)
    assert d.detail["rule"] == "last_will"
    _bridge(watcher, b"0", T0 + timedelta(minutes=3))
    _bridge(watcher, b"1", T0 + timedelta(minutes=4))
    assert [(x.status, x.detail["rule"]) for x in _disruptions(engine)] == [
        (DisruptionStatus.SUSPECTED, "last_will")
    ]


def test_a_bridge_suspicion_stays_while_the_gateways_own_states_say_stopped(
    watcher: DisruptionWatcher, engine: Engine
) -> None:
    _three_online(watcher)
    _bridge(watcher, b"0", T0 + timedelta(hours=1))
    # the site broker delivered two Last Wills before the 1 (a direct path, or ordering)
    _gateway(watcher, "acme", "osaka", "gw-1", False, T0 + timedelta(hours=1, minutes=1))
    _gateway(watcher, "acme", "osaka", "gw-2", False, T0 + timedelta(hours=1, minutes=1))
    _bridge(watcher, b"1", T0 + timedelta(hours=1, minutes=2))
    [d] = _disruptions(engine)
    assert d.status is DisruptionStatus.SUSPECTED and d.detail["rule"] == "site_bridge"


def test_same_thresholds_as_last_wills(watcher: DisruptionWatcher, engine: Engine) -> None:
    """One known gateway is below min_gateways: the bridge's 0 raises nothing either."""
    _gateway(watcher, "acme", "osaka", "gw-1", True, T0)
    _bridge(watcher, b"0", T0 + timedelta(hours=1))
    assert _disruptions(engine) == []
    with Session(engine) as s:
        row = s.get(SiteBridgeStatus, ("acme", "osaka"))
        assert row is not None and row.online is False


def test_bad_and_foreign_topics_are_ignored_and_logged_once(
    watcher: DisruptionWatcher, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    _three_online(watcher)
    for i in (1, 2, 3):  # beta's site kobe has gateways too
        _gateway(watcher, "beta", "kobe", f"gw-{i}", True, T0)
    caplog.set_level(logging.WARNING, logger="renkei.cloud.disruption")
    at = T0 + timedelta(hours=1)
    for _ in range(3):
        assert _bridge(watcher, b"offline", at) is None
        # acme's topic naming beta's site, an unknown firm, an unknown site
        for topic in (
            "renkei/bridge/v1/acme/kobe/state",
            "renkei/bridge/v1/evil/osaka/state",
            "renkei/bridge/v1/acme/nowhere/state",
        ):
            assert _bridge(watcher, b"0", at, topic) is BridgeOutcome.UNKNOWN_SITE
    assert _disruptions(engine, "osaka") == [] and _disruptions(engine, "kobe") == []
    with Session(engine) as s:
        assert s.scalars(select(SiteBridgeStatus)).all() == []
    st = watcher.stats()
    assert (st.malformed, st.unknown_sites, st.suspicions) == (3, 9, 0)
    warnings = [r.getMessage() for r in caplog.records if "bridge state" in r.getMessage()]
    assert len(warnings) == 4, warnings  # once per topic
