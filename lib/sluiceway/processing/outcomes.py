"""A task's outcome rows -> Parquet files of the two outcome tables, plus a summary per batch.

Why the task writes the files: its outcome rows are Arrow already; sending them back to the
JVM as rows, checkpointing them and MERGE-ing them into two tables cost more than the
handler's own work. The task returns only small rows: one per batch (counts, attempts,
latency), one per file it wrote, and the error that left records pending, if one did. The
driver registers the files of the attempts Spark kept (lib/sluiceway/iceberg_files.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc

from sluiceway import failpoints
from sluiceway.iceberg_files import WriteTarget, WrittenFile, write_by_day
from sluiceway.processing.partition import (
    FAILED,
    PENDING,
    PROCESSED,
    CircuitOpen,
    PartitionPlan,
    process_partition,
)
from sluiceway.tables import PROCESSED_TRANSACTIONS, PROCESSING_FAILURES

# A task's first attempt dies here, its files written (see lib/sluiceway/failpoints.py).
AFTER_TASK_FILES_WRITTEN = "process_task_after_files_written"
BATCH = "batch"
FILE = "file"
PENDING_CAUSE = "pending_cause"
# The breaker's own refusals say less than the endpoint's error that opened it.
CIRCUIT_OPEN = CircuitOpen.__name__
# A batch row's counters, summed over its outcome rows.
BATCH_COUNTERS = ("ok", "failed", "pending", "retried", "attempts")

# What a task returns to the driver: `kind` says which columns a row fills.
TASK_OUTPUT_SCHEMA = pa.schema(
    [
        pa.field("kind", pa.string()),
        pa.field("batch_id", pa.string()),
        pa.field("latency_ms", pa.float64()),
        pa.field("ok", pa.int64()),
        pa.field("failed", pa.int64()),
        pa.field("pending", pa.int64()),
        pa.field("retried", pa.int64()),
        pa.field("attempts", pa.int64()),
        pa.field("table", pa.string()),
        pa.field("path", pa.string()),
        pa.field("partition", pa.string()),
        pa.field("error_class", pa.string()),
        pa.field("error_message", pa.string()),
    ]
)
TASK_OUTPUT_DDL = (
    "kind string, batch_id string, latency_ms double, ok bigint, failed bigint, "
    "pending bigint, retried bigint, attempts bigint, table string, path string, "
    "partition string, error_class string, error_message string"
)

# Which outcome goes to which table, and the column stamped with the time it was decided.
DESTINATIONS = ((PROCESSED, PROCESSED_TRANSACTIONS, "processed_at"),
                (FAILED, PROCESSING_FAILURES, "failed_at"))  # fmt: skip


@dataclass(frozen=True)
class WavePlan:
    """What a task needs besides its records: the engine's plan and where outcomes go."""

    partition: PartitionPlan
    targets: dict[str, WriteTarget]  # by table name
    failpoint: str = ""  # Settings.failpoint, for AFTER_TASK_FILES_WRITTEN
    # The waves are runs of consecutive partitions of one layout: partition p is in wave
    # p // partitions_per_wave (0: every partition is in `partition.wave`).
    partitions_per_wave: int = 0

    def for_partition(self, partition_id: int) -> WavePlan:
        """The plan of one task, with the wave its partition belongs to."""
        if not self.partitions_per_wave:
            return self
        wave = partition_id // self.partitions_per_wave
        return replace(self, partition=replace(self.partition, wave=wave))


