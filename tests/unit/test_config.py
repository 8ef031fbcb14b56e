"""Gateway YAML config: example files, schema export, error messages, path resolution."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from renkei.edge.config import (
    ConfigError,
    GatewayConfig,
    ReplaySourceConfig,
    SimulatedSourceConfig,
    WaveformReplaySourceConfig,
    json_schema,
    load_config,
)
from renkei.edge.model.inference import AnomalyModel
from renkei.edge.pipeline import MachinePipeline
from renkei.edge.sources.datasets import DATA_DIR_ENV
from renkei.edge.sources.live import LIVE_SOURCE_TYPES
from tests.datasets import require_data_dir

REPO = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO / "firmware-config"


def _live(path: Path) -> bool:
    """An example reading live machines (no model; checked by ``test_live_examples_load``)."""
    machines = yaml.safe_load(path.read_text(encoding="utf-8")).get("machines", [])
    return any(m.get("source", {}).get("type") in LIVE_SOURCE_TYPES for m in machines)


LIVE_EXAMPLES = sorted(p for p in CONFIG_DIR.glob("*.yaml") if _live(p))
EXAMPLES = sorted(p for p in CONFIG_DIR.glob("*.yaml") if not _live(p))
REPLAY_EXAMPLES = [p for p in EXAMPLES if p.name != "sim-cell.yaml"]
CELL_MODEL = REPO / "models" / "artifacts" / "cell-t2"

BASE: dict[str, Any] = {
    "gateway_id": "gw-test",
    "firm": "acme",
    "site": "plant-1",
    "machines": [
        {
            "id": "m1",
            "area": "molding",
            "line": "line-1",
            "source": {"type": "simulated", "seed": 3},
            "window_s": 1,
        }
    ],
}


@pytest.fixture(autouse=True)
def _no_state_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests that want RENKEI_STATE_DIR set it themselves."""
    monkeypatch.delenv("RENKEI_STATE_DIR", raising=False)


def _write(tmp_path: Path, data: dict[str, Any] | str, name: str = "gw.yaml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data), encoding="utf-8")
    return path


def _base(**machine: Any) -> dict[str, Any]:
    cfg = copy.deepcopy(BASE)
    cfg["machines"][0].update(machine)
    return cfg


def _error(path: Path, **kw: Any) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(path, **kw)
    return info.value


# --------------------------------------------------------------------------- examples


def test_there_are_example_configs() -> None:
    assert {p.name for p in EXAMPLES} >= {"sim-cell.yaml", "skab-pump.yaml"}


def test_simulated_example_needs_no_data(tmp_path: Path) -> None:
    # An empty datasets dir proves the simulated config does not touch it.
    cfg = load_config(CONFIG_DIR / "sim-cell.yaml", data_dir=tmp_path)
    (m,) = cfg.machines
    assert isinstance(m.source, SimulatedSourceConfig)
    assert [f.kind for f in m.source.faults] == ["bearing_wear", "cooling_blockage"]
    assert m.model is not None
    assert m.model.dir == CELL_MODEL.resolve()
    assert len(cfg.config_version) == 12


@pytest.mark.parametrize("path", REPLAY_EXAMPLES, ids=lambda p: p.stem)
def test_replay_examples_load(path: Path) -> None:
    data_dir = require_data_dir()
    cfg = load_config(path, data_dir=data_dir)
    for m in cfg.machines:
        assert isinstance(m.source, ReplaySourceConfig | WaveformReplaySourceConfig)
        assert m.source.path.is_file()
        assert m.source.path.is_relative_to(data_dir)
        assert m.model is not None
        assert (m.model.dir / "manifest.json").is_file()


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_examples_fit_their_models(path: Path, tmp_path: Path) -> None:
    """window_s agrees with each model's manifest (else the agent refuses to start)."""
    data_dir = tmp_path if path.name == "sim-cell.yaml" else require_data_dir()
    cfg = load_config(path, data_dir=data_dir)
    for m in cfg.machines:
        assert m.model is not None
        model = AnomalyModel.load(model_dir=m.model.dir, expected_sha256=m.model.sha256)
        MachinePipeline(machine=m, gateway=cfg, model=model)


@pytest.mark.parametrize("path", LIVE_EXAMPLES, ids=lambda p: p.stem)
def test_live_examples_load(path: Path) -> None:
    cfg = load_config(path)
    assert any(m.source.type in LIVE_SOURCE_TYPES for m in cfg.machines)


def test_schema_json_is_up_to_date() -> None:
    expected = json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
    actual = (CONFIG_DIR / "schema.json").read_text(encoding="utf-8")
    assert actual == expected, (
        "firmware-config/schema.json is out of date; regenerate it with `renkei edge schema`"
    )


def test_schema_hides_config_version_and_forbids_extras() -> None:
    schema = json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert "config_version" not in schema["properties"]
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"gateway_id", "firm", "site", "machines"}


