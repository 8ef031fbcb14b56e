"""Model rollout, cloud side: deployment state machine (:mod:`.service`) and the MQTT
controller that drives it (:mod:`.controller`, run with ``python -m renkei.cloud.rollout``).

The gateway side is :mod:`renkei.edge.rollout`; the messages between them are in
:mod:`renkei.core.wire` (``ModelDesired``, ``ModelReport``); signatures in
:mod:`renkei.core.signing`. With InfluxDB configured, the controller also writes every reported
deployment outcome as a ``model_deploy`` point
(:func:`renkei.core.influx.contract.model_deploy_point`) for the gateway fleet dashboard.
"""

from renkei.cloud.rollout.controller import RolloutController, RolloutSettings
from renkei.cloud.rollout.service import RolloutError, create_deployment, record_report, step

__all__ = [
    "RolloutController",
    "RolloutError",
    "RolloutSettings",
    "create_deployment",
    "record_report",
    "step",
]
