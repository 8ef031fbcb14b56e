"""The registry: firms, sites, lines, machines, molds, API credentials (SQLAlchemy)."""

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

__all__ = [
    "ApiCredential",
    "Base",
    "Firm",
    "Line",
    "Machine",
    "Mold",
    "Principal",
    "Process",
    "RegistryImportError",
    "Role",
    "Site",
    "export_csv",
    "export_document",
    "import_csv",
    "import_document",
    "issue_key",
    "make_engine",
    "session_scope",
    "verify_key",
]