# --------------------------------------------------------------------------- good configs


def test_minimal_config_defaults(tmp_path: Path) -> None:
    path = _write(tmp_path, _base())
    cfg = load_config(path)
    assert isinstance(cfg, GatewayConfig)
    assert cfg.mqtt.port == 1883
    assert cfg.state_dir == Path("/var/lib/renkei")
    assert cfg.outbox_path == Path("/var/lib/renkei/gw-test/outbox.sqlite3")
    assert cfg.machines[0].model is None


def test_config_version_follows_file_content(tmp_path: Path) -> None:
    a = load_config(_write(tmp_path, _base(), "a.yaml"))
    b = load_config(_write(tmp_path, _base(), "b.yaml"))
    c = load_config(_write(tmp_path, _base(window_s=2), "c.yaml"))
    assert a.config_version == b.config_version != c.config_version


def test_state_dir_env_overrides_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = _base()
    cfg["state_dir"] = "/from/file"
    path = _write(tmp_path, cfg)
    assert load_config(path).outbox_path == Path("/from/file/gw-test/outbox.sqlite3")
    monkeypatch.setenv("RENKEI_STATE_DIR", str(tmp_path / "state"))
    loaded = load_config(path)
    assert loaded.state_dir == tmp_path / "state"
    assert loaded.outbox_path == tmp_path / "state" / "gw-test" / "outbox.sqlite3"


def test_state_dir_env_without_file_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RENKEI_STATE_DIR", str(tmp_path / "st"))
    cfg = load_config(_write(tmp_path, _base()))
    assert cfg.outbox_path == tmp_path / "st" / "gw-test" / "outbox.sqlite3"


def test_explicit_outbox_path_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RENKEI_STATE_DIR", str(tmp_path / "st"))
    cfg = _base()
    cfg["outbox"] = {"path": str(tmp_path / "elsewhere.sqlite3")}
    assert load_config(_write(tmp_path, cfg)).outbox_path == tmp_path / "elsewhere.sqlite3"


def test_relative_model_dir_resolved_against_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model_dir = tmp_path / "models" / "mine"
    model_dir.mkdir(parents=True)
    shutil.copy(CELL_MODEL / "manifest.json", model_dir / "manifest.json")
    path = _write(tmp_path, _base(model={"dir": "../models/mine"}), "conf/gw.yaml")
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the process cwd must not matter
    cfg = load_config(path)
    assert cfg.machines[0].model is not None
    assert cfg.machines[0].model.dir == model_dir.resolve()


def test_absolute_model_dir_kept(tmp_path: Path) -> None:
    path = _write(tmp_path, _base(model={"dir": str(CELL_MODEL)}))
    cfg = load_config(path)
    assert cfg.machines[0].model is not None
    assert cfg.machines[0].model.dir == CELL_MODEL


