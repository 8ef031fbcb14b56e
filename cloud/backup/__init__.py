"""Backups of a whole Renkei cloud install: ``renkei cloud backup`` / ``renkei cloud restore``.

A backup is a folder (3-2-1: copy it to a second medium and off site; it holds secrets):

- ``registry.sqlite3`` (SQLite's online backup API: a consistent copy while the API
  runs) or ``registry.pgdump`` (``pg_dump --format=custom``) — every row of every table;
- ``firms/{firm_id}.renkei`` — each firm's portable archive (:mod:`renkei.cloud.portability`),
  with its time series when an InfluxDB is given, so one firm can be moved or handed back
  on its own;
- ``manifest.json`` — format, software version, schema revision, rows per table and the
  SHA-256 and size of every file, checked before anything is restored.

InfluxDB is backed up with its own tool beside it (``influxd backup -portable``; see
``deploy/README.md``, "Backups"). :func:`restore` refuses a target registry that holds any
row, verifies every checksum first, restores, migrates the schema to this software's
newest revision and checks the rows per table against the manifest.
"""

from __future__ import annotations

from renkei.cloud.backup.bundle import (
    BACKUP_FORMAT,
    BackupReport,
    RestoreReport,
    backup,
    restore,
)
from renkei.cloud.backup.errors import BackupError

__all__ = ["BACKUP_FORMAT", "BackupError", "BackupReport", "RestoreReport", "backup", "restore"]
