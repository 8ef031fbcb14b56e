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

from renkei.core.errors import ConfigError
from renkei.edge.config.load import json_schema, load_config
from renkei.edge.config.sections import (
    EnvelopeSettings,
    FaultConfig,
    GatewayConfig,
    LiveSourceConfig,
    MachineConfig,
    ModelConfig,
    MoldConfig,
    MqttConfig,
    OutboxConfig,
    PublishConfig,
    ReplaySourceConfig,
    RolloutConfig,
    RulModelConfig,
    ShadowConfig,
    SimulatedSourceConfig,
    SourceConfig,
    VibrationFeaturesConfig,
    WaveformReplaySourceConfig,
)

__all__ = [
    "ConfigError",
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
    "json_schema",
    "load_config",
]
