"""Gateway configuration: YAML validated at start-up into frozen pydantic models.

``renkei edge run --config firmware-config/<gateway>.yaml`` loads a file with
:func:`load_config`. Any problem stops start-up with :class:`ConfigError`, whose message
names the file, the key path (``machines[0].source.speed``) and what was expected. The
JSON Schema of the file is exported to ``firmware-config/schema.json`` by
``renkei edge schema`` (editors can validate configs with it).

Relative paths in a config are resolved as follows:

- ``source.path`` of a ``replay`` or ``waveform_replay`` source: against the datasets
  directory (``RENKEI_DATA_DIR``, else ``../shared/datasets`` beside the repository),
  unless absolute.
- ``model.dir`` and ``models[].dir``: against the config file's directory, unless absolute.
- ``model``: the anomaly model; checked at start-up (manifest readable, inputs the gateway
  can compute: row features, or history features of the rows' fields, see
  :func:`renkei.edge.model.inputs.plan_inputs`).
- ``vibration``: the vibration window features (Welch bands, envelope); a model's vibration
  input names encode them (``vib_band_2000_4500Hz_g2``).
- ``models``: optional remaining-useful-life models (manifest ``task: rul``) run next to the
  anomaly ``model``; each is checked at start-up (manifest readable, ``task`` ``rul``,
  inputs the gateway can compute, see :func:`renkei.edge.model.rul.plan_inputs`). With a ``mold``
  section its output is published as ``mold`` rows, else as ``rul`` rows
  (:mod:`renkei.edge.model.rul`).
- ``state_dir`` (outbox location): ``RENKEI_STATE_DIR`` env var, else the value in the
  file, else ``/var/lib/renkei``; the outbox is ``{state_dir}/{gateway_id}/outbox.sqlite3``
  unless ``outbox.path`` is given.
- ``rollout``: optional; enables remote model deployments (:mod:`renkei.edge.rollout`). Deployed
  models are kept in ``{state_dir}/{gateway_id}/models/``; ``rollout.tls_ca_file`` is
  used as written.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic_core import PydanticCustomError

from renkei.core.errors import ConfigError
from renkei.core.mqtt import BrokerSettings
from renkei.core.wire import MAX_GATEWAY_MACHINES, Level, reserved_name_problem
from renkei.edge.features.vibration import EnvelopeConfig, VibrationConfig
from renkei.edge.sources.live.modbus.config import ModbusSourceConfig
from renkei.edge.sources.live.mtconnect.config import MtconnectSourceConfig
from renkei.edge.sources.live.opcua.config import OpcuaSourceConfig
from renkei.edge.sources.live.signals import LiveSourceConfig, check_signal_names
from renkei.edge.sources.live.slmp.config import SlmpSourceConfig
from renkei.edge.sources.live.sparkplug.config import SparkplugSourceConfig
from renkei.edge.transport.outbox_types import OutboxLimits, OutboxSettings

__all__ = [
    "ConfigError",
    "FaultConfig",
    "GatewayConfig",
    "LiveSourceConfig",
    "MachineConfig",
    "ModelConfig",
    "MoldConfig",
    "MqttConfig",
    "OutboxConfig",
    "PublishConfig",
    "ReplaySourceConfig",
    "RolloutConfig",
    "RulModelConfig",
    "ShadowConfig",
    "SimulatedSourceConfig",
    "SourceConfig",
    "json_schema",
    "load_config",
]

_FROZEN = ConfigDict(frozen=True, extra="forbid")

#: Keys of :class:`renkei.core.mqtt.BrokerSettings` a gateway file does not offer.
_NOT_IN_FILE: Final = ("password", "tls", "tls_insecure")


def _drop_keys(schema: dict[str, Any], keys: tuple[str, ...]) -> None:
    """Remove ``keys`` from a model's JSON Schema (``json_schema_extra`` hook)."""
    for key in keys:
        schema.get("properties", {}).pop(key, None)


