"""The processing run on the driver: choose the pending records, spread them over the cores,
run the handler in `mapInArrow`, and commit each wave's outcomes.

Why `mapInArrow` and not a row UDF: records reach Python as Arrow batches (no per-row
pickling), the handler gets whole batches for retries and I/O, and per-partition setup runs
once per task. The tasks write the outcome files themselves and return only counts and
paths (processing/outcomes.py); the driver commits them (processing/commit.py) and checks
the tables reconcile (processing/reconcile.py). Why this is idempotent: see
docs/adr/0005-idempotent-processing-results.md.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from pyspark import StorageLevel

from sluiceway.commits import TableCommits
from sluiceway.errors import EndpointUnavailableError, ExitCode
from sluiceway.iceberg_files import write_target
from sluiceway.ingest.recover import finish_interrupted_ingests
from sluiceway.job_runs import PROCESS_STEP, JobRun, record_job_run, spark_workers
from sluiceway.lease import writer_lease
from sluiceway.logs import get_logger, log_event
from sluiceway.processing.commit import commit_wave, read_wave
from sluiceway.processing.handler_specs import resolve_handler
from sluiceway.processing.handlers import Handler
from sluiceway.processing.metrics import RunMetrics
from sluiceway.processing.outcomes import TASK_OUTPUT_DDL, WavePlan, task_function
from sluiceway.processing.partition import ENGINE_INPUT_COLUMNS, PartitionPlan
from sluiceway.processing.reconcile import Reconciliation, reconcile
from sluiceway.processing.retry import RetryPolicy
from sluiceway.processing.select import IngestScope, resolve_scope, select_pending
from sluiceway.tables import (
    INGEST_LEDGER,
    JOB_RUNS,
    PROCESSED_TRANSACTIONS,
    PROCESSING_FAILURES,
    REJECTED_RECORDS,
    TRANSACTIONS,
    ensure_tables,
)

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, Row, SparkSession

    from sluiceway.settings import Settings

LOGGER = get_logger(__name__)


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


class RecordsLeftPending(EndpointUnavailableError):
    """Retries of a retryable error ran out: what was done is committed, the rest is pending."""

    def __init__(self, result: ProcessResult, cause: str) -> None:
        self.result = result
        super().__init__(
            f"endpoint unavailable: {result.left_pending:,} records left pending ({cause}); "
            "nothing was dead-lettered for it, run again when the endpoint answers"
        )


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
    # The run's own time, from here to its reconciliation: what `job_runs` records.
    started = time.monotonic()
    started_at = datetime.now(UTC)
    # One writer per namespace (lib/sluiceway/lease/): pending records are chosen under it.
    with writer_lease(settings, "process") as fence:
        tables = (
            TRANSACTIONS, REJECTED_RECORDS, INGEST_LEDGER, PROCESSED_TRANSACTIONS,
            PROCESSING_FAILURES, JOB_RUNS,
        )  # fmt: skip
        ensure_tables(spark, settings, tables)
        commits = TableCommits(spark, settings, fence)
        commits.observe(tables)
        # An ingest interrupted after its commit point is published before anything is chosen.
        finish_interrupted_ingests(commits)
        scope = resolve_scope(spark, settings, ingest_id, source)
        handler = resolve_handler(options.handler, options.handler_options)
        selection = select_pending(spark, settings, scope)
        records = selection.records
        if selection.known_count is None:
            # Counted here, then read again by the handler's bind and the waves.
            records = records.persist(StorageLevel.MEMORY_AND_DISK)
        try:
            pending = records.count() if selection.known_count is None else selection.known_count
            # A known count means no anti-join: the records are their ingests' every record.
            whole = selection.known_count is not None
            return _process(
                commits, options, handler, records, scope, pending, (started, started_at), whole
            )
        finally:
            records.unpersist()


def _process(
    commits: TableCommits,
    options: ProcessOptions,
    handler: Handler,
    records: DataFrame,
    scope: IngestScope,
    pending: int,
    clock: tuple[float, datetime],
    whole_ingests: bool = False,
) -> ProcessResult:
    spark, settings = commits.spark, commits.settings
    started, started_at = clock
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
        cause = _run_waves(
            commits, handler, records, options, waves, partitions, metrics, whole_ingests
        )
    reconciling = time.monotonic()
    reconciliation = reconcile(spark, settings, ingest_ids, scope)
    metrics.seconds = time.monotonic() - started
    result = ProcessResult(
        handler=handler.name,
        ingest_ids=ingest_ids,
        pending=pending,
        waves=waves,
        partitions=partitions,
        metrics=metrics,
        reconciliation=reconciliation,
        left_pending=pending - metrics.records if cause else 0,
    )
    record_job_run(
        commits,
        JobRun(
            PROCESS_STEP, ingest_ids, settings.profile, spark_workers(spark), metrics.records,
            started_at, started_at + timedelta(seconds=metrics.seconds), metrics.seconds,
        ),
    )  # fmt: skip
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
    commits: TableCommits,
    handler: Handler,
    records: DataFrame,
    options: ProcessOptions,
    waves: int,
    partitions: int,
    metrics: RunMetrics,
    whole_ingests: bool,
) -> str:
    """Run and commit the waves; stop at the first wave that left records pending.

    The records are laid out once, for every wave (`waves * partitions` partitions, one
    shuffle written to local disk); wave w is the run of partitions [w * partitions,
    (w + 1) * partitions) of that layout, run as its own Spark job. So a day costs one pass
    whatever the number of waves, instead of one pass over the whole day per wave, and
    nothing of the day is held in memory between the waves.

    Returns why records were left pending (the endpoint's last error), or "" when none were.
    """
    spark, settings = commits.spark, commits.settings
    binding = time.monotonic()
    plan = WavePlan(
        PartitionPlan(handler, options.batch_size, options.retry_policy()),
        {
            name: write_target(spark, settings, name)
            for name in (PROCESSED_TRANSACTIONS, PROCESSING_FAILURES)
        },
        settings.failpoint,
        partitions_per_wave=partitions,
    )
    laid_out = lay_out(records, handler, settings, waves * partitions, whole_ingests)
    # `.rdd` plans the query (its shuffle runs now, once); every wave then runs only the
    # tasks of its own partitions (`runJob`), reading the shuffle's files.
    tasks = run_wave(laid_out, plan).rdd
    total = tasks.getNumPartitions()
    metrics.wave_seconds += time.monotonic() - binding
    log_event(LOGGER, "processing laid out", partitions=total,
              layout_seconds=round(time.monotonic() - binding, 2))  # fmt: skip
    for wave in range(waves):
        chosen = range(wave * partitions, min((wave + 1) * partitions, total))
        began = time.monotonic()
        rows = spark.sparkContext.runJob(tasks, _as_list, list(chosen)) if chosen else []
        outcome = read_wave(rows)
        handled = time.monotonic()
        commit_wave(commits, outcome, f"{wave + 1}/{waves}")
        metrics.add(outcome.metrics)
        metrics.wave_seconds += handled - began
        log_event(
            LOGGER, "processing wave committed", wave=f"{wave + 1}/{waves}",
            **metrics.summary(), handler_seconds=round(handled - began, 2),
            commit_seconds=round(time.monotonic() - handled, 2),
        )  # fmt: skip
        if outcome.pending_cause:
            # The breaker opened: the remaining waves would only hammer the endpoint.
            log_event(LOGGER, "processing stopped: endpoint unavailable", wave=wave,
                      waves=waves, cause=outcome.pending_cause)  # fmt: skip
            return outcome.pending_cause
    return ""


def _as_list(rows: Iterable[Row]) -> list[Row]:
    return list(rows)


def plan_partitions(spark: SparkSession, records: float, options: ProcessOptions) -> int:
    """Enough partitions that every core works, few enough that batches stay full."""
    if options.partitions:
        return options.partitions
    cores = spark.sparkContext.defaultParallelism
    batches = math.ceil(records / options.batch_size)
    return max(1, min(max(cores, batches // 4), cores * 4, max(batches, 1)))


def lay_out(
    records: DataFrame,
    handler: Handler,
    settings: Settings,
    partitions: int,
    whole_ingests: bool = False,
) -> DataFrame:
    """The records as the tasks read them: keyed, bound by the handler, in `partitions`
    partitions, each in a deterministic order.

    Same partition and order on a task retry: the retried task rebuilds the same batches,
    so batch ids in processing_failures mean the same thing on every attempt. A handler that
    groups the records itself (`bind_laid_out`, the financial handler by account) does it in
    its own shuffle; any other is bound, then hash-partitioned and sorted by transaction id.
    `whole_ingests`: the records are every accepted record of their ingests (the selection
    knew their count without an anti-join).
    """
    keyed = records.withColumn("idempotency_key", idempotency_key_column(handler.name))
    grouped = handler.bind_laid_out(keyed, settings, partitions, whole_ingests)
    if grouped is not None:
        return grouped
    bound = handler.bind(keyed, settings)
    if handler.columns:
        bound = bound.select(*dict.fromkeys((*ENGINE_INPUT_COLUMNS, *handler.columns)))
    return bound.repartition(partitions, "transaction_id").sortWithinPartitions("transaction_id")


def run_wave(laid_out: DataFrame, plan: WavePlan) -> DataFrame:
    """The task summaries of the laid-out records (processing/outcomes.py); running a
    partition's task runs the handler over it and writes its outcome files."""
    return laid_out.mapInArrow(task_function(plan), TASK_OUTPUT_DDL)  # type: ignore[arg-type]


def idempotency_key_column(step: str) -> Column:
    """sha256(ingest_id / transaction_id / step), as partition.idempotency_key computes it."""
    from pyspark.sql import functions as F

    return F.sha2(F.concat_ws("/", "ingest_id", "transaction_id", F.lit(step)), 256)
