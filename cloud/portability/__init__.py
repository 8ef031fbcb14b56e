"""Firm portability: ``renkei cloud export --firm ID`` / ``renkei cloud import PATH``.

A firm takes everything Renkei holds about it to another install (its own, or another
operator's) in one file, and nothing of any other firm goes with it.

Archive format (version 1)
==========================

One **uncompressed POSIX tar** (PAX headers) whose entries are, in this order::

    manifest.json                       plain JSON, always the first entry
    tables/firm.jsonl.gz                one member per registry table, in foreign-key order
    tables/site.jsonl.gz                  (gzip'd JSON Lines: one object per row with every
    ...                                    column; value encoding in .tables)
    tables/audit_event.jsonl.gz
    timeseries/000-anomaly.lp.gz        one member per measurement: gzip'd line protocol,
    timeseries/001-event.lp.gz            nanosecond timestamps, one point per record (the
    ...                                   slug is only a name; the manifest has the exact
                                          measurement)

Members are compressed individually (gzip level 6 for tables, 1 for line protocol), so
the tar itself is not: ``tar tf a.tar`` lists it and ``tar xOf a.tar
timeseries/000-anomaly.lp.gz | zcat`` is line protocol any InfluxDB takes
(``precision=ns``). ``manifest.json`` holds ``format`` (``renkei-firm-archive``),
``format_version`` (1), ``firm_id``, ``created_at`` (UTC), ``software_version`` (of the
``renkei`` package), ``schema_revision`` (the source registry's Alembic revision),
``timeseries`` (included?, source database and retention policy, total points), ``notes``
(what is and is not included, in words) and ``members``: per member ``name``, ``sha256``
and ``bytes`` of the member as stored, plus ``group``, ``table``, ``columns`` and ``rows``
(tables) or ``measurement``, ``points``, field types, non-null values per field and
first/last timestamp (time series). See :mod:`.archive`.

What belongs to the firm (:data:`.tables.SPECS`)
------------------------------------------------

- registry: the firm row, its sites (with calendars), lines, machines, molds;
- credentials: its API keys as stored: key id, role, label, revoked flag and the SHA-256
  of the secret. Secrets never exist in clear anywhere, so nothing secret is exported and
  **the firm's keys keep working after the move** (same key id, same hash; the archive
  is still confidential: it holds all of the firm's data). ``admin`` credentials are a
  platform role: exported, but never imported (reported as skipped);
- policies: partner groups it owns with their members, and the grants it gave;
- bookings, disruptions, gateway statuses;
- takeovers: its own requests with all their jobs and assignments (assignments name the
  partner firms). Assignments where it is the *partner* belong to other firms' plans
  and stay with them, like grants other firms gave it and its memberships in their groups;
- rollout: its model deployments with their per-gateway targets, and its fleet state
  (the platform's model catalog and signing keys are platform-wide: not exported);
- audit: the log of reads of its data (``owner_firm_id`` = the firm);
- time series: every point of every measurement tagged ``firm=<id>`` (machine
  measurements and ``gateway_state``/``gateway_health``) with exact field types
  (integers ``i``, unsigned ``u``, booleans, quoted strings, floats in shortest
  round-trip form) and nanosecond timestamps, from one retention policy (the settings').

Consistency: the registry tables are read in one read transaction (a snapshot); the time
series afterwards, slice by slice, so points written meanwhile may or may not be in the
archive (stop the firm's gateways first for an exact cut: their outboxes keep the data).

Bounded memory: tables are streamed 1000 rows at a time; time series are read in
time-sliced, chunked queries (:mod:`.timeseries`: at most ``chunk_points`` rows of one
series in memory, default 10 000, about 5-10 MB) and written back in batches of
``batch_points`` with at most two batches in flight.

Import (:mod:`.importer`) verifies every member's SHA-256 before loading anything,
refuses a firm that already exists unless ``replace``, skips and reports rows that refer
to firms missing in the target unless ``strict`` (then it refuses), renumbers integer
ids another firm of the target already uses, and checks that every row and every point
of the archive belongs to its firm.

Measured (1 and 3 million ingest-format points, 10 machines, telemetry with 3
two-decimal fields + features with 5 full-precision floats; InfluxDB 1.6 on the same
2-vCPU host, shared with other work): export 57 000-100 000 points/s, import
78 000-105 000 points/s (the lower figures under a load average of 8); archive 37 MB per
million points (15 MB for the telemetry kind alone, 59 MB for random full-precision
features); peak RSS 105-107 MB (export, the same for 1 M and 3 M points) and 155-168 MB
(import), of which ~75 MB are imported modules.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from renkei.cloud.portability.archive import (
        FORMAT,
        FORMAT_VERSION,
        ArchiveReader,
        Manifest,
        TableMember,
        TimeseriesMember,
    )
    from renkei.cloud.portability.errors import (
        ArchiveError,
        ImportConflict,
        MissingPartners,
        PortabilityError,
    )
    from renkei.cloud.portability.export import ExportReport, export_firm
    from renkei.cloud.portability.importer import ImportReport, SkippedRow, import_archive

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "ArchiveError",
    "ArchiveReader",
    "ExportReport",
    "ImportConflict",
    "ImportReport",
    "Manifest",
    "MissingPartners",
    "PortabilityError",
    "SkippedRow",
    "TableMember",
    "TimeseriesMember",
    "export_firm",
    "import_archive",
]

# Imported on first use: ``renkei --help`` (which registers the CLI commands of
# :mod:`.cli`) must not pay for SQLAlchemy and Alembic.
_WHERE = {
    "FORMAT": "archive",
    "FORMAT_VERSION": "archive",
    "ArchiveReader": "archive",
    "Manifest": "archive",
    "TableMember": "archive",
    "TimeseriesMember": "archive",
    "ArchiveError": "errors",
    "ImportConflict": "errors",
    "MissingPartners": "errors",
    "PortabilityError": "errors",
    "ExportReport": "export",
    "export_firm": "export",
    "ImportReport": "importer",
    "SkippedRow": "importer",
    "import_archive": "importer",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
