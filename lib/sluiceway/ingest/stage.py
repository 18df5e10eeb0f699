"""Write and stage: the chunks' files written by Spark tasks, then staged in Iceberg, unpublished.

One task per chunk tokenizes, validates and writes its Parquet files (`write`); the driver
then decides the whole-file reasons (`duplicate_in_file`, `already_ingested`) from the
chunks' (id, line) pairs and has only the chunks holding such lines written again; the files
are appended as staged snapshots that `main` does not show (`publish.stage_files`), tagged
with this attempt's own commit id, so only what this attempt staged can be published. What
comes out is what the audit needs: the figures of every file and the staged snapshots.
"""

from __future__ import annotations

import bisect
import dataclasses
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.pandas.types import from_arrow_schema

from sluiceway.commits import TableCommits
from sluiceway.iceberg_files import WrittenFile, write_target
from sluiceway.ingest.event_time import from_micros
from sluiceway.ingest.known_ids import earlier_ids
from sluiceway.ingest.landing import LandingChunk, LandingScanner, remove_staged_folder
from sluiceway.ingest.publish import stage_files, staged_record_count
from sluiceway.ingest.reconcile import Counts
from sluiceway.ingest.table_rows import Lineage
from sluiceway.ingest.write import (
    IDS_TABLE,
    TASK_OUTPUT_SCHEMA,
    ChunkPlan,
    ExtraReason,
    FileFigures,
    figures_from_json,
    read_ids,
    task_function,
    whole_file_reasons,
)
from sluiceway.locations import resolve
from sluiceway.logs import get_logger, log_event
from sluiceway.settings import Settings
from sluiceway.spark import task_progress
from sluiceway.tables import REJECTED_RECORDS, TRANSACTIONS

LOGGER = get_logger(__name__)


@dataclass(frozen=True)
class StagedIngest:
    """What the tasks wrote and Iceberg staged, with the figures the audit compares."""

    counts: Counts
    files: tuple[FileFigures, ...]
    transactions_snapshot: int | None
    rejected_snapshot: int | None


def write_and_stage(
    spark: SparkSession,
    settings: Settings,
    commits: TableCommits,
    scanner: LandingScanner,
    ingest_id: str,
    source_file: str,
    say: Callable[[str], None],
) -> StagedIngest:
    """Tasks write each chunk's files, starting while the scanner still plans; whole-file
    reasons are added; files are staged."""
    plan = ChunkPlan(
        lineage=Lineage(source_file, ingest_id, datetime.now(UTC), settings.feed_contract()),
        transactions=write_target(spark, settings, TRANSACTIONS),
        rejected=write_target(spark, settings, REJECTED_RECORDS),
        max_record_bytes=settings.max_record_bytes,
        ids_location=f"{settings.staging_location().rstrip('/')}/ids-{uuid.uuid4().hex}",
        layout=scanner.identity().layout,
    )
    clock = time.monotonic()
    chunks, files = _run_tasks_as_planned(spark, plan, scanner, say)
    scan = scanner.result()
    say(
        f"scanned {source_file}: {scan.file_bytes / 1e6:.1f} MB, {scan.physical_lines:,} lines, "
        f"{len(scan.chunks)} chunks; tokenized, validated and wrote them in "
        f"{time.monotonic() - clock:.1f} s"
    )
    log_event(
        LOGGER,
        "landing file scanned",
        ingest_id=ingest_id,
        file_bytes=scan.file_bytes,
        lines=scan.physical_lines,
        chunks=len(scan.chunks),
    )
    clock = time.monotonic()
    id_files = [f for chunk_files in files.values() for f in chunk_files if f.table == IDS_TABLE]
    files = {
        index: [f for f in chunk_files if f.table != IDS_TABLE]
        for index, chunk_files in files.items()
    }
    try:
        ids = read_ids(id_files)
        known = earlier_ids(spark, settings, ingest_id, files, ids)
        extra = whole_file_reasons(ids, known, key=plan.lineage.feed.key)
    finally:
        remove_staged_folder(plan.ids_location)
    say(f"checked ids against the file and completed ingests in {time.monotonic() - clock:.1f} s")
    if extra:
        affected = _chunks_with_lines(chunks, extra)
        say(
            f"{len(extra):,} lines are duplicates or already ingested: {len(affected)} chunks again"
        )
        redo = _run_tasks(spark, dataclasses.replace(plan, extra_reasons=extra), affected, say)
        delete_files([f for index in affected for f in files.get(index, [])])
        files.update(redo)
    written = tuple(f for chunk_files in files.values() for f in chunk_files)
    clock = time.monotonic()
    staged = stage_written(commits, written, ingest_id, scan.physical_lines)
    say(
        f"staged {len(written)} files ({staged.counts.records_read:,} records) in "
        f"{time.monotonic() - clock:.1f} s"
    )
    return staged


def stage_written(
    commits: TableCommits, written: tuple[FileFigures, ...], ingest_id: str, lines_read: int
) -> StagedIngest:
    """The written files appended as one staged snapshot per table, and the ingest's figures
    (records from Iceberg's own metadata): what the audit compares. Files and streams alike."""
    spark, settings = commits.spark, commits.settings
    accepted = [f for f in written if f.table == TRANSACTIONS]
    rejected = [f for f in written if f.table == REJECTED_RECORDS]
    snapshots = {
        table: stage_files(
            commits, table, [WrittenFile(f.path, f.partition) for f in table_files], ingest_id
        )
        for table, table_files in ((TRANSACTIONS, accepted), (REJECTED_RECORDS, rejected))
    }
    staged_records = sum(
        staged_record_count(spark, settings, table, snapshot)
        for table, snapshot in snapshots.items()
    )
    return StagedIngest(
        counts_of_files(lines_read, staged_records, accepted, rejected),
        written,
        snapshots[TRANSACTIONS],
        snapshots[REJECTED_RECORDS],
    )