def task_function(
    plan: WavePlan,
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """The `mapInArrow` function of a wave: records in, summary rows out, files written."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from pyspark import TaskContext

        context = TaskContext.get()
        partition_id = context.partitionId() if context else 0
        mine = plan.for_partition(partition_id)
        outcomes = list(process_partition(batches, mine.partition, partition_id))
        summary = summarize(outcomes, mine, f"{uuid.uuid4().hex[:8]}-p{partition_id:05d}")
        failpoints.reach_in_task(
            mine.failpoint, AFTER_TASK_FILES_WRITTEN, context.attemptNumber() if context else 0
        )
        yield from summary

    return run


def summarize(outcomes: list[pa.RecordBatch], plan: WavePlan, name: str) -> list[pa.RecordBatch]:
    """Write the task's outcome rows and describe them in TASK_OUTPUT_SCHEMA rows."""
    if not outcomes:
        return []
    table = pa.Table.from_batches(outcomes)
    rows = [_batch_rows(table)]
    files = write_outcomes(table, plan.targets, f"{plan.partition.wave:03d}-{name}")
    if files:
        rows.append(
            _rows(
                kind=[FILE] * len(files),
                table=[table_name for table_name, _ in files],
                path=[written.path for _, written in files],
                partition=[written.partition for _, written in files],
            )
        )
    cause = _pending_cause(table)
    if cause is not None:
        rows.append(_rows(kind=[PENDING_CAUSE], error_class=[cause[0]], error_message=[cause[1]]))
    return rows


def write_outcomes(
    table: pa.Table, targets: dict[str, WriteTarget], name: str
) -> list[tuple[str, WrittenFile]]:
    """The processed rows into processed_transactions' files, the failed ones into
    processing_failures'; pending rows are written nowhere."""
    decided_at = pa.scalar(datetime.now(UTC), pa.timestamp("us", tz="UTC"))
    written = []
    for outcome, table_name, stamped in DESTINATIONS:
        rows = table.filter(pc.equal(table["outcome"], outcome))
        if rows.num_rows == 0:
            continue
        rows = rows.append_column(stamped, pa.repeat(decided_at, rows.num_rows))
        for file in write_by_day(rows, targets[table_name], name):
            written.append((table_name, file))
    return written


def _batch_rows(table: pa.Table) -> pa.RecordBatch:
    """One row per batch id: its outcome counts, retried records, attempts and latency."""
    outcome = table["outcome"]
    counts = pa.table(
        {
            "batch_id": table["batch_id"],
            "latency_ms": table["batch_latency_ms"],
            "ok": pc.cast(pc.equal(outcome, PROCESSED), pa.int64()),
            "failed": pc.cast(pc.equal(outcome, FAILED), pa.int64()),
            "pending": pc.cast(pc.equal(outcome, PENDING), pa.int64()),
            "retried": pc.cast(pc.greater(table["attempts"], 1), pa.int64()),
            "attempts": pc.cast(table["attempts"], pa.int64()),
        }
    )
    grouped = counts.group_by("batch_id", use_threads=False).aggregate(
        [("latency_ms", "max"), *[(name, "sum") for name in BATCH_COUNTERS]]
    )
    return _rows(
        kind=[BATCH] * grouped.num_rows,
        batch_id=grouped["batch_id"],
        latency_ms=grouped["latency_ms_max"],
        **{name: grouped[f"{name}_sum"] for name in BATCH_COUNTERS},
    )


def _pending_cause(table: pa.Table) -> tuple[str, str] | None:
    """The error that left records pending, preferring the endpoint's own over the breaker's."""
    pending = table.filter(pc.equal(table["outcome"], PENDING))
    if pending.num_rows == 0:
        return None
    own = pending.filter(pc.not_equal(pending["error_class"], CIRCUIT_OPEN))
    first = (own if own.num_rows else pending).slice(0, 1).to_pylist()[0]
    return first["error_class"], first["error_message"]


def _rows(**columns: list[object] | pa.ChunkedArray) -> pa.RecordBatch:
    """A TASK_OUTPUT_SCHEMA batch from the given columns; the others are null."""
    count = len(columns["kind"])
    arrays = []
    for field in TASK_OUTPUT_SCHEMA:
        values = columns.get(field.name)
        if values is None:
            arrays.append(pa.nulls(count, field.type))
        elif isinstance(values, pa.ChunkedArray):
            arrays.append(values.combine_chunks().cast(field.type))
        else:
            arrays.append(pa.array(values, field.type))
    return pa.RecordBatch.from_arrays(arrays, schema=TASK_OUTPUT_SCHEMA)
