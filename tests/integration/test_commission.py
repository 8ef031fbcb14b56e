"""``renkei models commission`` end to end: a real gateway replays SKAB valve1/1.csv (1 s
windows, 2000× speed) through real Mosquitto and the ingest into a real InfluxDB; the
command reads the machine's feature rows back from InfluxDB and commissions on them.

The recording's labelled anomaly (the valve closure, rows 572-973 of the CSV) is read back
from the ``label`` measurement the gateway published, never given to the command.

Cases: a normal period -> model built, signed, loaded by the gateway's inference and scoring
the machine's rows; a period containing the anomaly -> refused with the ranges and channels;
a too-short period -> refused; ``--auto`` inside a range that ends in the anomaly -> picks a
clean stretch before it; an unconfirmed finding without ``--yes`` -> refused.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from harness.services import InfluxDB, Mosquitto
from harness.wait import pause, wait_for
from renkei.cloud.store import InfluxSettings
from renkei.core.manifest import read_manifest
from renkei.core.signing import (
    SignatureError,
    TrustedKeys,
    generate_private_key,
    private_key_pem,
    public_key_text,
    read_signature,
    sha256_hex,
    verify_model,
)
from renkei.edge.model.inference import AnomalyModel
from renkei.edge.model.inputs import ModelInputs, plan_inputs
from renkei.models.cli import app as models_app
from renkei.models.commission.query import MachineRef, fetch_rows, iso_utc
from tests.datasets import require_data_dir
from tests.e2e import pipeline_rig

pytestmark = pytest.mark.slow

FIRM, SITE, MACHINE, GW = "acme", "osaka", "pump-1", "gw-commission"


@dataclass(frozen=True)
class Filled:
    """An InfluxDB database holding the replay, and the labelled anomaly's range."""

    influx: InfluxDB
    database: str
    t_ms: np.ndarray  # feature row times
    anomaly: tuple[int, int]  # first, last labelled row time (ms)

    def iso(self, i: int) -> str:
        return iso_utc(int(self.t_ms[i]))

    def cli(self, tmp: Path, *args: str) -> tuple[int, str, Path]:
        key = tmp / "signing.pem"
        if not key.exists():
            key.write_bytes(private_key_pem(generate_private_key()))
        out = tmp / "model"
        argv = [
            "commission",
            "--firm",
            FIRM,
            "--site",
            SITE,
            "--machine",
            MACHINE,
            "--influx",
            self.influx.url,
            "--database",
            self.database,
            "--key",
            str(key),
            "--out",
            str(out),
            *args,
        ]
        res = CliRunner().invoke(models_app, argv, catch_exceptions=False)
        return res.exit_code, res.output, out


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory, influxdb_shared: InfluxDB) -> Filled:
    """Replay valve1/1.csv once through gateway -> Mosquitto -> ingest -> InfluxDB."""
    csv = require_data_dir() / "skab" / "data" / "valve1" / "1.csv"
    tmp = tmp_path_factory.mktemp("commission")
    broker = Mosquitto(workdir=tmp / "mosquitto")
    broker.start()
    database = f"t_commission_{uuid.uuid4().hex[:8]}"
    gateway = {
        "gateway_id": GW,
        "firm": FIRM,
        "site": SITE,
        "machines": [
            {
                "id": MACHINE,
                "area": "utilities",
                "line": "water-loop",
                "source": {
                    "type": "replay",
                    "preset": "skab",
                    "path": str(csv),
                    "speed": 2000,
                    "timestamps": "keep",
                },
                "window_s": 1,
            }
        ],
    }
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RENKEI_MAX_PAST_S", "0")  # the recording's 2020 times
        try:
            with pipeline_rig(tmp, broker, influxdb_shared, database, gateways=[gateway]) as rig:
                agent = rig.agents[0]
                wait_for(lambda: not agent.alive(), 120, f"replay to finish\n{agent.tail()}")
                assert agent.proc.returncode == 0, agent.tail()
                field = "current_A_mean"

                def settled() -> bool:
                    want = rig.witness.expected_points("features", field)
                    try:
                        got = influxdb_shared.count_points(database, "features", field)
                    except OSError:
                        return False
                    return want > 0 and got == want

                wait_for(settled, 60, "the replay's feature rows in InfluxDB")
                pause(0.5, "nothing more arrives")
        finally:
            broker.kill()
    rows = influxdb_shared.query(
        f'SELECT "{field}" FROM features WHERE "machine"::tag = \'{MACHINE}\'', db=database
    )
    t_ms = np.array([v[0] for v in rows[0]["values"]], dtype=np.int64)
    labels = influxdb_shared.query("SELECT * FROM label", db=database)
    cols = labels[0]["columns"]
    fault = cols.index("fault")
    lab = [v for v in labels[0]["values"] if v[fault]]
    assert lab, (cols, labels[0]["values"][:3])
    anomaly = (int(lab[0][cols.index("time")]), int(lab[-1][cols.index("time")]))
    return Filled(influxdb_shared, database, t_ms, anomaly)


