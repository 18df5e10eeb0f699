"""After a run, per ingest: accepted = processed + failed, with no transaction counted twice.

Counted from the tables themselves, not from what the run believes it wrote: this is the
check that would catch a lost or doubled outcome, whatever caused it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from sluiceway.iceberg_files import data_files_between, read_columns
from sluiceway.processing.partition import FAILED, PROCESSED
from sluiceway.processing.select import IngestScope
from sluiceway.statuses import COMPLETED
from sluiceway.tables import INGEST_LEDGER, PROCESSED_TRANSACTIONS, PROCESSING_FAILURES

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from sluiceway.settings import Settings


@dataclass(frozen=True)
class Reconciliation:
    """accepted = processed + failed, per ingest, with no transaction counted twice."""

    ingest_id: str
    accepted: int
    processed: int
    failed: int
    duplicates: int

    @property
    def reconciled(self) -> bool:
        return self.accepted == self.processed + self.failed and self.duplicates == 0


RECORD_KEYS = pa.schema([("ingest_id", pa.string()), ("transaction_id", pa.string())])


@dataclass(frozen=True)
class OutcomeCounts:
    """An ingest's rows in the two outcome tables, and how many of them repeat an id."""

    processed: int = 0
    failed: int = 0
    duplicates: int = 0


def reconcile(
    spark: SparkSession,
    settings: Settings,
    ingest_ids: tuple[str, ...],
    scope: IngestScope | None = None,
) -> list[Reconciliation]:
    """Per ingest: the ledger's accepted count against results plus dead letters.

    A transaction id that appears twice in an ingest, within a table or across both, counts
    as a duplicate.
    """
    if not ingest_ids:
        return []
    ids = ", ".join(f"'{value}'" for value in ingest_ids)
    accepted = {
        row.ingest_id: row.accepted
        for row in spark.sql(
            f"SELECT ingest_id, accepted FROM {settings.table(INGEST_LEDGER)} "
            f"WHERE ingest_id IN ({ids}) AND status = '{COMPLETED}'"
        ).collect()
    }
    scope = scope or IngestScope(ingest_ids)
    counts = outcome_counts_from_files(spark, settings, ingest_ids, scope)
    if counts is None:
        counts = outcome_counts_from_sql(spark, settings, ingest_ids, scope)
    return [
        Reconciliation(
            ingest_id=ingest,
            accepted=accepted.get(ingest) or 0,
            processed=counts.get(ingest, OutcomeCounts()).processed,
            failed=counts.get(ingest, OutcomeCounts()).failed,
            duplicates=counts.get(ingest, OutcomeCounts()).duplicates,
        )
        for ingest in ingest_ids
    ]


def outcome_counts_from_files(
    spark: SparkSession, settings: Settings, ingest_ids: tuple[str, ...], scope: IngestScope
) -> dict[str, OutcomeCounts] | None:
    """The counts from the (ingest_id, transaction_id) columns of the current data files
    whose partitions and ingest_id bounds may hold these ingests, read with Arrow on the driver.

    Iceberg's metadata names the files, so this reads what Spark would, without a Spark job
    (one job costs more than reading ~2 columns of a day's outcome files). None when a table
    has delete files, so that the files alone are not the table.
    """
    wanted = pa.array(ingest_ids, pa.string())
    parts = []
    for name, kind in ((PROCESSED_TRANSACTIONS, PROCESSED), (PROCESSING_FAILURES, FAILED)):
        ranges = {
            **scope.file_ranges(by_event_time=name == PROCESSED_TRANSACTIONS),
            "ingest_id": (min(ingest_ids), max(ingest_ids)),
        }
        paths = data_files_between(spark, settings, name, ranges)
        if paths is None:
            return None
        rows = read_columns(paths, RECORD_KEYS)
        rows = rows.filter(pc.is_in(rows["ingest_id"], value_set=wanted))
        parts.append(rows.append_column("outcome", pa.repeat(pa.scalar(kind), rows.num_rows)))
    both = pa.concat_tables(parts)
    grouped = both.group_by("ingest_id", use_threads=False).aggregate(
        [("transaction_id", "count"), ("transaction_id", "count_distinct")]
    )
    processed = pc.equal(both["outcome"], PROCESSED)
    per_kind = (
        pa.table(
            {
                "ingest_id": both["ingest_id"],
                "processed": pc.cast(processed, pa.int64()),
                "failed": pc.cast(pc.invert(processed), pa.int64()),
            }
        )
        .group_by("ingest_id", use_threads=False)
        .aggregate([("processed", "sum"), ("failed", "sum")])
    )
    kinds = {
        row["ingest_id"]: (row["processed_sum"], row["failed_sum"]) for row in per_kind.to_pylist()
    }
    return {
        row["ingest_id"]: OutcomeCounts(
            *kinds[row["ingest_id"]],
            row["transaction_id_count"] - row["transaction_id_count_distinct"],
        )
        for row in grouped.to_pylist()
    }


def outcome_counts_from_sql(
    spark: SparkSession, settings: Settings, ingest_ids: tuple[str, ...], scope: IngestScope
) -> dict[str, OutcomeCounts]:
    """The same counts through Spark SQL: one pass over the scope's partitions of both tables."""
    ids = ", ".join(f"'{value}'" for value in ingest_ids)
    days = "".join(f" AND {condition}" for condition in scope.day_conditions())
    return {
        row.ingest_id: OutcomeCounts(row.processed, row.failed, row.duplicates)
        for row in spark.sql(
            f"""SELECT ingest_id, count_if(kind = 'processed') AS processed,
                   count_if(kind = 'failed') AS failed,
                   count(*) - count(DISTINCT transaction_id) AS duplicates
            FROM (SELECT ingest_id, transaction_id, 'processed' AS kind
                  FROM {settings.table(PROCESSED_TRANSACTIONS)}
                  WHERE ingest_id IN ({ids}){days}
                  UNION ALL
                  SELECT ingest_id, transaction_id, 'failed' AS kind
                  FROM {settings.table(PROCESSING_FAILURES)} WHERE ingest_id IN ({ids}))
            GROUP BY ingest_id"""
        ).collect()
    }
