"""The disruptions view shows a suspicion raised by a site broker's bridge as such (en and
ja), and the watcher's automatic dismissal when the bridge came back."""

from __future__ import annotations

from datetime import timedelta

from renkei.cloud.disruption import BridgeState, SuspectRules, apply_bridge, apply_gateway_state
from renkei.cloud.registry import Role, session_scope
from renkei.core.wire import GatewayState
from tests.api.rig import NOW
from tests.web.conftest import Live
from tests.web.harness import Browser
from tests.web.seed import HIT, seed_network

RULES = SuspectRules(window_s=300, offline_fraction=0.5, min_gateways=2, zone_radius_km=30)


def _bridge_suspicion(live: Live, firm: str) -> int:
    """Two gateways online, then the site bridge's ``0``: a suspicion; its id."""
    t0 = NOW - timedelta(hours=1)
    site = f"{firm}-s1"
    with session_scope(live.rig.engine) as s:
        for gw in ("gw-1", "gw-2"):
            state = GatewayState(v=1, gw=gw, online=True, sent_ms=int(t0.timestamp() * 1000))
            apply_gateway_state(
                s, firm_id=firm, site_id=site, gateway_id=gw, state=state, received_at=t0
            )
        down = BridgeState(firm=firm, site=site, online=False)
        result = apply_bridge(s, state=down, received_at=t0 + timedelta(minutes=1), rules=RULES)
        assert result.raised is not None
        return result.raised.id


def _bridge_back(live: Live, firm: str) -> None:
    with session_scope(live.rig.engine) as s:
        up = BridgeState(firm=firm, site=f"{firm}-s1", online=True)
        result = apply_bridge(s, state=up, received_at=NOW - timedelta(minutes=30), rules=RULES)
        assert len(result.dismissed) == 1


def test_bridge_suspicion_and_its_automatic_dismissal(live: Live, page: Browser) -> None:
    seed_network(live.rig)
    suspected = _bridge_suspicion(live, HIT)
    page.open(live.url, "/app/#disruptions")
    page.sign_in(live.rig.key(HIT, Role.OPERATOR))
    page.wait_view("disruptions")
    text = page.text(f"#disruption-{suspected}")
    assert "link to the cloud down" in text and "2 of 2 gateways unreachable" in text, text
    _bridge_back(live, HIT)
    page.open(live.url, "/app/?lang=ja#disruptions")
    page.wait_view("disruptions")
    text = page.text(f"#disruption-{suspected}")
    assert "クラウド接続が切断" in text and "自動で却下" in text, text
    assert page.console_problems() == []
