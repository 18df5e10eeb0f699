"""Iceberg table definitions: one DDL per table, created idempotently in the configured catalog.

Types are the ones Athena reads from Iceberg (string, bigint, int, decimal, timestamp,
boolean, array, map); every table is format v2, Parquet + zstd.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa

from sluiceway.contract import TRANSACTIONS_FEED
from sluiceway.feeds import Feed
from sluiceway.ingest.header import RESCUED_COLUMN

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from sluiceway.settings import Settings

TRANSACTIONS = "transactions"
REJECTED_RECORDS = "rejected_records"
INGEST_LEDGER = "ingest_ledger"
PROCESSED_TRANSACTIONS = "processed_transactions"
PROCESSING_FAILURES = "processing_failures"
FX_RATES = "fx_rates"
JOB_RUNS = "job_runs"
# What one ingest writes: published together through the ledger (ingest/recover.py).
INGEST_TABLES = (TRANSACTIONS, REJECTED_RECORDS, INGEST_LEDGER)

TABLE_PROPERTIES = {
    "format-version": "2",
    "write.format.default": "parquet",
    "write.parquet.compression-codec": "zstd",
    "write.metadata.delete-after-commit.enabled": "true",
    "write.metadata.previous-versions-max": "50",
    "write.distribution-mode": "hash",
}

LINEAGE_COLUMNS = (
    ("source_file", "string"),
    ("ingest_id", "string"),
    ("line_number", "bigint"),
    ("last_line_number", "bigint"),
    ("ingested_at", "timestamp"),
)

# A landing file's columns the contract does not know, under the feed's `unknown_columns =
# "rescue"` (ingest/header.py): name -> value as written; null when the file had none.
RESCUED_COLUMNS = ((RESCUED_COLUMN, "map<string,string>"),)


@dataclass(frozen=True)
class TableDefinition:
    """A table's name, columns (Spark DDL types), partitioning and extra properties."""

    name: str
    columns: tuple[tuple[str, str], ...]
    partitioned_by: str = ""
    properties: tuple[tuple[str, str], ...] = ()

    def ddl(self, identifier: str) -> str:
        """`CREATE TABLE IF NOT EXISTS` for this table under the given identifier."""
        columns = ",\n  ".join(f"{name} {kind}" for name, kind in self.columns)
        properties = {**TABLE_PROPERTIES, **dict(self.properties)}
        props = ", ".join(f"'{key}'='{value}'" for key, value in properties.items())
        partition = f"\nPARTITIONED BY ({self.partitioned_by})" if self.partitioned_by else ""
        return (
            f"CREATE TABLE IF NOT EXISTS {identifier} (\n  {columns}\n) USING iceberg"
            f"{partition}\nTBLPROPERTIES ({props})"
        )


def feed_definitions(feed: Feed) -> dict[str, TableDefinition]:
    """The two tables whose columns come from the feed: its records and its rejects.

    Columns added after a table's first release come last (`warnings`, `rule_version`):
    `ensure_tables` adds them to an older table in the same place.
    """
    return {
        TRANSACTIONS: TableDefinition(
            TRANSACTIONS,
            tuple((column.name, column.table_type) for column in feed.columns)
            + LINEAGE_COLUMNS
            + RESCUED_COLUMNS
            # The codes of the feed's `warn` rules the accepted record broke.
            + (("warnings", "array<string>"),),
            partitioned_by=f"days({feed.event_time})",
            # Each task writes its own file per day: a daily file lands mostly in one or two
            # days, and hash distribution would funnel that whole day through one writer task.
            properties=(
                ("write.distribution-mode", "none"),
                ("write.spark.fanout.enabled", "true"),
            ),
        ),
        REJECTED_RECORDS: TableDefinition(
            REJECTED_RECORDS,
            (
                ("source_file", "string"),
                ("ingest_id", "string"),
                ("line_number", "bigint"),
                ("last_line_number", "bigint"),
                ("raw_line", "string"),
                # The original bytes of a line that is not UTF-8 (raw_line shows them escaped).
                ("raw_bytes", "binary"),
                ("reasons", "array<string>"),
                ("reason_detail", "string"),
                (feed.key, "string"),
                ("ingested_at", "timestamp"),
                # The feed file the line was checked against (feeds.Feed.rule_version).
                ("rule_version", "string"),
            ),
            partitioned_by="days(ingested_at)",
        ),
    }


