"""Loading a gateway config file: YAML → :class:`~renkei.edge.config.GatewayConfig`, with
every problem reported by key path (:class:`~renkei.core.errors.ConfigError`), paths
resolved and models checked; and the JSON Schema of the file."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    ValidationError,
)

from renkei.core.errors import ConfigError
from renkei.core.wire import reserved_name_problem
from renkei.edge.config.sections import (
    _FILE_SOURCES,
    _SOURCE_TAGS,
    GatewayConfig,
    ModelConfig,
    ReplaySourceConfig,
    RulModelConfig,
)
from renkei.edge.sources.live.signals import LiveSourceConfig, check_signal_names

__all__ = ["json_schema", "load_config"]


def _key_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in _SOURCE_TAGS and out.endswith("source"):
            continue  # discriminated-union tag, not a key in the file
        else:
            out += f".{part}" if out else str(part)
    return out


def _describe(err: Any) -> str:
    msg = str(err["msg"])
    if err["type"] not in ("missing", "extra_forbidden") and "input" in err:
        value = err["input"]
        text = repr(value)
        if len(text) > 80:
            text = text[:77] + "..."
        msg += f" (got {text})"
    if err["type"] == "extra_forbidden":
        msg = "unknown key (check the spelling; see firmware-config/schema.json)"
    return msg


def load_config(path: Path | str, *, data_dir: Path | None = None) -> GatewayConfig:
    """Read and validate a gateway YAML file.

    Args:
        path: the YAML file.
        data_dir: datasets directory for relative replay paths (default: found by
            :func:`renkei.edge.sources.datasets.find_data_dir`).

    Raises:
        ConfigError: unreadable file, YAML syntax error (with line/column), schema
            violations (each with its key path), or a referenced file that does not exist.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(path, [("", f"cannot read file: {exc.strerror}")]) from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(path, [("", f"YAML syntax error: {where}{exc}")]) from None
    if not isinstance(raw, dict):
        raise ConfigError(path, [("", "expected a mapping at the top level")])
    env_state = os.environ.get("RENKEI_STATE_DIR")
    if env_state:
        raw["state_dir"] = env_state
    # Always derived from the file's bytes; a value written in the file is ignored.
    raw["config_version"] = hashlib.sha256(text.encode()).hexdigest()[:12]
    try:
        cfg = GatewayConfig.model_validate(raw)
    except ValidationError as exc:
        problems = [(_key_path(e["loc"]), _describe(e)) for e in exc.errors()]
        raise ConfigError(path, problems) from None
    blocked = _blocking_file(cfg.state_dir)
    if blocked is not None:
        key = "RENKEI_STATE_DIR (environment)" if env_state else "state_dir"
        raise ConfigError(
            path,
            [(key, f"{str(cfg.state_dir)!r} cannot be a directory: {str(blocked)!r} is a file")],
        )
    return _resolve_paths(cfg, path, data_dir)


def _blocking_file(directory: Path) -> Path | None:
    """The first existing non-directory on *directory*'s path (itself included), else None.

    Only what makes the outbox's folder impossible is reported: a folder that does not exist
    yet is created at start, and write permission is the gateway host's, not the checker's.
    """
    for candidate in (directory, *directory.parents):
        if candidate.exists():
            return None if candidate.is_dir() else candidate
    return None


def _resolve_paths(cfg: GatewayConfig, file: Path, data_dir: Path | None) -> GatewayConfig:
    base = file.resolve().parent
    problems: list[tuple[str, str]] = []
    machines = []
    for i, m in enumerate(cfg.machines):
        updates: dict[str, Any] = {}
        if isinstance(m.source, _FILE_SOURCES) and not m.source.path.is_absolute():
            root = data_dir
            from renkei.edge.sources.datasets import find_data_dir, missing_data_dir_message

            if root is None:
                root = find_data_dir()
            if root is None:
                problems.append(
                    (
                        f"machines[{i}].source.path",
                        f"relative path {str(m.source.path)!r} needs the datasets directory "
                        f"({missing_data_dir_message()}); set RENKEI_DATA_DIR to it or use an "
                        "absolute path",
                    )
                )
            else:
                updates["source"] = m.source.model_copy(update={"path": root / m.source.path})
        if m.model is not None and not m.model.dir.is_absolute():
            updates["model"] = m.model.model_copy(update={"dir": (base / m.model.dir).resolve()})
        if any(not r.dir.is_absolute() for r in m.models):
            updates["models"] = [
                r if r.dir.is_absolute() else r.model_copy(update={"dir": (base / r.dir).resolve()})
                for r in m.models
            ]
        machines.append(m.model_copy(update=updates) if updates else m)
    for i, m in enumerate(machines):
        if (
            isinstance(m.source, _FILE_SOURCES)
            and m.source.path.is_absolute()  # a relative one was reported above
            and not m.source.path.is_file()
        ):
            problems.append((f"machines[{i}].source.path", f"no such file: {m.source.path}"))
        problems += _check_field_names(f"machines[{i}].source", m.source)
        if m.model is not None:
            problems += _check_model(f"machines[{i}].model", m.model)
        for j, r in enumerate(m.models):
            problems += _check_rul_model(f"machines[{i}].models[{j}]", r)
    if problems:
        raise ConfigError(file, problems)
    top: dict[str, Any] = {"machines": machines}
    creds = cfg.mqtt.credentials_file
    if creds is not None and not creds.is_absolute():
        top["mqtt"] = cfg.mqtt.model_copy(update={"credentials_file": (base / creds).resolve()})
    return cfg.model_copy(update=top)


