"""The registry (SQLAlchemy): firms, sites, lines, machines, molds, API credentials,
sharing grants and the audit log (:mod:`.sharing`), bookings, gateway states,
disruptions and takeover plans (:mod:`.operations`), the model registry and rollout
state (:mod:`.models_registry`), gateway identities and enrolment tokens
(:mod:`.gateways`), notification settings and deliveries (:mod:`.notifications`),
operators' good/reject counts (:mod:`.oee_counts`). Spreadsheet (CSV, XLSX) import:
:mod:`.tabular`.

Importing this package registers every table on :data:`Base.metadata`.
"""

from renkei.cloud.registry.bulk import (
    CHANGED_FIRMS_OPTION,
    RegistryImportError,
    RegistryOwnershipError,
    export_csv,
    export_document,
    import_document,
)
from renkei.cloud.registry.credentials import Principal, issue_key, verify_key
from renkei.cloud.registry.db import make_engine, session_scope
from renkei.cloud.registry.gateways import GatewayEnrolment
from renkei.cloud.registry.models import (
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
from renkei.cloud.registry.models_registry import (
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
from renkei.cloud.registry.notifications import (
    DeliveryStatus,
    NotificationChannel,
    NotificationDelivery,
    NotificationSettings,
)
from renkei.cloud.registry.oee_counts import MAX_INTERVAL_S, OperatorCount
from renkei.cloud.registry.operations import (
    AssignmentStatus,
    CapacityBooking,
    Disruption,
    DisruptionSource,
    DisruptionStatus,
    GatewayStatus,
    SiteBridgeStatus,
    TakeoverAssignment,
    TakeoverJob,
    TakeoverRequest,
    TakeoverStatus,
    VolumeUnit,
)
from renkei.cloud.registry.sharing import (
    AuditEvent,
    GranteeKind,
    PartnerGroup,
    PartnerGroupMember,
    ShareGranularity,
    SharingGrant,
)
from renkei.cloud.registry.tabular import import_csv, import_sheets, import_xlsx

__all__ = [
    "CHANGED_FIRMS_OPTION",
    "MAX_INTERVAL_S",
    "ApiCredential",
    "AssignmentStatus",
    "AuditEvent",
    "Base",
    "CapacityBooking",
    "DeliveryStatus",
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
    "GatewayEnrolment",
    "GatewayStatus",
    "GranteeKind",
    "Line",
    "Machine",
    "ModelRelease",
    "ModelSigningKey",
    "Mold",
    "NotificationChannel",
    "NotificationDelivery",
    "NotificationSettings",
    "OperatorCount",
    "PartnerGroup",
    "PartnerGroupMember",
    "Principal",
    "Process",
    "RegistryImportError",
    "RegistryOwnershipError",
    "Role",
    "ShareGranularity",
    "SharingGrant",
    "Site",
    "SiteBridgeStatus",
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
    "import_sheets",
    "import_xlsx",
    "issue_key",
    "make_engine",
    "session_scope",
    "verify_key",
]
