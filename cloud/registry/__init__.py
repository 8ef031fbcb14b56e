"""The registry (SQLAlchemy): firms, sites, lines, machines, molds, API credentials,
sharing grants and the audit log (:mod:`.sharing`), bookings, gateway states,
disruptions and takeover plans (:mod:`.operations`), the model registry and rollout
state (:mod:`.models_registry`).

Importing this package registers every table on :data:`Base.metadata`.
"""

from cloud.registry.bulk import (
    RegistryImportError,
    export_csv,
    export_document,
    import_csv,
    import_document,
)
from cloud.registry.credentials import Principal, issue_key, verify_key
from cloud.registry.db import make_engine, session_scope
from cloud.registry.models import (
    ApiCredential,
    Base,
    Firm,
    Line,
    Machine,
    Mold,
    Process,
    Role,
    Site,
)
from cloud.registry.models_registry import (
    Deployment,
    DeploymentKind,
    DeploymentStatus,
    DeploymentTarget,
    FleetGateway,
    FleetModel,
    ModelRelease,
    ModelSigningKey,
    TargetStatus,
)
from cloud.registry.operations import (
    AssignmentStatus,
    CapacityBooking,
    Disruption,
    DisruptionSource,
    DisruptionStatus,
    GatewayStatus,
    TakeoverAssignment,
    TakeoverJob,
    TakeoverRequest,
    TakeoverStatus,
    VolumeUnit,
)
from cloud.registry.sharing import (
    AuditEvent,
    GranteeKind,
    PartnerGroup,
    PartnerGroupMember,
    ShareGranularity,
    SharingGrant,
)

__all__ = [
    "ApiCredential",
    "AssignmentStatus",
    "AuditEvent",
    "Base",
    "CapacityBooking",
    "Deployment",
    "DeploymentKind",
    "DeploymentStatus",
    "DeploymentTarget",
    "Disruption",
    "DisruptionSource",
    "DisruptionStatus",
    "Firm",
    "FleetGateway",
    "FleetModel",
    "GatewayStatus",
    "GranteeKind",
    "Line",
    "Machine",
    "ModelRelease",
    "ModelSigningKey",
    "Mold",
    "PartnerGroup",
    "PartnerGroupMember",
    "Principal",
    "Process",
    "RegistryImportError",
    "Role",
    "ShareGranularity",
    "SharingGrant",
    "Site",
    "TakeoverAssignment",
    "TakeoverJob",
    "TakeoverRequest",
    "TakeoverStatus",
    "TargetStatus",
    "VolumeUnit",
    "export_csv",
    "export_document",
    "import_csv",
    "import_document",
    "issue_key",
    "make_engine",
    "session_scope",
    "verify_key",
]
