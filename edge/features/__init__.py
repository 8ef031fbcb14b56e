"""Feature extraction on the gateway: vibration, slow-signal and per-shot features.

Feature names are deterministic; the ``*_feature_names`` functions list them so a model
manifest can name its inputs.
"""

from renkei.edge.features.rows import FeatureExtractor, FeatureRow
from renkei.edge.features.shot import ShotConfig, ShotFeatures, shot_feature_names
from renkei.edge.features.slow import SLOW_STATS, slow_feature_names, slow_features
from renkei.edge.features.vibration import (
    DEFAULT_BANDS_HZ,
    EnvelopeConfig,
    VibrationConfig,
    vibration_feature_names,
    vibration_features,
)
from renkei.edge.features.window import WindowData, Windower, slow_windower, vibration_windower

__all__ = [
    "DEFAULT_BANDS_HZ",
    "SLOW_STATS",
    "EnvelopeConfig",
    "FeatureExtractor",
    "FeatureRow",
    "ShotConfig",
    "ShotFeatures",
    "VibrationConfig",
    "WindowData",
    "Windower",
    "shot_feature_names",
    "slow_feature_names",
    "slow_features",
    "slow_windower",
    "vibration_feature_names",
    "vibration_features",
    "vibration_windower",
]