class MqttConfig(BrokerSettings):
    """How the gateway reaches the MQTT broker: the core's
    :class:`renkei.core.mqtt.BrokerSettings` (``host``, ``port``, ``client_id``,
    ``username``, ``tls_ca_file``, ``tls_cert_file``, ``tls_key_file``, ``keepalive_s``
    5..65535, ``protocol``) plus the gateway's own keys below. ``client_id`` defaults to
    the gateway id (a stable id keeps the broker session). TLS is used when a ``tls_*``
    file is given. The password is never in the file: ``password_env`` names the
    environment variable holding it."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", json_schema_extra=lambda s: _drop_keys(s, _NOT_IN_FILE)
    )

    password_env: str | None = None
    """Name of the environment variable holding the password (never in the file)."""
    wait_for_ingest: Level | None = "renkei-ingest"
    """Ingest share group whose heartbeat must be seen after every (re)connect before
    outbox data is published (see :mod:`renkei.core.wire`, "Ingest heartbeat"); ``null``
    publishes at once (only safe when no broker restart can happen unnoticed)."""
    # --- end-to-end acknowledgement (renkei.edge.transport.publisher, "End-to-end acknowledgement")
    ack: Literal["ingest", "broker"] = "ingest"
    """``ingest``: a message leaves the outbox when the ingest confirms it is stored (zero
    loss even if the broker crashes); ``broker``: on the broker's PUBACK (an ingest
    without end-to-end acks, or a broker-only deployment)."""
    confirm_timeout_s: Annotated[float, Field(gt=0, le=3600)] = 30.0
    """``ack: ingest``: re-publish a message not confirmed after this, seconds (doubles
    per round up to ``confirm_timeout_max_s``)."""
    confirm_timeout_max_s: Annotated[float, Field(gt=0, le=86_400)] = 300.0
    max_unconfirmed: Annotated[int, Field(ge=1, le=1_000_000)] = 10_000
    """``ack: ingest``: most messages awaiting confirmation (bounds memory); when reached,
    publishing pauses and new messages wait in the outbox."""
    outage_log_interval_s: Annotated[float, Field(gt=0, le=86_400)] = 60.0
    """While the broker stays unreachable, repeat the warning (with the backlog) this
    often, seconds."""

    @field_validator(*_NOT_IN_FILE, mode="before")
    @classmethod
    def _not_in_file(cls, value: object) -> object:
        # Broker fields the gateway file does not offer: the password comes from
        # ``password_env``, TLS follows the ``tls_*`` files (reported like any unknown key).
        raise PydanticCustomError("extra_forbidden", "Extra inputs are not permitted")

    @model_serializer(mode="wrap")
    def _dump_file_keys(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Dumps (and the schema's defaults) show the keys of the file only.
        data: dict[str, Any] = handler(self)
        for key in _NOT_IN_FILE:
            data.pop(key, None)
        return data

    @model_validator(mode="after")
    def _confirm_timeouts(self) -> MqttConfig:
        if self.confirm_timeout_s > self.confirm_timeout_max_s:
            raise ValueError(
                f"confirm_timeout_s={self.confirm_timeout_s} must be <= "
                f"confirm_timeout_max_s={self.confirm_timeout_max_s}"
            )
        return self

    def broker(self, *, password: str | None) -> BrokerSettings:
        """The broker connection of this section, with ``password`` (read from
        ``password_env`` by the caller); ``client_id`` as written (``None``: the caller's
        default)."""
        fields = {name: getattr(self, name) for name in BrokerSettings.model_fields}
        return BrokerSettings.model_validate(fields | {"password": password})


class OutboxConfig(OutboxLimits):
    """The durable on-disk outbox (see :mod:`renkei.edge.transport.outbox`): the transport's
    own :class:`renkei.edge.transport.outbox.OutboxLimits` (``max_inflight`` 1..65000,
    ``when_full``, ``drain_rate_msgs_per_s``) plus where the file is."""

    path: Path | None = None
    max_bytes: Annotated[int, Field(ge=1_048_576)] = OutboxLimits.model_fields["max_bytes"].default
    """Largest backlog, bytes of payload + topic; at least 1 MiB on a gateway (the
    transport alone accepts 4 KiB, for tests)."""

    def settings(self, path: Path) -> OutboxSettings:
        """The transport's :class:`renkei.edge.transport.outbox.OutboxSettings` of this
        section, with the database at ``path``."""
        return OutboxSettings(path=path, **self.model_dump(exclude={"path"}))


class PublishConfig(BaseModel):
    """How readings are packed into messages."""

    model_config = _FROZEN

    flush_interval_s: Annotated[float, Field(gt=0, le=60)] = 1.0
    """Wall-clock interval at which pending rows are packed into messages."""
    max_rows_per_message: Annotated[int, Field(ge=1, le=10_000)] = 1_000
    health_interval_s: Annotated[float, Field(gt=0)] = 10.0


class FaultConfig(BaseModel):
    """A fault injected into the simulator."""

    model_config = _FROZEN

    kind: Literal["heater_band_failure", "bearing_wear", "cooling_blockage", "mold_wear"]
    start_s: Annotated[float, Field(ge=0)]
    ramp_s: Annotated[float, Field(ge=0)] = 60.0
    severity: Annotated[float, Field(gt=0, le=1)] = 1.0


class ReplaySourceConfig(BaseModel):
    """Plays a recorded CSV file as live data."""

    model_config = _FROZEN

    type: Literal["replay"]
    path: Path
    preset: Literal["skab", "nab", "kassel"]
    speed: Annotated[float, Field(gt=0, le=1_000_000)] = 1.0
    """Playback speed factor (1 = real time, 60 = one recorded minute per second)."""
    timestamps: Literal["rebase", "keep"] = "rebase"
    loop: bool = False


class WaveformReplaySourceConfig(BaseModel):
    """Plays a recorded vibration waveform (``.mat``, e.g. a CWRU bearing record) as a live
    ``vibration`` stream (:mod:`renkei.edge.sources.waveform`)."""

    model_config = _FROZEN

    type: Literal["waveform_replay"]
    path: Path
    """The ``.mat`` file (relative: to the datasets dir, like ``replay``)."""
    sample_rate_hz: Annotated[float, Field(ge=1000, le=200_000)]
    """Sampling rate of the recording, Hz (CWRU: 12000 or 48000)."""
    variable: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    """Waveform variable; default: the only ``*_DE_time`` (CWRU drive end)."""
    decimate: Annotated[int, Field(ge=1, le=64)] = 1
    """Down-sampling factor (FIR, zero phase), e.g. 4 for a 48 kHz record fed to a
    12 kHz model."""
    label: Annotated[int, Field(ge=0, le=32767)] | None = None
    """Ground-truth fault code of the record (0 = normal), published as labels."""
    speed: Annotated[float, Field(gt=0, le=1000)] = 1.0
    loop: bool = False


_FILE_SOURCES: Final = (ReplaySourceConfig, WaveformReplaySourceConfig)


class SimulatedSourceConfig(BaseModel):
    """An injection-molding cell simulator (see :mod:`renkei.edge.sources.simulated`)."""

    model_config = _FROZEN

    type: Literal["simulated"]
    seed: int = 0
    slow_rate_hz: Annotated[float, Field(gt=0, le=1000)] = 10.0
    vibration_rate_hz: Annotated[float, Field(ge=5000, le=100_000)] = 10_000.0
    extra_slow_channels: Annotated[int, Field(ge=0, le=256)] = 0
    cycle_time_s: Annotated[float, Field(gt=0)] = 20.0
    speed: Annotated[float, Field(gt=0, le=1000)] = 1.0
    faults: list[FaultConfig] = []
    streams: Annotated[list[Literal["slow", "vibration", "shot"]], Field(min_length=1)] = [
        "slow",
        "vibration",
        "shot",
    ]
    """Streams to simulate (each has its own random stream, so dropping one does not
    change the others' data)."""
    duration_s: Annotated[float, Field(gt=0)] | None = None
    """Stop after this many simulated seconds (default: never)."""


class EnvelopeSettings(BaseModel):
    """Envelope analysis of the vibration features
    (:class:`renkei.edge.features.EnvelopeConfig`)."""

    model_config = _FROZEN

    demod_band_hz: tuple[Annotated[float, Field(ge=0)], Annotated[float, Field(gt=0)] | None] = (
        2000.0,
        None,
    )
    """Band-pass before demodulation, Hz (upper ``null`` = fs/2)."""
    band_hz: tuple[Annotated[float, Field(ge=0)], Annotated[float, Field(gt=0)]] = (5.0, 500.0)
    """Envelope-spectrum band whose power is reported, Hz."""


class VibrationFeaturesConfig(BaseModel):
    """What the machine's vibration windows compute
    (:func:`renkei.edge.features.vibration_features`).

    A model's vibration inputs name these settings (``vib_band_2000_4500Hz_g2``,
    ``vib_env_5_500Hz_g2``); ``cwru-bearing-mahal`` needs bands ``[[0, 500], [500, 2000],
    [2000, 4500]]`` and envelope ``demod_band_hz: [2000, 4500]``."""

    model_config = _FROZEN

    prefix: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,15}$")] = "vib"
    bands_hz: Annotated[
        list[tuple[Annotated[float, Field(ge=0)], Annotated[float, Field(gt=0)] | None]],
        Field(min_length=1, max_length=16),
    ] = [(0.0, 500.0), (500.0, 2000.0), (2000.0, None)]
    """Welch bands ``[lo, hi]``, Hz (``hi`` ``null`` = fs/2)."""
    welch_nperseg: Annotated[int, Field(ge=16, le=65536)] = 1024
    envelope: EnvelopeSettings | None = EnvelopeSettings()
    """Envelope settings; ``null`` = no envelope feature."""

    def features(self) -> VibrationConfig:
        """The :class:`renkei.edge.features.VibrationConfig` of these settings."""
        env = self.envelope
        return VibrationConfig(
            prefix=self.prefix,
            bands_hz=tuple(self.bands_hz),
            welch_nperseg=self.welch_nperseg,
            envelope=None
            if env is None
            else EnvelopeConfig(demod_band_hz=env.demod_band_hz, band_hz=env.band_hz),
        )


