"""Test rig for the API: an app on a temp registry, a fixed clock, keys per role.

The registry is a SQLite file in the test's temp dir unless ``database_url`` names
another (the ``rig`` fixture passes ``registry_url``: SQLite and PostgreSQL).

``ApiRig.client(firm, role)`` returns a ``TestClient`` sending that firm's key of that
role; keys are issued on first use. ``seed_firm`` registers a firm with one site, one
line, IMM machines and molds in one call (the registry's bulk format).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from renkei.cloud.api import ApiSettings, create_app
from renkei.cloud.capacity.index.remote import stop_following
from renkei.cloud.notify import NotifySettings
from renkei.cloud.registry import Role, import_document, issue_key, session_scope

__all__ = ["NOW", "ApiRig", "imm", "mold"]

NOW = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
"""Monday 2026-11-23 10:00 Asia/Tokyo: the rig's fixed clock."""


class ApiRig:
    """One API instance with its registry, clock and clients."""

    def __init__(
        self,
        tmp_path: Path,
        *,
        database_url: str | None = None,
        notify: NotifySettings | None = None,
        **settings: Any,
    ) -> None:
        self.now = NOW
        self.settings = ApiSettings(
            database_url=database_url or f"sqlite:///{tmp_path / 'registry.sqlite3'}", **settings
        )
        self.app = create_app(
            self.settings,
            clock=lambda: self.now,
            notify=notify or NotifySettings(line_api_base="http://127.0.0.1:9", backoff_s=0),
        )
        self.engine: Engine = self.app.state.renkei.engine
        self._keys: dict[tuple[str, Role], str] = {}
        self._clients: list[TestClient] = []

    @property
    def today(self) -> date:
        return self.now.date()

    def key(self, firm_id: str, role: Role | str) -> str:
        """The API key of ``firm_id`` with ``role`` (issued once, cached)."""
        role = Role(role)
        if (firm_id, role) not in self._keys:
            with session_scope(self.engine) as s:
                self._keys[firm_id, role] = issue_key(s, firm_id=firm_id, role=role)
        return self._keys[firm_id, role]

    def client(self, firm_id: str | None = None, role: Role | str = Role.OPERATOR) -> TestClient:
        """A client authenticated as ``firm_id``/``role`` (anonymous if ``firm_id`` is None)."""
        c = TestClient(self.app, raise_server_exceptions=True)
        if firm_id is not None:
            c.headers["Authorization"] = f"Bearer {self.key(firm_id, role)}"
        self._clients.append(c)
        return c

    def seed(self, doc: dict[str, Any]) -> None:
        """Import a registry document directly (no API, no access checks)."""
        with session_scope(self.engine) as s:
            import_document(s, doc)

    def seed_firm(
        self,
        firm_id: str,
        *,
        region: str = "kansai",
        lat: float = 34.68,
        lon: float = 135.60,
        machines: list[dict[str, Any]] | None = None,
        molds: list[dict[str, Any]] | None = None,
        resins: tuple[str, ...] = ("PP", "ABS", "PA66-GF30"),
        certifications: tuple[str, ...] = ("ISO9001",),
        bpnl: str | None = None,
    ) -> None:
        """A firm with one site ``{firm}-s1``, one line ``{firm}-l1`` and the given rows."""
        site, line = f"{firm_id}-s1", f"{firm_id}-l1"
        self.seed(
            {
                "firms": [
                    {"id": firm_id, "name": f"{firm_id} Co.", "region": region}
                    | ({"bpnl": bpnl} if bpnl else {})
                ],
                "sites": [
                    {
                        "id": site,
                        "firm_id": firm_id,
                        "name": f"{firm_id} plant",
                        "latitude_deg": lat,
                        "longitude_deg": lon,
                        "region": region,
                        "resins": list(resins),
                        "certifications": list(certifications),
                    }
                ],
                "lines": [{"id": line, "site_id": site, "name": "L1"}],
                "machines": [{"firm_id": firm_id, "line_id": line} | m for m in (machines or [])],
                "molds": [{"firm_id": firm_id} | m for m in (molds or [])],
            }
        )

    def close(self) -> None:
        for c in self._clients:
            c.close()
        self.app.state.notify.close()
        stop_following(self.engine, timeout_s=0)  # ends by itself within 0.25 s
        self.engine.dispose()


def imm(machine_id: str, clamp_force_kN: float = 1500.0, **over: Any) -> dict[str, Any]:
    """An injection-molding machine row (a 150 t class machine by default)."""
    return {
        "id": machine_id,
        "name": machine_id,
        "process": "injection_molding",
        "clamp_force_kN": clamp_force_kN,
        "tie_bar_h_mm": 510.0,
        "tie_bar_v_mm": 510.0,
        "min_mold_height_mm": 200.0,
        "max_mold_height_mm": 550.0,
        "shot_capacity_g": 400.0,
        "locating_ring_mm": 100.0,
    } | over


def mold(mold_id: str, **over: Any) -> dict[str, Any]:
    """A mold row that fits :func:`imm`'s default machine."""
    return {
        "id": mold_id,
        "name": mold_id,
        "width_mm": 400.0,
        "height_mm": 400.0,
        "thickness_mm": 350.0,
        "weight_kg": 450.0,
        "required_clamp_force_kN": 1200.0,
        "shot_weight_g": 150.0,
        "resin": "PP",
        "cavities": 2,
        "locating_ring_mm": 100.0,
        "cycle_time_s": 30.0,
    } | over
