"""After a run, per ingest: accepted = processed + failed, with no transaction counted twice.

Counted from the tables themselves, not from what the run believes it wrote: this is the
check that would catch a lost or doubled outcome, whatever caused it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from sluiceway.iceberg_files import data_files_between, read_columns
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
    has delete files, so that the files alone are not the table. Read one file at a time and
    kept as one 64-bit hash per row (`count_duplicates`), so 30M outcomes cost ~240 MB on the
    driver, not the ~6 GB of their ids in a hash aggregation.
    """
    wanted = pa.array(ingest_ids, pa.string())
    counts = {ingest: [0, 0] for ingest in ingest_ids}
    ids: dict[str, list[pa.Array]] = {ingest: [] for ingest in ingest_ids}
    for name, kind in ((PROCESSED_TRANSACTIONS, 0), (PROCESSING_FAILURES, 1)):
        ranges = {
            **scope.file_ranges(by_event_time=name == PROCESSED_TRANSACTIONS),
            "ingest_id": (min(ingest_ids), max(ingest_ids)),
        }
        paths = data_files_between(spark, settings, name, ranges)
        if paths is None:
            return None
        for path in paths:
            rows = read_columns([path], RECORD_KEYS)
            rows = rows.filter(pc.is_in(rows["ingest_id"], value_set=wanted))
            for ingest in pc.unique(rows["ingest_id"]).to_pylist():
                mine = rows.filter(pc.equal(rows["ingest_id"], ingest))["transaction_id"]
                counts[ingest][kind] += len(mine)
                ids[ingest].extend(mine.chunks)
    return {
        ingest: OutcomeCounts(processed, failed, count_duplicates(ids[ingest]))
        for ingest, (processed, failed) in counts.items()
        if processed or failed
    }


def count_duplicates(ids: list[pa.Array]) -> int:
    """How many of the ids repeat an earlier one (count - count distinct), exactly.

    Each id becomes a 64-bit hash; ids whose hashes are all distinct are distinct. Only the
    ids of a hash seen twice (a duplicate, or a rare collision) are compared as strings.
    """
    if not ids:
        return 0
    hashes = np.concatenate([id_hashes(chunk) for chunk in ids])
    ordered = np.sort(hashes)
    repeated = np.unique(ordered[1:][ordered[1:] == ordered[:-1]])
    if repeated.size == 0:
        return 0
    candidates = [chunk.filter(pa.array(np.isin(id_hashes(chunk), repeated))) for chunk in ids]
    suspects = pa.chunked_array(candidates, pa.string())
    return len(suspects) - len(pc.unique(suspects))


FNV_OFFSET = np.uint64(14695981039346656037)
FNV_PRIME = np.uint64(1099511628211)


def id_hashes(ids: pa.Array) -> NDArray[np.uint64]:
    """FNV-1a of each string's bytes, then its length mixed in, vectorized over the array
    (one numpy pass per character position; ids are short). Nulls hash as empty strings."""
    ids = pc.fill_null(ids.cast(pa.string()), "")
    count = len(ids)
    if count == 0:
        return np.zeros(0, np.uint64)
    _validity, offset_buffer, data_buffer = ids.buffers()
    offsets = np.frombuffer(offset_buffer, np.int32)[ids.offset : ids.offset + count + 1]
    data = (
        np.frombuffer(data_buffer, np.uint8) if data_buffer is not None else np.zeros(1, np.uint8)
    )
    starts = offsets[:-1].astype(np.int64)
    lengths = np.diff(offsets).astype(np.int64)
    hashes = np.full(count, FNV_OFFSET, np.uint64)
    width = int(lengths.max(initial=0))
    with np.errstate(over="ignore"):
        if width and int(lengths.min()) == width:
            # Ids of one width (the usual case): their bytes are a matrix, read column-wise.
            matrix = data[starts[0] : starts[0] + count * width].reshape(count, width)
            for position in range(width):
                hashes = (hashes ^ matrix[:, position].astype(np.uint64)) * FNV_PRIME
        else:
            last = max(len(data) - 1, 0)
            for position in range(width):
                byte = np.where(lengths > position, data[np.minimum(starts + position, last)], 0)
                hashes = (hashes ^ byte.astype(np.uint64)) * FNV_PRIME
        hashes ^= lengths.astype(np.uint64)
    return hashes


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