def _first_at(filled: Filled, t: int) -> int:
    return int(np.searchsorted(filled.t_ms, t))


def test_normal_period_builds_a_signed_model_the_gateway_runs(
    filled: Filled, tmp_path: Path
) -> None:
    a0 = _first_at(filled, filled.anomaly[0])
    assert 500 < a0 < 700, a0  # sanity: the valve closes ~572 s into the recording
    code, out, model_dir = filled.cli(
        tmp_path, "--start", filled.iso(0), "--end", filled.iso(a0), "--yes"
    )
    assert code == 0, out
    manifest = read_manifest(model_dir)
    assert manifest.feature_kind == "window" and manifest.window_s == 1.0
    assert manifest.algorithm == "mahalanobis"
    assert "alarm onsets/day" in manifest.threshold_rule
    card = (model_dir / "MODEL_CARD.md").read_text()
    assert filled.iso(0) in card and "Threshold rule" in card and "Channels:" in card
    # signed by the engineer's key, verifiable as a gateway verifies it
    sig = read_signature(model_dir)
    key = generate_private_key()  # not the signer: untrusted
    with pytest.raises(SignatureError, match="not trusted"):
        verify_model(
            sig,
            TrustedKeys([public_key_text(key)]),
            name=manifest.name,
            version=manifest.version,
            sha256=manifest.sha256,
            manifest_sha256=sha256_hex((model_dir / "manifest.json").read_bytes()),
        )
    from renkei.core.signing import load_private_key

    signer = load_private_key(tmp_path / "signing.pem")
    verify_model(
        sig,
        TrustedKeys([public_key_text(signer)]),
        name=manifest.name,
        version=manifest.version,
        sha256=manifest.sha256,
        manifest_sha256=sha256_hex((model_dir / "manifest.json").read_bytes()),
    )
    # the gateway's loader and input plan take it unchanged; it scores the stored rows
    model = AnomalyModel.load(model_dir=model_dir, expected_sha256=manifest.sha256)
    inputs: ModelInputs[None] = ModelInputs(plan_inputs(manifest))
    settings = InfluxSettings(url=filled.influx.url, database=filled.database)
    table = fetch_rows(
        settings,
        MachineRef(FIRM, SITE, MACHINE),
        kind="window",
        start_ms=int(filled.t_ms[0]),
        end_ms=int(filled.t_ms[-1]) + 1,
    )
    scores, times = [], []
    for t, row in zip(table.t_ms, table.x, strict=True):
        values = {n: float(v) for n, v in zip(table.names, row, strict=True) if v == v}
        for r in inputs.push(int(t), values, None):
            assert r.x is not None
            scores.append(float(model.score(r.x)[0]))
            times.append(r.t_ms)
    s, tt = np.array(scores), np.array(times)
    assert len(s) == len(table) and np.isfinite(s).all()
    lo, hi = filled.anomaly
    alarm = s > model.threshold
    in_anomaly = (tt >= lo) & (tt <= hi)
    # the anomaly alarms far more often than the normal rows the model was built on
    assert alarm[in_anomaly].mean() > 0.5, alarm[in_anomaly].mean()
    assert alarm[tt < lo].mean() < 0.02, alarm[tt < lo].mean()


def test_period_containing_the_anomaly_is_refused_with_ranges_and_channels(
    filled: Filled, tmp_path: Path
) -> None:
    a0 = _first_at(filled, filled.anomaly[0])
    code, out, model_dir = filled.cli(
        tmp_path, "--start", filled.iso(a0 - 250), "--end", filled.iso(a0 + 300), "--yes"
    )
    assert code == 1, out
    assert "refused" in out and "contamination [" in out, out
    assert re.search(r"2020-03-09T\d\d:\d\d:\d\d\.\d{3}Z \.\. 2020-03-09T", out), out
    assert re.search(r"contamination \[[A-Za-z0-9_]+_(mean|min|max)", out), out
    assert not model_dir.exists()


