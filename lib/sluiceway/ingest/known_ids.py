"""The ids the `already_ingested` rule looks up: transaction ids of earlier completed ingests.

Its own module because it is the ingest's one read of earlier ingests' data, with its own
trade-offs: only completed ingests count (a failed one was never published), only within
`duplicate_lookback_days` of this file's event times, and read with Arrow from the data files
Iceberg plans (pruned by day and by id range) rather than as Spark rows.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from sluiceway.iceberg_files import data_files_between
from sluiceway.ingest.event_time import from_micros
from sluiceway.ingest.ledger import entries_with_status
from sluiceway.ingest.write import FileFigures, read_ids_of_ingests
from sluiceway.settings import Settings
from sluiceway.statuses import COMPLETED
from sluiceway.tables import TRANSACTIONS


def earlier_ids(
    spark: SparkSession,
    settings: Settings,
    ingest_id: str,
    files: dict[int, list[FileFigures]],
    ids: pa.Table,
) -> pa.ChunkedArray:
    """Ids of completed ingests within the look-back window around this file's events.

    Iceberg plans the data files, pruned by day partition and by each file's transaction_id
    min/max against this file's id range (sequential ids skip whole days); Arrow reads just
    their id columns, without turning them into Spark rows.
    """
    events = [
        (f.first_event_micros, f.last_event_micros)
        for chunk_files in files.values()
        for f in chunk_files
        if f.first_event_micros is not None and f.last_event_micros is not None
    ]
    id_range = pc.min_max(ids["transaction_id"])
    if not events or not id_range["min"].is_valid:
        return pa.chunked_array([], pa.string())
    feed = settings.feed_contract()
    window = timedelta(days=settings.duplicate_lookback_days)
    first = from_micros(min(start for start, _ in events)) - window
    last = from_micros(max(end for _, end in events)) + window
    completed = [
        entry.ingest_id
        for entry in entries_with_status(spark, settings, COMPLETED)
        if entry.ingest_id != ingest_id
    ]
    paths = data_files_between(
        spark,
        settings,
        TRANSACTIONS,
        {
            feed.event_time: (first.isoformat(), last.isoformat()),
            feed.key: (id_range["min"].as_py(), id_range["max"].as_py()),
        },
    )
    if paths is None:
        return _earlier_ids_through_spark(spark, settings, completed, first, last)
    return read_ids_of_ingests(paths, completed, first, last, feed.key, feed.event_time)


def _earlier_ids_through_spark(
    spark: SparkSession, settings: Settings, completed: list[str], first: datetime, last: datetime
) -> pa.ChunkedArray:
    """The same ids when the table has delete files: Spark applies them; Arrow batches back."""
    feed = settings.feed_contract()
    earlier = (
        spark.table(settings.table(TRANSACTIONS))
        .where(F.col("ingest_id").isin(completed))
        .where(F.col(feed.event_time).between(F.lit(first), F.lit(last)))
        .select(feed.key)
    )
    batches = earlier._collect_as_arrow()
    return pa.chunked_array([batch.column(0) for batch in batches], pa.string())
