"""Data sources of the edge gateway: recorded-file replay and a molding-cell simulator.

Every source yields :class:`SampleBlock` objects in data-time order (see :mod:`.base`).
"""

from renkei.edge.sources.base import (
    FIELD_NAME_RE,
    STREAMS,
    SampleBlock,
    Source,
    SourceError,
    SourceFileNotFoundError,
    Stream,
    check_field_name,
)
from renkei.edge.sources.datasets import DATA_DIR_ENV, find_data_dir, missing_data_dir_message
from renkei.edge.sources.faults import FAULT_CODES, FaultKind, FaultSpec
from renkei.edge.sources.presets import KASSEL_CLASS_CODES, PRESETS, PresetName
from renkei.edge.sources.replay import ReplayOptions, ReplaySource, sanitize_field_name
from renkei.edge.sources.simulated import (
    BASE_SLOW_CHANNELS,
    VIBRATION_FIELD,
    SimulatedCell,
    SimulatorOptions,
)

__all__ = [
    "BASE_SLOW_CHANNELS",
    "DATA_DIR_ENV",
    "FAULT_CODES",
    "FIELD_NAME_RE",
    "KASSEL_CLASS_CODES",
    "PRESETS",
    "STREAMS",
    "VIBRATION_FIELD",
    "FaultKind",
    "FaultSpec",
    "PresetName",
    "ReplayOptions",
    "ReplaySource",
    "SampleBlock",
    "SimulatedCell",
    "SimulatorOptions",
    "Source",
    "SourceError",
    "SourceFileNotFoundError",
    "Stream",
    "check_field_name",
    "find_data_dir",
    "missing_data_dir_message",
    "sanitize_field_name",
]
