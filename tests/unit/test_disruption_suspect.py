"""The suspicion rule (pure) and the ordering of gateway state messages (registry)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from renkei.cloud.disruption import (
    GatewaySnapshot,
    StateOutcome,
    SuspectRules,
    apply_gateway_state,
    find_suspicion,
)
from renkei.cloud.disruption.store import judged_until
from renkei.cloud.registry import (
    Base,
    Disruption,
    DisruptionSource,
    DisruptionStatus,
    GatewayStatus,
    make_engine,
)
from renkei.core.wire import GatewayState

T0 = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
RULES = SuspectRules(window_s=300, offline_fraction=0.5, min_gateways=2)


def _gw(name: str, online: bool, minute: float) -> GatewaySnapshot:
    return GatewaySnapshot(
        gateway_id=name, online=online, changed_at=T0 + timedelta(minutes=minute)
    )


def test_most_gateways_offline_together_is_suspected() -> None:
    s = find_suspicion([_gw("a", False, 1), _gw("b", False, 3), _gw("c", True, 0)], rules=RULES)
    assert s is not None
    assert s.start == T0 + timedelta(minutes=1)
    assert [g for g, _ in s.offline] == ["a", "b"]
    d = s.detail()
    assert d["gateways_total"] == 3 and d["offline"][0] == {
        "gateway_id": "a",
        "offline_at": "2026-11-23T00:01:00Z",
    }


@pytest.mark.parametrize(
    ("gateways", "why"),
    [
        ([_gw("a", False, 0)], "one gateway is below min_gateways"),
        ([_gw("a", False, 0), _gw("b", True, 0), _gw("c", True, 0), _gw("d", False, 1)], "half"),
        ([_gw("a", False, 0), _gw("b", False, 6), _gw("c", True, 0)], "spread over > 5 min"),
        ([_gw("a", True, 0), _gw("b", True, 0)], "all online"),
        ([], "no gateways"),
    ],
)
def test_no_suspicion(gateways: list[GatewaySnapshot], why: str) -> None:
    assert find_suspicion(gateways, rules=RULES) is None, why


def test_window_boundary_is_inclusive_and_largest_group_wins() -> None:
    five = [_gw("a", False, 0), _gw("b", False, 5), _gw("c", True, 0)]
    assert find_suspicion(five, rules=RULES) is not None
    gws = [
        _gw("a", False, 0),
        _gw("b", False, 20),
        _gw("c", False, 21),
        _gw("d", False, 22),
        _gw("e", True, 0),
    ]
    s = find_suspicion(gws, rules=RULES)
    assert s is not None and [g for g, _ in s.offline] == ["b", "c", "d"]


def test_open_disruption_and_judged_outage_suppress() -> None:
    gws = [_gw("a", False, 1), _gw("b", False, 2), _gw("c", True, 0)]
    assert find_suspicion(gws, rules=RULES, open_disruption=True) is None
    assert find_suspicion(gws, rules=RULES, judged_until=T0 + timedelta(minutes=2)) is None
    assert find_suspicion(gws, rules=RULES, judged_until=T0 + timedelta(minutes=1)) is None
    assert find_suspicion(gws, rules=RULES, judged_until=T0) is not None


def test_naive_times_are_utc_and_fraction_zero_means_any() -> None:
    naive = [
        GatewaySnapshot(gateway_id="a", online=False, changed_at=datetime(2026, 11, 23, 0, 1)),
        GatewaySnapshot(gateway_id="b", online=True, changed_at=datetime(2026, 11, 23)),
    ]
    loose = SuspectRules(offline_fraction=0.0, min_gateways=1)
    s = find_suspicion(naive, rules=loose)
    assert s is not None and s.start == T0 + timedelta(minutes=1)
    assert find_suspicion(naive, rules=RULES) is None


@pytest.mark.parametrize(
    "kwargs",
    [{"window_s": 0}, {"offline_fraction": 1.0}, {"min_gateways": 0}, {"zone_radius_km": -1}],
)
def test_rules_are_validated(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        SuspectRules(**kwargs)  # type: ignore[arg-type]


# ------------------------------------------------------------------ state ordering


@pytest.fixture
def session() -> Iterator[Session]:
    engine = make_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as s:
        yield s
    engine.dispose()


def _apply(
    s: Session, online: bool, sent: datetime, received: datetime, *, retained: bool = False
) -> StateOutcome:
    return apply_gateway_state(
        s,
        firm_id="f",
        site_id="s",
        gateway_id="gw",
        state=GatewayState(
            v=1, gw="gw", online=online, sent_ms=int(sent.timestamp() * 1000), config_version="c1"
        ),
        received_at=received,
        retained=retained,
    )


def _row(s: Session) -> GatewayStatus:
    row = s.get(GatewayStatus, ("f", "s", "gw"))
    assert row is not None
    return row


def test_last_will_with_an_older_sent_ms_still_applies(session: Session) -> None:
    start = T0  # the agent builds its Last Will at start-up
    connect = T0 + timedelta(minutes=1)
    assert _apply(session, True, connect, connect) is StateOutcome.NEW_ONLINE
    assert _apply(session, True, connect, connect) is StateOutcome.STALE  # redelivery
    died = T0 + timedelta(hours=3)
    assert _apply(session, False, start, died) is StateOutcome.WENT_OFFLINE
    row = _row(session)
    assert not row.online and row.changed_at.replace(tzinfo=UTC) == died
    assert row.birth["config_version"] == "c1"  # the last birth is kept
    assert _apply(session, False, start, died + timedelta(minutes=1)) is StateOutcome.STALE
    # the old birth redelivered does not bring it back; a new birth does
    assert _apply(session, True, connect, died) is StateOutcome.STALE
    back = died + timedelta(minutes=5)
    assert _apply(session, True, back, back) is StateOutcome.WENT_ONLINE
    assert _row(session).changed_at.replace(tzinfo=UTC) == back
    assert _apply(session, True, back + timedelta(seconds=1), back) is StateOutcome.REFRESHED
    # a gateway whose clock ran backwards: its live birth looks old, the retained copy wins
    assert _apply(session, False, start, back) is StateOutcome.WENT_OFFLINE
    assert _apply(session, True, T0, back) is StateOutcome.STALE
    assert _apply(session, True, T0, back, retained=True) is StateOutcome.WENT_ONLINE
    assert _apply(session, True, T0, back, retained=True) is StateOutcome.STALE


def test_first_seen_offline_time(session: Session) -> None:
    sent = T0 - timedelta(days=30)
    assert _apply(session, False, sent, T0, retained=True) is StateOutcome.NEW_OFFLINE
    assert _row(session).changed_at.replace(tzinfo=UTC) == sent  # retained: a lower bound
    session.delete(_row(session))
    session.flush()
    assert _apply(session, False, sent, T0) is StateOutcome.NEW_OFFLINE
    assert _row(session).changed_at.replace(tzinfo=UTC) == T0  # live: receipt time


def test_judged_until_uses_decisions_and_evidence() -> None:
    def d(status: DisruptionStatus, **kw: object) -> Disruption:
        return Disruption(
            firm_id="f",
            site_id="s",
            status=status,
            source=DisruptionSource.LAST_WILL,
            start=T0,
            **kw,
        )

    assert judged_until([d(DisruptionStatus.SUSPECTED, decided_at=T0)]) is None
    dismissed = d(
        DisruptionStatus.DISMISSED,
        decided_at=T0 + timedelta(minutes=1),
        detail={"offline": [{"gateway_id": "a", "offline_at": "2026-11-23T00:09:00Z"}, {"x": 1}]},
    )
    ended = d(DisruptionStatus.ENDED, end=T0 + timedelta(minutes=5))
    assert judged_until([dismissed, ended]) == T0 + timedelta(minutes=9)
