"""A gateway-enrolment stack for tests: a real Mosquitto with dynamic security (with an
ingest user that reads every gateway topic), the API with its ``dynsec_*`` settings on a
real uvicorn, and a gateway config whose password comes from ``mqtt.credentials_file``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml
from pydantic import SecretStr

from harness.services import DynsecMosquitto
from renkei.cloud.broker_acl import GatewayGrant, cloud_rules
from renkei.cloud.broker_dynsec import DynsecAdmin, UserGrant, default_acl_access
from renkei.cloud.gateway_identity import enroll
from renkei.cloud.registry import session_scope
from tests.api.rig import ApiRig
from tests.dynsec_helpers import ADMIN_PASSWORD, admin_settings, dynsec_broker
from tests.web.harness import LiveServer

INGEST_PASSWORD = "ingest-password-for-tests-0123456789"
ENROL = "/api/v1/gateways/enrol"
GW = GatewayGrant(
    user="gw-a",
    gateway_id="gw-a",
    firm="acme",
    site="nagoya",
    machines=(("molding", "l1", "imm-1"),),
)
REFUSED = {
    "code": "unauthenticated",
    "message": "enrolment token refused: unknown, already used, expired or revoked (ask the "
    "operator for a new one: renkei cloud gateways enroll)",
    "detail": None,
}


@dataclass
class Stack:
    broker: DynsecMosquitto
    rig: ApiRig
    server: LiveServer

    def enroll(self, grant: GatewayGrant = GW, ttl: timedelta = timedelta(hours=1)) -> str:
        with session_scope(self.rig.engine) as s:
            return enroll(s, grant, now=self.rig.now, ttl=ttl)

    def post(self, token: str) -> httpx.Response:
        return httpx.post(self.server.url + ENROL, json={"token": token}, timeout=30)


@contextmanager
def enrol_stack(tmp_path: Path, **settings: Any) -> Iterator[Stack]:
    with dynsec_broker(tmp_path / "broker") as broker:
        with DynsecAdmin(settings=admin_settings(broker)) as admin:
            admin.run(default_acl_access())
            admin.provision_users(
                [
                    UserGrant(
                        username="renkei-ingest-1",
                        password=SecretStr(INGEST_PASSWORD),
                        rules=cloud_rules()["renkei-ingest-1"],
                    )
                ]
            )
        rig = ApiRig(
            tmp_path,
            dynsec_broker=f"mqtt://127.0.0.1:{broker.port}",
            dynsec_password=ADMIN_PASSWORD,
            gateway_credential_days=30,
            **settings,
        )
        rig.seed_firm("acme")
        server = LiveServer(rig.app)
        server.start()
        try:
            yield Stack(broker, rig, server)
        finally:
            server.stop()
            admin_conn = getattr(rig.app.state, "enrol_admin", None)
            if admin_conn is not None:
                admin_conn.close()
            rig.close()


def gateway_config(tmp_path: Path, port: int) -> Path:
    config = tmp_path / "gw-a.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "gateway_id": "gw-a",
                "firm": "acme",
                "site": "nagoya",
                "mqtt": {
                    "host": "127.0.0.1",
                    "port": port,
                    "username": "gw-a",
                    "credentials_file": "secrets/mqtt.json",
                    "wait_for_ingest": None,
                    "ack": "broker",
                },
                "outbox": {"path": str(tmp_path / "outbox.sqlite3")},
                "machines": [
                    {
                        "id": "imm-1",
                        "area": "molding",
                        "line": "l1",
                        "source": {"type": "simulated", "seed": 1, "streams": ["slow"]},
                        "window_s": 1,
                    }
                ],
            }
        )
    )
    return config