class ModelConfig(BaseModel):
    """An ONNX anomaly model directory (``model.onnx`` + ``manifest.json``)."""

    model_config = _FROZEN

    dir: Path
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = None
    """If set, the model must also match this hash (pinning), not only its manifest."""


class MoldConfig(BaseModel):
    """The mold a remaining-shots model watches (its output becomes ``mold`` rows)."""

    model_config = _FROZEN

    id: Level
    """Mold id of the registry (tag ``mold``)."""
    maintenance_interval_shots: Annotated[int, Field(ge=1)]
    """Shots between two planned maintenances (registry), shots."""
    shot_count_at_maintenance: Annotated[int, Field(ge=0)] = 0
    """The shot counter (``shot_count`` of the shot stream) at the last maintenance."""
    ideal_cycle_time_s: Annotated[float, Field(gt=0)] | None = None
    """The mold's nominal cycle time (registry), s; published for OEE performance."""


class RulModelConfig(BaseModel):
    """A remaining-useful-life model (manifest ``task: rul``) run beside the anomaly model."""

    model_config = _FROZEN

    dir: Path
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = None
    """If set, the model must also match this hash (pinning), not only its manifest."""
    baseline_rows: Annotated[int, Field(ge=1)] | None = None
    """Rows of the frozen history baseline, when the manifest does not state it
    (``algorithm_params`` ``baseline_rows``/``reference_shots``/``baseline_cycles``)."""
    component: Level | None = None
    """Optional ``component`` tag of the ``rul`` rows (e.g. ``pump_bearing``)."""
    mold: MoldConfig | None = None
    """Publish the output as ``mold`` rows for this mold instead of ``rul`` rows."""


