"""The generated dashboards and provisioning files: no drift, complete, consistent."""

from __future__ import annotations

import json
import re
from typing import Any

import yaml
from typer.testing import CliRunner

from renkei.cli import app
from renkei.core.influx import contract
from renkei.core.influx.lineproto import format_point
from renkei.dashboards.alerts import RULES
from renkei.dashboards.boards import build_boards
from renkei.dashboards.build import ROOT, check, render
from renkei.dashboards.queries import DATASOURCE_UID, MACHINE_FILTER

JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


def _models() -> dict[str, dict[str, Any]]:
    return {
        p.stem: json.loads(p.read_text(encoding="utf-8"))
        for p in sorted((ROOT / "generated").glob("*.json"))
    }


def test_committed_files_equal_generator_output() -> None:
    assert check() == [], "run: python -m dashboards build"
    assert len(render()) == len(build_boards()) + 5  # + datasource, provider, rules, 2 notif.


def test_cli_check_and_python_m_entry() -> None:
    result = CliRunner().invoke(app, ["dashboards", "check"])
    assert result.exit_code == 0, result.output
    assert "up to date" in result.output


def test_every_influx_target_is_known_and_filtered() -> None:
    models = _models()
    boards = {b.uid: b for b in build_boards()}
    assert set(models) == set(boards)
    for uid, model in models.items():
        specs = {p.panel_id: p for p in boards[uid].panels}
        for panel in model["panels"]:
            for target in panel.get("targets", []):
                if target["datasource"]["type"] != "influxdb":
                    assert target["datasource"]["uid"] == "__expr__"
                    continue
                assert target["datasource"]["uid"] == DATASOURCE_UID
                assert target["rawQuery"] is True
                spec = {t.ref_id: t for t in specs[panel["id"]].targets}[target["refId"]]
                assert spec.query == target["query"]
                assert spec.columns[0] == "time"
                assert "$timeFilter" in target["query"], target["query"]
                if '"machine"' in target["query"] and uid != "renkei-gateway-fleet":
                    assert MACHINE_FILTER in target["query"], target["query"]


def test_titles_are_bilingual_and_uids_unique() -> None:
    models = _models()
    for model in models.values():
        assert " / " in model["title"] and JAPANESE.search(model["title"]), model["title"]
        ids = [p["id"] for p in model["panels"]]
        assert len(ids) == len(set(ids))
        for panel in model["panels"]:
            assert " / " in panel["title"] and JAPANESE.search(panel["title"]), panel["title"]
        names = [v["name"] for v in model["templating"]["list"]]
        assert len(names) == len(set(names))
    for uid in ("renkei-plant-overview", "renkei-machine-detail", "renkei-molds"):
        names = [v["name"] for v in models[uid]["templating"]["list"]]
        assert names[:3] == ["site", "line", "machine"]


def test_alert_rule_provisioning_file() -> None:
    text = (ROOT / "provisioning" / "alerting" / "renkei-rules.yaml").read_text()
    doc = yaml.safe_load(text)
    assert doc["apiVersion"] == 1
    rules = [r for g in doc["groups"] for r in g["rules"]]
    assert [r["uid"] for r in rules] == [r.uid for r in RULES]
    for g in doc["groups"]:
        assert g["folder"] == "Renkei" and g["interval"].endswith("s")
    for rule in rules:
        refs = [d["refId"] for d in rule["data"]]
        assert refs == ["A", "B", "C"] and rule["condition"] == "C"
        a, b, c = rule["data"]
        assert a["datasourceUid"] == DATASOURCE_UID and a["relativeTimeRange"]["from"] > 0
        assert b["model"]["type"] == "reduce" and b["model"]["settings"]["mode"] == "dropNN"
        assert c["model"]["type"] == "threshold" and c["model"]["expression"] == "B"
        assert rule["noDataState"] == "OK" and rule["execErrState"] == "Error"
        assert " / " in rule["title"]


def test_datasource_and_dashboard_providers() -> None:
    ds = yaml.safe_load((ROOT / "provisioning" / "datasources" / "renkei.yaml").read_text())
    (source,) = ds["datasources"]
    assert source["uid"] == DATASOURCE_UID and source["type"] == "influxdb"
    assert source["jsonData"]["version"] == "InfluxQL"
    assert source["url"] == "${RENKEI_INFLUXDB_URL}"
    prov = yaml.safe_load((ROOT / "provisioning" / "dashboards" / "renkei.yaml").read_text())
    (provider,) = prov["providers"]
    assert provider["folderUid"] == "renkei" and provider["type"] == "file"


def test_contract_points_are_the_documented_line_protocol() -> None:
    tags = contract.MachineTags(firm="f", site="s", area="a", line="l", machine="m", gw="g")
    rul = contract.rul_point(
        tags, time_ms=5, model="rul-x", rul_cycles=100.0, rul_p10=50.0, rul_p90=150.0
    )
    assert rul == (
        b"rul,area=a,firm=f,gw=g,line=l,machine=m,model=rul-x,site=s "
        b"rul_cycles=100.0,rul_p10=50.0,rul_p90=150.0 5\n"
    )
    mold = contract.mold_point(
        tags,
        time_ms=6,
        mold="M-1",
        shot_count=10,
        shots_since_maintenance=4,
        maintenance_interval_shots=100,
        remaining_shots=96.0,
    )
    assert mold.startswith(
        b"mold,area=a,firm=f,gw=g,line=l,machine=m,mold=M-1,site=s shot_count=10i,"
    )
    assert b"remaining_shots=96.0" in mold
    deploy = contract.model_deploy_point(
        firm="f",
        site="s",
        gw="g",
        model="cell-t2",
        version="1.0.0",
        result="succeeded",
        stage="done",
        deployment=7,
        finished_ms=9,
    )
    assert deploy == format_point(
        "model_deploy",
        {
            "firm": "f",
            "site": "s",
            "gw": "g",
            "model": "cell-t2",
            "version": "1.0.0",
            "result": "succeeded",
            "stage": "done",
        },
        {"deployment": 7, "reason": ""},
        9,
    )


def test_contact_points_carry_no_secret_and_route_everything() -> None:
    """The notification files reference secrets only as ``${VAR}`` and every policy route
    ends at a provisioned contact point."""
    from renkei.dashboards.notifications import provisioning

    for direct in (False, True):
        doc = provisioning(direct=direct)
        names = {cp["name"] for cp in doc["contactPoints"]}
        receivers = [r for cp in doc["contactPoints"] for r in cp["receivers"]]
        kinds = {r["type"] for r in receivers}
        assert kinds == ({"email", "slack", "webhook"} if direct else {"webhook"})
        for r in receivers:
            for key in ("url", "addresses", "authorization_credentials"):
                if key in r["settings"]:
                    assert r["settings"][key].startswith("${"), (key, r)
        routes = [doc["policies"][0], *doc["policies"][0]["routes"]]
        assert {r["receiver"] for r in routes} <= names
    hook = provisioning()["contactPoints"][0]["receivers"][0]["settings"]
    assert hook["url"].endswith("/notifications/grafana?channels=line,email,slack")
    assert hook["authorization_scheme"] == "Bearer"
