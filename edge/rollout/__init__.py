"""Remote model deployments on the gateway (see :mod:`renkei.edge.rollout.manager`).

- :mod:`.manager`: :class:`ModelRollout` (desired state -> verify -> download -> shadow
  check -> atomic switch -> probation -> report);
- :mod:`.link`: its MQTT connection (desired state in, retained report out);
- :mod:`.release`: signature, digest and download checks of a release;
- :mod:`.calls`: calls run on the agent's main loop (the atomic switch);
- :mod:`.store`: deployed releases and ``state.json`` under the gateway's state directory;
- :mod:`.fetch`: artifact download over HTTP(S) (standard library only);
- :mod:`.shadow`: the shadow check on recent feature rows.
"""

from renkei.edge.rollout.calls import MainThreadCalls
from renkei.edge.rollout.manager import ModelRollout
from renkei.edge.rollout.shadow import ShadowResult, shadow_check
from renkei.edge.rollout.store import ModelStore

__all__ = ["MainThreadCalls", "ModelRollout", "ModelStore", "ShadowResult", "shadow_check"]
