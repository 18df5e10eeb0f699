"""One ingest, end to end: scan -> read -> validate -> write -> reconcile -> ledger.

Re-run safety: the ingest id is derived from the file's sha256; all writes happen under the
namespace's writer lease (one writer at a time); the ledger row is written `started` before
any data and `completed` last; a re-run after a crash or a failed reconciliation first
deletes that ingest id's rows. A file already `completed` is skipped.
"""

from __future__ import annotations

import bisect
import dataclasses
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema

from sluiceway import failpoints
from sluiceway.errors import ExitCode
from sluiceway.iceberg_files import WrittenFile, data_files_between, write_target
from sluiceway.ingest import ledger
from sluiceway.ingest.landing import (
    LandingChunk,
    LandingScan,
    remove_staged,
    remove_staged_folder,
    scan_landing_file,
)
from sluiceway.ingest.publish import publish, stage_files, staged_record_count
from sluiceway.ingest.reconcile import (
    Counts,
    Manifest,
    balance_problems,
    manifest_problems,
    read_manifest,
)
from sluiceway.ingest.source import resolve_version
from sluiceway.ingest.validate import Lineage
from sluiceway.ingest.write import (
    IDS_TABLE,
    TASK_OUTPUT_SCHEMA,
    ChunkPlan,
    ExtraReason,
    FileFigures,
    figures_from_json,
    read_ids,
    read_ids_of_ingests,
    task_function,
    whole_file_reasons,
)
from sluiceway.lease import writer_lease
from sluiceway.locations import canonical_source, manifest_location, resolve
from sluiceway.logs import get_logger, log_event
from sluiceway.settings import Settings
from sluiceway.spark import task_progress
from sluiceway.statuses import COMPLETED, FAILED, SKIPPED, STARTED
from sluiceway.tables import INGEST_LEDGER, REJECTED_RECORDS, TRANSACTIONS, ensure_tables

LOGGER = get_logger(__name__)


@dataclass(frozen=True)
class IngestResult:
    """What one ingest did, for the CLI summary, the job's exit code and the next step."""

    ingest_id: str
    source_file: str
    status: str
    lines_read: int = 0
    accepted: int = 0
    rejected: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    accepted_amount_by_currency: dict[str, Decimal] = field(default_factory=dict)
    duration_seconds: float = 0.0
    message: str = ""
    transactions_snapshot_id: int | None = None
    rejected_snapshot_id: int | None = None

    @property
    def exit_code(self) -> int:
        """0 for completed or skipped, 3 when reconciliation failed."""
        return ExitCode.RECONCILIATION_FAILED if self.status == FAILED else ExitCode.OK

    @property
    def lines_per_second(self) -> float:
        return self.lines_read / self.duration_seconds if self.duration_seconds else 0.0


def ingest_id_for(sha256: str) -> str:
    """Deterministic: the same bytes always get the same ingest id, whatever the file name."""
    return f"ing_{sha256[:20]}"


