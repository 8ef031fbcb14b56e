"""Model rollout end to end: real Mosquitto, the real API served by uvicorn on a loopback
port (gateways download over HTTP), the rollout controller, and gateway agents replaying the
SKAB pump recording with the real ``skab-pump-t2`` model.

Releases: ``1.0.0`` (the gateways' configured model, also published), ``1.1.0`` (same
graph, new version) and ``1.2.0-nan`` (a graph whose score is always NaN), all signed by a
key the gateways trust.

With ``rig_influx`` the controller also writes each reported outcome to a real InfluxDB
(``model_deploy``); ``test_rollout_influx.py`` covers that producer in detail.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import pytest
import uvicorn
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import update
from typer.testing import CliRunner

from harness.services import InfluxDB, Mosquitto, free_port
from harness.wait import pause, wait_for
from renkei.cloud.registry import ModelRelease, session_scope
from renkei.cloud.rollout import RolloutController, RolloutSettings
from renkei.cloud.store.influx import InfluxSettings
from renkei.core.mqtt import BrokerSettings
from renkei.core.signing import generate_private_key, private_key_pem, public_key_text
from renkei.core.wire import ModelDesired, ModelReport, encode, rollout_topic
from renkei.edge.agent import GatewayAgent
from renkei.edge.config import GatewayConfig
from renkei.models.cli import app as models_app
from tests.api.rig import ApiRig
from tests.datasets import require_data_dir
from tests.rollout_helpers import (
    SKAB_MODEL,
    copy_model,
    desired_entry,
    n_inputs,
    nan_onnx,
    publish_body,
)

pytestmark = pytest.mark.slow

NAME = "skab-pump-t2"
FIRM, SITE = "acme", "acme-s1"


class Gateway:
    """A GatewayAgent running in a thread (stop() = the gateway goes offline)."""

    def __init__(self, config: GatewayConfig, api_key: str) -> None:
        self.config = config
        self.agent = GatewayAgent(config=config, api_key=api_key)
        self.thread = threading.Thread(target=self.agent.run, daemon=True)
        self.thread.start()

    @property
    def version(self) -> str:
        return self.agent.models["pump-1"].version

    def stop(self) -> None:
        self.agent.stop()
        self.thread.join(30)
        assert not self.thread.is_alive()


class RolloutRig:
    """API (uvicorn, real HTTP) + controller + broker + gateways of firm ``acme``."""

    def __init__(
        self, tmp_path: Path, mosquitto: Mosquitto, *, influx: InfluxSettings | None = None
    ) -> None:
        self.tmp = tmp_path
        self.broker = mosquitto
        (tmp_path / "api").mkdir()
        self.api = ApiRig(tmp_path / "api")
        self.api.seed_firm(FIRM)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(
            uvicorn.Config(
                self.api.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
            )
        )
        self.server_thread = threading.Thread(target=self.server.run, daemon=True)
        self.server_thread.start()
        wait_for(lambda: self.server.started, 20, "uvicorn")
        self.controller = RolloutController(
            RolloutSettings(
                database_url=str(self.api.settings.database_url),
                broker=BrokerSettings.from_url(mosquitto.url, client_id="rollout-test"),
                tick_s=0.2,
                influx=influx,
            )
        )
        self.controller.start()
        self.key = generate_private_key()
        self.admin = self.api.client(FIRM, "admin")
        self.eng = self.api.client(FIRM, "engineer")
        r = self.admin.post("/api/v1/model-keys", json={"public_key": public_key_text(self.key)})
        assert r.status_code == 201, r.text
        self.gateway_key = self.api.key(FIRM, "operator")
        self.csv = require_data_dir() / "skab" / "data" / "valve1" / "1.csv"
        self.v10 = copy_model(SKAB_MODEL, tmp_path / "models" / "1.0.0")
        self.v11 = copy_model(SKAB_MODEL, tmp_path / "models" / "1.1.0", version="1.1.0")
        self.vnan = copy_model(
            SKAB_MODEL,
            tmp_path / "models" / "nan",
            version="1.2.0-nan",
            onnx=nan_onnx(n_inputs(SKAB_MODEL)),
        )
        self.window_s = orjson.loads((self.v10 / "manifest.json").read_bytes())["window_s"]
        self.gateways: dict[str, Gateway] = {}

    def publish(self, model_dir: Path) -> None:
        r = self.eng.post("/api/v1/models", json=publish_body(model_dir, self.key))
        assert r.status_code in (200, 201), r.text

    def config(self, gw: str, *, groups: tuple[str, ...] = ()) -> GatewayConfig:
        return GatewayConfig.model_validate(
            {
                "gateway_id": gw,
                "firm": FIRM,
                "site": SITE,
                "state_dir": str(self.tmp / "state"),
                "mqtt": {"host": "127.0.0.1", "port": self.broker.port, "wait_for_ingest": None},
                "publish": {"flush_interval_s": 0.2, "health_interval_s": 60},
                "machines": [
                    {
                        "id": "pump-1",
                        "area": "utilities",
                        "line": "water-loop",
                        "source": {
                            "type": "replay",
                            "preset": "skab",
                            "path": str(self.csv),
                            "speed": 100,
                            "loop": True,
                        },
                        "window_s": self.window_s,
                        "model": {"dir": str(self.v10)},
                    }
                ],
                "rollout": {
                    "api_url": self.url,
                    "trusted_keys": [public_key_text(self.key)],
                    "groups": list(groups),
                    "shadow": {"min_windows": 8, "wait_s": 60},
                    "probation_windows": 3,
                    "probation_s": 30,
                },
            }
        )

    def start(self, gw: str, **kw: Any) -> Gateway:
        g = self.gateways[gw] = Gateway(self.config(gw, **kw), self.gateway_key)
        return g

    def fleet(self) -> dict[str, dict[str, Any]]:
        view = self.eng.get(f"/api/v1/firms/{FIRM}/fleet").json()
        return {g["gateway_id"]: g for g in view["gateways"]}

    def model_of(self, gw: str) -> dict[str, Any] | None:
        g = self.fleet().get(gw)
        if g is None:
            return None
        return next((m for m in g["models"] if m["name"] == NAME), None)

    def wait_known(self, *gws: str) -> None:
        wait_for(lambda: all(self.model_of(g) for g in gws), 30, f"reports of {gws}")

    def deploy(self, **body: Any) -> dict[str, Any]:
        r = self.eng.post(f"/api/v1/firms/{FIRM}/deployments", json={"model": NAME} | body)
        assert r.status_code == 201, r.text
        dep: dict[str, Any] = r.json()
        return dep

    def deployment(self, dep_id: int) -> dict[str, Any]:
        d: dict[str, Any] = self.eng.get(f"/api/v1/firms/{FIRM}/deployments/{dep_id}").json()
        return d

    def wait_final(self, dep_id: int, timeout_s: float = 90) -> dict[str, Any]:
        def done() -> dict[str, Any] | None:
            d = self.deployment(dep_id)
            return d if d["status"] in ("succeeded", "failed", "stopped") else None

        result: dict[str, Any] = wait_for(done, timeout_s, f"deployment {dep_id} to finish")
        return result

    def close(self) -> None:
        for g in self.gateways.values():
            if g.thread.is_alive():
                g.stop()
        self.controller.stop()
        self.server.should_exit = True
        self.server_thread.join(10)
        self.api.close()


@pytest.fixture
def rig(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[RolloutRig]:
    r = RolloutRig(tmp_path, mosquitto)
    try:
        yield r
    finally:
        r.close()


@pytest.fixture
def rig_influx(
    tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB, database: str
) -> Iterator[RolloutRig]:
    """The rig with the controller writing ``model_deploy`` points to ``database``."""
    influxdb.create_database(database)
    r = RolloutRig(tmp_path, mosquitto, influx=InfluxSettings(url=influxdb.url, database=database))
    try:
        yield r
    finally:
        r.close()


class Watcher:
    """Reads retained rollout messages straight from the broker."""

    def __init__(self, broker: Mosquitto) -> None:
        self.messages: dict[str, bytes] = {}
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="rollout-watcher")
        self.client.on_message = lambda c, u, m: self.messages.__setitem__(
            m.topic, bytes(m.payload)
        )
        self.client.connect("127.0.0.1", broker.port)
        self.client.subscribe("renkei/rollout/v1/#", qos=1)
        self.client.loop_start()

    def report(self, gw: str) -> ModelReport | None:
        raw = self.messages.get(rollout_topic(firm=FIRM, site=SITE, gateway=gw, kind="report"))
        return None if raw is None else ModelReport.model_validate_json(raw)

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1, retain=True).wait_for_publish(5)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _cli(rig: RolloutRig, *args: str) -> Any:
    env = {"RENKEI_API_URL": rig.url, "RENKEI_API_KEY": rig.api.key(FIRM, "engineer")}
    return CliRunner().invoke(models_app, list(args), env=env, catch_exceptions=False)


# --------------------------------------------------------------------------- tests


def test_cli_publish_canary_deploy_and_fleet_view(rig: RolloutRig, tmp_path: Path) -> None:
    key_file = tmp_path / "signing.pem"
    key_file.write_bytes(private_key_pem(rig.key))
    for d in (rig.v10, rig.v11):
        res = _cli(rig, "publish", str(d), "--key", str(key_file))
        assert res.exit_code == 0, res.output
        assert "published skab-pump-t2@" in res.output
    for gw in ("gw-a", "gw-b", "gw-c"):
        rig.start(gw)
    rig.wait_known("gw-a", "gw-b", "gw-c")

    res = _cli(rig, "deploy", f"{NAME}@1.1.0", "--to", f"site:{SITE}", "--canary", "1")
    assert res.exit_code == 0, res.output
    assert "succeeded" in res.output
    assert all(g.version == "1.1.0" for g in rig.gateways.values())
    dep = rig.deployment(rig.eng.get(f"/api/v1/firms/{FIRM}/deployments").json()[0]["id"])
    (canary,) = [t for t in dep["targets"] if t["wave"] == 0]
    rest = [t for t in dep["targets"] if t["wave"] == 1]
    assert canary["gateway_id"] == "gw-a" and len(rest) == 2
    # the rest got the desired state only after the canary had reported success
    assert all(t["sent_at"] >= canary["finished_at"] for t in rest)
    assert all(t["status"] == "succeeded" and t["stage"] == "done" for t in dep["targets"])
    assert canary["checks"]["windows"] >= 8

    fleet = rig.fleet()
    for gw in ("gw-a", "gw-b", "gw-c"):
        m = next(m for m in fleet[gw]["models"] if m["name"] == NAME)
        assert (m["version"], m["previous_version"], m["desired_version"], m["source"]) == (
            "1.1.0",
            "1.0.0",
            "1.1.0",
            "deployed",
        )
        assert m["last_result"]["status"] == "succeeded"
        assert m["last_result"]["deployment_id"] == dep["id"]
    res = _cli(rig, "fleet")
    assert res.exit_code == 0 and res.output.count("1.1.0") >= 3, res.output


def test_nan_model_fails_the_canary_and_stops_the_rollout(rig: RolloutRig) -> None:
    rig.publish(rig.vnan)
    for gw in ("gw-a", "gw-b", "gw-c"):
        rig.start(gw)
    rig.wait_known("gw-a", "gw-b", "gw-c")
    dep = rig.deploy(version="1.2.0-nan", target="all", canary=1)
    final = rig.wait_final(dep["id"])
    assert final["status"] == "stopped", final
    t = {x["gateway_id"]: x for x in final["targets"]}
    assert (t["gw-a"]["status"], t["gw-a"]["stage"]) == ("failed", "shadow")
    assert "not finite" in t["gw-a"]["reason"]
    assert t["gw-b"]["status"] == t["gw-c"]["status"] == "cancelled"
    assert t["gw-b"]["sent_at"] is None
    assert "canary failed" in final["reason"]
    assert all(g.version == "1.0.0" for g in rig.gateways.values())
    m = rig.model_of("gw-a")
    assert m is not None and m["version"] == "1.0.0"
    assert m["last_result"]["status"] == "rejected" and m["last_result"]["version"] == "1.2.0-nan"
    mb = rig.model_of("gw-b")
    assert mb is not None and mb["desired_version"] is None and mb["last_result"] is None


def test_tampered_artifact_and_forged_desired_states_are_rejected(rig: RolloutRig) -> None:
    rig.publish(rig.v11)
    g = rig.start("gw-a")
    rig.wait_known("gw-a")
    # the registry's stored bytes are altered after publishing (compromised storage)
    with session_scope(rig.api.engine) as s:
        onnx = s.get(ModelRelease, (NAME, "1.1.0")).onnx  # type: ignore[union-attr]
        s.execute(
            update(ModelRelease)
            .where(ModelRelease.name == NAME, ModelRelease.version == "1.1.0")
            .values(onnx=onnx[:-1] + bytes([onnx[-1] ^ 0xFF]))
        )
    final = rig.wait_final(rig.deploy(version="1.1.0", target="gateway:gw-a")["id"])
    (t,) = final["targets"]
    assert (final["status"], t["stage"]) == ("failed", "verify"), final
    assert "sha256 mismatch" in t["reason"]
    assert g.version == "1.0.0"

    # desired states published straight to the broker, bypassing the registry
    watcher = Watcher(rig.broker)
    try:
        topic = rollout_topic(firm=FIRM, site=SITE, gateway="gw-a", kind="desired")
        other_key = generate_private_key()
        cases = [
            (desired_entry(rig.v11, None, deployment=901), "unsigned"),
            (desired_entry(rig.v11, other_key, deployment=902), "untrusted_key"),
            (
                desired_entry(rig.vnan, None, deployment=903).model_copy(
                    update={
                        "key_id": desired_entry(rig.v11, rig.key, 1).key_id,
                        "signature": desired_entry(rig.v11, rig.key, 1).signature,
                    }
                ),
                "bad_signature",
            ),
        ]
        for entry, reason in cases:
            msg = ModelDesired(v=1, gw="gw-a", sent_ms=1, models={NAME: entry})
            watcher.publish(topic, encode(msg))

            def result(dep: int = entry.deployment) -> Any:
                rep = watcher.report("gw-a")
                res = None if rep is None else rep.results.get(NAME)
                return res if res is not None and res.deployment == dep else None

            res = wait_for(result, 30, f"report of deployment {entry.deployment}")
            assert (res.status, res.stage) == ("rejected", "verify")
            assert reason in res.reason
            assert g.version == "1.0.0"
    finally:
        watcher.close()


def test_deployment_to_an_offline_gateway_completes_after_it_reconnects(rig: RolloutRig) -> None:
    rig.publish(rig.v11)
    g = rig.start("gw-a")
    rig.wait_known("gw-a")
    g.stop()  # known to the fleet, then offline
    dep = rig.deploy(version="1.1.0", target="gateway:gw-a")
    wait_for(
        lambda: rig.deployment(dep["id"])["targets"][0]["status"] == "sent", 20, "desired sent"
    )
    pause(1, "the deployment cannot complete while its gateway is offline")
    assert rig.deployment(dep["id"])["status"] == "rolling"
    g = rig.start("gw-a")  # reconnects: gets the retained desired state
    final = rig.wait_final(dep["id"])
    assert final["status"] == "succeeded", final
    assert g.version == "1.1.0"
    g.stop()
    # a restart keeps the deployed model (verified again from the local store)
    g2 = rig.start("gw-a")
    assert g2.version == "1.1.0"
    wait_for(lambda: rig.model_of("gw-a")["source"] == "deployed", 20, "report")  # type: ignore[index]


def test_rollback_pins_and_explicit_targets(rig: RolloutRig) -> None:
    rig.publish(rig.v10)
    rig.publish(rig.v11)
    for gw in ("gw-a", "gw-b"):
        rig.start(gw, groups=("pilot",) if gw == "gw-a" else ())
    rig.wait_known("gw-a", "gw-b")
    assert rig.wait_final(rig.deploy(version="1.1.0", target="all")["id"])["status"] == "succeeded"
    assert rig.gateways["gw-b"].version == "1.1.0"

    r = rig.eng.put(f"/api/v1/firms/{FIRM}/fleet/gw-b/pins/{NAME}", json={"version": "1.1.0"})
    assert r.status_code == 200
    back = rig.wait_final(rig.deploy(kind="rollback", target=f"site:{SITE}")["id"])
    t = {x["gateway_id"]: x for x in back["targets"]}
    assert back["status"] == "succeeded" and back["kind"] == "rollback"
    assert (t["gw-a"]["version"], t["gw-a"]["status"]) == ("1.0.0", "succeeded")
    assert (t["gw-b"]["status"], t["gw-b"]["reason"]) == ("skipped", "pinned to 1.1.0")
    assert rig.gateways["gw-a"].version == "1.0.0"
    assert rig.gateways["gw-b"].version == "1.1.0"
    ma = rig.model_of("gw-a")
    assert ma is not None and (ma["version"], ma["previous_version"]) == ("1.0.0", "1.1.0")

    # group targets, and an explicit gateway target reaches a pinned gateway
    res = _cli(rig, "rollback", NAME, "--to", "gateway:gw-b")
    assert res.exit_code == 0, res.output
    assert rig.gateways["gw-b"].version == "1.0.0"
    dep = rig.deploy(version="1.1.0", target="group:pilot")
    assert [x["gateway_id"] for x in dep["targets"]] == ["gw-a"]
    assert rig.wait_final(dep["id"])["status"] == "succeeded"
    assert rig.gateways["gw-a"].version == "1.1.0"


def test_report_payload_is_on_the_broker(rig: RolloutRig) -> None:
    """The retained report carries groups, running models and results (wire contract)."""
    watcher = Watcher(rig.broker)
    try:
        rig.start("gw-a", groups=("pilot", "pumps"))
        rep = wait_for(lambda: watcher.report("gw-a"), 20, "retained report")
        assert rep.groups == ["pilot", "pumps"]
        assert rep.models[NAME].version == "1.0.0" and rep.models[NAME].source == "config"
        assert rep.models[NAME].machines == ["pump-1"]
        topic = rollout_topic(firm=FIRM, site=SITE, gateway="gw-a", kind="report")
        raw = orjson.loads(watcher.messages[topic])
        assert raw["v"] == 1 and raw["gw"] == "gw-a" and raw["results"] == {}
    finally:
        watcher.close()


def test_deployment_outcomes_are_written_to_influxdb(
    rig_influx: RolloutRig, influxdb: InfluxDB, database: str, tmp_path: Path
) -> None:
    """A rejected (tampered) and a successful deployment, reported by a real gateway,
    become ``model_deploy`` points with the registry's ids, results and reasons."""
    rig = rig_influx
    tampered = copy_model(SKAB_MODEL, tmp_path / "models" / "1.1.1", version="1.1.1")
    rig.publish(tampered)
    rig.publish(rig.v11)
    with session_scope(rig.api.engine) as s:  # the stored graph altered after publishing
        onnx = s.get(ModelRelease, (NAME, "1.1.1")).onnx  # type: ignore[union-attr]
        s.execute(
            update(ModelRelease)
            .where(ModelRelease.name == NAME, ModelRelease.version == "1.1.1")
            .values(onnx=onnx[:-1] + bytes([onnx[-1] ^ 0xFF]))
        )
    g = rig.start("gw-a")
    rig.wait_known("gw-a")
    bad = rig.wait_final(rig.deploy(version="1.1.1", target="gateway:gw-a")["id"])
    assert bad["status"] == "failed", bad
    good = rig.wait_final(rig.deploy(version="1.1.0", target="gateway:gw-a")["id"])
    assert good["status"] == "succeeded", good
    assert g.version == "1.1.0"

    def rows() -> list[dict[str, Any]]:
        series = influxdb.query('SELECT * FROM "model_deploy" ORDER BY time', db=database)
        return [dict(zip(series[0]["columns"], v)) for v in series[0]["values"]] if series else []

    rejected, succeeded = wait_for(lambda: len(rows()) == 2 and rows(), 20, "two points")
    for point, dep in ((rejected, bad), (succeeded, good)):
        assert (point["firm"], point["site"], point["gw"], point["model"]) == (
            FIRM,
            SITE,
            "gw-a",
            NAME,
        )
        assert point["deployment"] == dep["id"]
        (target,) = dep["targets"]
        assert point["version"] == target["version"]
        assert point["stage"] == target["stage"] and point["reason"] == (target["reason"] or "")
    assert (rejected["result"], rejected["stage"]) == ("rejected", "verify")
    assert "sha256 mismatch" in rejected["reason"]
    assert (succeeded["result"], succeeded["stage"], succeeded["reason"]) == (
        "succeeded",
        "done",
        "",
    )
    assert rejected["time"] < succeeded["time"]
    assert rig.controller.stats().deploy_points_written == 2