def _check_field_names(key: str, source: Any) -> list[tuple[str, str]]:
    """Field names a source's preset publishes that the wire reserves (a tag key such as
    ``firm``, ``time``, ``_...``): the ingest would dead-letter every such message. For a
    live source: signal names listed twice, and shot keys naming no signal."""
    if isinstance(source, LiveSourceConfig):
        names = [s.name for s in source.signal_maps()]
        if not names and getattr(source, "preset", None) is not None:
            return []  # a preset supplies its own signals (checked by its driver)
        return [(f"{key}.{k}", msg) for k, msg in check_signal_names(names, source.shots)]
    if not isinstance(source, ReplaySourceConfig):
        return []  # waveform and simulator field names are fixed in code (unit-tested)
    from renkei.edge.sources.presets import PRESETS

    return [
        (f"{key}.preset", f"preset {source.preset!r} publishes field {name!r}: {problem}")
        for name in PRESETS[source.preset].columns.values()
        if (problem := reserved_name_problem(name)) is not None
    ]


def _check_model(key: str, cfg: ModelConfig) -> list[tuple[str, str]]:
    """Problems of a machine's anomaly ``model``: manifest missing/invalid, or inputs the
    gateway cannot compute (:func:`renkei.edge.model.inputs.plan_inputs`)."""
    from renkei.core.manifest import ModelManifest
    from renkei.edge.model.inputs import InputPlanError, plan_inputs

    path = cfg.dir / "manifest.json"
    if not path.is_file():
        return [(f"{key}.dir", f"no manifest.json in {cfg.dir}")]
    try:
        manifest = ModelManifest.model_validate_json(path.read_bytes())
    except (OSError, ValidationError) as exc:
        return [(f"{key}.dir", f"{path}: invalid manifest: {str(exc).splitlines()[0]}")]
    try:
        plan_inputs(manifest)
    except InputPlanError as exc:
        return [(f"{key}.dir", str(exc))]
    return []


def _check_rul_model(key: str, cfg: RulModelConfig) -> list[tuple[str, str]]:
    """Problems of one ``models[]`` entry: manifest missing/invalid, not a RUL model, a
    ``mold`` section on a model that does not score shots, or inputs the gateway cannot
    compute."""
    from renkei.core.manifest import read_manifest

    if not (cfg.dir / "manifest.json").is_file():
        return [(f"{key}.dir", f"no manifest.json in {cfg.dir}")]
    try:
        manifest = read_manifest(cfg.dir)
    except (ValidationError, ValueError) as exc:
        first = str(exc).splitlines()[0]
        return [(f"{key}.dir", f"invalid manifest.json in {cfg.dir}: {first}")]
    if manifest.task != "rul":
        return [
            (
                f"{key}.dir",
                f"model {manifest.name} has task {manifest.task!r}, not 'rul'; "
                "anomaly models go under 'model:'",
            )
        ]
    problems: list[tuple[str, str]] = []
    if cfg.mold is not None and manifest.feature_kind != "shot":
        problems.append(
            (
                f"{key}.mold",
                f"model {manifest.name} scores {manifest.feature_kind} rows; "
                "a mold model must score shots (feature_kind 'shot')",
            )
        )
    from renkei.edge.model.rul import RulPlanError, plan_inputs

    try:
        plan_inputs(manifest, baseline_rows=cfg.baseline_rows)
    except RulPlanError as exc:
        problems.append((f"{key}.dir", str(exc)))
    return problems


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a gateway config file."""
    schema = GatewayConfig.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Renkei gateway configuration"
    schema["properties"].pop("config_version", None)
    return schema