SourceConfig = Annotated[
    ReplaySourceConfig
    | WaveformReplaySourceConfig
    | SimulatedSourceConfig
    | OpcuaSourceConfig
    | ModbusSourceConfig
    | SlmpSourceConfig
    | MtconnectSourceConfig
    | SparkplugSourceConfig,
    Field(discriminator="type"),
]
"""A machine's source: a recorded file, the simulator, or a live machine
(:mod:`renkei.edge.sources.live`)."""

#: ``source.type`` values (discriminator tags, skipped in key paths of errors).
_SOURCE_TAGS: Final = frozenset(
    {"replay", "waveform_replay", "simulated", "opcua", "modbus", "slmp", "mtconnect", "sparkplug"}
)


class MachineConfig(BaseModel):
    """One machine (ISA-95 cell) served by this gateway."""

    model_config = _FROZEN

    id: Level
    area: Level
    line: Level
    source: SourceConfig
    window_s: Annotated[float, Field(gt=0, le=3600)] = 10.0
    """Feature window length (tumbling, by data time)."""
    vibration: VibrationFeaturesConfig = VibrationFeaturesConfig()
    """Vibration window features (bands, envelope)."""
    model: ModelConfig | None = None
    models: Annotated[list[RulModelConfig], Field(max_length=8)] = []
    """Remaining-useful-life models (see :class:`RulModelConfig`)."""
    publish_telemetry: bool = True
    """Publish raw slow signals (vibration waveforms are never published, only features)."""
    publish_labels: bool = True
    """Publish ground-truth labels when the source has them (datasets, simulator)."""
    recent_rows: Annotated[int, Field(ge=16, le=8192)] = 512
    """Feature windows (and shots) kept for the shadow check of a deployed model. A model
    with a history baseline needs its ``baseline_rows`` plus ``rollout.shadow.min_windows``
    of them (``skab-pump-mahal``: 400 + 8)."""


