"""Iceberg table maintenance: compact small files, rewrite manifests, expire, remove orphans.

Why: every ingest and processing wave appends a few small files per day partition; without
compaction, readers (DuckDB, Athena, Spark) open thousands of files. Runs as
`sluiceway maintain` locally and as jobs/maintain_tables.py on a Glue schedule.

Never while a writer of the same table runs: locally a lock file per table
(`table_lock`, taken without waiting, so a busy table is skipped and reported); on AWS the
Glue job has MaxConcurrentRuns 1 and the state machine runs ingest and processing in
sequence, so the schedule only has to avoid the pipeline's window (docs/analysts.md).
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sluiceway.errors import SluicewayError
from sluiceway.settings import Settings
from sluiceway.tables import DEFINITIONS

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

TARGET_FILE_BYTES = 128 * 1024 * 1024  # Iceberg's default target size; Athena reads it well.


class TableBusyError(SluicewayError):
    """Another process holds a table's maintenance/writer lock."""


@dataclass(frozen=True)
class MaintenanceOptions:
    """Retention and safety ages; defaults keep a week of time travel."""

    snapshot_retention: timedelta = timedelta(days=7)
    retain_last: int = 10
    orphan_age: timedelta = timedelta(days=3)
    target_file_bytes: int = TARGET_FILE_BYTES
    now: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass(frozen=True)
class TableMaintenance:
    """What maintenance did to one table."""

    table: str
    files_before: int
    files_after: int
    rewritten_files: int
    expired_snapshots: int
    orphans_removed: int
    skipped: str = ""


def lock_path(settings: Settings, table: str) -> Path:
    """The lock file of a table in a local warehouse."""
    return Path(settings.warehouse).resolve() / settings.namespace / "_locks" / f"{table}.lock"


@contextmanager
def table_lock(settings: Settings, table: str) -> Iterator[None]:
    """Hold a table's lock (local warehouses only; on S3 the state machine sequences runs)."""
    if settings.warehouse.startswith("s3://"):
        yield
        return
    path = lock_path(settings, table)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as error:
            raise TableBusyError(
                f"table {table} is locked by another process ({path}); "
                "maintenance skips it, run it again when the writer has finished"
            ) from error
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def data_file_count(spark: SparkSession, settings: Settings, table: str) -> int:
    """Live data files of a table, from its `files` metadata table."""
    return spark.sql(f"SELECT COUNT(*) AS n FROM {settings.table(table)}.files").collect()[0].n


def _existing_tables(spark: SparkSession, settings: Settings) -> list[str]:
    names = {
        row.tableName
        for row in spark.sql(f"SHOW TABLES IN {settings.catalog}.{settings.namespace}").collect()
    }
    return [name for name in DEFINITIONS if name in names]


def maintain_table(
    spark: SparkSession, settings: Settings, table: str, options: MaintenanceOptions
) -> TableMaintenance:
    """Run the four Iceberg procedures on one table under its lock."""
    ident = f"{settings.namespace}.{table}"
    call = f"CALL {settings.catalog}.system"
    with table_lock(settings, table):
        before = data_file_count(spark, settings, table)
        rewrite = spark.sql(
            f"{call}.rewrite_data_files(table => '{ident}', options => map("
            f"'target-file-size-bytes', '{options.target_file_bytes}', 'min-input-files', '2'))"
        ).collect()[0]
        spark.sql(f"{call}.rewrite_manifests(table => '{ident}')").collect()
        expire = spark.sql(
            f"{call}.expire_snapshots(table => '{ident}', "
            f"older_than => TIMESTAMP '{_timestamp(options.now - options.snapshot_retention)}', "
            f"retain_last => {options.retain_last})"
        ).collect()[0]
        orphans = spark.sql(
            f"{call}.remove_orphan_files(table => '{ident}', "
            f"older_than => TIMESTAMP '{_timestamp(options.now - options.orphan_age)}')"
        ).collect()
        after = data_file_count(spark, settings, table)
    return TableMaintenance(
        table=table,
        files_before=before,
        files_after=after,
        rewritten_files=int(rewrite.rewritten_data_files_count),
        expired_snapshots=int(expire.deleted_manifest_lists_count),
        orphans_removed=len(orphans),
    )


def maintain_tables(
    spark: SparkSession,
    settings: Settings,
    options: MaintenanceOptions | None = None,
    tables: tuple[str, ...] = (),
) -> list[TableMaintenance]:
    """Maintain the named (default: every existing) sluiceway table; busy tables are skipped."""
    options = options or MaintenanceOptions()
    results = []
    for table in tables or tuple(_existing_tables(spark, settings)):
        try:
            results.append(maintain_table(spark, settings, table, options))
        except TableBusyError as error:
            results.append(TableMaintenance(table, 0, 0, 0, 0, 0, skipped=str(error)))
    return results


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
