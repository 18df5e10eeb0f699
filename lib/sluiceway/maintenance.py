"""Iceberg table maintenance: compact small files, rewrite manifests, expire, remove orphans.

Why: every ingest and processing wave appends a few small files per day partition; without
compaction, readers (DuckDB, Athena, Spark) open thousands of files. Runs as
`sluiceway maintain` locally and as jobs/maintain_tables.py on a Glue schedule.

Never while another run writes the namespace: maintenance holds the namespace's writer lease
(lib/sluiceway/lease/) like ingest and processing do, so during a write it changes nothing
and exits busy (code 4) with one line naming the writer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sluiceway.commits import TableCommits
from sluiceway.errors import ConfigurationError
from sluiceway.ingest.recover import finish_interrupted_ingests
from sluiceway.lease import writer_lease
from sluiceway.locations import is_s3
from sluiceway.settings import Settings
from sluiceway.tables import DEFINITIONS, INGEST_TABLES

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

TARGET_FILE_BYTES = 128 * 1024 * 1024  # Iceberg's default target size; Athena reads it well.
# Iceberg's remove_orphan_files refuses younger files: they may belong to a running write.
MIN_ORPHAN_AGE = timedelta(days=1)


@dataclass(frozen=True)
class MaintenanceOptions:
    """Retention and safety ages; defaults keep a week of time travel."""

    snapshot_retention: timedelta = timedelta(days=7)
    retain_last: int = 10
    orphan_age: timedelta = timedelta(days=3)
    target_file_bytes: int = TARGET_FILE_BYTES
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        """Refuse values Iceberg would reject with a JVM trace, naming the option to fix."""
        if self.snapshot_retention < timedelta(0):
            raise ConfigurationError(
                f"--retention-days must be 0 or more, got {_days(self.snapshot_retention)}"
            )
        if self.retain_last < 1:
            raise ConfigurationError(
                f"--retain-last must be at least 1 (the current snapshot), got {self.retain_last}"
            )
        if self.orphan_age < MIN_ORPHAN_AGE:
            raise ConfigurationError(
                f"--orphan-age-days must be at least {_days(MIN_ORPHAN_AGE)}, got "
                f"{_days(self.orphan_age)}: younger files may belong to a write in progress"
            )
        if self.target_file_bytes < 1:
            raise ConfigurationError(
                f"the target file size must be positive, got {self.target_file_bytes}"
            )


@dataclass(frozen=True)
class TableMaintenance:
    """What maintenance did to one table."""

    table: str
    files_before: int
    files_after: int
    rewritten_files: int
    expired_snapshots: int
    orphans_removed: int


def check_table_names(tables: tuple[str, ...]) -> None:
    """Refuse names that are not sluiceway tables before any Spark work starts."""
    unknown = [table for table in tables if table not in DEFINITIONS]
    if unknown:
        raise ConfigurationError(
            f"--table {unknown[0]} is not a sluiceway table; choose from {', '.join(DEFINITIONS)}"
        )


def data_file_count(spark: SparkSession, settings: Settings, table: str) -> int:
    """Live data files of a table, from its `files` metadata table."""
    rows = spark.sql(f"SELECT COUNT(*) AS n FROM {settings.table(table)}.files").collect()
    count: int = rows[0].n
    return count


def _existing_tables(spark: SparkSession, settings: Settings) -> list[str]:
    names = {
        row.tableName
        for row in spark.sql(f"SHOW TABLES IN {settings.catalog}.{settings.namespace}").collect()
    }
    return [name for name in DEFINITIONS if name in names]


def maintain_table(
    spark: SparkSession, settings: Settings, table: str, options: MaintenanceOptions
) -> TableMaintenance:
    """Run the four Iceberg procedures on one table; the caller holds the writer lease."""
    ident = f"{settings.namespace}.{table}"
    call = f"CALL {settings.catalog}.system"
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
    # On S3 Iceberg lists the table through its own FileIO: a local or Batch Spark has no
    # Hadoop `s3` file system (no hadoop-aws), only Glue and EMR do.
    listing = ", prefix_listing => true" if is_s3(settings.warehouse) else ""
    orphans = spark.sql(
        f"{call}.remove_orphan_files(table => '{ident}', "
        f"older_than => TIMESTAMP '{_timestamp(options.now - options.orphan_age)}'{listing})"
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
    """Maintain the named (default: every existing) sluiceway table under the writer lease.

    Raises `WriterBusyError` (exit code 4) without touching a table while another run writes.
    """
    check_table_names(tables)
    options = options or MaintenanceOptions()
    with writer_lease(settings, "maintain") as fence:
        existing = _existing_tables(spark, settings)
        if set(INGEST_TABLES) <= set(existing):
            # Expiry must never take the staged snapshots of an ingest decided to be published.
            commits = TableCommits(spark, settings, fence)
            commits.observe(INGEST_TABLES)
            finish_interrupted_ingests(commits)
        missing = [table for table in tables if table not in existing]
        if missing:
            raise ConfigurationError(
                f"table {missing[0]} does not exist in {settings.catalog}.{settings.namespace} "
                f"at {settings.warehouse}; it is created by the first ingest or processing run"
            )
        maintained = []
        for table in tables or existing:
            fence.check(f"maintenance of {table}")
            maintained.append(maintain_table(spark, settings, table, options))
        return maintained


def _days(span: timedelta) -> str:
    days = span / timedelta(days=1)
    return f"{days:g} day" if days == 1 else f"{days:g} days"


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