def test_relative_replay_path_resolved_against_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "skab").mkdir(parents=True)
    (data / "skab" / "x.csv").write_text("a\n1\n", encoding="utf-8")
    src = {"type": "replay", "preset": "skab", "path": "skab/x.csv"}
    cfg = load_config(_write(tmp_path, _base(source=src)), data_dir=data)
    source = cfg.machines[0].source
    assert isinstance(source, ReplaySourceConfig)
    assert source.path == data / "skab" / "x.csv"


# --------------------------------------------------------------------------- bad configs


@pytest.mark.parametrize(
    ("change", "key_path", "value"),
    [
        (lambda c: c["machines"][0]["source"].update(speed=-2), "machines[0].source.speed", "-2"),
        (lambda c: c.update(mqtt={"port": 70000}), "mqtt.port", "70000"),
        (lambda c: c["machines"][0]["source"].update(type="plc"), "machines[0].source", "plc"),
        (lambda c: c["machines"][0].update(windw_s=5), "machines[0].windw_s", "windw_s"),
        (lambda c: c["machines"][0].update(window_s=0), "machines[0].window_s", "0"),
        (lambda c: c["machines"][0].update(id="m/1"), "machines[0].id", "m/1"),
        (lambda c: c.update(gateway_id="gw 1"), "gateway_id", "gw 1"),
        (lambda c: c.update(machines=[]), "machines", "[]"),
        (
            lambda c: c.update(publish={"max_rows_per_message": 0}),
            "publish.max_rows_per_message",
            "0",
        ),
        (
            lambda c: c["machines"][0]["source"].update(faults=[{"kind": "rust", "start_s": 1}]),
            "machines[0].source.faults[0].kind",
            "rust",
        ),
        (
            lambda c: c["machines"][0].update(model={"dir": "x", "sha256": "abc"}),
            "machines[0].model.sha256",
            "abc",
        ),
        (lambda c: c.pop("firm"), "firm", "Field required"),
    ],
    ids=[
        "speed",
        "port",
        "source-type",
        "unknown-key",
        "window",
        "level",
        "gateway-id",
        "no-machines",
        "max-rows",
        "fault-kind",
        "sha256",
        "missing",
    ],
)
def test_schema_violation_names_file_key_and_value(
    tmp_path: Path, change: Any, key_path: str, value: str
) -> None:
    cfg = _base()
    change(cfg)
    path = _write(tmp_path, cfg, "bad-gateway.yaml")
    err = _error(path)
    text = str(err)
    assert "bad-gateway.yaml" in text
    assert err.file == str(path)
    paths = [p for p, _ in err.problems]
    assert key_path in paths, text
    line = next(line for line in text.splitlines() if f": {key_path}: " in line)
    assert value in line, text


def test_every_problem_is_reported(tmp_path: Path) -> None:
    cfg = _base(window_s=-1)
    cfg["mqtt"] = {"port": 0}
    err = _error(_write(tmp_path, cfg))
    assert {"machines[0].window_s", "mqtt.port"} <= {p for p, _ in err.problems}


def test_unknown_key_hint(tmp_path: Path) -> None:
    err = _error(_write(tmp_path, _base(windw_s=5)))
    assert err.problems == [("machines[0].windw_s", err.problems[0][1])]
    assert "unknown key" in err.problems[0][1]


def test_yaml_syntax_error_has_line_number(tmp_path: Path) -> None:
    text = "gateway_id: gw-1\nfirm: acme\nsite: [unclosed\nmachines: []\n"
    err = _error(_write(tmp_path, text, "broken.yaml"))
    assert "broken.yaml" in str(err)
    assert "YAML syntax error" in str(err)
    assert "line 4" in str(err)


@pytest.mark.parametrize("text", ["", "- a\n- b\n", "just a string\n"])
def test_top_level_must_be_mapping(tmp_path: Path, text: str) -> None:
    err = _error(_write(tmp_path, text))
    assert "expected a mapping" in str(err)


def test_unreadable_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    err = _error(missing)
    assert "nope.yaml" in str(err)
    assert "cannot read file" in str(err)