def _run_tasks_as_planned(
    spark: SparkSession, plan: ChunkPlan, scanner: LandingScanner, say: Callable[[str], None]
) -> tuple[dict[int, LandingChunk], dict[int, list[FileFigures]]]:
    """The chunks in rounds of Spark jobs, each submitted as soon as the planner has cut its
    chunks (a round at least twice the one before, so a 64-chunk file takes a handful of
    jobs), from threads: Spark queues the rounds' tasks in order, so the cores never wait for
    a round's last task. Returns every chunk by index and the files each chunk's task wrote.
    """
    parallelism = max(spark.sparkContext.defaultParallelism, 1)
    chunks: dict[int, LandingChunk] = {}
    rounds = []
    # The number of chunks is known once the plan is complete; the progress lines estimate it.
    estimate = max(-(-scanner.file_bytes // max(scanner.planner.chunk_bytes, 1)), 1)
    with (
        ThreadPoolExecutor(max_workers=4, thread_name_prefix="ingest-round") as pool,
        task_progress(spark, "chunks", estimate, say),
    ):
        at_least = parallelism
        for batch in scanner.planned(at_least=parallelism):
            indexed = {len(chunks) + offset: chunk for offset, chunk in enumerate(batch)}
            chunks.update(indexed)
            rounds.append(pool.submit(_collect_files, spark, plan, indexed))
            at_least = max(at_least, len(batch)) * 2
        files: dict[int, list[FileFigures]] = {}
        for written in rounds:
            files.update(written.result())
    return chunks, files


def _run_tasks(
    spark: SparkSession,
    plan: ChunkPlan,
    chunks: dict[int, LandingChunk],
    say: Callable[[str], None],
    lines: int = 0,
) -> dict[int, list[FileFigures]]:
    """One task per chunk; the files each chunk's task wrote."""
    with task_progress(spark, "chunks", len(chunks), say, lines):
        return _collect_files(spark, plan, chunks)


def _collect_files(
    spark: SparkSession, plan: ChunkPlan, chunks: dict[int, LandingChunk]
) -> dict[int, list[FileFigures]]:
    """One Spark job, one task per chunk; the files each chunk's task wrote."""
    written = chunk_tasks(spark, plan, list(chunks.items())).collect()
    files: dict[int, list[FileFigures]] = {index: [] for index in chunks}
    for row in written:
        if row.file:
            files[row.chunk].append(figures_from_json(row.file))
    return files


def chunk_tasks(
    spark: SparkSession, plan: ChunkPlan, chunks: list[tuple[int, LandingChunk]]
) -> DataFrame:
    """The chunks' tasks as a DataFrame of the files they write: one partition per chunk, so
    every chunk is its own task and every core works.

    Its input is a JVM range of positions in `chunks`, not rows sent from Python: a Python
    RDD would need a Python worker of its own in every task, beside the one running
    `write_chunk`, and a second worker daemon to start (0.5 s before the first tasks).
    """
    positions = spark.range(0, len(chunks), 1, max(len(chunks), 1))
    return positions.mapInArrow(task_function(plan, chunks), from_arrow_schema(TASK_OUTPUT_SCHEMA))


def _chunks_with_lines(
    chunks: dict[int, LandingChunk], extra: dict[int, tuple[ExtraReason, ...]]
) -> dict[int, LandingChunk]:
    starts = sorted((chunk.first_line_number, index) for index, chunk in chunks.items())
    firsts = [first for first, _ in starts]
    affected = {starts[bisect.bisect_right(firsts, line) - 1][1] for line in extra}
    return {index: chunks[index] for index in sorted(affected)}


def counts_of_files(
    lines_read: int,
    staged_records: int,
    accepted: list[FileFigures],
    rejected: list[FileFigures],
) -> Counts:
    """The ingest's figures from the files the tasks wrote; `records_read` from Iceberg."""
    amounts: dict[str, Decimal] = {}
    counts: dict[str, int] = {}
    reasons: dict[str, int] = {}
    for figures in accepted:
        for currency, total in figures.amount_by_currency.items():
            amounts[currency] = amounts.get(currency, Decimal(0)) + Decimal(total)
        for currency, count in figures.count_by_currency.items():
            counts[currency] = counts.get(currency, 0) + count
    for figures in rejected:
        for reason, count in figures.count_by_reason.items():
            reasons[reason] = reasons.get(reason, 0) + count
    events = [
        (f.first_event_micros, f.last_event_micros)
        for f in accepted
        if f.first_event_micros is not None and f.last_event_micros is not None
    ]
    return Counts(
        lines_read=lines_read,
        accepted=sum(f.records for f in accepted),
        rejected=sum(f.records for f in rejected),
        records_read=staged_records,
        accepted_lines=sum(f.lines for f in accepted),
        rejected_lines=sum(f.lines for f in rejected),
        rejected_by_reason=reasons,
        accepted_amount_by_currency=amounts,
        accepted_count_by_currency=counts,
        first_event_time=from_micros(min(start for start, _ in events)) if events else None,
        last_event_time=from_micros(max(end for _, end in events)) if events else None,
        line_runs={
            TRANSACTIONS: [f.line_runs for f in accepted],
            REJECTED_RECORDS: [f.line_runs for f in rejected],
        },
    )


def delete_files(files: list[FileFigures] | tuple[FileFigures, ...]) -> None:
    """Remove files that will never be published (a redone chunk, a failed audit)."""
    for figures in files:
        filesystem, path = resolve(figures.path)
        filesystem.delete_file(path)
