"""The processing run on the driver: pick the records without a result, spread them over the
cores, run the handler in `mapInArrow`, and commit outcomes idempotently.

Why `mapInArrow` and not a row UDF: records reach Python as Arrow batches (no per-row
pickling), the handler gets whole batches for retries and I/O, and per-partition setup runs
once per task. Why MERGE: see docs/adr/idempotent-processing-results.md.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pyspark import StorageLevel

from sluiceway.errors import SluicewayError
from sluiceway.ingest.landing import canonical_source
from sluiceway.ingest.ledger import COMPLETED
from sluiceway.logs import get_logger, log_event
from sluiceway.processing.handlers import Handler, resolve_handler
from sluiceway.processing.metrics import RunMetrics
from sluiceway.processing.partition import (
    ENGINE_INPUT_COLUMNS,
    FAILED,
    OUTCOME_DDL,
    PROCESSED,
    PartitionPlan,
    process_partition,
)
from sluiceway.processing.retry import RetryPolicy
from sluiceway.tables import (
    INGEST_LEDGER,
    PROCESSED_TRANSACTIONS,
    PROCESSING_FAILURES,
    TRANSACTIONS,
    ensure_tables,
)

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

    from sluiceway.settings import Settings

LOGGER = get_logger("processing")


class UnknownIngestError(SluicewayError):
    """The ingest to process is not in the ledger."""


@dataclass(frozen=True)
class ProcessOptions:
    """How one run processes: which handler, batch size, retries, how often it commits."""

    handler: str = "financial"
    handler_options: Mapping[str, str] = field(default_factory=dict)
    batch_size: int = 500
    max_attempts: int = 4
    base_delay_seconds: float = 0.2
    max_delay_seconds: float = 10.0
    # 0 = derived from the cluster's cores and the number of batches.
    partitions: int = 0
    # A kill loses at most this many records' work: each wave is committed on its own.
    commit_every: int = 1_000_000

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(self.max_attempts, self.base_delay_seconds, self.max_delay_seconds)


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


@dataclass
class ProcessResult:
    """What a run did; `exit_code` 0 when every touched ingest reconciles, 3 otherwise."""

    handler: str
    ingest_ids: tuple[str, ...]
    pending: int
    waves: int
    partitions: int
    metrics: RunMetrics
    reconciliation: list[Reconciliation]

    @property
    def reconciled(self) -> bool:
        return all(item.reconciled for item in self.reconciliation)

    @property
    def exit_code(self) -> int:
        return 0 if self.reconciled else 3


def process_records(
    spark: SparkSession,
    settings: Settings,
    options: ProcessOptions | None = None,
    ingest_id: str | None = None,
    source: str | None = None,
) -> ProcessResult:
    """Process the accepted records of one ingest (by id or source file), or of all ingests."""
    options = options or ProcessOptions()
    started = time.monotonic()
    ensure_tables(
        spark, settings, (TRANSACTIONS, INGEST_LEDGER, PROCESSED_TRANSACTIONS, PROCESSING_FAILURES)
    )
    ingest_ids = resolve_ingest_ids(spark, settings, ingest_id, source)
    handler = resolve_handler(options.handler, options.handler_options)
    # Persisted: counted here, then read again by the handler's bind and the waves.
    records = pending_records(spark, settings, ingest_ids).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        return _process(spark, settings, options, handler, records, ingest_ids, started)
    finally:
        records.unpersist()


def _process(
    spark: SparkSession,
    settings: Settings,
    options: ProcessOptions,
    handler: Handler,
    records: DataFrame,
    ingest_ids: tuple[str, ...] | None,
    started: float,
) -> ProcessResult:
    pending = records.count()
    if ingest_ids is None:
        ingest_ids = tuple(r.ingest_id for r in records.select("ingest_id").distinct().collect())
    metrics = RunMetrics()
    waves = max(1, math.ceil(pending / max(1, options.commit_every)))
    partitions = plan_partitions(spark, pending / waves, options)
    log_event(
        LOGGER, "processing started", handler=handler.name, ingest_ids=list(ingest_ids),
        pending=pending, waves=waves, partitions=partitions, batch_size=options.batch_size,
    )  # fmt: skip
    if pending:
        _run_waves(spark, settings, handler, records, options, waves, partitions, metrics)
    metrics.seconds = time.monotonic() - started
    result = ProcessResult(
        handler=handler.name,
        ingest_ids=ingest_ids,
        pending=pending,
        waves=waves,
        partitions=partitions,
        metrics=metrics,
        reconciliation=reconcile(spark, settings, ingest_ids),
    )
    log_event(
        LOGGER, "processing finished", handler=handler.name, **metrics.summary(),
        reconciled=result.reconciled,
        reconciliation=[item.__dict__ for item in result.reconciliation],
    )  # fmt: skip
    return result


def _run_waves(
    spark: SparkSession,
    settings: Settings,
    handler: Handler,
    records: DataFrame,
    options: ProcessOptions,
    waves: int,
    partitions: int,
    metrics: RunMetrics,
) -> None:
    from pyspark.sql import functions as F

    bound = handler.bind(records, settings).withColumn(
        "idempotency_key", idempotency_key_column(handler.name)
    )
    if waves > 1:
        bound = bound.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        for wave in range(waves):
            selected = bound
            if waves > 1:
                selected = bound.filter(
                    F.pmod(F.xxhash64("transaction_id"), F.lit(waves)) == F.lit(wave)
                )
            plan = PartitionPlan(handler, options.batch_size, options.retry_policy(), wave)
            outcomes = run_partitions(selected, plan, partitions)
            _commit_wave(spark, settings, outcomes, metrics)
            log_event(LOGGER, "processing wave committed", wave=wave, waves=waves,
                      **metrics.summary())  # fmt: skip
    finally:
        bound.unpersist()


def plan_partitions(spark: SparkSession, records: float, options: ProcessOptions) -> int:
    """Enough partitions that every core works, few enough that batches stay full."""
    if options.partitions:
        return options.partitions
    cores = spark.sparkContext.defaultParallelism
    batches = math.ceil(records / options.batch_size)
    return max(1, min(max(cores, batches // 4), cores * 4, max(batches, 1)))


def run_partitions(records: DataFrame, plan: PartitionPlan, partitions: int) -> DataFrame:
    """The outcome rows of the records: hash-partitioned and sorted, so batches are stable."""
    columns = plan.handler.columns
    if columns:
        records = records.select(*dict.fromkeys((*ENGINE_INPUT_COLUMNS, *columns)))
    # Same partition and order on a task retry: the retried task rebuilds the same batches,
    # so batch ids in processing_failures mean the same thing on every attempt.
    laid_out = records.repartition(partitions, "transaction_id").sortWithinPartitions(
        "transaction_id"
    )
    return laid_out.mapInArrow(_task(plan), OUTCOME_DDL).withColumn(
        "idempotency_key", idempotency_key_column(plan.handler.name)
    )


def _task(plan: PartitionPlan):
    def run(batches):
        from pyspark import TaskContext

        context = TaskContext.get()
        yield from process_partition(batches, plan, context.partitionId() if context else 0)

    return run


def idempotency_key_column(step: str) -> Column:
    """sha256(ingest_id / transaction_id / step), as partition.idempotency_key computes it."""
    from pyspark.sql import functions as F

    return F.sha2(F.concat_ws("/", "ingest_id", "transaction_id", F.lit(step)), 256)


def resolve_ingest_ids(
    spark: SparkSession, settings: Settings, ingest_id: str | None, source: str | None
) -> tuple[str, ...] | None:
    """The ingest(s) to process; None means every ingest with records still pending."""
    from pyspark.sql import functions as F

    if ingest_id is None and source is None:
        return None
    ledger = spark.table(settings.table(INGEST_LEDGER)).filter(F.col("status") == COMPLETED)
    if ingest_id is not None:
        found = ledger.filter(F.col("ingest_id") == ingest_id)
        what = f"ingest id {ingest_id}"
    else:
        found = ledger.filter(F.col("source_file") == canonical_source(source))
        what = f"source file {source}"
    ids = tuple(sorted({row.ingest_id for row in found.select("ingest_id").collect()}))
    if not ids:
        raise UnknownIngestError(
            f"{what}: no completed ingest in {settings.table(INGEST_LEDGER)}; "
            "ingest the file first (`sluiceway ingest FILE`) or check the namespace/warehouse"
        )
    return ids


def pending_records(
    spark: SparkSession, settings: Settings, ingest_ids: tuple[str, ...] | None
) -> DataFrame:
    """Accepted records without a result and without a dead letter: what a run still owes."""
    from pyspark.sql import functions as F

    transactions = spark.table(settings.table(TRANSACTIONS))
    if ingest_ids is not None:
        transactions = transactions.filter(F.col("ingest_id").isin(*ingest_ids))
    else:
        # Only finished ingests: a crashed one still has partial rows its re-run removes.
        completed = spark.table(settings.table(INGEST_LEDGER)).filter(F.col("status") == COMPLETED)
        transactions = transactions.join(completed.select("ingest_id"), "ingest_id", "left_semi")
    done = spark.table(settings.table(PROCESSED_TRANSACTIONS)).select("transaction_id")
    dead = spark.table(settings.table(PROCESSING_FAILURES)).select("transaction_id")
    return transactions.join(done, "transaction_id", "left_anti").join(
        dead, "transaction_id", "left_anti"
    )


def _commit_wave(
    spark: SparkSession, settings: Settings, outcomes: DataFrame, metrics: RunMetrics
) -> None:
    """Materialise the wave once, then MERGE results and dead letters keyed by transaction id."""
    from pyspark.sql import functions as F

    outcomes = outcomes.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        totals = outcomes.agg(
            F.count(F.when(F.col("outcome") == PROCESSED, 1)).alias("ok"),
            F.count(F.when(F.col("outcome") == FAILED, 1)).alias("failed"),
            F.count(F.when(F.col("attempts") > 1, 1)).alias("retried"),
            F.coalesce(F.sum("attempts"), F.lit(0)).alias("attempts"),
        ).first()
        latencies = outcomes.groupBy("batch_id").agg(F.max("batch_latency_ms").alias("ms"))
        metrics.batch_latencies_ms.extend(row.ms for row in latencies.collect())
        metrics.records_ok += totals.ok
        metrics.records_failed += totals.failed
        metrics.records_retried += totals.retried
        metrics.attempts += totals.attempts
        view = f"sluiceway_outcomes_{uuid.uuid4().hex[:12]}"
        outcomes.createOrReplaceTempView(view)
        try:
            if totals.ok:
                _insert_missing(
                    spark,
                    settings.table(PROCESSED_TRANSACTIONS),
                    view,
                    PROCESSED,
                    RESULT_COLUMNS,
                    "processed_at",
                )
            if totals.failed:
                _insert_missing(
                    spark,
                    settings.table(PROCESSING_FAILURES),
                    view,
                    FAILED,
                    FAILURE_COLUMNS,
                    "failed_at",
                )
        finally:
            spark.catalog.dropTempView(view)
    finally:
        outcomes.unpersist()


RESULT_COLUMNS = (
    "transaction_id, ingest_id, idempotency_key, handler, event_time, result, "
    "base_currency, amount_base, fee_base, risk_flags, attempts, batch_id"
)
FAILURE_COLUMNS = (
    "transaction_id, ingest_id, idempotency_key, handler, error_class, error_message, "
    "attempts, batch_id"
)


def _insert_missing(
    spark: SparkSession, table: str, view: str, outcome: str, columns: str, stamped: str
) -> None:
    """Insert the wave's rows of one outcome whose transaction_id the table does not have."""
    values = ", ".join(f"s.{name.strip()}" for name in columns.split(","))
    spark.sql(
        f"""MERGE INTO {table} t
        USING (SELECT * FROM {view} WHERE outcome = '{outcome}') s
        ON t.transaction_id = s.transaction_id
        WHEN NOT MATCHED THEN INSERT ({columns}, {stamped})
        VALUES ({values}, current_timestamp())"""
    )