def test_missing_model_dir_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path, _base(model={"dir": "no-such-model"}))
    err = _error(path)
    assert [p for p, _ in err.problems] == ["machines[0].model.dir"]
    assert str(tmp_path / "no-such-model") in str(err)


def test_missing_data_file_is_named(tmp_path: Path) -> None:
    src = {"type": "replay", "preset": "nab", "path": "nab/missing.csv"}
    err = _error(_write(tmp_path, _base(source=src)), data_dir=tmp_path)
    assert [p for p, _ in err.problems] == ["machines[0].source.path"]
    assert "no such file" in str(err)
    assert str(tmp_path / "nab" / "missing.csv") in str(err)


def test_missing_absolute_data_file_is_named(tmp_path: Path) -> None:
    src = {"type": "replay", "preset": "nab", "path": str(tmp_path / "abs.csv")}
    err = _error(_write(tmp_path, _base(source=src)))
    assert str(tmp_path / "abs.csv") in str(err)


def test_relative_data_path_without_datasets_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "no-datasets"))
    src = {"type": "replay", "preset": "skab", "path": "skab/1.csv"}
    err = _error(_write(tmp_path, _base(source=src)))
    assert {p for p, _ in err.problems} == {"machines[0].source.path"}
    assert "needs the datasets directory" in str(err)
    assert f"{DATA_DIR_ENV}={str(tmp_path / 'no-datasets')!r} is not a directory" in str(err)


@pytest.mark.parametrize("below", ["", "gw"])
def test_state_dir_env_blocked_by_a_file_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, below: str
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    monkeypatch.setenv("RENKEI_STATE_DIR", str(blocker / below) if below else str(blocker))
    err = _error(_write(tmp_path, _base()))
    assert [p for p, _ in err.problems] == ["RENKEI_STATE_DIR (environment)"]
    assert f"{str(blocker)!r} is a file" in str(err)


def test_state_dir_in_file_blocked_by_a_file_names_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RENKEI_STATE_DIR", raising=False)
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    err = _error(_write(tmp_path, _base() | {"state_dir": str(blocker / "state")}))
    assert [p for p, _ in err.problems] == ["state_dir"]


def test_state_dir_that_does_not_exist_yet_is_accepted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RENKEI_STATE_DIR", str(tmp_path / "new" / "state"))
    assert load_config(_write(tmp_path, _base())).state_dir == tmp_path / "new" / "state"


def test_duplicate_machine_ids_rejected(tmp_path: Path) -> None:
    cfg = _base()
    cfg["machines"].append(copy.deepcopy(cfg["machines"][0]))
    err = _error(_write(tmp_path, cfg))
    assert [p for p, _ in err.problems] == ["machines"]
    assert "unique" in str(err)
    assert "m1" in str(err)


def test_config_error_is_value_error(tmp_path: Path) -> None:
    err = _error(_write(tmp_path, _base(window_s="soon")))
    assert isinstance(err, ValueError)
    assert str(err).startswith("invalid gateway config")


def test_anomaly_model_manifest_checked_at_load_with_its_key_path(tmp_path: Path) -> None:
    model_dir = tmp_path / "broken"
    model_dir.mkdir()
    (model_dir / "manifest.json").write_text("{}", encoding="utf-8")
    path = _write(tmp_path, _base(model={"dir": str(model_dir)}))
    with pytest.raises(ConfigError, match=r"machines\[0\]\.model\.dir: .*invalid manifest"):
        load_config(path)


def test_waveform_source_and_vibration_settings_validated(tmp_path: Path) -> None:
    machine = {
        "source": {"type": "waveform_replay", "path": "/x.mat", "sample_rate_hz": 12},
        "vibration": {"bands_hz": [[0, 500]], "envelope": {"demod_band_hz": [2000, 4500]}},
    }
    path = _write(tmp_path, _base(**machine))
    with pytest.raises(ConfigError, match=r"machines\[0\]\.source\.sample_rate_hz"):
        load_config(path)
