"""Parquet files written by Spark tasks with pyarrow, registered in Iceberg by the driver.

Both jobs work this way (see docs/adr/0007-write-audit-publish.md): a task holds its rows as
Arrow, so it writes them straight into the table's data location with Iceberg's field ids
and day partitions, and returns only the paths. The driver then registers exactly the files
of the task attempts Spark kept, so a retried or speculative task cannot add rows twice;
files of a lost attempt are orphans that `sluiceway maintain` removes.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sluiceway.ingest.publish import WriteTarget, WrittenFile
from sluiceway.locations import resolve

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from sluiceway.settings import Settings

EPOCH = date(1970, 1, 1)
MICROS_PER_DAY = 86_400 * 1_000_000


def jvm(spark: SparkSession) -> Any:
    """The driver's py4j view of the JVM (Iceberg's Java API is reached through it)."""
    view = spark._jvm
    if view is None:
        raise RuntimeError("the Spark session has no JVM gateway (it was stopped)")
    return view


def iceberg_table(spark: SparkSession, settings: Settings, name: str) -> Any:
    """The table as Iceberg's Java `Table`, through the session's own catalog."""
    return jvm(spark).org.apache.iceberg.spark.Spark3Util.loadIcebergTable(
        spark._jsparkSession, settings.table(name)
    )


def by_day(table: pa.Table, target: WriteTarget) -> list[tuple[str | None, pa.Table]]:
    """The rows per day partition (`event_time_day=2026-11-25`), or all rows unpartitioned."""
    if target.partition_source is None:
        return [(None, table)]
    micros = table[target.partition_source].cast(pa.int64()).to_numpy(zero_copy_only=False)
    days = np.floor_divide(micros, MICROS_PER_DAY)
    parts: list[tuple[str | None, pa.Table]] = []
    for day in np.unique(days):
        label = (EPOCH + timedelta(days=int(day))).isoformat()
        parts.append((f"{target.partition_name}={label}", table.filter(pa.array(days == day))))
    return parts


def write_parquet(
    rows: pa.Table, target: WriteTarget, partition: str | None, name: str
) -> WrittenFile:
    """One Parquet file of the table (zstd, field ids, decimals as integers, as Spark writes)."""
    filesystem, root = resolve(target.data_location)
    folder = f"{root}/{partition}" if partition else root
    filesystem.create_dir(folder, recursive=True)
    pq.write_table(
        rows.select(target.schema.names).cast(target.schema),
        f"{folder}/{name}.parquet",
        filesystem=filesystem,
        compression="zstd",
        store_decimal_as_integer=True,
    )
    location = f"{target.data_location}/{partition}" if partition else target.data_location
    return WrittenFile(f"{location}/{name}.parquet", partition)


def write_by_day(table: pa.Table, target: WriteTarget, name: str) -> list[WrittenFile]:
    """The rows as one file per day partition, each called `name`; none for no rows."""
    if table.num_rows == 0:
        return []
    return [
        write_parquet(rows, target, partition, name) for partition, rows in by_day(table, target)
    ]


def read_columns(paths: list[str], schema: pa.Schema) -> pa.Table:
    """The schema's columns of the data files (local or s3://), as one Arrow table."""
    tables = [schema.empty_table()]
    for path in paths:
        filesystem, local = resolve(path)
        rows = pq.read_table(local, columns=schema.names, filesystem=filesystem)
        tables.append(rows.cast(schema))
    return pa.concat_tables(tables)


def data_file(spark: SparkSession, table: Any, written: WrittenFile) -> Any:
    """Iceberg's DataFile for a written file, with the column metrics of its footer (so
    Athena and Spark prune it like a file Spark wrote)."""
    iceberg = jvm(spark).org.apache.iceberg
    input_file = table.io().newInputFile(written.path)
    metrics = iceberg.parquet.ParquetUtil.fileMetrics(
        input_file, iceberg.MetricsConfig.forTable(table)
    )
    builder = (
        iceberg.DataFiles.builder(table.spec())
        .withInputFile(input_file)
        .withFormat("PARQUET")
        .withMetrics(metrics)
    )
    if written.partition:
        builder = builder.withPartitionPath(written.partition)
    return builder.build()


def append_files(
    spark: SparkSession,
    settings: Settings,
    name: str,
    files: list[WrittenFile],
    properties: dict[str, str],
) -> None:
    """Append the files to the table's `main` in one commit (nothing for no files)."""
    if not files:
        return
    table = iceberg_table(spark, settings, name)
    table.refresh()
    append = table.newAppend()
    for written in files:
        append.appendFile(data_file(spark, table, written))
    for key, value in properties.items():
        append.set(key, value)
    append.commit()
    spark.sql(f"REFRESH TABLE {settings.table(name)}")
