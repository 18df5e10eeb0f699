"""The processing run on the driver: pick the records without an outcome, spread them over
the cores, run the handler in `mapInArrow`, and commit each wave's outcomes once.

Why `mapInArrow` and not a row UDF: records reach Python as Arrow batches (no per-row
pickling), the handler gets whole batches for retries and I/O, and per-partition setup runs
once per task. Why a checkpoint and two guarded MERGEs: see
docs/adr/idempotent-processing-results.md. Every read and write is limited to the ingest's
own partitions (its event-day range from the ledger), so a day costs the same on day 1000.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pyspark import StorageLevel

from sluiceway import failpoints
from sluiceway.errors import EndpointUnavailableError, ExitCode, SluicewayError
from sluiceway.ingest.landing import canonical_source
from sluiceway.ingest.ledger import COMPLETED
from sluiceway.lease import writer_lease
from sluiceway.logs import get_logger, log_event
from sluiceway.processing.handlers import Handler, resolve_handler
from sluiceway.processing.metrics import RunMetrics
from sluiceway.processing.partition import (
    ENGINE_INPUT_COLUMNS,
    FAILED,
    OUTCOME_DDL,
    PENDING,
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


class RecordsLeftPending(EndpointUnavailableError):
    """Retries of a retryable error ran out: what was done is committed, the rest is pending."""

    def __init__(self, result: ProcessResult, cause: str) -> None:
        self.result = result
        super().__init__(
            f"endpoint unavailable: {result.left_pending:,} records left pending ({cause}); "
            "nothing was dead-lettered for it, run again when the endpoint answers"
        )


# The failpoints of a wave's commit, in order (see lib/sluiceway/failpoints.py).
AFTER_WAVE_CHECKPOINT = "process_after_wave_checkpoint"
AFTER_RESULTS_COMMIT = "process_after_results_commit"
AFTER_FAILURES_COMMIT = "process_after_failures_commit"

# Outcomes are keyed per ingest: the idempotency key and the reconciliation are, too.
RECORD_KEY = ["ingest_id", "transaction_id"]


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
class IngestScope:
    """The ingests a run works on and the event-time span of their records.

    `transactions` and `processed_transactions` are partitioned by days(event_time): a filter
    on the span lets Iceberg skip every other day's files, and `processing_failures` files are
    skipped by their ingest_id bounds. None means unbounded (every ingest, or a ledger row
    written before the span was recorded).
    """

    ingest_ids: tuple[str, ...] | None = None
    # Microseconds since the epoch: the first day's start (inclusive), the day after the last.
    low_micros: int | None = None
    high_micros: int | None = None

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
    """What a run did; `exit_code` 0 when every touched ingest reconciles, 3 when one does not,
    5 when an endpoint outage left records pending."""

    handler: str
    ingest_ids: tuple[str, ...]
    pending: int
    waves: int
    partitions: int
    metrics: RunMetrics
    reconciliation: list[Reconciliation]
    left_pending: int = 0

    @property
    def reconciled(self) -> bool:
        return all(item.reconciled for item in self.reconciliation)

    @property
    def exit_code(self) -> int:
        if self.left_pending:
            return ExitCode.ENDPOINT_UNAVAILABLE
        return ExitCode.OK if self.reconciled else ExitCode.RECONCILIATION_FAILED


def process_records(
    spark: SparkSession,
    settings: Settings,
    options: ProcessOptions | None = None,
    ingest_id: str | None = None,
    source: str | None = None,
) -> ProcessResult:
    """Process the accepted records of one ingest (by id or source file), or of all ingests.

    Raises RecordsLeftPending (exit code 5) when an endpoint outage outlasted the retries.
    """
    options = options or ProcessOptions()
    # One writer per namespace (lib/sluiceway/lease.py): pending records are chosen under it.
    with writer_lease(settings, "process"):
        started = time.monotonic()
        ensure_tables(
            spark,
            settings,
            (TRANSACTIONS, INGEST_LEDGER, PROCESSED_TRANSACTIONS, PROCESSING_FAILURES),
        )
        scope = resolve_scope(spark, settings, ingest_id, source)
        handler = resolve_handler(options.handler, options.handler_options)
        # Persisted: counted here, then read again by the handler's bind and the waves.
        records = pending_records(spark, settings, scope).persist(StorageLevel.MEMORY_AND_DISK)
        try:
            return _process(spark, settings, options, handler, records, scope, started)
        finally:
            records.unpersist()


def _process(
    spark: SparkSession,
    settings: Settings,
    options: ProcessOptions,
    handler: Handler,
    records: DataFrame,
    scope: IngestScope,
    started: float,
) -> ProcessResult:
    pending = records.count()
    selected = time.monotonic()
    ingest_ids = scope.ingest_ids
    if ingest_ids is None:
        ingest_ids = tuple(r.ingest_id for r in records.select("ingest_id").distinct().collect())
    metrics = RunMetrics()
    waves = max(1, math.ceil(pending / max(1, options.commit_every)))
    partitions = plan_partitions(spark, pending / waves, options)
    log_event(
        LOGGER, "processing started", handler=handler.name, ingest_ids=list(ingest_ids),
        pending=pending, waves=waves, partitions=partitions, batch_size=options.batch_size,
        selection_seconds=round(selected - started, 2),
    )  # fmt: skip
    cause = ""
    if pending:
        cause = _run_waves(spark, settings, scope, handler, records, options, waves, partitions,
                           metrics)  # fmt: skip
    metrics.seconds = time.monotonic() - started
    reconciling = time.monotonic()
    result = ProcessResult(
        handler=handler.name,
        ingest_ids=ingest_ids,
        pending=pending,
        waves=waves,
        partitions=partitions,
        metrics=metrics,
        reconciliation=reconcile(spark, settings, ingest_ids, scope),
        left_pending=pending - metrics.records if cause else 0,
    )
    log_event(
        LOGGER, "processing finished", handler=handler.name, **metrics.summary(),
        reconciled=result.reconciled, left_pending=result.left_pending,
        reconcile_seconds=round(time.monotonic() - reconciling, 2),
        reconciliation=[item.__dict__ for item in result.reconciliation],
    )  # fmt: skip
    if result.left_pending:
        raise RecordsLeftPending(result, cause)
    return result


def _run_waves(
    spark: SparkSession,
    settings: Settings,
    scope: IngestScope,
    handler: Handler,
    records: DataFrame,
    options: ProcessOptions,
    waves: int,
    partitions: int,
    metrics: RunMetrics,
) -> str:
    """Run and commit the waves; stop at the first wave that left records pending.

    Returns why records were left pending (the endpoint's last error), or "" when none were.
    """
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
            cause = _commit_wave(spark, settings, scope, outcomes, metrics, f"{wave + 1}/{waves}")
            if cause:
                # The breaker opened: the remaining waves would only hammer the endpoint.
                log_event(LOGGER, "processing stopped: endpoint unavailable", wave=wave,
                          waves=waves, cause=cause)  # fmt: skip
                return cause
        return ""
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


def resolve_scope(
    spark: SparkSession, settings: Settings, ingest_id: str | None, source: str | None
) -> IngestScope:
    """The ingest(s) to process and their event-day span, from the ledger.

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
        found = ledger.filter(F.col("source_file") == canonical_source(source))
        what = f"source file {source}"
    rows = found.select(
        "ingest_id",
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
    if any(row.low is None or row.high is None for row in rows):
        return IngestScope(ids)
    return IngestScope(ids, min(row.low for row in rows), max(row.high for row in rows))


def resolve_ingest_ids(
    spark: SparkSession, settings: Settings, ingest_id: str | None, source: str | None
) -> tuple[str, ...] | None:
    """The ingest(s) to process; None means every ingest with records still pending."""
    return resolve_scope(spark, settings, ingest_id, source).ingest_ids


def pending_records(spark: SparkSession, settings: Settings, scope: IngestScope) -> DataFrame:
    """Accepted records without a result and without a dead letter: what a run still owes.

    Each side reads only the scope's partitions, so the anti-joins cost one day, not history.
    """
    from pyspark.sql import functions as F

    transactions = scope.restrict(spark.table(settings.table(TRANSACTIONS)))
    if scope.ingest_ids is None:
        # Only finished ingests: a crashed one still has partial rows its re-run removes.
        completed = spark.table(settings.table(INGEST_LEDGER)).filter(F.col("status") == COMPLETED)
        transactions = transactions.join(completed.select("ingest_id"), "ingest_id", "left_semi")
    return transactions.join(
        _committed(spark, settings, scope, PROCESSED_TRANSACTIONS), RECORD_KEY, "left_anti"
    ).join(_committed(spark, settings, scope, PROCESSING_FAILURES), RECORD_KEY, "left_anti")


def _committed(spark: SparkSession, settings: Settings, scope: IngestScope, name: str) -> DataFrame:
    """The record keys an outcome table holds for the scope (its own partitions only)."""
    table = spark.table(settings.table(name))
    return scope.restrict(table, by_event_time=name == PROCESSED_TRANSACTIONS).select(*RECORD_KEY)


def _commit_wave(
    spark: SparkSession,
    settings: Settings,
    scope: IngestScope,
    outcomes: DataFrame,
    metrics: RunMetrics,
    wave: str,
) -> str:
    """Checkpoint the wave once, then commit its results and its dead letters from that copy.

    Both commits read the same materialised rows, so a re-run task (a lost executor, a
    speculative copy) cannot give one record a result in one commit and a dead letter in the
    other. Each insert also leaves out the records the other table already holds. Returns
    the cause when records were left pending, else "".
    """
    from pyspark.sql import functions as F

    started = time.monotonic()
    staged = outcomes.localCheckpoint(eager=True)
    handled = time.monotonic()
    # One pass over the checkpoint: a row per batch (~2,000 per million records).
    batches = (
        staged.groupBy("batch_id")
        .agg(
            F.max("batch_latency_ms").alias("ms"),
            F.count(F.when(F.col("outcome") == PROCESSED, 1)).alias("ok"),
            F.count(F.when(F.col("outcome") == FAILED, 1)).alias("failed"),
            F.count(F.when(F.col("outcome") == PENDING, 1)).alias("pending"),
            F.count(F.when(F.col("attempts") > 1, 1)).alias("retried"),
            F.sum("attempts").alias("attempts"),
        )
        .collect()
    )
    totals = {name: sum(row[name] for row in batches) for name in ("ok", "failed", "pending")}
    metrics.batch_latencies_ms.extend(row.ms for row in batches)
    metrics.records_ok += totals["ok"]
    metrics.records_failed += totals["failed"]
    metrics.records_pending += totals["pending"]
    metrics.records_retried += sum(row.retried for row in batches)
    metrics.attempts += sum(row.attempts for row in batches)
    failpoints.reach(settings, AFTER_WAVE_CHECKPOINT)
    if totals["ok"]:
        results = staged.filter(F.col("outcome") == PROCESSED).join(
            _committed(spark, settings, scope, PROCESSING_FAILURES), RECORD_KEY, "left_anti"
        )
        _insert_missing(spark, settings, scope, PROCESSED_TRANSACTIONS, results)
    failpoints.reach(settings, AFTER_RESULTS_COMMIT)
    if totals["failed"]:
        dead = staged.filter(F.col("outcome") == FAILED).join(
            _committed(spark, settings, scope, PROCESSED_TRANSACTIONS), RECORD_KEY, "left_anti"
        )
        _insert_missing(spark, settings, scope, PROCESSING_FAILURES, dead)
    failpoints.reach(settings, AFTER_FAILURES_COMMIT)
    log_event(
        LOGGER, "processing wave committed", wave=wave, **metrics.summary(),
        handler_seconds=round(handled - started, 2),
        commit_seconds=round(time.monotonic() - handled, 2),
    )  # fmt: skip
    if not totals["pending"]:
        return ""
    return _pending_cause(staged)


def _pending_cause(staged: DataFrame) -> str:
    """The error that left records pending, preferring the endpoint's own over the breaker's."""
    from pyspark.sql import functions as F

    row = (
        staged.filter(F.col("outcome") == PENDING)
        .orderBy((F.col("error_class") == "CircuitOpen").asc())
        .select("error_class", "error_message")
        .first()
    )
    return f"{row.error_class}: {row.error_message}"[:300]


COLUMNS = {
    PROCESSED_TRANSACTIONS: (
        "transaction_id, ingest_id, idempotency_key, handler, event_time, result, "
        "base_currency, amount_base, fee_base, risk_flags, attempts, batch_id",
        "processed_at",
    ),
    PROCESSING_FAILURES: (
        "transaction_id, ingest_id, idempotency_key, handler, error_class, error_message, "
        "attempts, batch_id",
        "failed_at",
    ),
}


def _insert_missing(
    spark: SparkSession, settings: Settings, scope: IngestScope, name: str, rows: DataFrame
) -> None:
    """Insert the rows whose record key the table does not have yet, reading only its scope.

    The scope's predicates on `t` are what let Iceberg skip every other day's files; without
    them an insert-only MERGE anti-joins the table's whole history.
    """
    columns, stamped = COLUMNS[name]
    values = ", ".join(f"s.{column.strip()}" for column in columns.split(","))
    by_event_time = name == PROCESSED_TRANSACTIONS
    on = " AND ".join(
        [
            "t.ingest_id = s.ingest_id",
            "t.transaction_id = s.transaction_id",
            *scope.conditions(by_event_time, alias="t"),
        ]
    )
    view = f"sluiceway_outcomes_{uuid.uuid4().hex[:12]}"
    rows.createOrReplaceTempView(view)
    try:
        spark.sql(
            f"""MERGE INTO {settings.table(name)} t USING {view} s ON {on}
            WHEN NOT MATCHED THEN INSERT ({columns}, {stamped})
            VALUES ({values}, current_timestamp())"""
        )
    finally:
        spark.catalog.dropTempView(view)


def reconcile(
    spark: SparkSession,
    settings: Settings,
    ingest_ids: tuple[str, ...],
    scope: IngestScope | None = None,
) -> list[Reconciliation]:
    """Per ingest: the ledger's accepted count against results plus dead letters.

    One pass over both outcome tables (the scope's partitions only); a transaction id that
    appears twice in an ingest, within a table or across both, counts as a duplicate.
    """
    if not ingest_ids:
        return []
    ids = ", ".join(f"'{value}'" for value in ingest_ids)
    days = "".join(f" AND {condition}" for condition in (scope or IngestScope()).day_conditions())
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
                  FROM {settings.table(PROCESSED_TRANSACTIONS)}
                  WHERE ingest_id IN ({ids}){days}
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