class ShadowConfig(BaseModel):
    """The shadow check a deployed model must pass before it replaces the running one.

    The candidate scores the machine's most recent feature windows (or shots) next to the
    running model; it is refused unless every score is finite, the 95th percentile of its
    per-row latency is within ``latency_budget_ms``, and the share of rows it flags
    (``score > threshold`` of *its* manifest) is at most ``max_alarm_fraction`` -- or at
    most what the running model flags on the same rows, if that is more.
    """

    model_config = _FROZEN

    min_windows: Annotated[int, Field(ge=1, le=256)] = 8
    """Recent rows needed (all machines running the model together; at most 256 kept)."""
    wait_s: Annotated[float, Field(ge=0, le=86_400)] = 300.0
    """How long to wait for ``min_windows`` rows before refusing the deployment, s."""
    latency_budget_ms: Annotated[float, Field(gt=0)] = 50.0
    max_alarm_fraction: Annotated[float, Field(ge=0, le=1)] = 0.5


class RolloutConfig(BaseModel):
    """Remote model deployments (see :mod:`renkei.edge.rollout` and :mod:`renkei.core.signing`)."""

    model_config = _FROZEN

    api_url: Annotated[str, Field(pattern=r"^https?://[^\s/]+(/[^\s]*)?$")]
    """Base URL of the Renkei API the artifacts are downloaded from (``http(s)://host:port``;
    the ``/api/v1/models/...`` paths are appended)."""
    api_key_env: str | None = "RENKEI_GATEWAY_API_KEY"
    """Environment variable holding the API key (an operator or engineer key of the firm)."""
    tls_ca_file: Path | None = None
    """PEM CA bundle for an ``https`` API with a private CA."""
    trusted_keys: Annotated[list[str], Field(min_length=1, max_length=16)]
    """Public keys (``ed25519:<base64>``) whose model signatures this gateway accepts; a
    deployed model signed by any other key, or unsigned, is refused."""
    groups: Annotated[list[Level], Field(max_length=32)] = []
    """Rollout groups this gateway belongs to (targets ``group:NAME``)."""
    shadow: ShadowConfig = ShadowConfig()
    probation_windows: Annotated[int, Field(ge=0, le=10_000)] = 5
    """After the switch, rows the new model must score with finite results (within
    ``probation_s``), else the previous model is restored."""
    probation_s: Annotated[float, Field(ge=0, le=86_400)] = 60.0
    max_model_bytes: Annotated[int, Field(ge=1024)] = 64 * 1_048_576

    @field_validator("trusted_keys")
    @classmethod
    def _parse_keys(cls, keys: list[str]) -> list[str]:
        from renkei.core.signing import SigningKeyError, parse_public_key

        for i, k in enumerate(keys):
            try:
                parse_public_key(k)
            except SigningKeyError as exc:
                raise ValueError(f"trusted_keys[{i}]: {exc}") from None
        return keys


