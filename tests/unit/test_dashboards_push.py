"""``renkei dashboards push`` request logic against a local HTTP stub of Grafana's API.

The stub keeps state like Grafana does for the endpoints push calls (folders,
datasources, dashboards, provisioning alert rules and rule groups), adding the fields
Grafana adds (ids, versions, ``meta.folderUid``). This checks the request logic —
idempotency, uid and folder handling, authentication — not Grafana itself: no Grafana
server is available here.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from typer.testing import CliRunner

from renkei.cli import app
from renkei.dashboards.alerts import GROUP_INTERVAL_S, RULES
from renkei.dashboards.boards import build_boards
from renkei.dashboards.push import push


class GrafanaStub:
    """In-memory state of the stubbed Grafana."""

    def __init__(self) -> None:
        self.folders: dict[str, dict[str, Any]] = {}
        self.datasources: dict[str, dict[str, Any]] = {}
        self.dashboards: dict[str, dict[str, Any]] = {}
        self.rules: dict[str, dict[str, Any]] = {}
        self.groups: dict[tuple[str, str], dict[str, Any]] = {}
        self.requests: list[tuple[str, str, dict[str, Any] | None]] = []
        self.auth: list[str | None] = []
        self.next_id = 1

    def _id(self) -> int:
        self.next_id += 1
        return self.next_id

    def handle(self, method: str, path: str, body: dict[str, Any] | None) -> tuple[int, Any]:
        parts = path.strip("/").split("/")
        if parts[:2] == ["api", "folders"]:
            return self._folders(method, parts[2:], body)
        if parts[:3] == ["api", "datasources", "uid"] or parts == ["api", "datasources"]:
            return self._datasources(method, parts[3:], body)
        if parts[:3] == ["api", "dashboards", "uid"] and method == "GET":
            uid = parts[3]
            if uid not in self.dashboards:
                return 404, {"message": "Dashboard not found"}
            return 200, copy.deepcopy(self.dashboards[uid])
        if parts == ["api", "dashboards", "db"] and method == "POST":
            assert body is not None
            model = copy.deepcopy(body["dashboard"])
            uid = model["uid"]
            old = self.dashboards.get(uid)
            if old is not None and not body.get("overwrite"):
                return 412, {"message": "version-mismatch"}
            version = 1 if old is None else old["dashboard"]["version"] + 1
            model["id"] = old["dashboard"]["id"] if old else self._id()
            model["version"] = version
            folder = body.get("folderUid")
            if folder not in self.folders:
                return 400, {"message": "folder not found"}
            self.dashboards[uid] = {"dashboard": model, "meta": {"folderUid": folder}}
            return 200, {"uid": uid, "version": version, "status": "success"}
        if parts[:4] == ["api", "v1", "provisioning", "alert-rules"]:
            return self._rules(method, parts[4:], body)
        if parts[:4] == ["api", "v1", "provisioning", "folder"] and parts[5] == "rule-groups":
            key = (parts[4], parts[6])
            if key not in self.groups:
                return 404, {"message": "rule group not found"}
            if method == "GET":
                return 200, copy.deepcopy(self.groups[key])
            assert body is not None
            self.groups[key]["interval"] = body["interval"]
            return 200, copy.deepcopy(self.groups[key])
        return 404, {"message": f"no route {method} {path}"}

    def _folders(
        self, method: str, rest: list[str], body: dict[str, Any] | None
    ) -> tuple[int, Any]:
        if method == "POST":
            assert body is not None
            uid = body["uid"]
            if uid in self.folders:
                return 409, {"message": "folder exists"}
            self.folders[uid] = {"uid": uid, "title": body["title"], "id": self._id()}
            return 200, self.folders[uid]
        uid = rest[0]
        if uid not in self.folders:
            return 404, {"message": "folder not found"}
        if method == "PUT":
            assert body is not None
            self.folders[uid]["title"] = body["title"]
        return 200, self.folders[uid]

    def _datasources(
        self, method: str, rest: list[str], body: dict[str, Any] | None
    ) -> tuple[int, Any]:
        if method == "POST":
            assert body is not None
            stored = {k: v for k, v in body.items() if k != "secureJsonData"}
            self.datasources[body["uid"]] = {**stored, "id": self._id(), "version": 1}
            return 200, {"datasource": self.datasources[body["uid"]]}
        uid = rest[0]
        if uid not in self.datasources:
            return 404, {"message": "Data source not found"}
        if method == "PUT":
            assert body is not None
            stored = {k: v for k, v in body.items() if k != "secureJsonData"}
            self.datasources[uid] = {**self.datasources[uid], **stored}
        return 200, self.datasources[uid]

    def _rules(self, method: str, rest: list[str], body: dict[str, Any] | None) -> tuple[int, Any]:
        if method == "POST":
            assert body is not None
            uid = body["uid"]
            if uid in self.rules:
                return 409, {"message": "rule exists"}
            self.rules[uid] = {**copy.deepcopy(body), "id": self._id(), "updated": "t1"}
            key = (body["folderUID"], body["ruleGroup"])
            group = self.groups.setdefault(
                key, {"title": key[1], "folderUid": key[0], "interval": 60, "rules": []}
            )
            group["rules"].append(copy.deepcopy(body))
            return 201, self.rules[uid]
        uid = rest[0]
        if uid not in self.rules:
            return 404, {"message": "rule not found"}
        if method == "PUT":
            assert body is not None
            self.rules[uid] = {**copy.deepcopy(body), "id": self.rules[uid]["id"], "updated": "t2"}
        return 200, copy.deepcopy(self.rules[uid])

    def writes(self) -> list[tuple[str, str]]:
        return [(m, p) for m, p, _ in self.requests if m in ("POST", "PUT", "DELETE")]


@pytest.fixture
def stub() -> Iterator[tuple[GrafanaStub, str]]:
    state = GrafanaStub()

    class Handler(BaseHTTPRequestHandler):
        def _do(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            state.requests.append((self.command, self.path, body))
            state.auth.append(self.headers.get("Authorization"))
            status, payload = state.handle(self.command, self.path.split("?")[0], body)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = _do

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _push(url: str, **kwargs: Any) -> Any:
    return push(url, token="glsa_test", influx_url="http://influxdb:8086", **kwargs)


def test_first_push_creates_everything_second_push_changes_nothing(
    stub: tuple[GrafanaStub, str],
) -> None:
    state, url = stub
    first = _push(url)
    uids = {b.uid for b in build_boards()}
    assert state.folders == {"renkei": {"uid": "renkei", "title": "Renkei", "id": 2}}
    assert set(state.datasources) == {"renkei-influxdb"}
    assert set(state.dashboards) == uids
    assert all(d["meta"]["folderUid"] == "renkei" for d in state.dashboards.values())
    assert set(state.rules) == {r.uid for r in RULES}
    assert all(r["folderUID"] == "renkei" for r in state.rules.values())
    for (folder, group), value in state.groups.items():
        assert folder == "renkei"
        assert value["interval"] == GROUP_INTERVAL_S[group]
    assert first.actions[("folder", "renkei")] == "created"
    assert all(first.actions[("dashboard", uid)] == "created" for uid in uids)
    # Token auth as a Bearer header on every request.
    assert set(state.auth) == {"Bearer glsa_test"}

    n_writes = len(state.writes())
    second = _push(url)
    assert second.changed() == [], second.actions
    assert len(state.writes()) == n_writes, state.writes()[n_writes:]


def test_push_repairs_drift_by_uid(stub: tuple[GrafanaStub, str]) -> None:
    state, url = stub
    _push(url)
    # Someone renamed the folder, moved a dashboard, edited a rule and the datasource.
    state.folders["renkei"]["title"] = "Old name"
    state.folders["elsewhere"] = {"uid": "elsewhere", "title": "Elsewhere", "id": 99}
    state.dashboards["renkei-molds"]["meta"]["folderUid"] = "elsewhere"
    state.dashboards["renkei-capacity"]["dashboard"]["title"] = "edited"
    state.rules["renkei-dead-letters"]["for"] = "10m"
    state.datasources["renkei-influxdb"]["url"] = "http://old:8086"
    before = len(state.writes())
    report = _push(url)
    assert sorted(report.changed()) == [
        ("alert-rule", "renkei-dead-letters"),
        ("dashboard", "renkei-capacity"),
        ("dashboard", "renkei-molds"),
        ("datasource", "renkei-influxdb"),
        ("folder", "renkei"),
    ]
    assert state.folders["renkei"]["title"] == "Renkei"
    assert state.dashboards["renkei-molds"]["meta"]["folderUid"] == "renkei"
    assert state.rules["renkei-dead-letters"]["for"] == "0s"
    assert state.datasources["renkei-influxdb"]["url"] == "http://influxdb:8086"
    # Dashboards are updated in place (same uid and id, next version), not duplicated.
    assert state.dashboards["renkei-capacity"]["dashboard"]["version"] == 2
    assert len(state.writes()) - before == 5
    assert _push(url).changed() == []


def test_push_with_basic_auth_and_influx_token(stub: tuple[GrafanaStub, str]) -> None:
    state, url = stub
    push(
        url,
        user="admin",
        password="secret",
        influx_url="http://influxdb:8086",
        influx_token="tok",
    )
    assert {a for a in state.auth if a} == {"Basic YWRtaW46c2VjcmV0"}
    ds_post = next(b for m, p, b in state.requests if m == "POST" and p == "/api/datasources")
    assert ds_post is not None
    assert ds_post["jsonData"]["httpHeaderName1"] == "Authorization"
    assert ds_post["secureJsonData"] == {"httpHeaderValue1": "Token tok"}
    assert ds_post["jsonData"]["version"] == "InfluxQL"


def test_cli_push(stub: tuple[GrafanaStub, str]) -> None:
    state, url = stub
    result = CliRunner().invoke(
        app,
        [
            "dashboards",
            "push",
            "--grafana",
            url,
            "--token",
            "t",
            "--influx-url",
            "http://influxdb:8086",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "renkei-plant-overview" in result.output and "created" in result.output
    assert len(state.dashboards) == len(build_boards())
