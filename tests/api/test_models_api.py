"""Model registry and rollout endpoints: signed publishing (and every refusal), downloads,
signing keys, deployments, fleet view and pins."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from renkei.cloud.registry import session_scope
from renkei.cloud.rollout.service import record_report
from renkei.core.signing import generate_private_key, key_id, public_key_text
from renkei.core.wire import DeployResult, ModelReport, RunningModel
from tests.api.rig import ApiRig
from tests.rollout_helpers import SKAB_MODEL, copy_model, publish_body, sha

NAME = "skab-pump-t2"


@pytest.fixture
def key(rig: ApiRig) -> Any:
    rig.seed_firm("acme")
    k = generate_private_key()
    r = rig.client("acme", "admin").post(
        "/api/v1/model-keys", json={"public_key": public_key_text(k), "label": "ml team"}
    )
    assert r.status_code == 201, r.text
    assert r.json()["key_id"] == key_id(k)
    return k


@pytest.fixture
def v11(tmp_path: Path) -> Path:
    return copy_model(SKAB_MODEL, tmp_path / "v11", version="1.1.0")


def _reason(r: Any) -> str:
    return str(r.json()["error"]["detail"]["reason"])


def test_publish_list_get_and_download(rig: ApiRig, key: Any, v11: Path) -> None:
    eng = rig.client("acme", "engineer")
    r = eng.post("/api/v1/models", json=publish_body(v11, key))
    assert r.status_code == 201, r.text
    rel = r.json()
    onnx = (v11 / "model.onnx").read_bytes()
    assert (rel["name"], rel["version"], rel["sha256"]) == (NAME, "1.1.0", sha(onnx))
    assert rel["manifest_sha256"] == sha((v11 / "manifest.json").read_bytes())
    assert rel["key_id"] == key_id(key) and rel["size_bytes"] == len(onnx)
    assert [m["version"] for m in eng.get("/api/v1/models", params={"name": NAME}).json()] == [
        "1.1.0"
    ]
    op = rig.client("acme", "operator")  # what a gateway's key may be
    detail = op.get(f"/api/v1/models/{NAME}/1.1.0").json()
    assert base64.b64decode(detail["manifest_b64"]) == (v11 / "manifest.json").read_bytes()
    art = op.get(f"/api/v1/models/{NAME}/1.1.0/artifact")
    assert art.status_code == 200 and art.content == onnx
    assert art.headers["x-renkei-sha256"] == sha(onnx)
    assert art.headers["content-type"] == "application/octet-stream"
    assert op.get(f"/api/v1/models/{NAME}/9.9.9/artifact").status_code == 404
    # idempotent for the same bytes, immutable otherwise
    assert eng.post("/api/v1/models", json=publish_body(v11, key)).status_code == 200
    other = copy_model(SKAB_MODEL, v11.parent / "other", version="1.1.0", threshold=99.0)
    r = eng.post("/api/v1/models", json=publish_body(other, key))
    assert r.status_code == 409, r.text


def test_registry_refuses_unsigned_untrusted_and_tampered(
    rig: ApiRig, key: Any, v11: Path, tmp_path: Path
) -> None:
    eng = rig.client("acme", "engineer")
    r = eng.post("/api/v1/models", json=publish_body(v11, None))
    assert (r.status_code, _reason(r)) == (422, "unsigned")
    r = eng.post("/api/v1/models", json=publish_body(v11, generate_private_key()))
    assert (r.status_code, _reason(r)) == (422, "untrusted_key")
    # signed, then the manifest changed (threshold raised): the signature no longer matches
    body = publish_body(v11, key)
    tampered = copy_model(SKAB_MODEL, tmp_path / "t", version="1.1.0", threshold=1e9)
    body["manifest_b64"] = publish_body(tampered, None)["manifest_b64"]
    r = eng.post("/api/v1/models", json=body)
    assert (r.status_code, _reason(r)) == (422, "bad_signature")
    # ONNX bytes that differ from the manifest's hash
    body = publish_body(v11, key)
    body["onnx_b64"] = base64.b64encode(b"\x00" + (v11 / "model.onnx").read_bytes()).decode()
    r = eng.post("/api/v1/models", json=body)
    assert (r.status_code, _reason(r)) == (422, "sha256_mismatch")
    # a signed graph that does not load
    junk = copy_model(SKAB_MODEL, tmp_path / "junk", version="1.1.1", onnx=b"not an onnx graph")
    r = eng.post("/api/v1/models", json=publish_body(junk, key))
    assert (r.status_code, _reason(r)) == (422, "invalid_model")
    r = eng.post("/api/v1/models", json=publish_body(v11, key) | {"manifest_b64": "%%%"})
    assert (r.status_code, _reason(r)) == (422, "malformed")
    # a revoked key signs nothing new
    admin = rig.client("acme", "admin")
    assert admin.delete(f"/api/v1/model-keys/{key_id(key)}").status_code == 204
    r = eng.post("/api/v1/models", json=publish_body(v11, key))
    assert (r.status_code, _reason(r)) == (422, "untrusted_key")
    assert admin.get("/api/v1/model-keys").json()[0]["revoked"] is True
    r = admin.post("/api/v1/model-keys", json={"public_key": public_key_text(key)})
    assert r.status_code == 409
    assert eng.get("/api/v1/models").json() == []


def test_roles(rig: ApiRig, key: Any, v11: Path) -> None:
    assert (
        rig.client("acme", "operator")
        .post("/api/v1/models", json=publish_body(v11, key))
        .status_code
        == 403
    )
    assert (
        rig.client("acme", "engineer")
        .post("/api/v1/model-keys", json={"public_key": public_key_text(generate_private_key())})
        .status_code
        == 403
    )
    r = rig.client("acme", "admin").post("/api/v1/model-keys", json={"public_key": "ed25519:x"})
    assert r.status_code == 422


def _seed_fleet(rig: ApiRig, gateways: list[tuple[str, str, str]]) -> None:
    with session_scope(rig.engine) as s:
        for gw, site, version in gateways:
            report = ModelReport(
                v=1,
                gw=gw,
                sent_ms=1,
                groups=["pilot"] if gw.endswith("a") else [],
                models={
                    NAME: RunningModel(
                        version=version, sha256="a" * 64, machines=["pump-1"], source="config"
                    )
                },
            )
            record_report(s, firm_id="acme", site_id=site, report=report, now=rig.now)


def test_deployments_fleet_and_pins(rig: ApiRig, key: Any, v11: Path) -> None:
    rig.seed_firm("rival")
    eng = rig.client("acme", "engineer")
    assert eng.post("/api/v1/models", json=publish_body(v11, key)).status_code == 201
    _seed_fleet(rig, [("gw-a", "acme-s1", "1.0.0"), ("gw-b", "acme-s1", "1.0.0")])

    r = eng.post(
        "/api/v1/firms/acme/deployments",
        json={"model": NAME, "version": "1.1.0", "target": "site:acme-s1", "canary": 1},
    )
    assert r.status_code == 201, r.text
    dep = r.json()
    assert dep["status"] == "pending" and dep["kind"] == "deploy"
    assert [(t["gateway_id"], t["wave"], t["status"]) for t in dep["targets"]] == [
        ("gw-a", 0, "waiting"),
        ("gw-b", 1, "waiting"),
    ]
    got = rig.client("acme", "operator").get(f"/api/v1/firms/acme/deployments/{dep['id']}")
    assert got.json()["id"] == dep["id"]
    assert [d["id"] for d in eng.get("/api/v1/firms/acme/deployments").json()] == [dep["id"]]
    assert (
        rig.client("rival", "admin").get(f"/api/v1/firms/rival/deployments/{dep['id']}").status_code
        == 404
    )
    assert rig.client("rival", "engineer").get("/api/v1/firms/acme/fleet").status_code == 403

    bad = [
        ({"model": NAME, "version": "1.1.0", "target": "host:x"}, 422),
        ({"model": NAME, "version": "1.1.0", "target": "gateway:gw-zz"}, 422),
        ({"model": NAME, "version": "7.0.0", "target": "all"}, 404),
        ({"model": NAME, "target": "all"}, 422),
    ]
    for body, code in bad:
        assert eng.post("/api/v1/firms/acme/deployments", json=body).status_code == code, body
    assert (
        rig.client("acme", "operator")
        .post("/api/v1/firms/acme/deployments", json=bad[0][0])
        .status_code
        == 403
    )

    # a pin makes site deployments skip the gateway
    r = eng.put(f"/api/v1/firms/acme/fleet/gw-b/pins/{NAME}", json={"version": "1.0.0"})
    assert r.status_code == 200 and r.json()["pinned_version"] == "1.0.0"
    assert (
        eng.put("/api/v1/firms/acme/fleet/gw-zz/pins/x", json={"version": "1.0.0"}).status_code
        == 404
    )
    dep2 = eng.post(
        "/api/v1/firms/acme/deployments",
        json={"model": NAME, "version": "1.1.0", "target": "site:acme-s1"},
    ).json()
    assert {t["gateway_id"]: t["status"] for t in dep2["targets"]} == {
        "gw-a": "waiting",
        "gw-b": "skipped",
    }

    with session_scope(rig.engine) as s:  # gw-a reports a result
        record_report(
            s,
            firm_id="acme",
            site_id="acme-s1",
            report=ModelReport(
                v=1,
                gw="gw-a",
                sent_ms=2,
                groups=["pilot"],
                models={NAME: RunningModel(version="1.0.0", sha256="a" * 64, machines=["pump-1"])},
                results={
                    NAME: DeployResult(
                        deployment=dep["id"],
                        version="1.1.0",
                        status="rejected",
                        stage="shadow",
                        reason="3 of 9 scores are not finite",
                        finished_ms=int(datetime(2026, 11, 23, tzinfo=UTC).timestamp() * 1000),
                    )
                },
            ),
            now=rig.now,
        )
    view = rig.client("acme", "operator").get("/api/v1/firms/acme/fleet").json()
    assert view["firm_id"] == "acme"
    gws = {g["gateway_id"]: g for g in view["gateways"]}
    assert set(gws) == {"gw-a", "gw-b"}
    assert gws["gw-a"]["groups"] == ["pilot"] and gws["gw-a"]["online"] is None
    (ma,) = gws["gw-a"]["models"]
    assert ma["version"] == "1.0.0" and ma["machines"] == ["pump-1"]
    assert ma["last_result"]["status"] == "rejected"
    assert ma["last_result"]["deployment_id"] == dep["id"]
    assert "not finite" in ma["last_result"]["reason"]
    (mb,) = gws["gw-b"]["models"]
    assert mb["pinned_version"] == "1.0.0" and mb["last_result"] is None
    r = eng.delete(f"/api/v1/firms/acme/fleet/gw-b/pins/{NAME}")
    assert r.status_code == 200 and r.json()["pinned_version"] is None