def ingest_file(
    spark: SparkSession,
    settings: Settings,
    source: str,
    manifest: str | None = None,
    source_version: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> IngestResult:
    """Ingest one landing file into transactions / rejected_records / ingest_ledger.

    Whole-file problems (no or wrong header, broken gzip, a malformed manifest) raise
    LandingFileError before anything is written. The writes happen under the namespace's
    writer lease, so no other run can remove or double them.
    """
    say = progress or (lambda _message: None)
    clock = time.monotonic()
    started_at = datetime.now(UTC)
    source_file = canonical_source(source)
    # Without a version from the event, pin the current one: driver and executors then read
    # the same bytes even if the object is overwritten mid-run, and the ledger says which.
    source_version = source_version or resolve_version(source)
    scan = scan_landing_file(
        source,
        settings.parse_chunk_mb * 1024 * 1024,
        settings.staging_location(),
        settings.max_record_bytes,
        source_version,
    )
    try:
        checked_manifest = read_manifest(manifest or manifest_location(source))
        ingest_id = ingest_id_for(scan.sha256)
        say(
            f"scanned {source_file}: {scan.file_bytes / 1e6:.1f} MB, "
            f"{scan.physical_lines:,} lines, {len(scan.chunks)} chunks"
        )
        log_event(
            LOGGER,
            "landing file scanned",
            ingest_id=ingest_id,
            file_bytes=scan.file_bytes,
            lines=scan.physical_lines,
            chunks=len(scan.chunks),
        )
        with writer_lease(settings, "ingest"):
            ensure_tables(spark, settings, (TRANSACTIONS, REJECTED_RECORDS, INGEST_LEDGER))
            previous = ledger.find_entry(spark, settings, ingest_id)
            if previous is not None and previous.status == COMPLETED:
                return _already_ingested(previous, ingest_id, source_file)
            if previous is not None:
                say(f"an earlier attempt of {ingest_id} did not finish: removing its rows")
                ledger.remove_ingest_rows(spark, settings, ingest_id)
            entry = ledger.LedgerEntry(
                ingest_id=ingest_id,
                source_file=source_file,
                sha256=scan.sha256,
                status=STARTED,
                started_at=started_at,
                source_version=source_version,
                file_bytes=scan.file_bytes,
            )
            ledger.record(spark, settings, entry, is_new=previous is None)
            failpoints.reach(settings, "after_ledger_started")
            staged = _write_and_stage(spark, settings, scan, ingest_id, source_file, say)
            failpoints.reach(settings, "after_staged")
            return _finish(
                spark, settings, entry, staged, checked_manifest, clock, source_file, say
            )
    finally:
        if scan.staged:
            remove_staged(scan.data_path)


def _already_ingested(
    previous: ledger.LedgerEntry, ingest_id: str, source_file: str
) -> IngestResult:
    finished = previous.finished_at
    message = (
        f"already ingested as {ingest_id} from {previous.source_file}"
        + (f" at {finished:%Y-%m-%d %H:%M:%S} UTC" if finished else "")
        + "; nothing changed"
    )
    log_event(LOGGER, message, ingest_id=ingest_id)
    return IngestResult(
        ingest_id,
        source_file,
        SKIPPED,
        lines_read=previous.lines_read or 0,
        accepted=previous.accepted or 0,
        rejected=previous.rejected or 0,
        rejected_by_reason=dict(previous.rejected_by_reason or {}),
        accepted_amount_by_currency=dict(previous.accepted_amount_by_currency or {}),
        message=message,
    )


@dataclass(frozen=True)
class StagedIngest:
    """What the tasks wrote and Iceberg staged, with the figures the audit compares."""

    counts: Counts
    files: tuple[FileFigures, ...]
    transactions_snapshot: int | None
    rejected_snapshot: int | None


def _finish(
    spark: SparkSession,
    settings: Settings,
    entry: ledger.LedgerEntry,
    staged: StagedIngest,
    manifest: Manifest | None,
    clock: float,
    source_file: str,
    say: Callable[[str], None],
) -> IngestResult:
    """Audit, then publish and mark the ledger `completed`; or mark it `failed`, unpublished.

    A failed ingest is never published (its staged snapshots stay off `main` and its files
    are deleted), so a corrected resend is not rejected as `already_ingested` and nothing
    half-checked reaches processing or analysts.
    """
    ingest_id = entry.ingest_id
    counts = staged.counts
    problems = balance_problems(counts)
    if manifest is not None:
        problems += manifest_problems(counts, manifest)
    status = FAILED if problems else COMPLETED
    if problems:
        message = "reconciliation failed: " + "; ".join(problems) + "; nothing was published"
        _delete_files(staged.files)
    else:
        published = publish(spark, settings, TRANSACTIONS, staged.transactions_snapshot)
        failpoints.reach(settings, "after_transactions_commit")
        published_rejected = publish(spark, settings, REJECTED_RECORDS, staged.rejected_snapshot)
        failpoints.reach(settings, "after_rejected_commit")
        say("audited and published to transactions and rejected_records")
        message = (
            f"ingested {counts.lines_read} lines: {counts.accepted} records accepted, "
            f"{counts.rejected} rejected" + (" (manifest matched)" if manifest else "")
        )
    snapshots = (None, None) if problems else (published, published_rejected)
    duration = time.monotonic() - clock
    ledger.record(
        spark,
        settings,
        dataclasses.replace(
            entry,
            status=status,
            lines_read=counts.lines_read,
            accepted=counts.accepted,
            rejected=counts.rejected,
            accepted_lines=counts.accepted_lines,
            rejected_lines=counts.rejected_lines,
            rejected_by_reason=counts.rejected_by_reason,
            accepted_amount_by_currency=counts.accepted_amount_by_currency,
            accepted_count_by_currency=counts.accepted_count_by_currency,
            message=message,
            manifest_checked=manifest is not None,
            transactions_snapshot_id=snapshots[0],
            rejected_snapshot_id=snapshots[1],
            first_event_time=counts.first_event_time,
            last_event_time=counts.last_event_time,
            finished_at=datetime.now(UTC),
            duration_seconds=duration,
        ),
    )
    failpoints.reach(settings, "after_ledger_completed")
    log_event(
        LOGGER,
        message,
        ingest_id=ingest_id,
        status=status,
        lines_read=counts.lines_read,
        accepted=counts.accepted,
        rejected=counts.rejected,
        rejected_by_reason=counts.rejected_by_reason,
        duration_seconds=round(duration, 2),
        lines_per_second=round(counts.lines_read / duration) if duration else None,
    )
    return IngestResult(
        ingest_id,
        source_file,
        status,
        counts.lines_read,
        counts.accepted,
        counts.rejected,
        counts.rejected_by_reason,
        counts.accepted_amount_by_currency,
        duration,
        message,
        snapshots[0],
        snapshots[1],
    )


CHUNK_SCHEMA = (
    "chunk bigint, path string, start bigint, end bigint, first_line_number bigint, "
    "version string, cr_line_ends boolean"
)


def _write_and_stage(
    spark: SparkSession,
    settings: Settings,
    scan: LandingScan,
    ingest_id: str,
    source_file: str,
    say: Callable[[str], None],
) -> StagedIngest:
    """Tasks write each chunk's files; whole-file reasons are added; files are staged."""
    plan = ChunkPlan(
        lineage=Lineage(source_file, ingest_id, datetime.now(UTC)),
        transactions=write_target(spark, settings, TRANSACTIONS),
        rejected=write_target(spark, settings, REJECTED_RECORDS),
        max_record_bytes=settings.max_record_bytes,
        ids_location=f"{settings.staging_location().rstrip('/')}/ids-{uuid.uuid4().hex}",
    )
    chunks = dict(enumerate(scan.chunks))
    clock = time.monotonic()
    files = _run_tasks(spark, plan, chunks, say, scan.physical_lines)
    say(f"tokenized, validated and wrote {len(chunks)} chunks in {time.monotonic() - clock:.1f} s")
    clock = time.monotonic()
    id_files = [f for chunk_files in files.values() for f in chunk_files if f.table == IDS_TABLE]
    files = {
        index: [f for f in chunk_files if f.table != IDS_TABLE]
        for index, chunk_files in files.items()
    }
    try:
        ids = read_ids(id_files)
        extra = whole_file_reasons(ids, _earlier_ids(spark, settings, ingest_id, files, ids))
    finally:
        remove_staged_folder(plan.ids_location)
    say(f"checked ids against the file and completed ingests in {time.monotonic() - clock:.1f} s")
    if extra:
        affected = _chunks_with_lines(chunks, extra)
        say(
            f"{len(extra):,} lines are duplicates or already ingested: {len(affected)} chunks again"
        )
        redo = _run_tasks(spark, dataclasses.replace(plan, extra_reasons=extra), affected, say)
        _delete_files([f for index in affected for f in files.get(index, [])])
        files.update(redo)
    written = tuple(f for chunk_files in files.values() for f in chunk_files)
    clock = time.monotonic()
    accepted = [f for f in written if f.table == TRANSACTIONS]
    rejected = [f for f in written if f.table == REJECTED_RECORDS]
    snapshots = {
        table: stage_files(
            spark,
            settings,
            table,
            [WrittenFile(f.path, f.partition) for f in table_files],
            ingest_id,
        )
        for table, table_files in ((TRANSACTIONS, accepted), (REJECTED_RECORDS, rejected))
    }
    staged_records = sum(
        staged_record_count(spark, settings, table, snapshot)
        for table, snapshot in snapshots.items()
    )
    say(
        f"staged {len(written)} files ({staged_records:,} records) in "
        f"{time.monotonic() - clock:.1f} s"
    )
    return StagedIngest(
        _counts(scan.physical_lines, staged_records, accepted, rejected),
        written,
        snapshots[TRANSACTIONS],
        snapshots[REJECTED_RECORDS],
    )


def _run_tasks(
    spark: SparkSession,
    plan: ChunkPlan,
    chunks: dict[int, LandingChunk],
    say: Callable[[str], None],
    lines: int = 0,
) -> dict[int, list[FileFigures]]:
    """One task per chunk; the files each chunk's task wrote."""
    rows = [(index, *dataclasses.astuple(chunk)) for index, chunk in chunks.items()]
    # One slice per chunk, so every chunk is its own task and every core works.
    slices = spark.sparkContext.parallelize(rows, max(len(rows), 1))
    frame = spark.createDataFrame(slices, CHUNK_SCHEMA)
    output = frame.mapInArrow(task_function(plan), from_arrow_schema(TASK_OUTPUT_SCHEMA))
    with task_progress(spark, "chunks", len(rows), say, lines):
        written = output.collect()
    files: dict[int, list[FileFigures]] = {index: [] for index in chunks}
    for row in written:
        if row.file:
            files[row.chunk].append(figures_from_json(row.file))
    return files


def _earlier_ids(
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
    window = timedelta(days=settings.duplicate_lookback_days)
    first = _from_micros(min(start for start, _ in events)) - window
    last = _from_micros(max(end for _, end in events)) + window
    completed = [
        row.ingest_id
        for row in spark.table(settings.table(INGEST_LEDGER))
        .where(F.col("status") == COMPLETED)
        .where(F.col("ingest_id") != ingest_id)
        .select("ingest_id")
        .collect()
    ]
    paths = data_files_between(
        spark,
        settings,
        TRANSACTIONS,
        {
            "event_time": (first.isoformat(), last.isoformat()),
            "transaction_id": (id_range["min"].as_py(), id_range["max"].as_py()),
        },
    )
    if paths is None:
        return _earlier_ids_through_spark(spark, settings, completed, first, last)
    return read_ids_of_ingests(paths, completed, first, last)


def _earlier_ids_through_spark(
    spark: SparkSession, settings: Settings, completed: list[str], first: datetime, last: datetime
) -> pa.ChunkedArray:
    """The same ids when the table has delete files: Spark applies them; Arrow batches back."""
    earlier = (
        spark.table(settings.table(TRANSACTIONS))
        .where(F.col("ingest_id").isin(completed))
        .where(F.col("event_time").between(F.lit(first), F.lit(last)))
        .select("transaction_id")
    )
    batches = earlier._collect_as_arrow()
    return pa.chunked_array([batch.column(0) for batch in batches], pa.string())


def _from_micros(micros: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)


def _chunks_with_lines(
    chunks: dict[int, LandingChunk], extra: dict[int, tuple[ExtraReason, ...]]
) -> dict[int, LandingChunk]:
    starts = sorted((chunk.first_line_number, index) for index, chunk in chunks.items())
    firsts = [first for first, _ in starts]
    affected = {starts[bisect.bisect_right(firsts, line) - 1][1] for line in extra}
    return {index: chunks[index] for index in sorted(affected)}


def _counts(
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
        first_event_time=_from_micros(min(start for start, _ in events)) if events else None,
        last_event_time=_from_micros(max(end for _, end in events)) if events else None,
    )


def _delete_files(files: list[FileFigures] | tuple[FileFigures, ...]) -> None:
    """Remove files that will never be published (a redone chunk, a failed audit)."""
    for figures in files:
        filesystem, path = resolve(figures.path)
        filesystem.delete_file(path)
