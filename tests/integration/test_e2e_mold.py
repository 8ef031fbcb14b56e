"""End to end: a simulated cell with mold wear -> gateway (mold-maint-rul) -> real Mosquitto
-> ingest -> real InfluxDB holds ``mold`` points as renkei/core/influx/contract.py fixes them, with
``remaining_shots`` falling to ~0 at maintenance due, and the mold alert rule fires."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.services import REPO, InfluxDB, Mosquitto
from harness.wait import wait_for
from renkei.dashboards.alerts import RULES
from renkei.dashboards.emulate import evaluate_rule, influx_runner
from renkei.models.profiles import mold
from tests.e2e import pipeline_rig
from tests.integration.test_e2e_pipeline import _finish

pytestmark = pytest.mark.slow

SEED = 2003  # an evaluation run of the mold recipe (never fitted)
INTERVAL = 20_000


def test_simulated_mold_wear_produces_mold_points(
    tmp_path: Path, mosquitto: Mosquitto, influxdb: InfluxDB, database: str
) -> None:
    run = mold.simulate_run(SEED)  # ground truth: onset and due shot of this seed
    n_shots = run.x.shape[0]
    gateway = {
        "gateway_id": "gw-mold-e2e",
        "machines": [
            {
                "id": "imm-mold",
                "area": "molding",
                "line": "line-1",
                "source": {
                    "type": "simulated",
                    "seed": SEED,
                    "streams": ["shot"],
                    "cycle_time_s": mold.CYCLE_S,
                    "speed": 1000,
                    "duration_s": (run.due + mold.AFTER_DUE + 1) * mold.CYCLE_S,  # as the recipe
                    "faults": [
                        {
                            "kind": "mold_wear",
                            "start_s": run.onset * mold.CYCLE_S,
                            "ramp_s": (run.due - run.onset) * mold.CYCLE_S,
                        }
                    ],
                },
                "models": [
                    {
                        "dir": str(REPO / "models" / "artifacts" / "mold-maint-rul"),
                        "mold": {"id": "M-imm-mold", "maintenance_interval_shots": INTERVAL},
                    }
                ],
            }
        ],
    }
    with pipeline_rig(tmp_path, mosquitto, influxdb, database, gateways=[gateway]) as rig:
        agent = rig.agents[0]
        wait_for(lambda: not agent.alive(), 120, f"agent to finish the run\n{agent.tail()}")
        assert agent.proc.returncode == 0, agent.tail()
        _finish(rig, ("mold", "remaining_shots"), ("shot", "cycle_time_s"))

    assert influxdb.count_points(database, "mold", "remaining_shots") == n_shots
    series = influxdb.query(
        'SELECT "shot_count", "shots_since_maintenance", "maintenance_interval_shots", '
        '"remaining_shots", "remaining_shots_p10", "remaining_shots_p90" FROM "mold" '
        'GROUP BY "mold", "machine"',
        db=database,
    )
    assert len(series) == 1
    assert series[0]["tags"] == {"mold": "M-imm-mold", "machine": "imm-mold"}
    cols = series[0]["columns"]
    rows = {c: [r[i] for r in series[0]["values"]] for i, c in enumerate(cols)}
    assert rows["shot_count"] == list(range(1, n_shots + 1))
    assert rows["maintenance_interval_shots"] == [INTERVAL] * n_shots
    remaining = np.array(rows["remaining_shots"], dtype=float)
    assert np.all(remaining[: run.onset] == INTERVAL - np.arange(1, run.onset + 1))
    late = remaining[run.onset :]
    assert late[-1] < 5 and remaining[run.due] < 10
    # decreasing toward 0 over the wear ramp (smoothed: the model's shot-to-shot noise)
    smooth = np.convolve(late, np.ones(25) / 25, mode="valid")
    assert smooth[-1] < smooth[len(smooth) // 2] < smooth[0]
    # field types of the contract: counters are integers, remaining shots floats
    types = influxdb.query('SHOW FIELD KEYS FROM "mold"', db=database)
    kinds = dict(types[0]["values"])
    assert kinds["shot_count"] == kinds["shots_since_maintenance"] == "integer"
    assert kinds["maintenance_interval_shots"] == "integer"
    assert kinds["remaining_shots"] == kinds["remaining_shots_p10"] == "float"

    # the dashboards' mold alert rule fires at the end of the run, and not before the onset
    rule = next(r for r in RULES if r.uid == "renkei-mold-maintenance-due").to_file()
    runner = influx_runner(influxdb.url, database)
    times = series[0]["values"]
    end = evaluate_rule(rule, runner, now_ms=int(times[-1][0]) + 1)
    assert end.firing_values("mold") == {"M-imm-mold"}, end.values
    before = evaluate_rule(rule, runner, now_ms=int(times[run.onset - 1][0]) + 1)
    assert before.firing() == set(), before.values
