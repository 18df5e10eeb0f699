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

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from sluiceway.tables import arrow_schema

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from sluiceway.settings import Settings

FIELD_ID = b"PARQUET:field_id"
INGEST_ID_PROPERTY = "sluiceway.ingest-id"


@dataclass(frozen=True)
class WriteTarget:
    """What a task needs to write one table's files: where, with which Parquet schema."""

    table: str
    data_location: str
    schema: pa.Schema  # the table's Arrow schema with Iceberg field ids
    partition_source: str | None  # the timestamp column partitioned by day, if any
    partition_name: str | None  # the partition field's name in paths (event_time_day)


@dataclass(frozen=True)
class WrittenFile:
    """A Parquet file a task wrote, and the partition directory value it belongs to."""

    path: str
    partition: str | None  # e.g. event_time_day=2026-11-25


def _jvm(spark: SparkSession) -> Any:
    """py4j's view of the driver JVM, where Iceberg's Java API is (None only once stopped)."""
    jvm = spark._jvm
    assert jvm is not None, "the Spark session is stopped"
    return jvm


def _iceberg_table(spark: SparkSession, settings: Settings, name: str) -> Any:
    return _jvm(spark).org.apache.iceberg.spark.Spark3Util.loadIcebergTable(
        spark._jsparkSession, settings.table(name)
    )


def write_target(spark: SparkSession, settings: Settings, name: str) -> WriteTarget:
    """The table's data location, its Arrow schema with field ids, and its day partition."""
    table = _iceberg_table(spark, settings, name)
    table.refresh()
    iceberg_schema = table.schema()
    fields = []
    for field in arrow_schema(name):
        nested = iceberg_schema.findField(field.name)
        kind = field.type
        if pa.types.is_list(kind):
            element_id = str(nested.type().asListType().elementId()).encode()
            kind = pa.list_(pa.field("element", kind.value_type, metadata={FIELD_ID: element_id}))
        fields.append(
            pa.field(field.name, kind, metadata={FIELD_ID: str(nested.fieldId()).encode()})
        )
    spec_fields = list(table.spec().fields())
    source, partition_name = None, None
    if spec_fields:
        (spec_field,) = spec_fields
        source = iceberg_schema.findColumnName(spec_field.sourceId())
        partition_name = spec_field.name()
    location = str(table.locationProvider().newDataLocation("x")).rsplit("/", 1)[0]
    return WriteTarget(name, location, pa.schema(fields), source, partition_name)


def stage_files(
    spark: SparkSession, settings: Settings, name: str, files: list[WrittenFile], ingest_id: str
) -> int | None:
    """Append the files as a snapshot that `main` does not reference yet; its id, or None."""
    if not files:
        return None
    jvm = _jvm(spark)
    table = _iceberg_table(spark, settings, name)
    table.refresh()
    metrics_config = jvm.org.apache.iceberg.MetricsConfig.forTable(table)
    append = table.newAppend()
    for written in files:
        input_file = table.io().newInputFile(written.path)
        metrics = jvm.org.apache.iceberg.parquet.ParquetUtil.fileMetrics(input_file, metrics_config)
        builder = (
            jvm.org.apache.iceberg.DataFiles.builder(table.spec())
            .withInputFile(input_file)
            .withFormat("PARQUET")
            .withMetrics(metrics)
        )
        if written.partition:
            builder = builder.withPartitionPath(written.partition)
        append.appendFile(builder.build())
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
    table = _iceberg_table(spark, settings, name)
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
    table = _iceberg_table(spark, settings, name)
    table.manageSnapshots().cherrypick(snapshot_id).commit()
    table.refresh()
    spark.sql(f"REFRESH TABLE {settings.table(name)}")
    return int(table.currentSnapshot().snapshotId())


def data_files_between(
    spark: SparkSession, settings: Settings, name: str, ranges: dict[str, tuple[str, str]]
) -> list[str] | None:
    """Paths of the table's current data files that may hold rows with every column in its
    [low, high] range, pruned by Iceberg's partitions and column metrics (min/max per file);
    None when some file has delete files, so that reading the Parquet files alone would not
    be the table."""
    jvm = _jvm(spark)
    expressions = jvm.org.apache.iceberg.expressions.Expressions
    both = getattr(expressions, "and")
    within = expressions.alwaysTrue()
    for column, (low, high) in ranges.items():
        within = both(
            within,
            both(
                expressions.greaterThanOrEqual(column, low),
                expressions.lessThanOrEqual(column, high),
            ),
        )
    table = _iceberg_table(spark, settings, name)
    table.refresh()
    if table.currentSnapshot() is None:
        return []
    paths = []
    tasks = table.newScan().filter(within).planFiles()
    try:
        iterator = tasks.iterator()
        while iterator.hasNext():
            task = iterator.next()
            if not task.deletes().isEmpty():
                return None
            paths.append(_without_file_scheme(str(task.file().path())))
    finally:
        tasks.close()
    return paths


def _without_file_scheme(path: str) -> str:
    """Hadoop's `file:/x` (or `file:///x`) as the plain local path `/x`."""
    if path.startswith("file:"):
        return "/" + path.removeprefix("file:").lstrip("/")
    return path
