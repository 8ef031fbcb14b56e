"""The sections of a gateway config file, as frozen pydantic models (see
:mod:`renkei.edge.config` for the file as a whole and how paths resolve)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic_core import PydanticCustomError

from renkei.core.mqtt import BrokerSettings
from renkei.core.wire import MAX_GATEWAY_MACHINES, Level
from renkei.edge.config.oee import OeeConfig
from renkei.edge.features.vibration import EnvelopeConfig, VibrationConfig
from renkei.edge.sources.live.modbus.config import ModbusSourceConfig
from renkei.edge.sources.live.mtconnect.config import MtconnectSourceConfig
from renkei.edge.sources.live.opcua.config import OpcuaSourceConfig
from renkei.edge.sources.live.signals import LiveSourceConfig
from renkei.edge.sources.live.slmp.config import SlmpSourceConfig
from renkei.edge.sources.live.sparkplug.config import SparkplugSourceConfig
from renkei.edge.transport.outbox_types import OutboxLimits, OutboxSettings

__all__ = [
    "EnvelopeSettings",
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
    "VibrationFeaturesConfig",
    "WaveformReplaySourceConfig",
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
    credentials_file: Path | None = None
    """Instead of ``password_env``: the 0600 JSON file ``renkei edge enrol`` writes (user
    and password, :mod:`renkei.edge.credentials`); relative to the config file."""
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
        if self.credentials_file is not None and self.password_env is not None:
            raise ValueError("give either credentials_file or password_env, not both")
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


class StopConfig(BaseModel):
    """A scheduled stop of the simulator (:class:`renkei.edge.sources.sim_state.StopSpec`)."""

    model_config = _FROZEN

    state: Literal["idle", "down"]
    """``idle`` (waiting: material, operator) or ``down`` (a breakdown)."""
    start_s: Annotated[float, Field(ge=0)]
    """Simulated time the stop begins, s (the cycle in progress finishes first)."""
    duration_s: Annotated[float, Field(gt=0)]
    """Length of the stop, s (simulated)."""


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
    stops: Annotated[list[StopConfig], Field(max_length=1000)] = []
    """Scheduled stops (no cycles run during them)."""
    machine_state: bool = False
    """Add the slow run-state signal ``machine_state`` (1 running, 2 idle, 3 down), for
    ``oee.run_state: {signal: machine_state, running: [1], idle: [2], down: [3]}``."""


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
    baseline_check: bool = True
    """Check a history model's in-run baseline before freezing it (too short/NaN rows,
    contamination: a stretch at another level; :mod:`renkei.edge.model.baseline_check`).
    A refused baseline is reported (status ``baseline_suspect``, event
    ``baseline_suspect``) and a fresh one is collected after the contaminated stretch; no
    scores until one passes. ``false`` freezes the first rows unchecked: only for a machine
    whose normal operation the check keeps refusing (e.g. two alternating states)."""


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
    """The mold's nominal cycle time (registry), s, published in ``mold`` rows (OEE
    performance uses the machine's ``oee.ideal_cycle_time_s``)."""


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
    oee: OeeConfig = OeeConfig()
    """Where OEE's availability, performance and quality come from
    (:mod:`renkei.edge.config.oee`); one ``oee`` row per interval."""
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
