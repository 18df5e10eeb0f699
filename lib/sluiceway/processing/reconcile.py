"""After a run, per ingest: accepted = processed + failed, with no transaction counted twice.

Counted from the tables themselves, not from what the run believes it wrote: this is the
check that would catch a lost or doubled outcome, whatever caused it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from sluiceway.iceberg_files import data_files_between, read_columns
from sluiceway.ingest.duplicates import IdHash, id_hashes
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
    kept as one 64-bit hash per row (`count_duplicates`): 30M outcomes cost ~240 MB on the
    driver, not the ~6 GB of their ids in a hash aggregation, nor the ~0.7 GB of their text;
    the text is read again only for the ids whose hash repeats.
    """
    tables = (PROCESSED_TRANSACTIONS, PROCESSING_FAILURES)
    files: dict[str, list[str]] = {}
    for name in tables:
        ranges = {
            **scope.file_ranges(by_event_time=name == PROCESSED_TRANSACTIONS),
            "ingest_id": (min(ingest_ids), max(ingest_ids)),
        }
        found = data_files_between(spark, settings, name, ranges)
        if found is None:
            return None
        files[name] = found
    counts = {ingest: [0, 0] for ingest in ingest_ids}
    hashes: dict[str, list[NDArray[np.uint64]]] = {ingest: [] for ingest in ingest_ids}
    for kind, name in enumerate(tables):
        for ingest, ids in _ids_by_file(files[name], ingest_ids):
            counts[ingest][kind] += len(ids)
            hashes[ingest].append(id_hashes(ids))
    paths = [path for name in tables for path in files[name]]
    return {
        ingest: OutcomeCounts(
            processed, failed, count_duplicates(hashes[ingest], partial(_ids_of, paths, ingest))
        )
        for ingest, (processed, failed) in counts.items()
        if processed or failed
    }


def _ids_by_file(paths: list[str], ingest_ids: tuple[str, ...]) -> Iterator[tuple[str, pa.Array]]:
    """(ingest, its transaction ids) of each file, one file at a time."""
    wanted = pa.array(ingest_ids, pa.string())
    for path in paths:
        rows = read_columns([path], RECORD_KEYS)
        rows = rows.filter(pc.is_in(rows["ingest_id"], value_set=wanted))
        for ingest in pc.unique(rows["ingest_id"]).to_pylist():
            mine = rows.filter(pc.equal(rows["ingest_id"], ingest))["transaction_id"]
            yield ingest, mine.combine_chunks()


def _ids_of(paths: list[str], ingest: str) -> Iterator[pa.Array]:
    return (ids for owner, ids in _ids_by_file(paths, (ingest,)) if owner == ingest)


def count_duplicates(
    hashes: list[NDArray[np.uint64]],
    ids: Callable[[], Iterable[pa.Array]],
    hash_ids: IdHash = id_hashes,
) -> int:
    """How many of the ids repeat an earlier one (count - count distinct), exactly.

    `hashes` are the ids' 64-bit hashes (`hash_ids`); ids whose hashes are all distinct are
    distinct. Only when a hash repeats (a duplicate, or a rare collision) are the ids read
    again (`ids`) and those of a repeated hash compared as strings.
    """
    if not hashes:
        return 0
    ordered = np.concatenate(hashes)
    ordered.sort()  # in place: no second copy of 30M hashes
    repeated = np.unique(ordered[1:][ordered[1:] == ordered[:-1]])
    if repeated.size == 0:
        return 0
    candidates = [chunk.filter(pa.array(np.isin(hash_ids(chunk), repeated))) for chunk in ids()]
    suspects = pa.chunked_array(candidates, pa.string())
    return len(suspects) - len(pc.unique(suspects))


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