def test_too_short_period_is_refused(filled: Filled, tmp_path: Path) -> None:
    code, out, model_dir = filled.cli(
        tmp_path, "--start", filled.iso(0), "--end", filled.iso(60), "--yes"
    )
    assert code == 1, out
    assert "short" in out, out
    assert not model_dir.exists()


def test_auto_picks_a_clean_stretch_before_the_anomaly(filled: Filled, tmp_path: Path) -> None:
    a0 = _first_at(filled, filled.anomaly[0])
    search = (
        "--auto",
        "--auto-rows",
        "300",
        "--start",
        filled.iso(0),
        "--end",
        filled.iso(a0 + 130),
    )
    code, out, _ = filled.cli(tmp_path, *search)
    assert code == 1 and "not confirmed" in out, out  # non-interactive, no --yes
    code, out, model_dir = filled.cli(tmp_path, *search, "--yes")
    assert code == 0, out
    source = read_manifest(model_dir).training.data_source
    found = re.findall(r"(\d{4}-\d\d-\d\dT[\d:.]+Z)", source)
    first, last = (np.datetime64(t.rstrip("Z"), "ms").astype(np.int64) for t in found[:2])
    assert last - first >= 299_000
    chosen = (filled.t_ms >= first) & (filled.t_ms <= last)
    overlap = chosen & (filled.t_ms >= filled.anomaly[0])
    # at most a few rows of the valve closure's start, below the check's resolution
    assert overlap.sum() <= 0.05 * chosen.sum(), (overlap.sum(), chosen.sum(), out)


def test_deploy_publishes_the_signed_model_and_starts_a_canary_deployment(
    filled: Filled, tmp_path: Path
) -> None:
    """``--deploy``: the real API over HTTP (uvicorn) verifies the signature against the
    registry's trusted key, stores the release and creates the canary deployment. The fleet
    row says gateway ``gw-commission`` runs the machine's model ``pump-1-mahal`` 1.0.0, as its
    report would; the rollout controller and gateway side are test_model_rollout.py's."""
    import threading

    import uvicorn

    from harness.services import free_port
    from renkei.cloud.registry import FleetGateway, FleetModel, session_scope
    from renkei.core.signing import load_private_key
    from tests.api.rig import ApiRig

    (tmp_path / "api").mkdir()
    api = ApiRig(tmp_path / "api")
    api.seed_firm(FIRM)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(api.app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, 20, "uvicorn")
        key_file = tmp_path / "signing.pem"
        key_file.write_bytes(private_key_pem(generate_private_key()))
        admin = api.client(FIRM, "admin")
        pub = public_key_text(load_private_key(key_file))
        assert admin.post("/api/v1/model-keys", json={"public_key": pub}).status_code == 201
        with session_scope(api.engine) as s:
            s.add(FleetGateway(firm_id=FIRM, gateway_id=GW, site_id=f"{FIRM}-s1", groups=[]))
            s.add(
                FleetModel(
                    firm_id=FIRM,
                    gateway_id=GW,
                    model_name="pump-1-mahal",
                    version="1.0.0",
                    machines=[MACHINE],
                )
            )
        a0 = _first_at(filled, filled.anomaly[0])
        code, out, _ = filled.cli(
            tmp_path,
            "--start",
            filled.iso(0),
            "--end",
            filled.iso(a0),
            "--yes",
            "--name",
            "pump-1-mahal",
            "--version",
            "1.1.0",
            "--deploy",
            "--to",
            f"gateway:{GW}",
            "--canary",
            "1",
            "--no-wait",
            "--api",
            f"http://127.0.0.1:{port}",
            "--api-key",
            api.key(FIRM, "engineer"),
        )
        assert code == 0, out
        assert "published pump-1-mahal@1.1.0" in out, out
        eng = api.client(FIRM, "engineer")
        (dep,) = eng.get(f"/api/v1/firms/{FIRM}/deployments").json()
        assert (dep["model_name"], dep["version"], dep["canary"]) == ("pump-1-mahal", "1.1.0", 1)
        assert [t["gateway_id"] for t in dep["targets"]] == [GW]
    finally:
        server.should_exit = True
        thread.join(10)
