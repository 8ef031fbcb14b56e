"""OEE in the cloud: operator-recorded good/reject counts combined with the gateways' rows
(:mod:`.operator`)."""

from renkei.cloud.oee.operator import (
    MASKED_FIELD,
    OPERATOR_TAG,
    OperatorInterval,
    SyncResult,
    apply_interval,
    revert_interval,
)

__all__ = [
    "MASKED_FIELD",
    "OPERATOR_TAG",
    "OperatorInterval",
    "SyncResult",
    "apply_interval",
    "revert_interval",
]