DEFINITIONS: dict[str, TableDefinition] = {
    **feed_definitions(TRANSACTIONS_FEED),
    INGEST_LEDGER: TableDefinition(
        INGEST_LEDGER,
        (
            ("ingest_id", "string"),
            ("source_file", "string"),
            ("sha256", "string"),
            ("source_etag", "string"),
            ("source_version", "string"),
            ("file_bytes", "bigint"),
            # Physical lines after the header; accepted_lines + rejected_lines must equal it.
            ("lines_read", "bigint"),
            ("accepted", "bigint"),
            ("rejected", "bigint"),
            ("accepted_lines", "bigint"),
            ("rejected_lines", "bigint"),
            ("rejected_by_reason", "map<string,bigint>"),
            ("accepted_amount_by_currency", "map<string,decimal(38,2)>"),
            ("accepted_count_by_currency", "map<string,bigint>"),
            ("status", "string"),
            ("message", "string"),
            ("manifest_checked", "boolean"),
            ("transactions_snapshot_id", "bigint"),
            ("rejected_snapshot_id", "bigint"),
            # The accepted records' event-time range: later steps prune partitions with it.
            ("first_event_time", "timestamp"),
            ("last_event_time", "timestamp"),
            ("started_at", "timestamp"),
            ("finished_at", "timestamp"),
            ("duration_seconds", "double"),
            # The feed file the ingest was checked against (feeds.Feed.rule_version).
            ("rule_version", "string"),
        ),
        properties=(("write.merge.mode", "copy-on-write"),),
    ),
    PROCESSED_TRANSACTIONS: TableDefinition(
        PROCESSED_TRANSACTIONS,
        (
            ("transaction_id", "string"),
            ("ingest_id", "string"),
            ("idempotency_key", "string"),
            ("handler", "string"),
            ("event_time", "timestamp"),
            ("result", "string"),
            ("base_currency", "string"),
            ("amount_base", "decimal(18,2)"),
            ("fee_base", "decimal(18,2)"),
            ("risk_flags", "array<string>"),
            ("attempts", "int"),
            ("batch_id", "string"),
            ("processed_at", "timestamp"),
        ),
        partitioned_by="days(event_time)",
        # The processing tasks write one file per task and day (compacted later); a Spark
        # write here (a backfill) does the same instead of funnelling a day through one task.
        properties=(
            ("write.merge.mode", "merge-on-read"),
            ("write.distribution-mode", "none"),
            ("write.merge.distribution-mode", "none"),
            ("write.spark.fanout.enabled", "true"),
        ),
    ),
    PROCESSING_FAILURES: TableDefinition(
        PROCESSING_FAILURES,
        (
            ("transaction_id", "string"),
            ("ingest_id", "string"),
            ("idempotency_key", "string"),
            ("handler", "string"),
            ("error_class", "string"),
            ("error_message", "string"),
            ("attempts", "int"),
            ("batch_id", "string"),
            ("failed_at", "timestamp"),
        ),
    ),
    # Reference rates for the financial handler: 1 unit of currency = rate units of base.
    FX_RATES: TableDefinition(
        FX_RATES,
        (
            ("rate_date", "date"),
            ("currency", "string"),
            ("base_currency", "string"),
            ("rate", "decimal(18,10)"),
            ("source", "string"),
        ),
    ),
    # One row per finished ingest or processing run and ingest it worked on: the run's own
    # wall time and the workers it ran with, from which the report computes its cost.
    JOB_RUNS: TableDefinition(
        JOB_RUNS,
        (
            ("run_id", "string"),
            ("step", "string"),
            ("ingest_id", "string"),
            # How many ingests the run worked on (a run is recorded once per ingest).
            ("run_ingests", "int"),
            # Where it ran (the settings profile) and the Spark workers (driver + executors).
            ("compute", "string"),
            ("workers", "int"),
            ("records", "bigint"),
            ("started_at", "timestamp"),
            ("finished_at", "timestamp"),
            ("duration_seconds", "double"),
        ),
    ),
}


_ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "bigint": pa.int64(),
    "int": pa.int32(),
    "double": pa.float64(),
    "boolean": pa.bool_(),
    "binary": pa.binary(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "date": pa.date32(),
}


def definitions(feed: Feed = TRANSACTIONS_FEED) -> dict[str, TableDefinition]:
    """Every table of a feed's namespace; only the transactions feed is processed (every feed's
    ingests record their run in `job_runs`)."""
    if feed.name == TRANSACTIONS_FEED.name:
        return {**DEFINITIONS, **feed_definitions(feed)}
    kept = (*INGEST_TABLES, JOB_RUNS)
    return {**{name: DEFINITIONS[name] for name in kept}, **feed_definitions(feed)}


def arrow_schema(name: str, feed: Feed = TRANSACTIONS_FEED) -> pa.Schema:
    """The table's columns as an Arrow schema, for writers that skip Spark (DDL stays the one
    definition)."""
    columns = definitions(feed)[name].columns
    return pa.schema([(column, _arrow_type(kind)) for column, kind in columns])


def _arrow_type(kind: str) -> pa.DataType:
    if kind in _ARROW_TYPES:
        return _ARROW_TYPES[kind]
    if decimal := re.fullmatch(r"decimal\((\d+),\s*(\d+)\)", kind):
        return pa.decimal128(int(decimal[1]), int(decimal[2]))
    if array := re.fullmatch(r"array<(.+)>", kind):
        return pa.list_(_arrow_type(array[1]))
    if mapping := re.fullmatch(r"map<(\w+),\s*(.+)>", kind):
        return pa.map_(_arrow_type(mapping[1]), _arrow_type(mapping[2]))
    raise ValueError(f"no Arrow type for the table type {kind!r}")


def ensure_tables(spark: SparkSession, settings: Settings, names: tuple[str, ...] = ()) -> None:
    """Create the namespace and the named tables (all of the feed's when none named) if they
    do not exist, and add the columns a table made by an older release lacks."""
    tables = definitions(settings.feed_contract())
    spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {settings.catalog}.{settings.namespace}")
    for name in names or tuple(tables):
        identifier = settings.table(name)
        spark.sql(tables[name].ddl(identifier))
        _add_missing_columns(spark, identifier, tables[name])


def _add_missing_columns(spark: SparkSession, identifier: str, table: TableDefinition) -> None:
    """Iceberg adds a column without rewriting a file; older rows read it as null."""
    present = {name.lower() for name in spark.table(identifier).schema.fieldNames()}
    missing = [(name, kind) for name, kind in table.columns if name.lower() not in present]
    if missing:
        columns = ", ".join(f"{name} {kind}" for name, kind in missing)
        spark.sql(f"ALTER TABLE {identifier} ADD COLUMNS ({columns})")


def current_snapshot_id(spark: SparkSession, settings: Settings, name: str) -> int | None:
    """The table's current snapshot id, or None for a table without snapshots."""
    rows = spark.sql(
        f"SELECT snapshot_id FROM {settings.table(name)}.snapshots "
        "ORDER BY committed_at DESC LIMIT 1"
    ).collect()
    return rows[0].snapshot_id if rows else None