def reconcile(
    spark: SparkSession, settings: Settings, ingest_ids: tuple[str, ...]
) -> list[Reconciliation]:
    """Per ingest: the ledger's accepted count against results plus dead letters.

    One pass over both outcome tables; a transaction id that appears twice, within a table
    or across both, counts as a duplicate.
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
    outcomes = {
        row.ingest_id: row
        for row in spark.sql(
            f"""SELECT ingest_id, count_if(kind = 'processed') AS processed,
                   count_if(kind = 'failed') AS failed,
                   count(*) - count(DISTINCT transaction_id) AS duplicates
            FROM (SELECT ingest_id, transaction_id, 'processed' AS kind
                  FROM {settings.table(PROCESSED_TRANSACTIONS)} WHERE ingest_id IN ({ids})
                  UNION ALL
                  SELECT ingest_id, transaction_id, 'failed' AS kind
                  FROM {settings.table(PROCESSING_FAILURES)} WHERE ingest_id IN ({ids}))
            GROUP BY ingest_id"""
        ).collect()
    }
    result = []
    for ingest in ingest_ids:
        row = outcomes.get(ingest)
        result.append(
            Reconciliation(
                ingest_id=ingest,
                accepted=accepted.get(ingest) or 0,
                processed=row.processed if row else 0,
                failed=row.failed if row else 0,
                duplicates=row.duplicates if row else 0,
            )
        )
    return result
