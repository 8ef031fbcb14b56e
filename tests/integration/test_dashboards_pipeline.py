"""Dashboards and alert rules against a real InfluxDB filled by the real pipeline.

One module-scoped fill (about a minute) runs real gateway agents → Mosquitto → ingest →
InfluxDB:

- ``gw-osaka-01``: four simulated cells, one injected fault each (heater band failure,
  bearing wear, cooling-channel blockage, mold wear; onset at 80 s simulated time);
- ``gw-osaka-02``: two fault-free simulated cells (the *normal run*);
- ``gw-kassel-01``, ``gw-skab-01``, ``gw-nab-01``: replays of the real Kassel, SKAB and
  NAB datasets; the NAB gateway is killed with SIGKILL early (gateway offline);
- ``gw-osaka-03``: a gateway whose outbox is held (it waits for an ingest group that does
  not exist), so its backlog grows;
- three malformed messages published near the end (dead letters).

``model_deploy`` and ``capacity`` come from their real producers, on a SQLite registry
holding the osaka cells (shift calendar, one booking on the site-local day after the end
of the fill, see :func:`_booking_day`): the rollout controller
(:class:`renkei.cloud.rollout.RolloutController`, running through the fill) writes the
deployment outcomes of two model reports published to the broker as gateways publish
them (one success, one rollback), and :func:`renkei.cloud.capacity.publish.publish_capacity`
(``renkei cloud capacity-publish``, its clock fixed at the end of the fill) writes the
spare capacity of the 84-day horizon. The
``rul`` and ``mold`` points are written afterwards with :mod:`renkei.core.influx.contract`,
derived from the simulator's ground-truth labels in InfluxDB (a stand-in for the models),
and so are ``quality`` points (a stand-in for live machine sources, whose quality rows
``tests/integration/test_live_quality.py`` takes through the real ingest).

Every panel query of the committed dashboard JSON is then run as Grafana would run it
(variables = All, macros expanded for the dashboard's default range ending at the end of
the fill) and must return rows with the expected columns; every alert rule is evaluated at
chosen instants and must fire on the injected faults and not on the normal run.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from harness.procs import Proc, start_agent, start_ingest
from harness.services import REPO, InfluxDB, Mosquitto
from harness.wait import pause, wait_for
from renkei.cloud.api.settings import ApiSettings
from renkei.cloud.capacity import ShiftCalendar
from renkei.cloud.capacity.calendar import day_start_utc, local_date
from renkei.cloud.capacity.publish import publish_capacity, publisher_state
from renkei.cloud.registry import CapacityBooking, Site, import_document, make_engine, session_scope
from renkei.cloud.registry.migrate import upgrade
from renkei.cloud.rollout import RolloutController, RolloutSettings
from renkei.cloud.store.influx import InfluxSettings, InfluxStore
from renkei.core.influx import contract
from renkei.core.mqtt import BrokerSettings
from renkei.core.oee import BASIS_CODES
from renkei.core.wire import DeployResult, ModelReport, RunningModel, encode, rollout_topic
from renkei.dashboards.alerts import OFFLINE_BUCKETS, RULES, RuleSpec
from renkei.dashboards.boards import build_boards
from renkei.dashboards.build import ROOT
from renkei.dashboards.emulate import (
    AlertEvaluation,
    Runner,
    evaluate_rule,
    influx_runner,
    relative_range,
)
from renkei.dashboards.panels import Board
from renkei.dashboards.verify import PanelRun, run_board
from tests.api.rig import imm
from tests.datasets import require_data_dir
from tests.e2e import write_gateway_config

pytestmark = pytest.mark.slow

FAULTS = {
    "imm-heater": "heater_band_failure",
    "imm-bearing": "bearing_wear",
    "imm-cooling": "cooling_blockage",
    "imm-mold": "mold_wear",
}
NORMAL = ("imm-normal-1", "imm-normal-2")
#: Faults the window anomaly model (cell-t2) detects; it is blind to mold wear (its
#: manifest: mold_wear recall 0), which the mold rule covers instead.
DETECTABLE = {"imm-heater", "imm-bearing", "imm-cooling"}
FILL_S = 60.0
SIM_SPEED = 8.0
FAULT_START_S = 80.0
IDEAL_CYCLE_S = 18.0


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class Fill:
    """What the module fixture produced."""

    influx: InfluxDB
    database: str
    run: Runner
    start_ms: int
    end_ms: int
    kill_ms: int
    deadletters_ms: int
    onsets: dict[str, int] = field(default_factory=dict)


def _sim(machine: str, line: str, seed: int, fault: str | None, speed: float) -> dict[str, Any]:
    faults = (
        [{"kind": fault, "start_s": FAULT_START_S, "ramp_s": 30.0, "severity": 1.0}]
        if fault
        else []
    )
    return {
        "id": machine,
        "area": "molding",
        "line": line,
        "source": {
            "type": "simulated",
            "seed": seed,
            "speed": speed,
            "cycle_time_s": 20,
            "faults": faults,
        },
        "window_s": 1,
        "model": {"dir": str(REPO / "models" / "artifacts" / "cell-t2")},
        # the mounted mold's ideal cycle time (registry), 18 s of the simulator's 20 s cycle
        "oee": {"interval_s": 5, "mold": f"M-{machine}", "ideal_cycle_time_s": IDEAL_CYCLE_S},
    }


#: A cell with a real run-state signal (``machine_state``) and scheduled stops (simulated
#: s): down for 60 s, idle for 40 s; no model (quality basis ``unknown``).
STATE_MACHINE = "imm-state"
STOPS: list[dict[str, Any]] = [
    {"state": "down", "start_s": 60.0, "duration_s": 60.0},
    {"state": "idle", "start_s": 200.0, "duration_s": 40.0},
]


def _sim_with_state(machine: str, line: str, seed: int) -> dict[str, Any]:
    cfg = _sim(machine, line, seed, None, SIM_SPEED)
    del cfg["model"]
    cfg["source"] |= {"machine_state": True, "stops": STOPS}
    cfg["oee"]["run_state"] = {"signal": "machine_state", "running": [1], "idle": [2], "down": [3]}
    return cfg


def _replay(
    machine: str, area: str, line: str, preset: str, path: Path, speed: float, window_s: float
) -> dict[str, Any]:
    model = {"kassel": "kassel-shot-t2", "skab": "skab-pump-t2", "nab": "nab-temp-t2"}[preset]
    return {
        "id": machine,
        "area": area,
        "line": line,
        "source": {
            "type": "replay",
            "preset": preset,
            "path": str(path),
            "speed": speed,
            "timestamps": "rebase",
            "loop": True,
        },
        "window_s": window_s,
        "model": {"dir": str(REPO / "models" / "artifacts" / model)},
    }


def _gateways(data: Path) -> dict[str, dict[str, Any]]:
    return {
        "gw-osaka-01": {
            "firm": "demo-molding",
            "site": "osaka",
            "machines": [
                _sim(m, "line-1", 11 + i, fault, SIM_SPEED)
                for i, (m, fault) in enumerate(FAULTS.items())
            ],
        },
        "gw-osaka-02": {
            "firm": "demo-molding",
            "site": "osaka",
            "machines": [
                *(_sim(m, "line-2", 21 + i, None, SIM_SPEED) for i, m in enumerate(NORMAL)),
                _sim_with_state(STATE_MACHINE, "line-2", 29),
            ],
        },
        "gw-kassel-01": {
            "firm": "demo-molding",
            "site": "kassel",
            "machines": [
                _replay(
                    "imm-265995",
                    "molding",
                    "line-1",
                    "kassel",
                    data / "molding" / "kassel_cpc_lower_workpiece" / "static_data.csv",
                    2000,
                    60,
                )
            ],
        },
        "gw-skab-01": {
            "firm": "demo-pumps",
            "site": "skoltech-lab",
            "machines": [
                _replay(
                    "pump-1",
                    "utilities",
                    "water-loop",
                    "skab",
                    data / "skab" / "data" / "valve1" / "1.csv",
                    50,
                    10,
                )
            ],
        },
        "gw-nab-01": {
            "firm": "demo-plant",
            "site": "plant-a",
            "machines": [
                _replay(
                    "machine-7",
                    "assembly",
                    "line-2",
                    "nab",
                    data
                    / "nab"
                    / "data"
                    / "realKnownCause"
                    / "machine_temperature_system_failure.csv",
                    100_000,
                    3600,
                )
            ],
        },
        "gw-osaka-03": {
            "firm": "demo-molding",
            "site": "osaka",
            "machines": [_sim("imm-held", "line-3", 31, None, 1.0)],
        },
    }


def _write(influx: InfluxDB, database: str, body: bytes) -> None:
    req = urllib.request.Request(
        f"{influx.url}/write?db={database}&precision=ms", data=body, method="POST"
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 204


def _publish_dead_letters(port: int) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="dlq-injector")
    client.connect("127.0.0.1", port)
    client.loop_start()
    base = "renkei/v1/demo-molding/osaka/molding/line-1/imm-heater"
    infos = [
        client.publish(f"{base}/telemetry", b"{not json", qos=1),
        client.publish(f"{base}/bogus", b'{"v": 1}', qos=1),
        client.publish(f"{base}/telemetry", b'{"v": 2, "gw": "gw-osaka-01"}', qos=1),
    ]
    for info in infos:
        info.wait_for_publish(10)
    client.disconnect()
    client.loop_stop()


def _write_standins(influx: InfluxDB, database: str, run: Runner, end_ms: int) -> dict[str, int]:
    """RUL, mold and quality points (see the module docstring).

    Returns:
        machine -> onset time (ms) of its injected fault (first non-zero label).
    """
    onsets: dict[str, int] = {}
    for s in run('SELECT first("fault") FROM "label" WHERE "fault" > 0 GROUP BY "machine"'):
        onsets[s["tags"]["machine"]] = int(s["values"][0][0])
    lines: list[bytes] = []
    shots = run(
        f'SELECT "shot_count" FROM "shot" WHERE time <= {end_ms}ms '
        'AND "machine" =~ /^imm-/ GROUP BY "firm", "site", "area", "line", "machine", "gw"'
    )
    for s in shots:
        tags = contract.MachineTags(**s["tags"])
        onset = onsets.get(tags.machine)
        shots_at_onset: float | None = None
        for t_ms, count in s["values"]:
            after = onset is not None and t_ms >= onset
            if after and shots_at_onset is None:
                shots_at_onset = count
            since_onset = count - shots_at_onset if after and shots_at_onset is not None else 0
            decay = max(0.0, 1.0 - since_onset / 25.0)
            # RUL stand-in: end of life 400 cycles after a detectable fault's onset.
            rul = 400.0 * decay if after and tags.machine in DETECTABLE else 5000.0 - count
            lines.append(
                contract.rul_point(
                    tags,
                    time_ms=t_ms,
                    model="rul-standin",
                    rul_cycles=rul,
                    rul_p10=0.7 * rul,
                    rul_p90=1.3 * rul,
                )
            )
            interval = 100_000
            since = 40_000 + int(count)
            remaining = float(interval - since)
            if after and tags.machine == "imm-mold":
                remaining = min(remaining, 3000.0 * decay)
            lines.append(
                contract.mold_point(
                    tags,
                    time_ms=t_ms,
                    mold=f"M-{tags.machine}",
                    shot_count=250_000 + int(count),
                    shots_since_maintenance=since,
                    maintenance_interval_shots=interval,
                    remaining_shots=remaining,
                    remaining_shots_p10=0.8 * remaining,
                    remaining_shots_p90=1.2 * remaining,
                    ideal_cycle_time_s=20.0,
                )
            )
            # live-source quality: a link outage right after a detectable fault's onset
            down = after and tags.machine in DETECTABLE and since_onset < 3
            readings = 0.0 if down else 20.0
            lines.append(
                contract.quality_point(
                    tags,
                    time_ms=t_ms,
                    counters={
                        "link_up": 0.0 if down else 1.0,
                        "readings": readings,
                        "bad": float(int(count) % 5 == 0) * readings / 20,
                        "uncertain": float(int(count) % 3 == 0) * readings / 20,
                        "gateway_time": readings / 2,
                    },
                )
            )
    _write(influx, database, b"".join(lines))
    return onsets


SHIFTS = ShiftCalendar.from_shifts(
    {"mon": [8, 8], "tue": [8, 8], "wed": [8, 8], "thu": [8, 8], "fri": [8, 8], "sat": [8]}
)


def _booking_day(now: datetime) -> date:
    """The site-local day of the one booking: the day after ``now``'s.

    The ``capacity`` point of a day is stamped at local 00:00 (Asia/Tokyo: 15:00 UTC the
    day before), and the capacity board's range starts at ``now/d``, which the emulator
    (like Grafana in a UTC browser) rounds in UTC: local *today*'s point is inside that
    range only from 00:00 to 09:00 Japan time. Local tomorrow's is inside it at any
    instant, and inside the publisher's horizon (today + 84 days).
    """
    return local_date(SHIFTS, now) + timedelta(days=1)


def _registry(url: str) -> None:
    """The osaka cells in the registry: firm, site (shift calendar), lines, machines."""
    upgrade(url)
    engine = make_engine(url)
    line_of = {m: "line-1" for m in FAULTS} | {m: "line-2" for m in NORMAL}
    try:
        with session_scope(engine) as s:
            import_document(
                s,
                {
                    "firms": [{"id": "demo-molding", "name": "Demo Molding", "region": "kansai"}],
                    "sites": [
                        {
                            "id": "osaka",
                            "firm_id": "demo-molding",
                            "name": "Osaka",
                            "latitude_deg": 34.7,
                            "longitude_deg": 135.5,
                            "region": "kansai",
                        }
                    ],
                    "lines": [
                        {"id": line, "site_id": "osaka", "name": line, "area": "molding"}
                        for line in ("line-1", "line-2")
                    ],
                    "machines": [
                        imm(m) | {"firm_id": "demo-molding", "line_id": line_of[m]}
                        for m in (*FAULTS, *NORMAL)
                    ],
                },
            )
            site = s.get(Site, "osaka")
            assert site is not None
            site.calendar = SHIFTS.model_dump(mode="json")
    finally:
        engine.dispose()


def _book(url: str, day: date) -> None:
    """12 h booked on ``imm-normal-1`` on the site-local ``day``."""
    engine = make_engine(url)
    try:
        with session_scope(engine) as s:
            s.add(
                CapacityBooking(
                    firm_id="demo-molding",
                    machine_id="imm-normal-1",
                    start=day,
                    end=day,
                    hours_per_day=12.0,
                )
            )
    finally:
        engine.dispose()


def _report(gw: str, model: str, running: str, result: DeployResult) -> ModelReport:
    return ModelReport(
        v=1,
        gw=gw,
        sent_ms=result.finished_ms,
        models={model: RunningModel(version=running, sha256="0" * 64)},
        results={model: result},
    )


def _run_producers(
    influx: InfluxDB, database: str, registry: str, broker: Mosquitto, run: Runner, end_ms: int
) -> None:
    """``model_deploy`` (the rollout controller, from two reports) and ``capacity``."""
    reports = {
        ("demo-molding", "osaka", "gw-osaka-01"): _report(
            "gw-osaka-01",
            "cell-t2",
            "1.0.0",
            DeployResult(
                deployment=1,
                version="1.0.0",
                status="succeeded",
                stage="done",
                finished_ms=end_ms - 30_000,
            ),
        ),
        ("demo-pumps", "skoltech-lab", "gw-skab-01"): _report(
            "gw-skab-01",
            "skab-pump-t2",
            "1.0.0",
            DeployResult(
                deployment=2,
                version="1.1.0",
                status="rolled_back",
                stage="probation",
                reason="probation: non-finite scores",
                finished_ms=end_ms - 20_000,
            ),
        ),
    }
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="report-injector")
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    for (firm, site, gw), report in reports.items():
        topic = rollout_topic(firm=firm, site=site, gateway=gw, kind="report")
        client.publish(topic, encode(report), qos=1, retain=True).wait_for_publish(10)
    client.disconnect()
    client.loop_stop()

    def deploy_points() -> bool:
        series = run('SELECT count("deployment") FROM "model_deploy"')
        return bool(series) and series[0]["values"][0][1] == len(reports)

    wait_for(deploy_points, 30, "model_deploy points from the rollout controller", 0.2)

    # One fixed instant for the booking and the publisher (whose "today" it is).
    now = datetime.fromtimestamp(end_ms / 1000, UTC)
    _book(registry, _booking_day(now))
    settings = ApiSettings(database_url=registry, influx_url=influx.url, influx_database=database)
    engine = make_engine(registry)
    store = InfluxStore(settings=InfluxSettings(url=influx.url, database=database))
    try:
        state = publisher_state(settings.capacity(), engine=engine, clock=lambda: now)
        published = publish_capacity(state, store, days=84)
        assert published.ok and published.machines == len(FAULTS) + len(NORMAL), published
    finally:
        store.close()
        engine.dispose()


@pytest.fixture(scope="module")
def fill(influxdb_shared: InfluxDB, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fill]:
    """Run the pipeline once for the whole module (see the module docstring)."""
    data = require_data_dir()
    tmp = tmp_path_factory.mktemp("dashboards")
    broker = Mosquitto(workdir=tmp / "mosquitto")
    broker.start()
    database = f"t_dash_{int(time.time())}"
    agents: dict[str, Proc] = {}
    ingest = start_ingest(
        broker_port=broker.port,
        influx_url=influxdb_shared.url,
        database=database,
        log=tmp / "ingest.log",
    )
    run = influx_runner(influxdb_shared.url, database)
    registry = f"sqlite:///{tmp / 'registry.sqlite3'}"
    _registry(registry)
    rollout = RolloutController(
        RolloutSettings(
            database_url=registry,
            broker=BrokerSettings.from_url(broker.url, client_id="rollout-dashboards"),
            influx=InfluxSettings(url=influxdb_shared.url, database=database),
        )
    )
    rollout.start()
    try:
        start_ms = _now_ms()
        for gw, overrides in _gateways(data).items():
            mqtt_cfg: dict[str, Any] = {"host": "127.0.0.1", "port": broker.port, "keepalive_s": 5}
            if gw == "gw-osaka-03":
                mqtt_cfg["wait_for_ingest"] = "renkei-nobody"
            config = write_gateway_config(
                tmp / f"{gw}.yaml",
                port=broker.port,
                state_dir=tmp / f"state-{gw}",
                gateway_id=gw,
                mqtt=mqtt_cfg,
                **overrides,
            )
            agents[gw] = start_agent(config, tmp / f"{gw}.log")

        def nab_health() -> bool:
            try:
                series = run('SELECT count("seq") FROM "gateway_health" WHERE "gw" = \'gw-nab-01\'')
            except Exception:
                return False
            return bool(series) and series[0]["values"][0][1] >= 3

        wait_for(nab_health, 60, f"gw-nab-01 health\n{agents['gw-nab-01'].tail()}", 0.2)
        agents["gw-nab-01"].kill9()
        kill_ms = _now_ms()
        # The offline rule looks at the last OFFLINE_BUCKETS 15-s buckets (the newest still
        # filling), so the killed gateway must be silent for that long plus one bucket
        # before the fill ends, however long the start-up took on a loaded machine.
        silent_ms = (OFFLINE_BUCKETS + 1) * 15_000 + 5_000
        deadline = max(start_ms + int(FILL_S * 1000), kill_ms + silent_ms)
        pause(
            max(0.0, (deadline - 12_000 - _now_ms()) / 1000),
            "the fill runs until 12 s before its end",
        )
        deadletters_ms = _now_ms()
        _publish_dead_letters(broker.port)
        pause(max(0.0, (deadline - _now_ms()) / 1000), "the fill runs to its end")
        for gw, agent in agents.items():
            assert gw == "gw-nab-01" or agent.alive(), agent.tail()
        end_ms = _now_ms()
        for agent in agents.values():
            agent.kill9()
        pause(3, "the ingest writes what it holds (batches of < 1 s)")
        onsets = _write_standins(influxdb_shared, database, run, end_ms)
        _run_producers(influxdb_shared, database, registry, broker, run, end_ms)
        yield Fill(
            influx=influxdb_shared,
            database=database,
            run=run,
            start_ms=start_ms,
            end_ms=end_ms,
            kill_ms=kill_ms,
            deadletters_ms=deadletters_ms,
            onsets=onsets,
        )
    finally:
        for agent in agents.values():
            agent.kill9()
        rollout.stop()
        ingest.terminate()
        broker.kill()


def _model(board: Board) -> dict[str, Any]:
    committed: dict[str, Any] = json.loads(
        (ROOT / "generated" / f"{board.uid}.json").read_text(encoding="utf-8")
    )
    return committed


BOARDS = {b.uid: b for b in build_boards()}


# --------------------------------------------------------------------------- panels


@pytest.mark.parametrize("uid", sorted(BOARDS))
def test_every_panel_query_returns_rows_with_expected_columns(fill: Fill, uid: str) -> None:
    board = BOARDS[uid]
    runs = run_board(board, _model(board), fill.run, now_ms=fill.end_ms)
    spec_refs = {(p.panel_id, t.ref_id) for p in board.panels for t in p.targets}
    assert {(r.panel_id, r.ref_id) for r in runs} == spec_refs, "a panel query was not run"
    failed = [
        f"#{r.panel_id} {r.ref_id} {r.title}: {r.problems}\n  {r.query}" for r in runs if not r.ok
    ]
    assert not failed, "\n".join(failed)


def test_single_machine_selection_narrows_every_machine_panel(fill: Fill) -> None:
    board = BOARDS["renkei-machine-detail"]
    runs = run_board(
        board,
        _model(board),
        fill.run,
        now_ms=fill.end_ms,
        variables={"site": ["osaka"], "line": ["line-1"], "machine": ["imm-bearing"]},
    )
    by_title: dict[str, PanelRun] = {r.title: r for r in runs}
    for r in runs:
        assert r.ok, (r.title, r.problems, r.query)
        machines = {
            (s.get("tags") or {}).get("machine")
            or dict(zip(s["columns"], s["values"][0])).get("machine")
            for s in r.answer
        }
        assert machines == {"imm-bearing"}, (r.title, machines)
    score = next(r for t, r in by_title.items() if "Anomaly score" in t)
    assert '"machine"::tag =~ /^imm-bearing$/' in score.query


def test_plant_overview_oee_and_heat_map_values(fill: Fill) -> None:
    board = BOARDS["renkei-plant-overview"]
    runs = run_board(board, _model(board), fill.run, now_ms=fill.end_ms)
    oee_run = next(r for r in runs if r.expressions)
    oee = {dict(n.labels)["machine"]: n.value for n in oee_run.expressions["OEE"]}
    # OEE exists where all three factors exist: the simulated cells (mold ideal cycle time).
    assert set(oee) >= {*FAULTS, *NORMAL}, oee
    assert "pump-1" not in oee  # SKAB: no ideal cycle time, hence no performance and no OEE
    performance = {dict(n.labels)["machine"]: n.value for n in oee_run.expressions["rP"]}
    availability = {dict(n.labels)["machine"]: n.value for n in oee_run.expressions["rA"]}
    for machine in (*FAULTS, *NORMAL):
        # P = ideal cycle time x shots / run time: shots counted independently from the
        # stored shot points (up to the last closed interval), ideal in published time.
        p, a = performance[machine], availability[machine]
        assert p is not None and a is not None, (performance, availability)
        assert p == pytest.approx(_expected_performance(fill, machine), rel=1e-9), performance
        assert 0.7 < p < 0.95, performance  # 18 s ideal vs the simulator's 20 s cycle
        assert a > 0.95, availability  # data all the time (proxy)
        value = oee[machine]
        assert value is not None and 0.0 <= value <= 1.0, (machine, value)
    # The machines with a detected fault lose quality (flagged windows), the normal don't.
    quality = {dict(n.labels)["machine"]: n.value for n in oee_run.expressions["rQ"]}
    for machine in DETECTABLE:
        q = quality[machine]
        assert q is not None and q < 0.9, quality
    for machine in NORMAL:
        q = quality[machine]
        assert q is not None and q > 0.97, quality
    # Each factor says where it comes from: no run-state signal or counts in the simulator.
    basis_run = next(r for r in runs if "OEE basis" in r.title)
    bases = {
        s["tags"]["machine"]: dict(zip(s["columns"], s["values"][0])) for s in basis_run.answer
    }
    for machine in (*FAULTS, *NORMAL):
        assert bases[machine] == {
            "time": bases[machine]["time"],
            "availability_basis": BASIS_CODES["proxy_data_arrival"],
            "performance_basis": BASIS_CODES["mold_registry"],
            "quality_basis": BASIS_CODES["proxy_anomaly_rate"],
        }, bases[machine]
    assert bases["pump-1"]["performance_basis"] == BASIS_CODES["unknown"], bases
    heat = next(r for r in runs if "heat map" in r.title)
    peak = {
        s["tags"]["machine"]: max(v[1] for v in s["values"] if v[1] is not None)
        for s in heat.answer
        if any(v[1] is not None for v in s["values"])
    }
    assert all(peak[m] > 1.0 for m in DETECTABLE), peak
    alarms = next(r for r in runs if "Active alarms" in r.title)
    active = {s["tags"]["machine"] for s in alarms.answer}
    assert active >= DETECTABLE, active
    assert not active & set(NORMAL), active


def _expected_performance(fill: Fill, machine: str) -> float:
    where = f"\"machine\"::tag = '{machine}'"
    (oee,) = fill.run(f'SELECT sum("run_s") FROM "oee" WHERE {where}')
    run_s = oee["values"][0][1]
    (last,) = fill.run(f'SELECT last("planned_s") FROM "oee" WHERE {where}')
    end = last["values"][0][0]
    (shots,) = fill.run(
        f'SELECT count("cycle_time_s") FROM "shot" WHERE {where} AND time < {end}ms'
    )
    return float(IDEAL_CYCLE_S / SIM_SPEED * shots["values"][0][1] / run_s)


def test_oee_availability_from_the_simulated_run_state(fill: Fill) -> None:
    """Availability of the cell with a run-state signal: basis ``run_state``, equal to the
    simulated running share; performance from the configured ideal cycle time."""
    board = BOARDS["renkei-plant-overview"]
    runs = run_board(board, _model(board), fill.run, now_ms=fill.end_ms)
    oee_run = next(r for r in runs if r.expressions)
    factor = {
        ref: {dict(n.labels)["machine"]: n.value for n in oee_run.expressions[ref]}
        for ref in ("rA", "rP")
    }
    basis_run = next(r for r in runs if "OEE basis" in r.title)
    bases = {
        s["tags"]["machine"]: dict(zip(s["columns"], s["values"][0])) for s in basis_run.answer
    }
    assert bases[STATE_MACHINE]["availability_basis"] == BASIS_CODES["run_state"], bases
    assert bases[STATE_MACHINE]["performance_basis"] == BASIS_CODES["mold_registry"], bases
    assert bases[STATE_MACHINE]["quality_basis"] == BASIS_CODES["unknown"], bases
    # The simulated running share: every stop is a gap between consecutive shots (a cycle
    # ends at its shot, it started cycle_time_s / SIM_SPEED earlier in published time).
    # Both stops lie inside the accounted range (they begin 7.5 s published after start).
    where = f"\"machine\"::tag = '{STATE_MACHINE}'"
    (rows,) = fill.run(f'SELECT sum("planned_s"), sum("unknown_s") FROM "oee" WHERE {where}')
    planned_s, unknown_s = rows["values"][0][1], rows["values"][0][2] or 0.0
    (shots,) = fill.run(f'SELECT "cycle_time_s" FROM "shot" WHERE {where}')
    ends = [(t / 1000, ct / SIM_SPEED) for t, ct in shots["values"]]
    gaps = [b_end - b_ct - a_end for (a_end, _), (b_end, b_ct) in pairwise(ends)]
    stopped_s = sum(g for g in gaps if g > 0.5)
    simulated = sum(float(s["duration_s"]) for s in STOPS) / SIM_SPEED
    assert simulated - 20 / SIM_SPEED * 2 <= stopped_s <= simulated, (stopped_s, gaps)
    assert unknown_s < 0.5, unknown_s  # every sample mapped to a state
    expected = 1.0 - stopped_s / planned_s
    # tolerance: the 10 Hz slow samples (0.0125 s published) at each state change
    a = factor["rA"][STATE_MACHINE]
    assert a is not None and a == pytest.approx(expected, abs=0.01), (expected, factor)
    assert a < 0.9, factor  # the stops do cost availability
    # P = ideal x shots / run time, with the configured (mold) ideal cycle time of 18 s.
    p = factor["rP"][STATE_MACHINE]
    assert p == pytest.approx(_expected_performance(fill, STATE_MACHINE), rel=1e-9), factor
    # 18 s ideal vs ~20 s simulated cycles (longer when the machine running the test is
    # loaded: the exact value is checked just above, this only that it is in range)
    assert p is not None and IDEAL_CYCLE_S / 20.0 - 0.1 <= p <= IDEAL_CYCLE_S / 20.0 + 0.03


def test_deployment_and_capacity_panels_show_what_the_producers_wrote(fill: Fill) -> None:
    board = BOARDS["renkei-gateway-fleet"]
    runs = run_board(board, _model(board), fill.run, now_ms=fill.end_ms)
    last = next(r for r in runs if "Last deployment" in r.title)
    rows = {
        (s["tags"]["gw"], s["tags"]["model"]): dict(zip(s["columns"], s["values"][0]))
        for s in last.answer
    }
    assert set(rows) == {("gw-osaka-01", "cell-t2"), ("gw-skab-01", "skab-pump-t2")}
    skab = rows["gw-skab-01", "skab-pump-t2"]
    assert (skab["result"], skab["stage"], skab["deployment"], skab["version"]) == (
        "rolled_back",
        "probation",
        2,
        "1.1.0",
    )
    assert skab["reason"] == "probation: non-finite scores"
    assert rows["gw-osaka-01", "cell-t2"]["result"] == "succeeded"

    board = BOARDS["renkei-capacity"]
    runs = run_board(board, _model(board), fill.run, now_ms=fill.end_ms)
    totals = next(r for r in runs if "Totals" in r.title)
    booked = {
        s["tags"]["machine"]: dict(zip(s["columns"], s["values"][0]))["booked_h"]
        for s in totals.answer
    }
    # every cell of the registry, over the 84-day horizon; the one booking (tomorrow)
    assert booked == {m: 12.0 if m == "imm-normal-1" else 0.0 for m in (*FAULTS, *NORMAL)}


@pytest.mark.parametrize(
    "now",
    [
        "2026-12-07T08:05:00+00:00",  # Monday 17:05 in Japan: today's point was out of range
        "2026-12-13T14:58:30+00:00",  # Sunday 23:58:30 in Japan
        "2026-12-13T15:00:00+00:00",  # Monday 00:00 in Japan
        "2026-12-13T23:59:59+00:00",  # Monday 08:59:59 in Japan, the last second of UTC's day
        "2026-12-14T00:00:00+00:00",  # UTC midnight
        "2027-03-28T01:30:00+00:00",  # a European DST change (Asia/Tokyo has none)
    ],
)
def test_the_booking_day_is_inside_the_capacity_range_at_any_instant(now: str) -> None:
    """The capacity assertion above holds whenever the suite runs (no fill needed)."""
    instant = datetime.fromisoformat(now)
    now_ms = int(instant.timestamp() * 1000)
    model = _model(BOARDS["renkei-capacity"])
    tr = relative_range(model["time"]["from"], model["time"]["to"], now_ms=now_ms)
    day = _booking_day(instant)
    stamp_ms = int(day_start_utc(SHIFTS, day).timestamp() * 1000)
    assert tr.from_ms <= stamp_ms <= tr.to_ms, (day, tr)
    horizon_start = local_date(SHIFTS, instant)
    assert horizon_start <= day < horizon_start + timedelta(days=84)


# --------------------------------------------------------------------------- alerts


def _rule(uid: str) -> RuleSpec:
    return next(r for r in RULES if r.uid == uid)


def _evaluate(fill: Fill, uid: str, at_ms: int) -> AlertEvaluation:
    ev = evaluate_rule(_rule(uid).to_file(), fill.run, now_ms=at_ms)
    assert ev.rule_state != "Error", ev.error
    return ev


def test_anomaly_rule_fires_on_detectable_faults_not_on_normal_run(fill: Fill) -> None:
    ev = _evaluate(fill, "renkei-anomaly-persistent", fill.end_ms)
    firing = ev.firing_values("machine")
    assert firing >= DETECTABLE, ev.values
    assert not firing & {*NORMAL, "imm-mold"}, ev.values
    for machine in NORMAL:
        assert ev.states[_labels_of(ev, machine)] == "Normal"
    # Before its fault's onset each faulty machine was normal too.
    for machine in DETECTABLE:
        before = _evaluate(fill, "renkei-anomaly-persistent", fill.onsets[machine] - 1)
        assert machine not in before.firing_values("machine"), before.values


def _labels_of(ev: AlertEvaluation, machine: str) -> tuple[tuple[str, str], ...]:
    return next(labels for labels in ev.states if dict(labels).get("machine") == machine)


def test_rul_rule_fires_after_fault_onset_only(fill: Fill) -> None:
    ev = _evaluate(fill, "renkei-rul-low", fill.end_ms)
    assert ev.firing_values("machine") == DETECTABLE, ev.values
    assert {dict(labels)["machine"] for labels in ev.states} >= {*FAULTS, *NORMAL}
    earliest = min(fill.onsets[m] for m in DETECTABLE)
    before = _evaluate(fill, "renkei-rul-low", earliest - 1)
    assert before.firing() == set(), before.values


def test_mold_rule_fires_on_mold_wear_only(fill: Fill) -> None:
    ev = _evaluate(fill, "renkei-mold-maintenance-due", fill.end_ms)
    assert ev.firing_values("machine") == {"imm-mold"}, ev.values
    assert ev.firing_values("mold") == {"M-imm-mold"}
    before = _evaluate(fill, "renkei-mold-maintenance-due", fill.onsets["imm-mold"] - 1)
    assert before.firing() == set(), before.values


def test_gateway_offline_rule_fires_for_the_killed_gateway_only(fill: Fill) -> None:
    ev = _evaluate(fill, "renkei-gateway-offline", fill.end_ms)
    assert ev.firing_values("gw") == {"gw-nab-01"}, ev.values
    seen = {dict(labels)["gw"] for labels in ev.states}
    assert seen >= {"gw-osaka-01", "gw-osaka-02", "gw-osaka-03", "gw-kassel-01", "gw-skab-01"}
    before = _evaluate(fill, "renkei-gateway-offline", fill.kill_ms - 1)
    assert before.firing() == set(), before.values


def test_backlog_rule_fires_for_the_held_gateway_only(fill: Fill) -> None:
    ev = _evaluate(fill, "renkei-outbox-backlog-growing", fill.end_ms)
    assert ev.firing_values("gw") == {"gw-osaka-03"}, ev.values
    assert {dict(labels)["gw"] for labels in ev.states} >= {"gw-osaka-01", "gw-osaka-02"}


def test_dead_letter_rule_fires_after_the_bad_messages_only(fill: Fill) -> None:
    before = _evaluate(fill, "renkei-dead-letters", fill.deadletters_ms - 1)
    assert before.rule_state == "Normal" and not before.states, before
    ev = _evaluate(fill, "renkei-dead-letters", fill.end_ms)
    assert ev.firing_values("reason") == {"malformed_json", "bad_topic", "schema_version"}, (
        ev.values
    )