class GatewayConfig(BaseModel):
    """A gateway agent's whole configuration."""

    model_config = _FROZEN

    gateway_id: Level
    firm: Level
    site: Level
    state_dir: Path = Path("/var/lib/renkei")
    mqtt: MqttConfig = MqttConfig()
    outbox: OutboxConfig = OutboxConfig()
    publish: PublishConfig = PublishConfig()
    machines: Annotated[list[MachineConfig], Field(min_length=1, max_length=MAX_GATEWAY_MACHINES)]
    """The machines this gateway serves; the birth lists them (:class:`renkei.core.wire.
    GatewayState` ``machines``) and the ingest accepts their data from this gateway only."""
    rollout: RolloutConfig | None = None
    """Remote model deployments; ``null`` (default) = models only from this file."""
    config_version: str = ""
    """Filled by :func:`load_config` with the sha256 (first 12 hex) of the file."""

    @field_validator("machines")
    @classmethod
    def _unique_ids(cls, machines: list[MachineConfig]) -> list[MachineConfig]:
        ids = [m.id for m in machines]
        dup = {i for i in ids if ids.count(i) > 1}
        if dup:
            raise ValueError(f"machine ids must be unique; repeated: {sorted(dup)}")
        return machines

    @property
    def models_dir(self) -> Path:
        """Where deployed models and the rollout state are kept."""
        return self.state_dir / self.gateway_id / "models"

    @property
    def outbox_path(self) -> Path:
        """Where the outbox database lives."""
        if self.outbox.path is not None:
            return self.outbox.path
        return self.state_dir / self.gateway_id / "outbox.sqlite3"


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
    return _resolve_paths(cfg, path, data_dir)


def _resolve_paths(cfg: GatewayConfig, file: Path, data_dir: Path | None) -> GatewayConfig:
    base = file.resolve().parent
    problems: list[tuple[str, str]] = []
    machines = []
    for i, m in enumerate(cfg.machines):
        updates: dict[str, Any] = {}
        if isinstance(m.source, _FILE_SOURCES) and not m.source.path.is_absolute():
            root = data_dir
            if root is None:
                from renkei.edge.sources.datasets import find_data_dir

                root = find_data_dir()
            if root is None:
                problems.append(
                    (
                        f"machines[{i}].source.path",
                        f"relative path {str(m.source.path)!r} needs the datasets directory; "
                        "set RENKEI_DATA_DIR or use an absolute path",
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
    return cfg.model_copy(update={"machines": machines})


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
