"""Backups and moving a project between stores: self-describing Parquet bundles (core.portability.manifest)."""

from core.portability.backup import BackupReport, backup_store, read_backup, restore_store
from core.portability.export import ExportReport, export_project, project_exists
from core.portability.importing import ImportReport, import_project
from core.portability.manifest import BUNDLE_FORMAT, FORMAT_VERSION, read_manifest, verify

__all__ = [
    "BUNDLE_FORMAT",
    "FORMAT_VERSION",
    "BackupReport",
    "ExportReport",
    "ImportReport",
    "backup_store",
    "export_project",
    "import_project",
    "project_exists",
    "read_backup",
    "read_manifest",
    "restore_store",
    "verify",
]
