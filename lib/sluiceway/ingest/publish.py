"""Data files written by the ingest's tasks -> Iceberg snapshots, staged, audited, published.

Why Iceberg's Java API (through the Spark session's own catalog, Hadoop locally and the Glue
Data Catalog on AWS) and not Spark's writer: the tasks already hold each chunk's records as
Arrow and write Parquet themselves; handing them back to Spark as rows is what made the
ingest 20x slower than DuckDB. Here the driver only registers files: it reads each file's
footer for column metrics (so Athena and Spark prune files), appends them as a *staged*
snapshot that `main` does not reference (write-audit-publish), and cherry-picks that
snapshot onto `main` only after the audit. Readers of `main` never see an unaudited ingest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sluiceway.iceberg_files import WrittenFile, data_file, iceberg_table

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from sluiceway.settings import Settings

INGEST_ID_PROPERTY = "sluiceway.ingest-id"


def stage_files(
    spark: SparkSession, settings: Settings, name: str, files: list[WrittenFile], ingest_id: str
) -> int | None:
    """Append the files as a snapshot that `main` does not reference yet; its id, or None."""
    if not files:
        return None
    table = iceberg_table(spark, settings, name)
    table.refresh()
    append = table.newAppend()
    for written in files:
        append.appendFile(data_file(spark, table, written))
    append.set(INGEST_ID_PROPERTY, ingest_id)
    append.stageOnly().commit()
    table.refresh()
    staged = [
        snapshot
        for snapshot in table.snapshots()
        if snapshot.summary().get(INGEST_ID_PROPERTY) == ingest_id
    ]
    return int(max(staged, key=lambda snapshot: snapshot.timestampMillis()).snapshotId())


def staged_record_count(
    spark: SparkSession, settings: Settings, name: str, snapshot_id: int | None
) -> int:
    """Records the staged snapshot adds, from Iceberg's own metadata (the audit's check)."""
    if snapshot_id is None:
        return 0
    table = iceberg_table(spark, settings, name)
    summary = table.snapshot(snapshot_id).summary()
    return int(summary.get("added-records") or 0)


def publish(
    spark: SparkSession, settings: Settings, name: str, snapshot_id: int | None
) -> int | None:
    """Make the audited, staged snapshot current on `main`; the id `main` then points at.

    Under the writer lease `main` has not moved since staging, so this is a fast-forward
    and the id stays the staged one.
    """
    if snapshot_id is None:
        return None
    table = iceberg_table(spark, settings, name)
    table.manageSnapshots().cherrypick(snapshot_id).commit()
    table.refresh()
    spark.sql(f"REFRESH TABLE {settings.table(name)}")
    return int(table.currentSnapshot().snapshotId())
