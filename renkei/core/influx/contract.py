"""The InfluxDB measurement contract: names, tags and fields of every measurement.

The ingest writes them, the dashboards and alert rules read them, and the other producers
write theirs with the functions below; all import this module, so a change here is a
change of what is stored.

Two kinds of measurements:

- **Written by the ingest** (:mod:`renkei.cloud.ingest.lineproto`, one point per wire row):
  ``telemetry``, ``features``, ``anomaly``, ``shot``, ``label``, ``event``, ``quality``,
  ``gateway_state``, ``gateway_health``, ``oee`` and ``ingest_deadletters``.
- **Written by other producers**, whose names and fields are fixed here and in
  ``dashboards/README.md``; the functions below produce exactly that line protocol (via
  :func:`renkei.core.influx.lineproto.format_point`), and the producers call them instead of
  re-implementing the format:

  - ``model_deploy`` (:func:`model_deploy_point`): the rollout controller
    (:mod:`renkei.cloud.rollout.controller`, ``renkei cloud rollout --influx ...``), one point per
    deployment result of each gateway report;
  - ``capacity`` (:data:`CAPACITY`; written by
    :func:`renkei.cloud.capacity.points.capacity_points`, next to its producer, since it
    formats a capacity computation): the capacity publisher
    (:mod:`renkei.cloud.capacity.publish`, ``renkei cloud capacity-publish``), one point per
    registry machine and site-local day of the horizon;
  - ``rul`` and ``mold`` (:func:`rul_point`, :func:`mold_point`): the gateways' RUL and
    mold remaining-shots models (wire kinds ``rul``/``mold``, written by the ingest in this
    format). The dashboards pipeline test still writes its ``rul``/``mold`` points itself,
    derived from the simulator's ground truth, with these functions.

Machine tags everywhere: ``firm``, ``site``, ``area``, ``line``, ``machine``, ``gw`` (the
topic levels of :mod:`renkei.core.wire`). Gateway measurements carry ``firm``, ``site``, ``gw``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

from renkei.core.influx.lineproto import FieldValue, format_point

__all__ = [
    "ANOMALY",
    "CAPACITY",
    "DEADLETTERS",
    "EVENT",
    "FEATURES",
    "GATEWAY_HEALTH",
    "GATEWAY_STATE",
    "LABEL",
    "MODEL_DEPLOY",
    "MOLD",
    "OEE",
    "OEE_FIELDS",
    "QUALITY",
    "QUALITY_COUNTERS",
    "RUL",
    "SHOT",
    "TELEMETRY",
    "MachineTags",
    "model_deploy_point",
    "mold_point",
    "oee_point",
    "quality_point",
    "rul_point",
]

TELEMETRY: Final = "telemetry"
FEATURES: Final = "features"
ANOMALY: Final = "anomaly"
"""Fields ``score``, ``threshold``, ``is_anomaly`` (0.0/1.0); tag ``model``."""
SHOT: Final = "shot"
"""One point per shot: the shot's values (``cycle_time_s``, ``shot_count``, ...) and
their ``*_dev`` deviations from the running reference (:mod:`renkei.edge.features.shot`)."""
LABEL: Final = "label"
EVENT: Final = "event"
"""String fields ``code`` (``anomaly_onset``/``anomaly_cleared``), ``severity``, ``message``."""
QUALITY: Final = "quality"
"""Data quality of a live machine source (wire kind ``quality``, written by the ingest; see
:mod:`renkei.edge.sources.live.source`), one point per ``quality_interval_s`` and one at each
start and end of a link outage. Float fields: ``link_up`` (1 connected, 0 down),
``readings``, ``bad`` (readings published as null), ``uncertain``, ``gateway_time``
(readings stamped by the gateway, not the device), ``late``, ``dropped``, ``unknown`` --
counts over the interval -- plus, for each signal with a non-good reading in the interval,
a field named after the signal holding its worst quality code (1 uncertain, 2 bad)."""
QUALITY_COUNTERS: Final = (
    "link_up",
    "readings",
    "bad",
    "uncertain",
    "gateway_time",
    "late",
    "dropped",
    "unknown",
)
"""The fixed fields of a ``quality`` point (``renkei.edge.sources.live.signals.QUALITY_FIELDS``)."""
GATEWAY_STATE: Final = "gateway_state"
"""A gateway's birth / Last Will: ``online`` (0i/1i), ``config_version``,
``agent_version``, one string field ``model.{name}`` per loaded model; tags firm, site, gw."""
GATEWAY_HEALTH: Final = "gateway_health"
"""A gateway's outbox backlog, counters and storage-damage accounting (integer fields,
``disk_full`` boolean); tags firm, site, gw."""
DEADLETTERS: Final = "ingest_deadletters"
"""One point per dead letter of the ingest (tags ``reason``, ``worker``; fields
``count=1i``, ``topic``, ``detail``)."""

RUL: Final = "rul"
"""Remaining useful life of a machine (component), one point per model output."""
MOLD: Final = "mold"
"""Mold usage and predicted remaining shots, one point per shot or per model output."""
MODEL_DEPLOY: Final = "model_deploy"
"""Outcome of one model deployment attempt on one gateway."""
CAPACITY: Final = "capacity"
"""Spare capacity of one machine on one site-local day."""
OEE: Final = "oee"
"""OEE accounting of one machine and interval (wire kind ``oee``, written by the ingest;
computed per interval by the gateway, :mod:`renkei.edge.features.oee`; definitions in
:mod:`renkei.core.oee`). Float fields, all optional but ``planned_s``: seconds per run
state over the interval -- ``planned_s`` (planned busy time: time in a known state, or the
whole interval for the ``proxy_data_arrival`` basis), ``run_s`` (actual production time),
``idle_s``, ``setup_s``, ``down_s``, ``unknown_s`` (no or an unmapped reading) --, ``shots``
(cycles produced), ``ideal_s`` (shots × ideal cycle time) and ``ideal_run_s`` (``run_s``;
both only when the ideal cycle time is known), ``good`` and ``reject`` (parts, or scored
rows for the ``proxy_anomaly_rate`` basis; only when known), and the basis codes
``availability_basis``, ``performance_basis``, ``quality_basis``
(:data:`renkei.core.oee.BASIS_CODES`). Over a range: ``A = sum(run_s) / sum(planned_s)``,
``P = sum(ideal_s) / sum(ideal_run_s)``, ``Q = sum(good) / (sum(good) + sum(reject))``.
Operator counts (written by the cloud, :mod:`renkei.cloud.oee.operator`): rows of a counted
interval also carry ``operator_masked`` and the machine's own ``gw_good``, ``gw_reject``,
``gw_quality_basis``; the operator's parts are in a series with the extra tag
``src=operator`` (fields ``good``, ``reject``, ``quality_basis``, ``planned_s`` = 0,
``duration_s``)."""
OEE_FIELDS: Final = (
    "planned_s",
    "run_s",
    "idle_s",
    "setup_s",
    "down_s",
    "unknown_s",
    "shots",
    "ideal_s",
    "ideal_run_s",
    "good",
    "reject",
    "availability_basis",
    "performance_basis",
    "quality_basis",
)
"""Every field an ``oee`` point may carry."""

DeployResult = Literal["succeeded", "rejected", "rolled_back"]


@dataclass(frozen=True, slots=True, kw_only=True)
class MachineTags:
    """The tags of a machine point (topic levels of :mod:`renkei.core.wire` plus the gateway)."""

    firm: str
    site: str
    area: str
    line: str
    machine: str
    gw: str

    def as_dict(self) -> dict[str, str]:
        """The tags as a mapping (for :func:`renkei.core.influx.lineproto.format_point`)."""
        return {
            "firm": self.firm,
            "site": self.site,
            "area": self.area,
            "line": self.line,
            "machine": self.machine,
            "gw": self.gw,
        }


def rul_point(
    tags: MachineTags,
    *,
    time_ms: int,
    model: str,
    rul_cycles: float,
    rul_p10: float,
    rul_p90: float,
    component: str | None = None,
    rul_h: float | None = None,
) -> bytes:
    """One ``rul`` point (line protocol, ms precision).

    Args:
        tags: the machine's tags.
        time_ms: time of the model output, UTC epoch ms.
        model: name of the RUL model (tag ``model``).
        rul_cycles: median remaining useful life, machine cycles (shots).
        rul_p10: 10 % quantile (pessimistic bound), cycles. The alert uses this one.
        rul_p90: 90 % quantile (optimistic bound), cycles.
        component: optional tag, e.g. ``pump_bearing``, ``heater_band_3``.
        rul_h: optional median remaining life in hours at the current cycle time.

    Raises:
        ValueError: non-finite numbers, or a tag value line protocol cannot carry.
    """
    extra = {"model": model}
    if component is not None:
        extra["component"] = component
    fields: dict[str, FieldValue] = {
        "rul_cycles": float(rul_cycles),
        "rul_p10": float(rul_p10),
        "rul_p90": float(rul_p90),
    }
    if rul_h is not None:
        fields["rul_h"] = float(rul_h)
    return format_point(RUL, {**tags.as_dict(), **extra}, fields, time_ms)


def mold_point(
    tags: MachineTags,
    *,
    time_ms: int,
    mold: str,
    shot_count: int,
    shots_since_maintenance: int,
    maintenance_interval_shots: int,
    remaining_shots: float,
    remaining_shots_p10: float | None = None,
    remaining_shots_p90: float | None = None,
    ideal_cycle_time_s: float | None = None,
) -> bytes:
    """One ``mold`` point (line protocol, ms precision).

    Args:
        tags: tags of the machine the mold is mounted on.
        time_ms: UTC epoch ms (a shot's time, or the model output's).
        mold: mold id of the registry (tag ``mold``).
        shot_count: the mold's lifetime shot counter.
        shots_since_maintenance: shots since the last maintenance.
        maintenance_interval_shots: the mold's maintenance interval (registry).
        remaining_shots: shots until maintenance is due: the smaller of
            ``maintenance_interval_shots - shots_since_maintenance`` and the wear model's
            prediction. The alert uses this one.
        remaining_shots_p10, remaining_shots_p90: the wear model's uncertainty band.
        ideal_cycle_time_s: the mold's nominal cycle time (registry), for OEE performance.

    Raises:
        ValueError: non-finite numbers, or a tag value line protocol cannot carry.
    """
    fields: dict[str, FieldValue] = {
        "shot_count": int(shot_count),
        "shots_since_maintenance": int(shots_since_maintenance),
        "maintenance_interval_shots": int(maintenance_interval_shots),
        "remaining_shots": float(remaining_shots),
    }
    optional = {
        "remaining_shots_p10": remaining_shots_p10,
        "remaining_shots_p90": remaining_shots_p90,
        "ideal_cycle_time_s": ideal_cycle_time_s,
    }
    fields.update({k: float(v) for k, v in optional.items() if v is not None})
    return format_point(MOLD, {**tags.as_dict(), "mold": mold}, fields, time_ms)


def quality_point(
    tags: MachineTags,
    *,
    time_ms: int,
    counters: Mapping[str, float],
    worst: Mapping[str, int] | None = None,
) -> bytes:
    """One ``quality`` point exactly as the ingest writes a gateway's ``quality`` row.

    Args:
        tags: the machine's tags.
        time_ms: end of the interval (or the outage's start/end), UTC epoch ms.
        counters: values of :data:`QUALITY_COUNTERS` (missing ones are not written).
        worst: signal name -> worst quality code in the interval (1 uncertain, 2 bad).

    Raises:
        ValueError: an unknown counter name, or a name line protocol cannot carry.
    """
    unknown = set(counters) - set(QUALITY_COUNTERS)
    if unknown:
        raise ValueError(f"not quality counters: {sorted(unknown)}")
    fields: dict[str, FieldValue] = {k: float(v) for k, v in counters.items()}
    fields.update({k: float(v) for k, v in (worst or {}).items()})
    return format_point(QUALITY, tags.as_dict(), fields, time_ms)


def model_deploy_point(
    *,
    firm: str,
    site: str,
    gw: str,
    model: str,
    version: str,
    result: DeployResult,
    stage: str,
    deployment: int,
    finished_ms: int,
    reason: str = "",
) -> bytes:
    """One ``model_deploy`` point: a :class:`renkei.core.wire.DeployResult` of a gateway report.

    Tags ``firm``, ``site``, ``gw``, ``model``, ``version``, ``result``, ``stage``; fields
    ``deployment`` (integer id) and ``reason`` (string); time ``finished_ms``. A retained
    report delivered again rewrites the same point (same series and time).

    Raises:
        ValueError: a tag value line protocol cannot carry.
    """
    tags = {
        "firm": firm,
        "site": site,
        "gw": gw,
        "model": model,
        "version": version,
        "result": result,
        "stage": stage,
    }
    fields: dict[str, FieldValue] = {"deployment": int(deployment), "reason": reason[:512]}
    return format_point(MODEL_DEPLOY, tags, fields, finished_ms)


def oee_point(tags: MachineTags, *, time_ms: int, fields: Mapping[str, float]) -> bytes:
    """One ``oee`` point exactly as the ingest writes a gateway's ``oee`` row.

    Args:
        tags: the machine's tags.
        time_ms: end of the interval, UTC epoch ms.
        fields: values of :data:`OEE_FIELDS` (``planned_s`` required; missing ones are not
            written).

    Raises:
        ValueError: an unknown field name, no ``planned_s``, or non-finite numbers.
    """
    unknown = set(fields) - set(OEE_FIELDS)
    if unknown:
        raise ValueError(f"not oee fields: {sorted(unknown)}; expected some of {OEE_FIELDS}")
    if "planned_s" not in fields:
        raise ValueError("an oee point needs 'planned_s'")
    return format_point(OEE, tags.as_dict(), {k: float(v) for k, v in fields.items()}, time_ms)
