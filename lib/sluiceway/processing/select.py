"""Which records a processing run owes: the ingests it works on, and their pending records.

A record is pending when it has neither a result nor a dead letter. Every read is limited
to the ingest's own data: the ledger's first/last event time give its days, and
`transactions` and `processed_transactions` (partitioned by days(event_time)) are filtered
to them, every table to the ingest id, so a day costs the same on day 1000 as on day 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sluiceway.errors import SluicewayError
from sluiceway.iceberg_files import data_files_between
from sluiceway.ingest.event_time import from_micros
from sluiceway.locations import canonical_source
from sluiceway.statuses import COMPLETED
from sluiceway.tables import (
    INGEST_LEDGER,
    PROCESSED_TRANSACTIONS,
    PROCESSING_FAILURES,
    TRANSACTIONS,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from sluiceway.settings import Settings

# Outcomes are keyed per ingest: the idempotency key and the reconciliation are, too.
RECORD_KEY = ["ingest_id", "transaction_id"]
OUTCOME_TABLES = (PROCESSED_TRANSACTIONS, PROCESSING_FAILURES)


class UnknownIngestError(SluicewayError):
    """The ingest to process is not in the ledger."""


@dataclass(frozen=True)
class IngestScope:
    """The ingests a run works on, the event-time span of their records and their count.

    `transactions` and `processed_transactions` are partitioned by days(event_time): a filter
    on the span lets Iceberg skip every other day's files, and `processing_failures` files are
    skipped by their ingest_id bounds. None means unbounded (every ingest, or a ledger row
    written before the span was recorded) or unknown.
    """

    ingest_ids: tuple[str, ...] | None = None
    # Microseconds since the epoch: the first day's start (inclusive), the day after the last.
    low_micros: int | None = None
    high_micros: int | None = None
    # The ledger's accepted records of these ingests (what the audit proved is in the table).
    accepted: int | None = None

    def restrict(self, frame: DataFrame, by_event_time: bool = True) -> DataFrame:
        """Only the rows of these ingests (and their days, when the frame has event_time)."""
        for condition in self.conditions(by_event_time):
            frame = frame.filter(condition)
        return frame

    def conditions(self, by_event_time: bool = True, alias: str = "") -> list[str]:
        """SQL predicates (on `alias.` columns when given) that select the scope's rows."""
        prefix = f"{alias}." if alias else ""
        found = []
        if self.ingest_ids is not None:
            ids = ", ".join(f"'{value}'" for value in self.ingest_ids)
            found.append(f"{prefix}ingest_id IN ({ids})")
        if by_event_time:
            found.extend(self.day_conditions(alias))
        return found

    def file_ranges(self, by_event_time: bool = True) -> dict[str, tuple[str, str]]:
        """The scope as [low, high] column ranges for Iceberg's file pruning by metadata
        (`iceberg_files.data_files_between`): ingest ids, and the days when known."""
        ranges: dict[str, tuple[str, str]] = {}
        if self.ingest_ids:
            ranges["ingest_id"] = (min(self.ingest_ids), max(self.ingest_ids))
        if by_event_time and self.low_micros is not None and self.high_micros is not None:
            ranges["event_time"] = (
                from_micros(self.low_micros).isoformat(),
                from_micros(self.high_micros).isoformat(),
            )
        return ranges

    def day_conditions(self, alias: str = "") -> list[str]:
        """The event-time span as SQL predicates; none when the span is unknown."""
        if self.low_micros is None or self.high_micros is None:
            return []
        column = f"{alias}.event_time" if alias else "event_time"
        # timestamp_micros(<literal>) folds to a timestamp literal, which Iceberg prunes by.
        return [
            f"{column} >= timestamp_micros({self.low_micros})",
            f"{column} < timestamp_micros({self.high_micros})",
        ]


def resolve_scope(
    spark: SparkSession, settings: Settings, ingest_id: str | None, source: str | None
) -> IngestScope:
    """The ingest(s) to process, their event-day span and accepted count, from the ledger.

    Neither id nor source: every completed ingest, unbounded (that run reads all history).
    """
    from pyspark.sql import functions as F

    if ingest_id is None and source is None:
        return IngestScope()
    ledger = spark.table(settings.table(INGEST_LEDGER)).filter(F.col("status") == COMPLETED)
    if ingest_id is not None:
        found = ledger.filter(F.col("ingest_id") == ingest_id)
        what = f"ingest id {ingest_id}"
    else:
        found = ledger.filter(F.col("source_file") == canonical_source(source or ""))
        what = f"source file {source}"
    rows = found.select(
        "ingest_id",
        "accepted",
        F.unix_micros(F.date_trunc("DAY", "first_event_time")).alias("low"),
        F.unix_micros(F.date_trunc("DAY", "last_event_time") + F.expr("INTERVAL 1 DAY")).alias(
            "high"
        ),
    ).collect()
    if not rows:
        raise UnknownIngestError(
            f"{what}: no completed ingest in {settings.table(INGEST_LEDGER)}; "
            "ingest the file first (`sluiceway ingest FILE`) or check the namespace/warehouse"
        )
    ids = tuple(sorted({row.ingest_id for row in rows}))
    accepted = sum(row.accepted or 0 for row in rows)
    if any(row.low is None or row.high is None for row in rows):
        return IngestScope(ids, accepted=accepted)
    return IngestScope(
        ids, min(row.low for row in rows), max(row.high for row in rows), accepted=accepted
    )


@dataclass(frozen=True)
class Selection:
    """The pending records, and their count when it is known without counting them."""

    records: DataFrame
    known_count: int | None


def select_pending(spark: SparkSession, settings: Settings, scope: IngestScope) -> Selection:
    """The scope's accepted records without a result and without a dead letter.

    When neither outcome table holds a file of the scope (an ingest's first run), every
    accepted record is pending: no anti-join, and the ledger's accepted count is the count.
    """
    from pyspark.sql import functions as F

    transactions = scope.restrict(spark.table(settings.table(TRANSACTIONS)))
    if scope.ingest_ids is None:
        # Only finished ingests: a crashed one still has partial rows its re-run removes.
        completed = spark.table(settings.table(INGEST_LEDGER)).filter(F.col("status") == COMPLETED)
        transactions = transactions.join(completed.select("ingest_id"), "ingest_id", "left_semi")
    elif scope.accepted is not None and not any(
        has_outcomes(spark, settings, scope, name) for name in OUTCOME_TABLES
    ):
        return Selection(transactions, scope.accepted)
    for name in OUTCOME_TABLES:
        transactions = transactions.join(committed(spark, settings, scope, name), RECORD_KEY,
                                         "left_anti")  # fmt: skip
    return Selection(transactions, None)


def has_outcomes(spark: SparkSession, settings: Settings, scope: IngestScope, name: str) -> bool:
    """Whether the outcome table may hold rows of the scope, from Iceberg's metadata alone
    (partitions and file-level ingest_id bounds; a table with delete files counts as holding
    some)."""
    if not scope.ingest_ids:
        return True
    ranges = scope.file_ranges(by_event_time=name == PROCESSED_TRANSACTIONS)
    files = data_files_between(spark, settings, name, ranges)
    return files is None or bool(files)


def committed(spark: SparkSession, settings: Settings, scope: IngestScope, name: str) -> DataFrame:
    """The record keys an outcome table holds for the scope (its own partitions only)."""
    table = spark.table(settings.table(name))
    return scope.restrict(table, by_event_time=name == PROCESSED_TRANSACTIONS).select(*RECORD_KEY)
